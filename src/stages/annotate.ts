/**
 * The annotate stage: a sample's calls.vcf.gz in the lake → annotated.vcf.gz + .tbi
 * (BCSQ and VEP-style CSQ, see src/annotate/), published under `<outPrefix>` atomically.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { annotateVcf } from '../annotate/annotate.js';
import { VcfGzWriter } from '../formats/tabix.js';
import { lakeFileCopy } from '../lake/local-file.js';
import type { Lake } from '../lake/types.js';
import type { Logger } from '../util/log.js';

export interface AnnotateSampleInput {
  /** Lake key of the calls (BGZF VCF). */
  vcfKey: string;
  reference: string;
  /** Gene models: GFF3 (Ensembl style) or GTF by extension. */
  genes: string;
  outPrefix: string;
}

export interface AnnotateSampleResult {
  vcf: string;
  tbi: string;
  records: number;
  annotated: number;
}

/** Re-writes a BGZF VCF through the tabix-indexing writer (annotateVcf writes BGZF without an index). */
async function indexVcf(src: string, dest: string): Promise<void> {
  const w = await VcfGzWriter.create(dest);
  const rl = createInterface({ input: createReadStream(src).pipe(createGunzip()), crlfDelay: Infinity });
  let header = '';
  let inHeader = true;
  for await (const line of rl) {
    if (inHeader && line.startsWith('#')) {
      header += `${line}\n`;
      continue;
    }
    if (inHeader) {
      await w.writeHeader(header);
      inHeader = false;
    }
    if (line) await w.writeRecord(line);
  }
  if (inHeader) await w.writeHeader(header);
  await w.close();
}

export async function annotateSample(input: AnnotateSampleInput, deps: { lake: Lake; log?: Logger }): Promise<AnnotateSampleResult> {
  const { lake, log } = deps;
  const tmp = await mkdtemp(join(tmpdir(), 'genolake-annotate-'));
  try {
    const vcf = await lakeFileCopy(lake, input.vcfKey, tmp);
    const raw = join(tmp, 'annotated.raw.vcf.gz');
    const gtf = /\.gtf(\.gz)?$/i.test(input.genes);
    const stats = await annotateVcf({ reference: input.reference, ...(gtf ? { gtf: input.genes } : { gff: input.genes }), vcf, out: raw });
    const out = join(tmp, 'annotated.vcf.gz');
    await indexVcf(raw, out);
    const staging = lake.stagingPrefix('annotate');
    await lake.put(`${staging}annotated.vcf.gz`, createReadStream(out));
    await lake.put(`${staging}annotated.vcf.gz.tbi`, await readFile(`${out}.tbi`));
    await lake.publish(staging, input.outPrefix, { stage: 'annotate', records: stats.records });
    log?.info({ outPrefix: input.outPrefix, ...stats }, 'annotate: published');
    return { vcf: `${input.outPrefix}annotated.vcf.gz`, tbi: `${input.outPrefix}annotated.vcf.gz.tbi`, records: stats.records, annotated: stats.annotated };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
