/**
 * Streaming FASTQ reader and validator.
 *
 * Input is a byte stream (plain FASTQ, gzip, or BGZF / any multi-member gzip; gzip is
 * detected by its magic bytes, not by the file name). Bytes are gathered into ~1 MiB
 * buffers and parsed with `Buffer.indexOf` (native memchr); records are never turned
 * into strings. Each batch carries the buffer plus an Int32Array of line offsets, so a
 * batch of thousands of records costs two allocations, not thousands.
 *
 * Validation rules (each failure is an InputError naming file, 1-based record, line
 * and field):
 * - 4 lines per record; a file that ends inside a record is truncated. A missing final
 *   newline and trailing blank lines at the very end of the file are tolerated.
 * - line 1 starts with '@' and has a non-empty name (text up to the first space/tab);
 * - line 3 starts with '+'; if it carries more text, that text must equal the header
 *   text (the whole header or just its name);
 * - SEQ non-empty, letters A C G T N in either case (option `alphabet: 'iupac'` also
 *   accepts R Y S W K M B D H V and '.'/'-' are never accepted: aligners treat every
 *   non-ACGT letter as N, so IUPAC input is usually a sign of a non-read file);
 * - QUAL has exactly SEQ's length and every byte is in Phred+33 `!`..`maxQual`
 *   (default `~`, i.e. the whole printable range; e.g. 'J' or 'K' for Illumina 1.8+);
 * - CRLF line ends are accepted (the CR is not part of the line).
 */
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { Readable, type TransformOptions } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InputError } from '../util/errors.js';

export type FastqAlphabet = 'acgtn' | 'iupac';

export interface FastqOptions {
  /** Highest accepted quality character (Phred+33), default '~'. */
  maxQual?: string;
  /** Accepted base letters, default 'acgtn'. */
  alphabet?: FastqAlphabet;
  /** Bytes gathered before a batch is parsed; default 1 MiB. */
  batchBytes?: number;
}

/** Number of Int32 slots per record in `FastqBatch.offsets`. */
export const FIELDS_PER_RECORD = 8;
/** Slot of each line's [start, end) inside a record's 8 slots; ends exclude CR/LF. */
export const HEAD = 0;
export const SEQ = 2;
export const PLUS = 4;
export const QUAL = 6;

/**
 * A batch of complete, validated records. Record i's lines are
 * `buf[offsets[8i+HEAD] .. offsets[8i+HEAD+1])` etc. Records are contiguous in `buf`:
 * record i spans `[offsets[8i], recordEnd(i))`, every line LF-terminated.
 */
export interface FastqBatch {
  buf: Buffer;
  offsets: Int32Array;
  count: number;
  /** Byte just past the last record's final LF. */
  end: number;
  /** 1-based number of the first record in the file. */
  firstRecord: number;
  /** Some line ends in CRLF: the raw bytes are not canonical FASTQ. */
  hasCR: boolean;
}

export function recordEnd(batch: FastqBatch, i: number): number {
  return i + 1 < batch.count ? batch.offsets[(i + 1) * FIELDS_PER_RECORD] : batch.end;
}

/** Bases in a batch (sum of SEQ lengths). */
export function batchBases(batch: FastqBatch): number {
  let n = 0;
  const o = batch.offsets;
  for (let i = 0; i < batch.count; i++) n += o[i * 8 + SEQ + 1] - o[i * 8 + SEQ];
  return n;
}

/**
 * Canonical bytes (LF line ends) of records [from, to) of a batch. Without CRs this is
 * a view of the input, with no copy.
 */
export function canonicalBytes(batch: FastqBatch, from: number, to: number): Buffer {
  const o = batch.offsets;
  if (from >= to) return Buffer.alloc(0);
  if (!batch.hasCR) return batch.buf.subarray(o[from * 8], recordEnd(batch, to - 1));
  let size = 0;
  for (let i = from; i < to; i++) {
    const b = i * 8;
    size += o[b + 1] - o[b] + o[b + 3] - o[b + 2] + o[b + 5] - o[b + 4] + o[b + 7] - o[b + 6] + 4;
  }
  const out = Buffer.allocUnsafe(size);
  let w = 0;
  for (let i = from; i < to; i++) {
    const b = i * 8;
    for (let f = 0; f < 8; f += 2) {
      w += batch.buf.copy(out, w, o[b + f], o[b + f + 1]);
      out[w++] = 10;
    }
  }
  return out;
}

/**
 * The read name used to pair mates: the header after '@' up to the first space or tab,
 * without a trailing '/1' or '/2'. Returns [start, end) in batch.buf.
 */
export function pairNameRange(batch: FastqBatch, i: number): [number, number] {
  return [batch.offsets[i * 8 + HEAD] + 1, pairNameEnd(batch, i)];
}

