/**
 * Region-parallel variant calling: checks the inputs (coordinate-sorted, indexed BAMs whose
 * @SQ match the reference), plans regions (regions.ts), calls them on the pool (or inline
 * with one thread), and concatenates the region VCFs into one bgzipped VCF 4.3 with a
 * full header and a .tbi written by genolake. Outputs go to temporary names and are
 * renamed into place at the end, the index first, so a failed call publishes nothing.
 */
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { IndexedFasta } from '../annotate/fasta.js';
import type { TaskPool } from '../engine/pool.js';
import { createPool } from '../engine/pool.js';
import { tryDecodeHeader, type BamHeader } from '../formats/bam.js';
import { readBgzfBlocks } from '../formats/bgzf.js';
import { VcfGzWriter } from '../formats/tabix.js';
import { InputError } from '../util/errors.js';
import { genolakeVersion } from '../util/paths.js';
import { callRegion, DEFAULT_CALL, type CallOptions, type CallRegionResult, type CallRegionTask } from './region.js';
import { planRegions, type CallRegion } from './regions.js';

export interface CallVariantsOptions {
  reference: string;
  /** One BAM per sample. */
  bams: string[];
  out: string;
  /** Restrict calling to these intervals (0-based half-open), e.g. from a BED. */
  targets?: { chrom: string; start: number; end: number }[];
  /** Worker threads (default 1: inline, no pool). */
  threads?: number;
  /** Use this pool instead of creating one (e.g. a run's pool). */
  pool?: TaskPool;
  /** Force a region plan (tests); default planRegions(). */
  regions?: CallRegion[];
  options?: CallOptions;
  /** Recorded as ##genolake_callCommand. */
  commandLine?: string;
}

export interface CallVariantsResult {
  out: string;
  index: string;
  regions: number;
  records: number;
  snvs: number;
  indels: number;
  samples: string[];
}

/** Reads the header of a BAM (only the first blocks). */
export async function readBamHeader(path: string): Promise<BamHeader> {
  if (!existsSync(path)) throw new InputError('missing_file', 'BAM not found', { file: path });
  const gen = readBgzfBlocks(path, { name: path, threads: 1 });
  let buf = Buffer.alloc(0);
  try {
    for await (const b of gen) {
      buf = Buffer.concat([buf, b.data]);
      const h = tryDecodeHeader(buf, path);
      if (h) return h.header;
    }
  } finally {
    await gen.return(undefined);
  }
  throw new InputError('BAM_TRUNCATED', 'BAM header is truncated', { file: path });
}

function sampleName(h: BamHeader, bam: string): string {
  for (const line of h.text.split('\n')) {
    if (!line.startsWith('@RG\t')) continue;
    const sm = line.split('\t').find((f) => f.startsWith('SM:'));
    if (sm) return sm.slice(3);
  }
  return basename(bam).replace(/\.bam$/, '');
}

/** The VCF header for a call. */
export function callVcfHeader(
  refs: { name: string; length: number }[],
  samples: string[],
  reference: string,
  o: Required<Pick<CallOptions, 'lowQual' | 'minDepth' | 'maxStrandBias' | 'indelGap' | 'indelGapFraction'>>,
  commandLine?: string,
): string {
  const d = new Date();
  const date = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${String(d.getUTCDate()).padStart(2, '0')}`;
  const lines = [
    '##fileformat=VCFv4.3',
    `##fileDate=${date}`,
    `##source=genolake-${genolakeVersion()}`,
    `##reference=file://${resolve(reference)}`,
    ...refs.map((r) => `##contig=<ID=${r.name},length=${r.length}>`),
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Read depth at the site (reads passing the mapping-quality filter)">',
    '##INFO=<ID=MQ,Number=1,Type=Integer,Description="Root-mean-square mapping quality of the reads at the site">',
    '##INFO=<ID=INDEL,Number=0,Type=Flag,Description="The site is an insertion or deletion">',
    '##INFO=<ID=DP4,Number=4,Type=Integer,Description="Reads: reference forward, reference reverse, alternate forward, alternate reverse">',
    '##INFO=<ID=FS,Number=1,Type=Float,Description="Phred-scaled Fisher exact test p-value of strand bias">',
    '##FILTER=<ID=PASS,Description="All filters passed">',
    `##FILTER=<ID=LowQual,Description="QUAL below ${o.lowQual}">`,
    `##FILTER=<ID=LowDepth,Description="INFO DP below ${o.minDepth}">`,
    `##FILTER=<ID=StrandBias,Description="INFO FS above ${o.maxStrandBias}">`,
    `##FILTER=<ID=IndelGap,Description="SNV within ${o.indelGap} bp plus the indel length of an indel with QUAL >= ${o.lowQual}, alternate reads below ${o.indelGapFraction} of the depth">`,
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality (phred posterior probability that the genotype is wrong)">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Reads used for the genotype">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Reads supporting each allele">',
    '##FORMAT=<ID=PL,Number=G,Type=Integer,Description="Phred-scaled genotype likelihoods, normalised to the best">',
  ];
  if (commandLine) lines.push(`##genolake_callCommand=${commandLine.replace(/\n/g, ' ')}`);
  lines.push(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', 'FORMAT', ...samples].join('\t'));
  return lines.join('\n') + '\n';
}

