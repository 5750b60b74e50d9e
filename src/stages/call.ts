/**
 * The call stage: a sample's published BAM (+ BAI) in the lake → calls.vcf.gz and
 * calls.vcf.gz.tbi (+ call.json), published under `<outPrefix>` atomically. Regions are
 * called on the run's pool (src/call/). On an S3 lake the BAM and BAI are downloaded
 * to a temporary directory first (the caller reads them by random access).
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callVariants, type CallVariantsResult } from '../call/call.js';
import type { CallOptions } from '../call/region.js';
import type { TaskPool } from '../engine/pool.js';
import { lakeFileCopy } from '../lake/local-file.js';
import type { Lake } from '../lake/types.js';
import type { Logger } from '../util/log.js';

export interface CallSampleInput {
  /** Lake keys of the sample's BAMs (each with `<key>.bai`); one per sample. */
  bamKeys: string[];
  /** Reference FASTA (local path). */
  reference: string;
  /** Final prefix, e.g. staged/patient_id=P/sample_id=S/run_id=R/calls/ */
  outPrefix: string;
  targets?: { chrom: string; start: number; end: number }[];
  options?: CallOptions;
  commandLine?: string;
}

export interface CallSampleDeps {
  lake: Lake;
  pool: TaskPool;
  log?: Logger;
}

export interface CallSampleResult extends Omit<CallVariantsResult, 'out' | 'index'> {
  vcf: string;
  tbi: string;
}

export async function callSample(input: CallSampleInput, deps: CallSampleDeps): Promise<CallSampleResult> {
  const { lake, pool, log } = deps;
  const tmp = await mkdtemp(join(tmpdir(), 'genolake-call-'));
  try {
    const bams: string[] = [];
    for (const key of input.bamKeys) {
      // The index must sit beside the BAM: on S3 both are downloaded under matching names.
      const name = `sample-${bams.length}.bam`;
      const bam = await lakeFileCopy(lake, key, tmp, name);
      await lakeFileCopy(lake, `${key}.bai`, tmp, `${name}.bai`);
      bams.push(bam);
    }
    const out = join(tmp, 'calls.vcf.gz');
    const res = await callVariants({
      reference: input.reference,
      bams,
      out,
      targets: input.targets,
      pool,
      threads: pool.threads,
      options: input.options,
      commandLine: input.commandLine,
    });
    const staging = lake.stagingPrefix('call');
    await lake.put(`${staging}calls.vcf.gz`, createReadStream(out));
    await lake.put(`${staging}calls.vcf.gz.tbi`, await readFile(`${out}.tbi`));
    const summary = { regions: res.regions, records: res.records, snvs: res.snvs, indels: res.indels, samples: res.samples };
    await lake.put(`${staging}call.json`, `${JSON.stringify(summary, null, 2)}\n`);
    await lake.publish(staging, input.outPrefix, { stage: 'call', records: res.records });
    log?.info({ outPrefix: input.outPrefix, ...summary }, 'call: published');
    return { ...summary, vcf: `${input.outPrefix}calls.vcf.gz`, tbi: `${input.outPrefix}calls.vcf.gz.tbi` };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
