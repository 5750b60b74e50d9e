/**
 * The parquet stage: a VCF (annotated or not) → the variants table of the lake,
 * `curated/variants/patient_id=<P>/chrom=<C>/part-<run>-<samples>-<slice>.parquet`.
 *
 * Parallel without a pre-pass: a BGZF VCF is cut into slices of whole blocks from the
 * block headers alone; each worker inflates, parses and writes its slice (see
 * src/variants/slice.ts). A plain or gzip VCF is cut into text slices here instead.
 *
 * Idempotent: part names depend only on the run, the samples and the slice number, and
 * slices only on the file, so re-running the same VCF replaces each file by itself
 * (one atomic move each) and then removes any part of the same run and samples that the
 * new output does not have. Readers never see a row twice; other runs and samples of the
 * patient are untouched. Nothing is moved until every slice has succeeded.
 */
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { basename } from 'node:path';
import { inflateBgzfRange, isBgzfBlock, listBgzfBlocks, type BgzfBlockSpan } from '../formats/bgzf.js';
import { parseVcfHeader, type VcfHeader } from '../formats/vcf.js';
import type { Lake } from '../lake/types.js';
import { GenolakeError, InputError, type ErrorPlace } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { genolakeVersion } from '../util/paths.js';
import type { SampleSelection } from '../variants/convert.js';
import { VARIANTS_PREFIX, partitionValue } from '../variants/schema.js';
import type { SliceResult, SliceSource, SliceTask } from '../variants/slice.js';
import { DEFAULT_ROW_GROUP_ROWS } from '../pipeline/defaults.js';

/**
 * Compressed bytes per slice: fixed (not derived from the thread count) so output names are
 * stable; small enough that a file gives several slices per thread (the last ones finish
 * together), large enough that a part file is not tiny (~1 MB of Parquet per 4 MB of VCF.gz).
 */
export const DEFAULT_SLICE_BYTES = 4 << 20;
export { DEFAULT_ROW_GROUP_ROWS };

export interface ToParquetInput {
  /** A local VCF: plain, gzip or BGZF. */
  vcfPath: string;
  /** Name for messages (default: the path). */
  displayName?: string;
  patientId: string;
  /**
   * VCF sample columns to load and the sample_id each gets; default every column under its
   * own name. Without `column`, the column named `sampleId` (a differently named column is
   * an error, not a guess: pass `column` to map it).
   */
  samples?: { column?: string; sampleId?: string }[];
  runId: string;
  /** Reference build recorded in every row (default: ##reference of the VCF, else 'unknown'). */
  reference?: string;
  /** Lake prefix of the table root (default curated/variants/; experiments use experimental/<id>/curated/variants/). */
  tablePrefix?: string;
  sliceBytes?: number;
  rowGroupSize?: number;
  compression?: SliceTask['compression'];
}

export interface ToParquetDeps {
  lake: Lake;
  runTask<P, R>(worker: string, key: string, payload: P): Promise<R>;
  log?: Logger;
  onProgress?(p: { records: number; slicesDone: number; slices: number }): void;
}

export interface VariantFile {
  key: string;
  chrom: string;
  rows: number;
  bytes: number;
}

export interface ToParquetResult {
  patientId: string;
  sampleIds: string[];
  runId: string;
  records: number;
  rows: number;
  files: VariantFile[];
  /** Stale parts of the same run and samples removed by this write. */
  removed: string[];
  vcfBytes: number;
  parquetBytes: number;
}

const SAFE_NAME = /[^A-Za-z0-9._-]/g;

/**
 * The file-name prefix shared by every part of one (run, samples) load: the sample id for
 * one sample, a digest of the set for several (no separator from the id alphabet is free,
 * and '+' is mangled by some S3 tools).
 */
export function partStem(runId: string, sampleIds: readonly string[]): string {
  const samples =
    sampleIds.length === 1
      ? sampleIds[0].replace(SAFE_NAME, '_')
      : `m${createHash('sha256').update([...sampleIds].sort().join('\n')).digest('hex').slice(0, 12)}`;
  return `part-${runId.replace(SAFE_NAME, '_')}-${samples}`;
}

interface Plan {
  header: VcfHeader;
  sources: SliceSource[];
}

