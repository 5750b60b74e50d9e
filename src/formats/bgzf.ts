/**
 * BGZF (SAM spec §4.1): a series of gzip members of at most 64 KiB each, with a 'BC'
 * extra subfield holding the member size, ending with a fixed empty EOF member.
 *
 * Writer: data is cut into blocks of ≤ 65280 uncompressed bytes (as htslib does, so a
 * compressed block always fits 64 KiB), compressed with node:zlib deflateRaw. Sealed
 * blocks wait in a queue and are compressed together by `drain()`; with
 * `threads > 1` the batch is compressed concurrently on libuv's thread pool.
 * Virtual offsets (`coffset << 16 | uoffset`) are handed out as *logical* offsets
 * (`blockSeq << 16 | uoffset`) because a block's compressed position is only known
 * once it is compressed; `resolve()` turns them into real virtual offsets. Both are
 * plain numbers (exact below 2^53, i.e. files up to 128 TiB).
 *
 * Reader: `readBgzfBlocks` streams a file block by block (validating header, CRC32 and
 * size), inflating a batch of blocks at a time. Random access: `listBgzfBlocks` lists the
 * blocks from their headers and `inflateBgzfRange` inflates any run of whole blocks.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { InputError } from '../util/errors.js';

const deflateRawAsync = promisify(zlib.deflateRaw);
const inflateRawAsync = promisify(zlib.inflateRaw);

/** Largest uncompressed payload per block (htslib's BGZF_BLOCK_SIZE). */
export const BGZF_MAX_BLOCK_DATA = 0xff00;
export const BGZF_MAX_BLOCK_SIZE = 0x10000;
const HEADER_SIZE = 18;
const FOOTER_SIZE = 8;

/** The 28-byte empty block that ends every BGZF file. */
export const BGZF_EOF = Buffer.from('1f8b08040000000000ff0600424302001b0003000000000000000000', 'hex');

/** Where compressed bytes go. */
export interface ByteSink {
  write(chunk: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** A sink writing to a local file (created/truncated). */
export async function fileSink(path: string): Promise<ByteSink> {
  const fh: FileHandle = await open(path, 'w');
  return {
    async write(chunk: Buffer) {
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
        off += bytesWritten;
      }
    },
    close: () => fh.close(),
  };
}

/** A sink collecting everything in memory (tests, small outputs). */
export class MemorySink implements ByteSink {
  readonly chunks: Buffer[] = [];
  async write(chunk: Buffer): Promise<void> {
    this.chunks.push(chunk);
  }
  async close(): Promise<void> {}
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface BgzfWriterOptions {
  /** zlib level 0–9 (default 6). */
  level?: number;
  /** Blocks compressed concurrently per drain via zlib's async API; 1 = synchronous (default 4). */
  threads?: number;
  /** Sealed blocks kept before `needsDrain` turns true (default 32 ≈ 2 MiB). */
  batchBlocks?: number;
}

/** Builds one BGZF member from raw data and its deflated form. */
function frameBlock(data: Buffer, cdata: Buffer): Buffer {
  const total = HEADER_SIZE + cdata.length + FOOTER_SIZE;
  const out = Buffer.allocUnsafe(total);
  out[0] = 0x1f;
  out[1] = 0x8b;
  out[2] = 8; // CM deflate
  out[3] = 4; // FLG.FEXTRA
  out.writeUInt32LE(0, 4); // MTIME
  out[8] = 0; // XFL
  out[9] = 0xff; // OS unknown
  out.writeUInt16LE(6, 10); // XLEN
  out[12] = 66; // 'B'
  out[13] = 67; // 'C'
  out.writeUInt16LE(2, 14); // SLEN
  out.writeUInt16LE(total - 1, 16); // BSIZE
  cdata.copy(out, HEADER_SIZE);
  out.writeUInt32LE(zlib.crc32(data) >>> 0, HEADER_SIZE + cdata.length);
  out.writeUInt32LE(data.length, HEADER_SIZE + cdata.length + 4);
  return out;
}

function fits(cdata: Buffer): boolean {
  return HEADER_SIZE + cdata.length + FOOTER_SIZE <= BGZF_MAX_BLOCK_SIZE;
}

export class BgzfWriter {
  private readonly level: number;
  private readonly threads: number;
  private readonly batchBlocks: number;
  private cur: Buffer = Buffer.allocUnsafe(BGZF_MAX_BLOCK_DATA);
  private curLen = 0;
  /** Sequence number of the block being filled. */
  private seq = 0;
  private pending: Buffer[] = [];
  /** Compressed offset of each written block, by sequence number (plus one past the end). */
  private offsets: number[] = [0];
  private written = 0;
  private closed = false;

