/**
 * Calls one region: reads every sample's records through its BAI, builds the pileups,
 * and returns the region's VCF data lines (sorted by POS; SNVs before indels at a POS).
 * Runs in a pool worker (workers/call.ts) or inline.
 */
import { readFileSync } from 'node:fs';
import { IndexedFasta } from '../annotate/fasta.js';
import { decodeBai, type BaiIndex } from '../formats/bai.js';
import { InputError } from '../util/errors.js';
import { fisherStrand, genotypeBatch } from './genotype.js';
import type { GenotypeRequest } from './kernel.js';
import { callIndelSites } from './indels.js';
import { addBaseEvidence, collectReads, DEFAULT_PILEUP, INDEL_MARGIN, readRegionRecords, type PileupOptions, type RegionPileup } from './pileup.js';
import type { CallRegion } from './regions.js';

export interface CallOptions extends PileupOptions {
  /** Sites below this QUAL are not written (default 20, the QUAL<20 filter bcftools users apply). */
  minQual?: number;
  /** Sites below this QUAL get FILTER LowQual (default 20). */
  lowQual?: number;
  /** Sites with INFO DP below this get FILTER LowDepth (default 4). */
  minDepth?: number;
  /** SNV heterozygosity prior (default 1e-3) and indel prior (default 1e-4). */
  theta?: number;
  indelTheta?: number;
  /** Reads needed for an alternate allele to be considered, pooled over samples (default 2). */
  minAltReads?: number;
  /** Fraction of reads an indel needs to be considered (default 0.15). */
  minIndelFraction?: number;
  /** FILTER StrandBias when INFO FS (Fisher strand, phred) exceeds this (default 60). */
  maxStrandBias?: number;
  /**
   * FILTER IndelGap on SNVs within (this + the indel's length) bases of an indel with
   * QUAL ≥ lowQual (default 10, at most INDEL_MARGIN) whose alternate reads are below
   * indelGapFraction of the depth (default 0.3).
   */
  indelGap?: number;
  indelGapFraction?: number;
  /**
   * Where genotype likelihoods and calls are computed: 'wasm' (default;
   * wasm/caller/genotype.c) or 'js', the reference in genotype.ts it must equal (tests).
   */
  genotypeKernel?: 'wasm' | 'js';
}

export const DEFAULT_CALL = {
  ...DEFAULT_PILEUP,
  minQual: 20,
  lowQual: 20,
  minDepth: 4,
  theta: 1e-3,
  indelTheta: 1e-4,
  minAltReads: 2,
  minIndelFraction: 0.15,
  maxStrandBias: 60,
  indelGap: 10,
  indelGapFraction: 0.3,
} as const;

export interface CallRegionTask {
  /** One BAM per sample (each with `<bam>.bai`). */
  bams: string[];
  reference: string;
  region: CallRegion;
  options?: CallOptions;
}

export interface CallRegionResult {
  lines: string[];
  snvs: number;
  indels: number;
}

const baiCache = new Map<string, BaiIndex>();
function loadBai(bam: string): BaiIndex {
  let b = baiCache.get(bam);
  if (!b) {
    const file = `${bam}.bai`;
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch {
      throw new InputError('BAM_NO_INDEX', 'BAM has no index (.bai next to it); index it with `genolake bam sort` or `samtools index`', { file: bam });
    }
    b = decodeBai(buf, file);
    if (baiCache.size > 16) baiCache.clear();
    baiCache.set(bam, b);
  }
  return b;
}

const fastaCache = new Map<string, IndexedFasta>();
async function loadFasta(path: string): Promise<IndexedFasta> {
  let f = fastaCache.get(path);
  if (!f) fastaCache.set(path, (f = await IndexedFasta.open(path)));
  return f;
}

const BASES = 'ACGT';
/** Reference byte → base index 0..3 (A, C, G, T), −1 for anything else. */
const BASE_CODE = new Int8Array(256).fill(-1);
for (let i = 0; i < 4; i++) BASE_CODE[BASES.charCodeAt(i)] = i;

function fmtQual(q: number): string {
  return String(Number(q.toFixed(2)));
}

function gtString(gt: [number, number]): string {
  return `${gt[0]}/${gt[1]}`;
}