/**
 * End of the pairing name of record i (see `pairNameRange`); it starts at
 * `offsets[8i + HEAD] + 1`. Allocation-free, for hot loops.
 */
export function pairNameEnd(batch: FastqBatch, i: number): number {
  const buf = batch.buf;
  const start = batch.offsets[i * 8 + HEAD] + 1;
  const lineEnd = batch.offsets[i * 8 + HEAD + 1];
  let end = start;
  while (end < lineEnd && buf[end] !== 32 && buf[end] !== 9) end++;
  if (end - start >= 2 && buf[end - 2] === 47 /* / */ && (buf[end - 1] === 49 || buf[end - 1] === 50)) end -= 2;
  return end;
}

function alphabetTable(alphabet: FastqAlphabet): Uint8Array {
  const t = new Uint8Array(256);
  const letters = alphabet === 'iupac' ? 'ACGTNRYSWKMBDHV' : 'ACGTN';
  for (const c of letters) {
    t[c.charCodeAt(0)] = 1;
    t[c.toLowerCase().charCodeAt(0)] = 1;
  }
  return t;
}

function shown(buf: Buffer, start: number, end: number): string {
  const s = buf.toString('latin1', start, Math.min(end, start + 60));
  return JSON.stringify(end - start > 60 ? `${s}…` : s);
}

function charName(code: number): string {
  return code >= 33 && code <= 126 ? `'${String.fromCharCode(code)}'` : `byte 0x${code.toString(16).padStart(2, '0')}`;
}

const FIELD_NAMES = ['header', 'sequence', 'separator', 'quality'] as const;

/**
 * Incremental parser: `push` chunks, get batches of complete records back; `end`
 * parses what is left and detects a truncated last record.
 */
export class FastqParser {
  readonly file: string;
  private readonly maxQual: number;
  private readonly legal: Uint8Array;
  private readonly batchBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private nextRecord = 1;

  constructor(file: string, opts: FastqOptions = {}) {
    this.file = file;
    const mq = opts.maxQual ?? '~';
    if (mq.length !== 1 || mq.charCodeAt(0) < 33 || mq.charCodeAt(0) > 126) {
      throw new InputError('FASTQ_BAD_OPTION', `maxQual must be one character in '!'..'~', got ${JSON.stringify(mq)}`);
    }
    this.maxQual = mq.charCodeAt(0);
    this.legal = alphabetTable(opts.alphabet ?? 'acgtn');
    this.batchBytes = opts.batchBytes ?? 1 << 20;
  }

  /** Records parsed so far. */
  get records(): number {
    return this.nextRecord - 1;
  }

