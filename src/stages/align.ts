/**
 * The align stage: a sample's read shards → one coordinate-sorted, duplicate-marked,
 * indexed BAM with qc.json, published under `<outPrefix>` (sample.bam, sample.bam.bai,
 * qc.json, align.json).
 *
 * Shards are aligned one after another, each spread over the whole pool in batches (the
 * kernel is entered once per batch); records stream into one bounded-memory sorter, so
 * memory is the index plus the sort budget, whatever the sample size. Mate tags are added
 * on the aligner's name-grouped output before sorting, as duplicate marking needs them.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareIndex, startAlign, type AlignSummary } from '../align/align.js';
import type { AlignParams } from '../align/kernel.js';
import type { AlignmentHeader, ReadGroup } from '../align/record.js';
import type { TaskPool } from '../engine/pool.js';
import { sortToBam } from '../formats/bam-sort.js';
import { encodeAlignerRecord, headerFromAligner } from '../formats/bam.js';
import { lakeFileCopy } from '../lake/local-file.js';
import type { Lake } from '../lake/types.js';
import type { Logger } from '../util/log.js';
import type { ShardIndex } from './shard.js';

export interface AlignSampleInput {
  shards: ShardIndex;
  /** Directory of the aligner index (`genolake index`). */
  indexDir: string;
  /** Final prefix, e.g. staged/patient_id=P/sample_id=S/run_id=R/alignment/ */
  outPrefix: string;
  sampleId: string;
  /** @RG fields per read-group id (LB, PL, PU). */
  readGroupFields?: Record<string, Record<string, string>>;
  params?: Partial<AlignParams>;
  /** The shorter part of a chimeric read as secondary, not supplementary (bwa -M). */
  splitAsSecondary?: boolean;
  /** Sort memory budget in bytes (default 512 MiB). */
  memoryBytes?: number;
  commandLine?: string;
}

export interface AlignSampleDeps {
  lake: Lake;
  pool: TaskPool;
  log?: Logger;
  progress?: { addUnits(name: string, n: number): void };
}

export interface AlignSampleResult {
  bam: string;
  bai: string;
  qc: string;
  records: number;
  reads: number;
  mapped: number;
  properPairs: number;
  duplicates: number;
  bamBytes: number;
}

export async function alignSample(input: AlignSampleInput, deps: AlignSampleDeps): Promise<AlignSampleResult> {
  const { lake, pool, log } = deps;
  const work = await mkdtemp(join(tmpdir(), 'genolake-align-'));
  try {
    const totals: AlignSummary = { reads: 0, mapped: 0, properPairs: 0, batches: 0, isizeMean: 0, isizeSd: 0, rescued: 0 };
    const readGroups: ReadGroup[] = input.shards.readGroups.map((g) => ({
      id: g.id,
      sample: input.sampleId,
      ...(input.readGroupFields?.[g.id] ? { extra: input.readGroupFields[g.id] } : {}),
    }));
    // One load of the index for every shard (and the header probe).
    const index = await prepareIndex(input.indexDir, pool.threads);
    const runs = input.shards.shards;
    const first = runs[0];
    if (!first) throw new Error('no shards to align');

    async function* records(): AsyncGenerator<Buffer[]> {
      for (const s of runs) {
        const r1 = await lakeFileCopy(lake, s.r1.key, work);
        const r2 = s.r2 ? await lakeFileCopy(lake, s.r2.key, work) : undefined;
        const rg = readGroups.find((g) => g.id === s.readGroup);
        const run = await startAlign({
          indexDir: input.indexDir,
          index,
          r1,
          ...(r2 ? { r2 } : {}),
          readGroup: rg,
          params: input.params,
          splitAsSecondary: !!input.splitAsSecondary,
          pool,
          threads: pool.threads,
          commandLine: input.commandLine,
        });
        for await (const batch of run.records) {
          deps.progress?.addUnits('reads', batch.length);
          yield batch.map(encodeAlignerRecord);
        }
        for (const k of ['reads', 'mapped', 'properPairs', 'batches', 'rescued'] as const) totals[k] += run.summary[k];
        log?.debug({ shard: s.r1.key, reads: run.summary.reads, mapped: run.summary.mapped }, 'align: shard done');
      }
    }

    // The sorter needs the header first: an alignment that is never iterated gives it (the
    // index is loaded, no read is touched).
    const probe = await startAlign({
      indexDir: input.indexDir,
      index,
      r1: await lakeFileCopy(lake, first.r1.key, work),
      pool,
      threads: pool.threads,
      params: input.params,
      splitAsSecondary: !!input.splitAsSecondary,
      commandLine: input.commandLine,
    });
    await probe.records.return(undefined);
    const header: AlignmentHeader = { ...probe.header, readGroups };

    const bamPath = join(work, 'sample.bam');
    const qcPath = join(work, 'qc.json');
    const res = await sortToBam(headerFromAligner(header), records(), bamPath, {
      markDuplicates: true,
      qcPath,
      memoryBytes: input.memoryBytes,
      tmpDir: work,
    });

    const staging = lake.stagingPrefix('align');
    await lake.put(`${staging}sample.bam`, createReadStream(bamPath));
    await lake.put(`${staging}sample.bam.bai`, await readFile(`${bamPath}.bai`));
    await lake.put(`${staging}qc.json`, await readFile(qcPath));
    const summary = { ...totals, records: res.records, bamBytes: res.bamBytes, duplicates: (res.markdup?.duplicatePairedReads ?? 0) + (res.markdup?.duplicateSingleReads ?? 0) };
    await lake.put(`${staging}align.json`, `${JSON.stringify(summary, null, 2)}\n`);
    await lake.publish(staging, input.outPrefix, { stage: 'align', records: res.records });
    log?.info({ outPrefix: input.outPrefix, records: res.records, mapped: totals.mapped }, 'align: published');
    return {
      bam: `${input.outPrefix}sample.bam`,
      bai: `${input.outPrefix}sample.bam.bai`,
      qc: `${input.outPrefix}qc.json`,
      records: res.records,
      reads: totals.reads,
      mapped: totals.mapped,
      properPairs: totals.properPairs,
      duplicates: summary.duplicates,
      bamBytes: res.bamBytes,
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