export async function callVariants(opts: CallVariantsOptions): Promise<CallVariantsResult> {
  if (opts.bams.length === 0) throw new InputError('CALL_NO_BAM', 'no BAM given');
  const fasta = await IndexedFasta.open(opts.reference);
  let refs: { name: string; length: number }[] | undefined;
  const samples: string[] = [];
  try {
    for (const bam of opts.bams) {
      const h = await readBamHeader(bam);
      const hd = h.text.split('\n').find((l) => l.startsWith('@HD'));
      if (!hd || !/\tSO:coordinate/.test(hd)) {
        throw new InputError('BAM_UNSORTED', 'BAM is not coordinate-sorted (@HD SO:coordinate); sort it with `genolake bam sort`', { file: bam });
      }
      if (!existsSync(`${bam}.bai`)) {
        throw new InputError('BAM_NO_INDEX', 'BAM has no index (.bai next to it); index it with `genolake bam sort` or `samtools index`', { file: bam });
      }
      for (const r of h.refs) {
        const len = fasta.length(r.name);
        if (len === undefined) throw new InputError('CONTIG_MISMATCH', `@SQ ${r.name} is not in the reference ${opts.reference}`, { file: bam });
        if (len !== r.length) throw new InputError('CONTIG_MISMATCH', `@SQ ${r.name} has length ${r.length} but the reference has ${len}`, { file: bam });
      }
      if (!refs) refs = h.refs;
      else if (JSON.stringify(refs) !== JSON.stringify(h.refs)) {
        throw new InputError('CONTIG_MISMATCH', 'the BAMs do not share the same @SQ list', { file: bam });
      }
      samples.push(sampleName(h, bam));
    }
  } finally {
    fasta.close();
  }
  const o = { ...DEFAULT_CALL, ...(opts.options ?? {}) };
  const threads = Math.max(1, opts.threads ?? 1);
  const regions = opts.regions ?? planRegions(refs!, { threads, targets: opts.targets });
  const tasks: CallRegionTask[] = regions.map((region) => ({
    bams: opts.bams.map((b) => resolve(b)),
    reference: resolve(opts.reference),
    region,
    options: opts.options,
  }));
  const ownPool = !opts.pool && threads > 1 ? createPool({ threads }) : undefined;
  const pool = opts.pool ?? ownPool;
  // Regions are written in plan order as soon as they and every region before them are
  // done; at most `window` regions are in flight or waiting, so memory holds a few
  // regions' records, not the genome's.
  const window = pool ? Math.max(2, 2 * pool.threads) : 1;
  const callOne = (t: CallRegionTask): Promise<CallRegionResult> => (pool ? pool.run<CallRegionTask, CallRegionResult>('call', t) : callRegion(t));
  const tmp = `${opts.out}.tmp-${process.pid}`;
  let records = 0;
  let snvs = 0;
  let indels = 0;
  const inflight: Promise<CallRegionResult>[] = [];
  try {
    const w = await VcfGzWriter.create(tmp);
    await w.writeHeader(callVcfHeader(refs!, samples, opts.reference, o, opts.commandLine));
    let next = 0;
    while (next < tasks.length || inflight.length) {
      while (next < tasks.length && inflight.length < window) {
        const p = callOne(tasks[next++]);
        p.catch(() => undefined); // awaited in order below
        inflight.push(p);
      }
      const r = await inflight.shift()!;
      for (const line of r.lines) await w.writeRecord(line);
      records += r.lines.length;
      snvs += r.snvs;
      indels += r.indels;
    }
    await w.close();
    await rename(`${tmp}.tbi`, `${opts.out}.tbi`);
    await rename(tmp, opts.out);
  } catch (e) {
    await Promise.allSettled(inflight);
    await rm(tmp, { force: true });
    await rm(`${tmp}.tbi`, { force: true });
    throw e;
  } finally {
    await ownPool?.close();
  }
  return { out: opts.out, index: `${opts.out}.tbi`, regions: regions.length, records, snvs, indels, samples };
}