  push(chunk: Buffer): FastqBatch | undefined {
    if (chunk.length === 0) return undefined;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < this.batchBytes) return undefined;
    return this.parsePending(false);
  }

  /** Parses the rest; throws if the file ends inside a record. */
  end(): FastqBatch | undefined {
    return this.parsePending(true);
  }

  private fail(code: string, record: number, lineInRecord: number, reason: string): never {
    throw new InputError(code, reason, {
      file: this.file,
      record,
      line: (record - 1) * 4 + lineInRecord + 1,
      field: FIELD_NAMES[lineInRecord],
    });
  }

  private parsePending(final: boolean): FastqBatch | undefined {
    let buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (final) {
      // Trailing blank lines at EOF are tolerated; a missing last newline is added.
      let n = buf.length;
      while (n > 0 && (buf[n - 1] === 10 || buf[n - 1] === 13)) n--;
      if (n === 0) return undefined;
      if (n < buf.length && buf[n] === 13) n++; // keep one CRLF / LF
      const withNl = Buffer.allocUnsafe(n + 1);
      buf.copy(withNl, 0, 0, n);
      withNl[n] = 10;
      buf = withNl;
    }
    // Upper bound on records: a record has at least 4 LFs.
    let offsets = new Int32Array(Math.max(8, Math.ceil(buf.length / 128) * 8));
    const legal = this.legal;
    const maxQual = this.maxQual;
    const len = buf.length;
    let pos = 0;
    let count = 0;
    let hasCR = false;
    const first = this.nextRecord;
    for (;;) {
      const e1 = buf.indexOf(10, pos);
      if (e1 < 0) break;
      const e2 = buf.indexOf(10, e1 + 1);
      if (e2 < 0) break;
      const e3 = buf.indexOf(10, e2 + 1);
      if (e3 < 0) break;
      const e4 = buf.indexOf(10, e3 + 1);
      if (e4 < 0) break;
      const rec = first + count;
      // Line [start, end) without CR.
      const h0 = pos;
      let h1 = e1;
      const s0 = e1 + 1;
      let s1 = e2;
      const p0 = e2 + 1;
      let p1 = e3;
      const q0 = e3 + 1;
      let q1 = e4;
      if (buf[h1 - 1] === 13 && h1 > h0) { h1--; hasCR = true; }
      if (buf[s1 - 1] === 13 && s1 > s0) { s1--; hasCR = true; }
      if (buf[p1 - 1] === 13 && p1 > p0) { p1--; hasCR = true; }
      if (buf[q1 - 1] === 13 && q1 > q0) { q1--; hasCR = true; }

      if (buf[h0] !== 64 /* @ */ || h1 === h0) {
        this.fail('FASTQ_BAD_HEADER', rec, 0, `header line must start with '@', found ${shown(buf, h0, h1)}`);
      }
      if (h1 === h0 + 1 || buf[h0 + 1] === 32 || buf[h0 + 1] === 9) {
        this.fail('FASTQ_BAD_HEADER', rec, 0, 'empty read name after \'@\'');
      }
      if (s1 === s0) this.fail('FASTQ_EMPTY_SEQ', rec, 1, 'empty sequence');
      for (let i = s0; i < s1; i++) {
        if (legal[buf[i]] === 0) {
          this.fail('FASTQ_BAD_BASE', rec, 1, `illegal base ${charName(buf[i])} at position ${i - s0 + 1}`);
        }
      }
      if (buf[p0] !== 43 /* + */ || p1 === p0) {
        this.fail('FASTQ_BAD_SEPARATOR', rec, 2, `separator line must start with '+', found ${shown(buf, p0, p1)}`);
      }
      if (p1 > p0 + 1) {
        // '+name': must repeat the header (whole header text or just the name).
        const plusLen = p1 - p0 - 1;
        const headLen = h1 - h0 - 1;
        let ok = plusLen <= headLen && buf.compare(buf, h0 + 1, h0 + 1 + plusLen, p0 + 1, p1) === 0;
        if (ok && plusLen < headLen) ok = buf[h0 + 1 + plusLen] === 32 || buf[h0 + 1 + plusLen] === 9;
        if (!ok) {
          this.fail('FASTQ_BAD_SEPARATOR', rec, 2, `separator line ${shown(buf, p0, p1)} does not repeat the header ${shown(buf, h0, h1)}`);
        }
      }
      if (q1 - q0 !== s1 - s0) {
        this.fail('FASTQ_LENGTH_MISMATCH', rec, 3, `quality length ${q1 - q0} differs from sequence length ${s1 - s0}`);
      }
      for (let i = q0; i < q1; i++) {
        const c = buf[i];
        if (c < 33 || c > maxQual) {
          this.fail('FASTQ_BAD_QUAL', rec, 3, `quality character ${charName(c)} at position ${i - q0 + 1} is outside Phred+33 '!'..'${String.fromCharCode(maxQual)}'`);
        }
      }
      const b = count * 8;
      if (b + 8 > offsets.length) {
        const grown = new Int32Array(offsets.length * 2);
        grown.set(offsets);
        offsets = grown;
      }
      offsets[b] = h0;
      offsets[b + 1] = h1;
      offsets[b + 2] = s0;
      offsets[b + 3] = s1;
      offsets[b + 4] = p0;
      offsets[b + 5] = p1;
      offsets[b + 6] = q0;
      offsets[b + 7] = q1;
      count++;
      pos = e4 + 1;
    }
    if (final && pos < len) {
      // Fewer than 4 lines left: say which line the file stopped after.
      let lines = 0;
      for (let i = pos; i < len; i++) if (buf[i] === 10) lines++;
      this.fail('FASTQ_TRUNCATED', first + count, lines, `truncated record: the file ends after line ${lines} of 4`);
    }
    if (pos < len) {
      // Partial record: carry its bytes over (a copy, so the big buffer can be freed).
      const rest = Buffer.from(buf.subarray(pos));
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
    this.nextRecord += count;
    if (count === 0) return undefined;
    return { buf, offsets, count, end: pos, firstRecord: first, hasCR };
  }
}

/**
 * Bytes of a FASTQ file, gunzipped if it starts with the gzip magic (1f 8b). node:zlib
 * decodes concatenated members, so BGZF and `cat a.gz b.gz` files work.
 */