export async function callRegion(task: CallRegionTask): Promise<CallRegionResult> {
  const o = { ...DEFAULT_CALL, ...(task.options ?? {}) };
  const { chrom, refId, start, end } = task.region;
  const fasta = await loadFasta(task.reference);
  const refOff = Math.max(0, start - o.indelPad);
  const refSeq = fasta.fetch(chrom, refOff, end + o.indelPad);
  const pileups: RegionPileup[] = [];
  for (const bam of task.bams) {
    const records = await readRegionRecords(bam, loadBai(bam), refId, Math.max(0, start - o.indelPad), end + o.indelPad);
    pileups.push(collectReads(records, start, end, refSeq, refOff, o));
  }
  // indels first: their realignment finds reads misaligned around them, whose bases are
  // then left out of the SNV evidence
  const indelCalls = callIndelSites(pileups, refSeq, refOff, start, end, o, task.bams.join(','));
  pileups.forEach((pu, s) => addBaseEvidence(pu, o, task.bams[s], indelCalls.drop[s]));
  const out: { pos: number; order: number; line: string }[] = [];
  const snvSites: { pos: number; altFrac: number; head: string; filter: string; tail: string }[] = [];
  const indelSpans: [number, number, number][] = [];
  let snvs = 0;
  let indels = 0;
  // ---- SNVs
  const pooled = new Int32Array(4);
  // Counts pooled over samples for every position (one sample: its own array, no copy).
  const pooledAll = pileups.length === 1 ? pileups[0].count : new Uint32Array(4 * (end - start));
  if (pileups.length > 1) for (const pu of pileups) for (let i = 0; i < pooledAll.length; i++) pooledAll[i] += pu.count[i];
  const refCodes = Buffer.from(refSeq, 'latin1');
  const snvCands: { k: number; ri: number; tot: number; alleles: number[] }[] = [];
  for (let k = 0; k < end - start; k++) {
    const ri = BASE_CODE[refCodes[start + k - refOff]];
    if (ri < 0) continue;
    const off = k * 4;
    const c0 = pooledAll[off], c1 = pooledAll[off + 1], c2 = pooledAll[off + 2], c3 = pooledAll[off + 3];
    const tot = c0 + c1 + c2 + c3;
    if (tot === 0) continue;
    // fast path: no alternate base with enough reads (almost every position)
    const maxAlt = Math.max(ri === 0 ? 0 : c0, ri === 1 ? 0 : c1, ri === 2 ? 0 : c2, ri === 3 ? 0 : c3);
    if (maxAlt < o.minAltReads || maxAlt < 0.05 * tot) continue;
    pooled[0] = c0;
    pooled[1] = c1;
    pooled[2] = c2;
    pooled[3] = c3;
    const alts = [0, 1, 2, 3]
      .filter((x) => x !== ri && pooled[x] >= o.minAltReads && pooled[x] / tot >= 0.05)
      .sort((a, b) => pooled[b] - pooled[a] || a - b)
      .slice(0, 2);
    if (alts.length === 0) continue;
    if (alts.length === 2 && pooled[alts[1]] < 0.2 * tot) alts.pop();
    snvCands.push({ k, ri, tot, alleles: [ri, ...alts] });
  }
  // genotyped in batches (the kernel, or genotype.ts): a third allele no sample's
  // genotype uses is dropped and the site genotyped again with two
  const snvCalls = genotypeBatch(snvCands.map((c) => snvRequest(pileups, 4 * c.k, c.alleles, o.theta)), pileups.length, o.genotypeKernel);
  const again = snvCands.flatMap((c, i) => (c.alleles.length === 3 && !snvCalls[i].calls.some((x) => x.gt.includes(2)) ? [i] : []));
  for (const i of again) snvCands[i].alleles = snvCands[i].alleles.slice(0, 2);
  genotypeBatch(again.map((i) => snvRequest(pileups, 4 * snvCands[i].k, snvCands[i].alleles, o.theta)), pileups.length, o.genotypeKernel).forEach(
    (c, j) => (snvCalls[again[j]] = c),
  );
  for (let ci = 0; ci < snvCands.length; ci++) {
    const { k, ri, tot, alleles } = snvCands[ci];
    const site = snvCalls[ci];
    const off = k * 4;
    if (!site.calls.some((c) => c.gt[0] > 0 || c.gt[1] > 0) || site.qual < o.minQual) continue;
    let depth = 0;
    let mq2 = 0;
    for (const pu of pileups) {
      depth += pu.depth[k];
      mq2 += pu.mq2[k];
    }
    const samples = pileups.map((pu, s) => {
      const ad = alleles.map((a) => pu.count[off + a]);
      const dp = pu.count[off] + pu.count[off + 1] + pu.count[off + 2] + pu.count[off + 3];
      const c = site.calls[s];
      return `${gtString(c.gt)}:${c.gq}:${dp}:${ad.join(',')}:${c.pl.join(',')}`;
    });
    const mq = depth ? Math.round(Math.sqrt(mq2 / depth)) : 0;
    const dp4 = [0, 0, 0, 0];
    for (const pu of pileups) {
      dp4[0] += pu.forward[off + ri];
      dp4[1] += pu.count[off + ri] - pu.forward[off + ri];
      for (const a of alleles.slice(1)) {
        dp4[2] += pu.forward[off + a];
        dp4[3] += pu.count[off + a] - pu.forward[off + a];
      }
    }
    const fs = fisherStrand(dp4[0], dp4[1], dp4[2], dp4[3]);
    const filter = filterOf(site.qual, depth, fs, o);
    const alt = alleles.slice(1).map((a) => BASES[a]).join(',');
    snvSites.push({
      pos: start + k,
      altFrac: (dp4[2] + dp4[3]) / tot,
      head: `${chrom}\t${start + k + 1}\t.\t${BASES[ri]}\t${alt}\t${fmtQual(site.qual)}`,
      filter,
      tail: `DP=${depth};DP4=${dp4.join(',')};FS=${fmtQual(fs)};MQ=${mq}\tGT:GQ:DP:AD:PL\t${samples.join('\t')}`,
    });
    snvs++;
  }
  // ---- indels (realigned against their haplotypes: indels.ts)
  for (const site of indelCalls.sites) {
    if (site.anchor < start - INDEL_MARGIN || site.anchor >= end + INDEL_MARGIN) continue;
    if (site.qual >= o.lowQual) indelSpans.push([site.anchor, site.anchor + site.ref.length, site.maxLen]);
    if (site.anchor < start || site.anchor >= end) continue; // another region emits it
    const depth = site.dp4[0] + site.dp4[1] + site.dp4[2] + site.dp4[3];
    const mq = depth ? Math.round(Math.sqrt(site.mq2 / depth)) : 0;
    const fs = fisherStrand(site.dp4[0], site.dp4[1], site.dp4[2], site.dp4[3]);
    const samples = site.ad.map((ad, s) => {
      const c = site.call.calls[s];
      return `${gtString(c.gt)}:${c.gq}:${ad.reduce((t, v) => t + v, 0)}:${ad.join(',')}:${c.pl.join(',')}`;
    });
    out.push({
      pos: site.anchor,
      order: 1,
      line: `${chrom}\t${site.anchor + 1}\t.\t${site.ref}\t${site.alts.join(',')}\t${fmtQual(site.qual)}\t${filterOf(site.qual, depth, fs, o)}\tINDEL;DP=${depth};DP4=${site.dp4.join(',')};FS=${fmtQual(fs)};MQ=${mq}\tGT:GQ:DP:AD:PL\t${samples.join('\t')}`,
    });
    indels++;
  }
  // SNVs next to a confident indel with few alternate reads are usually misaligned indel reads
  // the window grows with the indel's length: reads ending inside a long event are the ones misaligned
  const near = (pos: number) =>
    indelSpans.some(([a, b, len]) => {
      const gap = Math.min(o.indelGap + len, INDEL_MARGIN);
      return pos >= a - gap && pos < b + gap;
    });
  for (const v of snvSites) {
    let filter = v.filter;
    if (v.altFrac < o.indelGapFraction && near(v.pos)) {
      filter = filter === 'PASS' ? 'IndelGap' : `${filter};IndelGap`;
    }
    out.push({ pos: v.pos, order: 0, line: `${v.head}\t${filter}\t${v.tail}` });
  }
  out.sort((a, b) => a.pos - b.pos || a.order - b.order || (a.line < b.line ? -1 : a.line > b.line ? 1 : 0));
  return { lines: out.map((x) => x.line), snvs, indels };
}

/** The kernel request of an SNV site: each sample's S1, S2, S3 at pileup slot `off`. */
function snvRequest(pileups: RegionPileup[], off: number, alleles: number[], theta: number): GenotypeRequest {
  return {
    kind: 'snv',
    alleles,
    theta,
    samples: pileups.map((pu) => [...pu.s1.subarray(off, off + 4), ...pu.s2.subarray(off, off + 4), ...pu.s3.subarray(off, off + 4)]),
  };
}

function filterOf(qual: number, depth: number, fs: number, o: { lowQual: number; minDepth: number; maxStrandBias: number }): string {
  const f: string[] = [];
  if (qual < o.lowQual) f.push('LowQual');
  if (depth < o.minDepth) f.push('LowDepth');
  if (fs > o.maxStrandBias) f.push('StrandBias');
  return f.length ? f.join(';') : 'PASS';
}