async function readHead(path: string, n: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Header end in `text`: the offset just past the `#CHROM` line's newline, or -1. */
function headerEnd(text: Buffer): number {
  let at = 0;
  for (;;) {
    if (at >= text.length) return -1;
    if (text[at] !== 35 /* # */) throw new Error('data before #CHROM');
    const nl = text.indexOf(10, at);
    if (nl < 0) return -1;
    if (text[at + 1] !== 35) return nl + 1; // the single-# line is the last header line
    at = nl + 1;
  }
}

async function planBgzf(path: string, file: string, sliceBytes: number): Promise<Plan> {
  const blocks = await listBgzfBlocks(path, file);
  const { size: fileSize } = await stat(path);
  const last = blocks.at(-1);
  if (!last || last.size !== 28) {
    throw new InputError('BGZF_TRUNCATED', 'the BGZF end-of-file block is missing: the file is truncated', { file });
  }
  // Inflate from the start until the header is complete.
  const fh = await open(path, 'r');
  let headerBlock = -1;
  let skip = 0;
  let headerText = '';
  try {
    const parts: Buffer[] = [];
    let total = 0;
    for (let i = 0; i < blocks.length; i++) {
      const data = await inflateBgzfRange(fh, blocks[i].offset, blocks[i].offset + blocks[i].size, file);
      parts.push(data);
      const before = total;
      total += data.length;
      let end: number;
      try {
        end = headerEnd(Buffer.concat(parts));
      } catch {
        throw new InputError('VCF_BAD_HEADER', 'no #CHROM header line before the first record', { file });
      }
      if (end >= 0) {
        headerText = Buffer.concat(parts).subarray(0, end).toString('utf8');
        headerBlock = i;
        skip = end - before;
        break;
      }
    }
  } finally {
    await fh.close();
  }
  if (headerBlock < 0) throw new InputError('VCF_BAD_HEADER', 'the file ends inside the header (no #CHROM line)', { file });
  const header = parseVcfHeader(headerText, file);

  const sources: SliceSource[] = [];
  let i = headerBlock;
  let first = true;
  let prev: BgzfBlockSpan | undefined;
  const dataBlocks = blocks.slice(0, -1); // the EOF block holds nothing
  while (i < dataBlocks.length) {
    const start = dataBlocks[i].offset;
    let j = i;
    let bytes = 0;
    while (j < dataBlocks.length && (j === i || bytes + dataBlocks[j].size <= sliceBytes)) bytes += dataBlocks[j++].size;
    const end = dataBlocks[j - 1].offset + dataBlocks[j - 1].size;
    sources.push({
      kind: 'bgzf',
      path,
      start,
      end,
      skip: first ? skip : 0,
      ...(first ? {} : { prev: prev! }),
      fileSize,
    });
    for (let k = i; k < j; k++) if (dataBlocks[k].size !== 28) prev = dataBlocks[k];
    first = false;
    i = j;
  }
  return { header, sources };
}

/** Plain or (non-BGZF) gzip: one streamed pass here, cutting text slices at line ends. */
async function planText(path: string, file: string, gz: boolean, sliceBytes: number): Promise<Plan> {
  const input = createReadStream(path);
  const stream = gz ? input.pipe(createGunzip()) : input;
  let headerText: string | undefined;
  let pending = '';
  const sources: SliceSource[] = [];
  const budget = sliceBytes * 4; // ~ uncompressed size of a compressed slice
  try {
    for await (const chunk of stream) {
      pending += (chunk as Buffer).toString('utf8');
      if (headerText === undefined) {
        const m = /^#CHROM[^\n]*\n/m.exec(pending);
        if (!m) {
          if (pending.length > 0 && pending[0] !== '#') break;
          continue;
        }
        headerText = pending.slice(0, m.index + m[0].length);
        pending = pending.slice(headerText.length);
      }
      if (pending.length >= budget) {
        const cut = pending.lastIndexOf('\n') + 1;
        if (cut > 0) {
          sources.push({ kind: 'text', text: pending.slice(0, cut) });
          pending = pending.slice(cut);
        }
      }
    }
  } catch (e) {
    throw new InputError('VCF_CORRUPT', `cannot decompress: ${(e as Error).message} (truncated or corrupt gzip?)`, { file });
  }
  if (headerText === undefined) throw new InputError('VCF_BAD_HEADER', 'no #CHROM header line before the first record', { file });
  if (pending.length) sources.push({ kind: 'text', text: pending });
  return { header: parseVcfHeader(headerText, file), sources };
}

export async function planVcfSlices(path: string, file: string, sliceBytes = DEFAULT_SLICE_BYTES): Promise<Plan> {
  const head = await readHead(path, 18);
  if (isBgzfBlock(head)) return planBgzf(path, file, sliceBytes);
  return planText(path, file, head[0] === 0x1f && head[1] === 0x8b, sliceBytes);
}

function selectSamples(header: VcfHeader, wanted: ToParquetInput['samples'], file: string): SampleSelection[] {
  if (header.samples.length === 0) {
    throw new InputError('VCF_SAMPLE_MISMATCH', 'the VCF has no sample columns (sites only): nothing to load per sample', { file });
  }
  if (!wanted || wanted.length === 0) return header.samples.map((s, column) => ({ column, sampleId: s }));
  return wanted.map((w) => {
    const name = w.column ?? w.sampleId;
    const column = name === undefined ? -1 : header.samples.indexOf(name);
    if (column < 0) {
      throw new InputError('VCF_SAMPLE_MISMATCH', `sample ${name ?? '(none given)'} is not in the VCF (its samples: ${header.samples.join(', ')}; map a column with --vcf-sample)`, {
        file,
        field: 'samples',
      });
    }
    return { column, sampleId: w.sampleId ?? header.samples[column] };
  });
}

function revive(e: { name: string; code: string; message: string; place: ErrorPlace }, place: ErrorPlace): GenolakeError {
  return e.name === 'InputError' ? new InputError(e.code, e.message, place) : new GenolakeError(e.code, e.message, place);
}

/** Loads one VCF into the variants table; see the module comment for the guarantees. */
export async function vcfToParquet(input: ToParquetInput, deps: ToParquetDeps): Promise<ToParquetResult> {
  const { lake, log } = deps;
  const file = input.displayName ?? input.vcfPath;
  const vcfBytes = (await stat(input.vcfPath).catch(() => {
    throw new InputError('VCF_MISSING', 'VCF not found', { file });
  })).size;
  const plan = await planVcfSlices(input.vcfPath, file, input.sliceBytes ?? DEFAULT_SLICE_BYTES);
  const samples = selectSamples(plan.header, input.samples, file);
  const sampleIds = samples.map((s) => s.sampleId);
  const stem = partStem(input.runId, sampleIds);
  const tablePrefix = input.tablePrefix ?? VARIANTS_PREFIX;
  const patientPrefix = `${tablePrefix}patient_id=${partitionValue(input.patientId)}/`;
  const staging = lake.stagingPrefix('variants');
  const ctx = {
    samples,
    runId: input.runId,
    reference: input.reference ?? plan.header.reference ?? 'unknown',
    genolakeVersion: genolakeVersion(),
  };
  const width = Math.max(5, String(plan.sources.length).length);
  let recordsSoFar = 0;
  let slicesDone = 0;
  // Task keys name the staging prefix: a checkpointed slice is only reused within this attempt.
  const settled = await Promise.allSettled(
    plan.sources.map((source, i) => {
      const task: SliceTask = {
        source,
        file,
        headerText: plan.header.text,
        ctx,
        lake: lake.config,
        staging,
        partName: `${stem}-${String(i).padStart(width, '0')}`,
        rowGroupSize: input.rowGroupSize ?? DEFAULT_ROW_GROUP_ROWS,
        compression: input.compression ?? 'zstd',
      };
      return deps.runTask<SliceTask, SliceResult>('variants', `${staging}${i}`, task).then((r) => {
        slicesDone++;
        if (r.ok) recordsSoFar += r.records;
        deps.onProgress?.({ records: recordsSoFar, slicesDone, slices: plan.sources.length });
        return r;
      });
    }),
  );
  try {
    // The first failure in file order, with its record number made global.
    let before = 0;
    for (const s of settled) {
      if (s.status === 'rejected') throw s.reason;
      const r = s.value;
      if (!r.ok) {
        const place = { ...r.error.place };
        if (place.record !== undefined) place.record += before;
        throw revive(r.error, place);
      }
      before += r.records;
    }
    const results = settled.map((s) => (s as PromiseFulfilledResult<SliceResult & { ok: true }>).value);
    // Slices are sorted inside; check the seams between them.
    const seen = new Set<string>();
    let lastChrom: string | undefined;
    let lastPos = 0;
    let recordNo = 0;
    for (const r of results) {
      for (const p of r.parts) {
        if (p.chrom !== lastChrom) {
          if (seen.has(p.chrom)) {
            throw new InputError('VCF_UNSORTED', `records of ${p.chrom} appear again after another contig: the VCF is not sorted`, {
              file,
              record: recordNo + 1,
            });
          }
          seen.add(p.chrom);
          lastChrom = p.chrom;
        } else if (p.firstPos < lastPos) {
          throw new InputError('VCF_UNSORTED', `${p.chrom}:${p.firstPos} comes after position ${lastPos}: the VCF is not sorted by position`, {
            file,
            record: recordNo + 1,
          });
        }
        lastPos = p.lastPos;
        recordNo += p.records;
      }
    }

    // Publish: move each part into place, then drop stale parts of this (run, samples).
    const files: VariantFile[] = [];
    for (const r of results) {
      for (const p of r.parts) {
        if (p.rows === 0) continue;
        const key = `${patientPrefix}${p.key}`;
        await lake.move(`${staging}${p.key}`, key);
        files.push({ key, chrom: p.chrom, rows: p.rows, bytes: p.bytes });
      }
    }
    const keep = new Set(files.map((f) => f.key));
    const removed: string[] = [];
    for await (const o of lake.list(patientPrefix)) {
      const name = o.key.slice(o.key.lastIndexOf('/') + 1);
      if (name.startsWith(`${stem}-`) && /^\d+\.parquet$/.test(name.slice(stem.length + 1)) && !keep.has(o.key)) {
        await lake.delete(o.key);
        removed.push(o.key);
      }
    }
    const result: ToParquetResult = {
      patientId: input.patientId,
      sampleIds,
      runId: input.runId,
      records: results.reduce((n, r) => n + r.records, 0),
      rows: files.reduce((n, f) => n + f.rows, 0),
      files,
      removed,
      vcfBytes,
      parquetBytes: files.reduce((n, f) => n + f.bytes, 0),
    };
    log?.info({ vcf: basename(file), patient: input.patientId, rows: result.rows, files: files.length, removed: removed.length }, 'variants: published');
    return result;
  } finally {
    await lake.deletePrefix(staging).catch((e: unknown) => log?.warn({ err: e, staging }, 'variants: could not delete staging'));
  }
}
