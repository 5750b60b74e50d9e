/**
 * One slice of a VCF → Parquet part files, one per chromosome in the slice. This is the
 * body of the `variants` worker; it is plain async code so tests can call it directly.
 *
 * A slice is a range of whole BGZF blocks. It owns every line whose first byte lies in
 * its blocks: it skips the tail of a line begun in the block before (unless that block
 * ends with a newline) and reads past its last block to finish its own last line. So
 * slices cut anywhere partition the lines exactly, without a pass over the file.
 */
import { open } from 'node:fs/promises';
import { inflateBgzfRange } from '../formats/bgzf.js';
import { parseVcfHeader } from '../formats/vcf.js';
import { tableToParquet } from '../formats/parquet.js';
import { openLake } from '../lake/open.js';
import type { LakeConfig } from '../lake/types.js';
import { isGenolakeError, type ErrorPlace } from '../util/errors.js';
import { VariantConverter, type RowContext } from './convert.js';
import { VARIANTS_PARQUET_ENCODINGS, partitionValue } from './schema.js';

export type SliceSource =
  | {
      kind: 'bgzf';
      path: string;
      /** Compressed byte range of whole blocks [start, end). */
      start: number;
      end: number;
      /** Uncompressed bytes to skip at `start` (the header, for the first slice). */
      skip: number;
      /** The last non-empty block before `start`, absent for the first slice. */
      prev?: { offset: number; size: number };
      /** Compressed file size (where reading past `end` must stop). */
      fileSize: number;
    }
  | { kind: 'text'; text: string };

export interface SliceTask {
  source: SliceSource;
  /** File name for messages. */
  file: string;
  headerText: string;
  ctx: RowContext;
  lake: LakeConfig;
  /** Prefix the part files are written under: `<staging>chrom=<C>/<name>`. */
  staging: string;
  /** `part-<run>-<samples>-<slice>`; `.parquet` is appended. */
  partName: string;
  rowGroupSize: number;
  compression: 'zstd' | 'snappy' | 'gzip' | 'none';
}

export interface SlicePart {
  chrom: string;
  /** Key relative to the staging prefix: `chrom=<C>/<partName>.parquet`. */
  key: string;
  records: number;
  rows: number;
  firstPos: number;
  lastPos: number;
  bytes: number;
}

export type SliceResult =
  | { ok: true; records: number; parts: SlicePart[]; firstChrom?: string; lastChrom?: string }
  | { ok: false; error: { name: string; code: string; message: string; place: ErrorPlace } };

/**
 * The slice's lines as bytes, in pieces of whole lines (the last one finished from the
 * blocks after the slice): the big inflated range is handed on as it is, not copied into
 * one buffer with the tail.
 */
async function sliceBytes(src: Extract<SliceSource, { kind: 'bgzf' }>, file: string): Promise<Buffer[]> {
  const fh = await open(src.path, 'r');
  try {
    let data = await inflateBgzfRange(fh, src.start, src.end, file);
    let from = src.skip;
    if (src.prev) {
      const prev = await inflateBgzfRange(fh, src.prev.offset, src.prev.offset + src.prev.size, file);
      if (prev.length > 0 && prev[prev.length - 1] !== 10) {
        const nl = data.indexOf(10, from);
        // No newline in the whole slice: every byte belongs to a line begun before it.
        if (nl < 0) return [];
        from = nl + 1;
      }
    }
    // Finish the last line: read following blocks until a newline (or the end of the file).
    let next = src.end;
    const tail: Buffer[] = [];
    if (data.length > from && data[data.length - 1] !== 10) {
      while (next < src.fileSize) {
        const head = Buffer.alloc(18);
        await fh.read(head, 0, 18, next);
        const size = head.readUInt16LE(16) + 1;
        const block = await inflateBgzfRange(fh, next, Math.min(next + size, src.fileSize), file);
        next += size;
        const nl = block.indexOf(10);
        if (nl >= 0) {
          tail.push(block.subarray(0, nl + 1));
          break;
        }
        tail.push(block);
      }
    }
    data = data.subarray(from);
    if (!tail.length) return [data];
    const cut = data.lastIndexOf(10) + 1;
    return [data.subarray(0, cut), Buffer.concat([data.subarray(cut), ...tail])];
  } finally {
    await fh.close();
  }
}

export async function convertSlice(task: SliceTask): Promise<SliceResult> {
  try {
    const header = parseVcfHeader(task.headerText, task.file);
    const conv = new VariantConverter(header, task.file, task.ctx);
    // The inflated slice is dropped once converted: only the column buffers live on.
    const pieces = task.source.kind === 'text' ? [Buffer.from(task.source.text, 'utf8')] : await sliceBytes(task.source, task.file);
    for (const piece of pieces) conv.addLines(piece);
    pieces.length = 0;
    const res = conv.finish();
    const lake = await openLake(task.lake);
    const parts: SlicePart[] = [];
    for (const c of res.chroms) {
      if (c.rows === 0) {
        parts.push({ chrom: c.chrom, key: '', records: c.records, rows: 0, firstPos: c.firstPos, lastPos: c.lastPos, bytes: 0 });
        continue;
      }
      const bytes = tableToParquet(c.table, {
        compression: task.compression,
        rowGroupSize: task.rowGroupSize,
        createdBy: `genolake ${task.ctx.genolakeVersion}`,
        columnEncodings: VARIANTS_PARQUET_ENCODINGS,
      });
      const key = `chrom=${partitionValue(c.chrom)}/${task.partName}.parquet`;
      await lake.put(`${task.staging}${key}`, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      parts.push({ chrom: c.chrom, key, records: c.records, rows: c.rows, firstPos: c.firstPos, lastPos: c.lastPos, bytes: bytes.byteLength });
    }
    conv.release(); // the tables are written: their buffers can serve the next slice
    return { ok: true, records: res.records, parts, firstChrom: res.chroms[0]?.chrom, lastChrom: res.chroms.at(-1)?.chrom };
  } catch (e) {
    if (isGenolakeError(e)) {
      const g = e as unknown as { name: string; code: string; message: string; place: ErrorPlace };
      return { ok: false, error: { name: g.name, code: g.code, message: g.message, place: g.place } };
    }
    throw e;
  }
}
