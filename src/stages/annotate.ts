/**
 * The annotate stage: a sample's calls.vcf.gz in the lake → annotated.vcf.gz + .tbi
 * (BCSQ and VEP-style CSQ, see src/annotate/), published under `<outPrefix>` atomically.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { annotateVcf } from '../annotate/annotate.js';
import type { KnownDbSpec, KnownDbStats } from '../annotate/known.js';
import type { TaskPool } from '../engine/pool.js';
import { indexBgzfVcf } from '../formats/tabix.js';
import { lakeFileCopy } from '../lake/local-file.js';
import type { Lake } from '../lake/types.js';
import type { Logger } from '../util/log.js';

export interface AnnotateSampleInput {
  /** Lake key of the calls (BGZF VCF). */
  vcfKey: string;
  reference: string;
  /** Gene models: GFF3 (Ensembl style) or GTF by extension. */
  genes: string;
  /** Known-variant databases (absolute paths or URLs) whose IDs and INFO fields are copied on allele match. */
  known?: KnownDbSpec[];
  outPrefix: string;
}

export interface AnnotateSampleResult {
  vcf: string;
  tbi: string;
  records: number;
  annotated: number;
  /** Per known-variant database: records matched, chromosome aliases used, chromosomes absent. */
  known?: KnownDbStats[];
}

export interface AnnotateSampleDeps {
  lake: Lake;
  log?: Logger;
  /** The run's pool (StageContext.pool): records are annotated on its workers; without it, in this thread. */
  pool?: TaskPool;
}

export async function annotateSample(input: AnnotateSampleInput, deps: AnnotateSampleDeps): Promise<AnnotateSampleResult> {
  const { lake, log, pool } = deps;
  const tmp = await mkdtemp(join(tmpdir(), 'genolake-annotate-'));
  try {
    const vcf = await lakeFileCopy(lake, input.vcfKey, tmp);
    // BGZF straight from the annotator (its blocks compressed on the pool's threads), then
    // indexed by one reading pass: inflating is cheap next to compressing a second time
    const out = join(tmp, 'annotated.vcf.gz');
    const gtf = /\.gtf(\.gz)?$/i.test(input.genes);
    const stats = await annotateVcf({ reference: input.reference, ...(gtf ? { gtf: input.genes } : { gff: input.genes }), vcf, out, ...(input.known?.length ? { known: input.known } : {}), ...(pool ? { pool } : {}) });
    await indexBgzfVcf(out);
    const staging = lake.stagingPrefix('annotate');
    await lake.put(`${staging}annotated.vcf.gz`, createReadStream(out));
    await lake.put(`${staging}annotated.vcf.gz.tbi`, await readFile(`${out}.tbi`));
    await lake.publish(staging, input.outPrefix, { stage: 'annotate', records: stats.records });
    log?.info({ outPrefix: input.outPrefix, ...stats }, 'annotate: published');
    return { vcf: `${input.outPrefix}annotated.vcf.gz`, tbi: `${input.outPrefix}annotated.vcf.gz.tbi`, records: stats.records, annotated: stats.annotated, ...(stats.known ? { known: stats.known } : {}) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