  constructor(
    private readonly sink: ByteSink,
    opts: BgzfWriterOptions = {},
  ) {
    this.level = opts.level ?? 6;
    this.threads = Math.max(1, opts.threads ?? 4);
    this.batchBlocks = Math.max(1, opts.batchBlocks ?? 32);
  }

  /** Appends bytes; they may span blocks. */
  write(data: Uint8Array): void {
    if (this.curLen + data.length < BGZF_MAX_BLOCK_DATA) {
      this.cur.set(data, this.curLen);
      this.curLen += data.length;
      return;
    }
    let off = 0;
    while (off < data.length) {
      const n = Math.min(BGZF_MAX_BLOCK_DATA - this.curLen, data.length - off);
      this.cur.set(data.subarray(off, off + n), this.curLen);
      this.curLen += n;
      off += n;
      if (this.curLen === BGZF_MAX_BLOCK_DATA) this.flushBlock();
    }
  }

  /** Ends the current block (if it holds data) so the next byte starts a new one. */
  flushBlock(): void {
    if (this.curLen === 0) return;
    this.pending.push(this.cur.subarray(0, this.curLen));
    this.cur = Buffer.allocUnsafe(BGZF_MAX_BLOCK_DATA);
    this.curLen = 0;
    this.seq++;
  }

  /** Logical virtual offset of the next byte written. */
  tell(): number {
    return this.seq * 65536 + this.curLen;
  }

  get needsDrain(): boolean {
    return this.pending.length >= this.batchBlocks;
  }

  /** Real virtual offset of a logical one; the block must have been written (`drain`/`close`). */
  resolve(logical: number): number {
    const seq = Math.floor(logical / 65536);
    const u = logical - seq * 65536;
    if (seq >= this.offsets.length) throw new Error(`BGZF block ${seq} not written yet`);
    return this.offsets[seq] * 65536 + u;
  }

  /** Bytes written to the sink so far. */
  get compressedBytes(): number {
    return this.written;
  }

  /** Compresses and writes all sealed blocks. */
  async drain(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.batchBlocks);
      let framed: Buffer[];
      if (this.threads > 1 && batch.length > 1) {
        framed = [];
        for (let i = 0; i < batch.length; i += this.threads * 4) {
          const group = batch.slice(i, i + this.threads * 4);
          framed.push(...(await Promise.all(group.map((d) => this.compressAsync(d)))));
        }
      } else {
        framed = batch.map((d) => this.compressSync(d));
      }
      for (const b of framed) {
        this.written += b.length;
        this.offsets.push(this.written);
      }
      await this.sink.write(framed.length === 1 ? framed[0] : Buffer.concat(framed));
    }
  }

  private compressSync(data: Buffer): Buffer {
    let c = zlib.deflateRawSync(data, { level: this.level });
    if (!fits(c)) c = zlib.deflateRawSync(data, { level: 0 });
    return frameBlock(data, c);
  }

  private async compressAsync(data: Buffer): Promise<Buffer> {
    let c = await deflateRawAsync(data, { level: this.level });
    if (!fits(c)) c = zlib.deflateRawSync(data, { level: 0 });
    return frameBlock(data, c);
  }