export async function* decompressed(source: AsyncIterable<Buffer | Uint8Array>, file: string): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  let head: Buffer = Buffer.alloc(0);
  let done = false;
  while (head.length < 2) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head = head.length ? Buffer.concat([head, r.value]) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
  }
  async function* all(): AsyncGenerator<Buffer> {
    let exhausted = done;
    try {
      if (head.length) yield head;
      while (!exhausted) {
        const r = await it.next();
        if (r.done) exhausted = true;
        else yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      }
    } finally {
      // Stopped early (a bad record): close the source so its file handle is released.
      if (!exhausted) await it.return?.(undefined);
    }
  }
  if (!(head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b)) {
    yield* all();
    return;
  }
  // A 2 MiB read-ahead lets inflate (on the libuv pool) run while the caller validates.
  const gunzipOptions: ZlibOptions & TransformOptions = { chunkSize: 256 * 1024, readableHighWaterMark: 2 << 20 };
  const gunzip = createGunzip(gunzipOptions);
  const feeding = pipeline(Readable.from(all(), { objectMode: false }), gunzip).then(
    () => undefined,
    (e: unknown) => e,
  );
  let finished = false;
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
    finished = true;
  } catch (e) {
    throw gzipError(file, e);
  } finally {
    if (!finished) gunzip.destroy();
    const fe = await feeding;
    if (finished && fe) throw gzipError(file, fe);
  }
}

function gzipError(file: string, e: unknown): unknown {
  const code = (e as { code?: string }).code ?? '';
  if (code.startsWith('Z_') || code === 'ERR_ZLIB_INITIALIZATION_FAILED') {
    return new InputError('FASTQ_BAD_GZIP', `gzip data is corrupt or truncated (${(e as Error).message})`, { file }, { cause: e });
  }
  return e;
}

/**
 * Validated record batches of one FASTQ byte stream (plain or gzip). Throws InputError
 * on the first bad record.
 */
export async function* readFastq(
  source: AsyncIterable<Buffer | Uint8Array>,
  file: string,
  opts: FastqOptions = {},
): AsyncGenerator<FastqBatch> {
  const parser = new FastqParser(file, opts);
  for await (const chunk of decompressed(source, file)) {
    const batch = parser.push(chunk);
    if (batch) yield batch;
  }
  const last = parser.end();
  if (last) yield last;
}

/** One cursor over record batches, for walking two files in lockstep. */
class RecordCursor {
  private batch: FastqBatch | undefined;
  private i = 0;
  constructor(private readonly it: AsyncIterator<FastqBatch>) {}
  /** Advances to the next record; false at end of file. */
  async next(): Promise<boolean> {
    if (this.batch && this.i + 1 < this.batch.count) {
      this.i++;
      return true;
    }
    for (;;) {
      const r = await this.it.next();
      if (r.done) {
        this.batch = undefined;
        return false;
      }
      if (r.value.count > 0) {
        this.batch = r.value;
        this.i = 0;
        return true;
      }
    }
  }
  name(): Buffer {
    const [s, e] = pairNameRange(this.batch!, this.i);
    return this.batch!.buf.subarray(s, e);
  }
  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

export interface PairCheckOptions extends FastqOptions {
  /** Record numbers reported are `recordOffset + n` (for checking one shard of a file). */
  recordOffset?: number;
  /** Names to report in errors (default: the `file` arguments). */
  label1?: string;
  label2?: string;
}

/**
 * Walks two mate files in lockstep and checks that they hold the same number of
 * records with the same names (modulo '/1' '/2' and anything after the first
 * whitespace). Returns the record count; throws InputError naming both files and the
 * first bad record number.
 */
export async function checkPairedFastq(
  r1: AsyncIterable<Buffer | Uint8Array>,
  file1: string,
  r2: AsyncIterable<Buffer | Uint8Array>,
  file2: string,
  opts: PairCheckOptions = {},
): Promise<number> {
  const a = new RecordCursor(readFastq(r1, file1, opts)[Symbol.asyncIterator]());
  const b = new RecordCursor(readFastq(r2, file2, opts)[Symbol.asyncIterator]());
  const off = opts.recordOffset ?? 0;
  const l1 = opts.label1 ?? file1;
  const l2 = opts.label2 ?? file2;
  let n = 0;
  try {
    for (;;) {
      const [ha, hb] = await Promise.all([a.next(), b.next()]);
      if (!ha || !hb) {
        if (ha === hb) return n;
        const [longer, shorter] = ha ? [l1, l2] : [l2, l1];
        throw new InputError(
          'FASTQ_PAIR_COUNT',
          `paired files differ in record count: ${longer} has a record ${off + n + 1} but ${shorter} ends after ${off + n} records`,
          { file: `${l1}, ${l2}`, record: off + n + 1 },
        );
      }
      n++;
      const na = a.name();
      const nb = b.name();
      if (!na.equals(nb)) {
        throw new InputError(
          'FASTQ_PAIR_NAME',
          `mate names differ: ${JSON.stringify(na.toString('latin1'))} in ${l1} vs ${JSON.stringify(nb.toString('latin1'))} in ${l2}`,
          { file: `${l1}, ${l2}`, record: off + n, field: 'header' },
        );
      }
    }
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}