  /** Flushes everything, appends the EOF marker and closes the sink. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flushBlock();
    await this.drain();
    await this.sink.write(BGZF_EOF);
    this.written += BGZF_EOF.length;
    this.closed = true;
    await this.sink.close();
  }
}

/** One BGZF block of `data` (at most BGZF_MAX_BLOCK_DATA bytes), compressed in this thread. */
export function bgzfBlockSync(data: Uint8Array, level = 6): Buffer {
  const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let c = zlib.deflateRawSync(raw, { level });
  if (!fits(c)) c = zlib.deflateRawSync(raw, { level: 0 });
  return frameBlock(raw, c);
}

/** Compresses a whole buffer to BGZF in memory (small data, tests). */
export async function bgzfCompress(data: Uint8Array, opts: BgzfWriterOptions = {}): Promise<Buffer> {
  const sink = new MemorySink();
  const w = new BgzfWriter(sink, opts);
  w.write(data);
  await w.close();
  return sink.toBuffer();
}

export interface BgzfBlock {
  /** Offset of the block in the compressed file. */
  coffset: number;
  /** Size of the compressed block. */
  csize: number;
  data: Buffer;
}

export interface BgzfReadOptions {
  /** Name used in error messages. */
  name?: string;
  /** Blocks inflated concurrently (default 4). */
  threads?: number;
  /** Verify each block's CRC32 (default true). */
  checkCrc?: boolean;
}

async function* byteChunks(source: string | AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<Buffer> {
  if (typeof source === 'string') {
    for await (const c of createReadStream(source, { highWaterMark: 1 << 20 })) yield c as Buffer;
  } else {
    for await (const c of source) yield Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  }
}

/**
 * Streams the blocks of a BGZF file (path or byte stream), in order. Empty blocks
 * (such as the EOF marker) are yielded too, with zero-length data.
 */
export async function* readBgzfBlocks(
  source: string | AsyncIterable<Buffer | Uint8Array>,
  opts: BgzfReadOptions = {},
): AsyncGenerator<BgzfBlock> {
  const name = opts.name ?? (typeof source === 'string' ? source : 'BGZF stream');
  const threads = Math.max(1, opts.threads ?? 4);
  const checkCrc = opts.checkCrc ?? true;
  let buf: Buffer = Buffer.alloc(0);
  let base = 0; // file offset of buf[0]
  let blockNo = 0;
  const fail = (msg: string): never => {
    throw new InputError('BGZF_CORRUPT', msg, { file: name, record: blockNo });
  };
  const inflateOne = async (cdata: Buffer, isize: number, crc: number, coffset: number, csize: number): Promise<BgzfBlock> => {
    let data: Buffer;
    try {
      data = cdata.length === 2 && isize === 0 ? Buffer.alloc(0) : threads > 1 ? await inflateRawAsync(cdata) : zlib.inflateRawSync(cdata);
    } catch (e) {
      return fail(`block at offset ${coffset} does not inflate: ${(e as Error).message}`);
    }
    if (data.length !== isize) fail(`block at offset ${coffset}: size ${data.length} != ISIZE ${isize}`);
    if (checkCrc && (zlib.crc32(data) >>> 0) !== crc) fail(`block at offset ${coffset}: CRC32 mismatch`);
    return { coffset, csize, data };
  };
  for await (const chunk of byteChunks(source)) {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const jobs: Promise<BgzfBlock>[] = [];
    let p = 0;
    while (buf.length - p >= HEADER_SIZE) {
      if (buf[p] !== 0x1f || buf[p + 1] !== 0x8b || buf[p + 2] !== 8 || (buf[p + 3] & 4) === 0) {
        fail(`not a BGZF block at offset ${base + p}`);
      }
      const xlen = buf.readUInt16LE(p + 10);
      if (buf.length - p < 12 + xlen) break;
      let bsize = -1;
      for (let x = p + 12; x + 4 <= p + 12 + xlen; ) {
        const slen = buf.readUInt16LE(x + 2);
        if (buf[x] === 66 && buf[x + 1] === 67 && slen === 2) bsize = buf.readUInt16LE(x + 4) + 1;
        x += 4 + slen;
      }
      if (bsize < 0) fail(`gzip member at offset ${base + p} has no BGZF 'BC' field`);
      if (buf.length - p < bsize) break;
      const cstart = p + 12 + xlen;
      const cend = p + bsize - FOOTER_SIZE;
      if (cend < cstart) fail(`block at offset ${base + p} is too short`);
      const crc = buf.readUInt32LE(cend);
      const isize = buf.readUInt32LE(cend + 4);
      jobs.push(inflateOne(buf.subarray(cstart, cend), isize, crc, base + p, bsize));
      blockNo++;
      p += bsize;
      if (jobs.length >= threads * 4) {
        for (const b of await Promise.all(jobs.splice(0))) yield b;
      }
    }
    for (const b of await Promise.all(jobs)) yield b;
    buf = buf.subarray(p);
    base += p;
  }
  if (buf.length > 0) fail(`truncated BGZF block at offset ${base}`);
}

/** Inflates a whole BGZF buffer (small data, tests). */
export async function bgzfDecompress(data: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of readBgzfBlocks((async function* () { yield data; })(), { threads: 1 })) out.push(b.data);
  return Buffer.concat(out);
}

/** True when the file ends with the BGZF EOF marker. */
export async function hasBgzfEof(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < BGZF_EOF.length) return false;
    const tail = Buffer.alloc(BGZF_EOF.length);
    await fh.read(tail, 0, tail.length, size - tail.length);
    return tail.equals(BGZF_EOF);
  } finally {
    await fh.close();
  }
}

// ---- Random access by block: a file cut into block ranges from the headers alone, each
// range inflated on its own (e.g. one VCF.gz parsed by several workers at once).

const BLOCK_HEADER = 18;

/** True if `head` (≥ 18 bytes) starts a BGZF block. */
export function isBgzfBlock(head: Uint8Array): boolean {
  return (
    head.length >= BLOCK_HEADER &&
    head[0] === 0x1f &&
    head[1] === 0x8b &&
    head[2] === 8 &&
    (head[3] & 4) !== 0 &&
    head[10] === 6 &&
    head[11] === 0 &&
    head[12] === 66 &&
    head[13] === 67 &&
    head[14] === 2 &&
    head[15] === 0
  );
}

export interface BgzfBlockSpan {
  /** Offset of the block in the file. */
  offset: number;
  /** Compressed size of the block, header included. */
  size: number;
}

/** Lists the blocks of a BGZF file from their headers (reads ~18 bytes per block). */
export async function listBgzfBlocks(path: string, file = path): Promise<BgzfBlockSpan[]> {
  const fh = await open(path, 'r');
  try {
    const { size: total } = await fh.stat();
    const blocks: BgzfBlockSpan[] = [];
    const head = Buffer.alloc(BLOCK_HEADER);
    // Read big chunks and walk headers inside them: one syscall per many blocks.
    const chunk = Buffer.alloc(1 << 20);
    let chunkStart = 0;
    let chunkLen = 0;
    let off = 0;
    while (off < total) {
      if (off < chunkStart || off + BLOCK_HEADER > chunkStart + chunkLen) {
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, off);
        chunkStart = off;
        chunkLen = bytesRead;
      }
      const rel = off - chunkStart;
      if (chunkLen - rel < BLOCK_HEADER) {
        throw new InputError('BGZF_TRUNCATED', `truncated BGZF block header at byte ${off}`, { file });
      }
      chunk.copy(head, 0, rel, rel + BLOCK_HEADER);
      if (!isBgzfBlock(head)) throw new InputError('BGZF_BAD_BLOCK', `not a BGZF block at byte ${off}`, { file });
      const size = head.readUInt16LE(16) + 1;
      if (off + size > total) {
        throw new InputError('BGZF_TRUNCATED', `file ends inside the BGZF block at byte ${off} (truncated download?)`, { file });
      }
      blocks.push({ offset: off, size });
      off += size;
    }
    return blocks;
  } finally {
    await fh.close();
  }
}

/** Inflates the bytes [start, end) of a BGZF file (whole blocks). */
export async function inflateBgzfRange(fh: FileHandle, start: number, end: number, file: string): Promise<Buffer> {
  if (end <= start) return Buffer.alloc(0);
  const buf = Buffer.allocUnsafe(end - start);
  const { bytesRead } = await fh.read(buf, 0, buf.length, start);
  if (bytesRead !== buf.length) throw new InputError('BGZF_TRUNCATED', `file ends before byte ${end}`, { file });
  return inflateBgzfBlocks(buf, start, file);
}

/**
 * Inflates whole BGZF blocks held in memory; `at` is the file offset of `blocks` (for
 * messages). One output chunk of the exact inflated size (the blocks' ISIZE fields):
 * zlib's default 16 KiB chunks cost a concat of thousands of pieces for a large range (profiled).
 */
export function inflateBgzfBlocks(blocks: Buffer, at: number, file: string): Buffer {
  let inflated = 0;
  for (let o = 0; o + BLOCK_HEADER <= blocks.length; ) {
    const size = blocks.readUInt16LE(o + 16) + 1;
    if (o + size > blocks.length || size < 26) break;
    inflated += Math.min(blocks.readUInt32LE(o + size - 4), BGZF_MAX_BLOCK_SIZE); // a corrupt ISIZE cannot ask for more
    o += size;
  }
  try {
    return zlib.gunzipSync(blocks, { chunkSize: Math.max(64 * 1024, inflated + 1) });
  } catch (e) {
    throw new InputError('BGZF_CORRUPT', `corrupt BGZF data between bytes ${at} and ${at + blocks.length}: ${(e as Error).message}`, { file });
  }
}
