/** Small streaming-output helpers for the simulator (backpressure-aware, deterministic). */
import { InputError } from '../util/errors.js';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished, pipeline } from 'node:stream/promises';
import { constants as zc, createGzip, deflateRawSync, type Gzip } from 'node:zlib';

/**
 * A file sink that buffers writes and respects backpressure. `put` appends synchronously;
 * call `await pump()` now and then (e.g. once per record) to hand full buffers to the
 * stream, or `await write()` which does both.
 */
export class Sink {
  private readonly out: WriteStream | Gzip;
  private readonly file: WriteStream;
  private readonly size: number;
  private buf: Buffer;
  private used = 0;
  private readonly pending: Buffer[] = [];
  private readonly done: Promise<void>;

  /** `gzip`: compress (gzip header without file name or time stamp, so output is reproducible). */
  constructor(path: string, opts: { gzip?: boolean; level?: number; bufferSize?: number } = {}) {
    // Large buffers let the producer run ahead while zlib compresses on the thread pool.
    this.file = createWriteStream(path, { highWaterMark: 1 << 20 });
    if (opts.gzip) {
      const gz = createGzip({ level: opts.level ?? 6, memLevel: 8, strategy: zc.Z_DEFAULT_STRATEGY, chunkSize: 1 << 16, highWaterMark: 1 << 21 } as Parameters<typeof createGzip>[0]);
      // pipeline, not pipe: a failing file destroys the gzip stream too, so a writer
      // waiting for 'drain' gets the error instead of waiting forever
      this.done = pipeline(gz, this.file);
      this.out = gz;
    } else {
      this.out = this.file;
      this.done = finished(this.file);
    }
    this.done.catch(() => undefined); // observed in close(); avoid an unhandled rejection meanwhile
    this.size = opts.bufferSize ?? 1 << 16;
    this.buf = Buffer.allocUnsafe(this.size);
  }

  put(data: string | Uint8Array): void {
    if (typeof data === 'string') {
      if (this.used + data.length > this.buf.length) this.rotate(data.length);
      this.used += this.buf.write(data, this.used, 'latin1');
      return;
    }
    if (this.used + data.length > this.buf.length) this.rotate(data.length);
    this.buf.set(data, this.used);
    this.used += data.length;
  }

  private rotate(need: number): void {
    if (this.used > 0) this.pending.push(this.buf.subarray(0, this.used));
    this.buf = Buffer.allocUnsafe(Math.max(this.size, need));
    this.used = 0;
  }

  /** Hand full buffers to the stream, waiting when it asks for a pause. */
  async pump(): Promise<void> {
    while (this.pending.length > 0) {
      const chunk = this.pending.shift()!;
      if (!this.out.write(chunk)) await once(this.out, 'drain');
    }
  }

  async write(data: string | Uint8Array): Promise<void> {
    this.put(data);
    if (this.pending.length > 0) await this.pump();
  }

  async close(): Promise<void> {
    this.rotate(0);
    await this.pump();
    this.out.end();
    await this.done;
  }
}

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The 28-byte empty block that ends every BGZF file. */
export const BGZF_EOF = Buffer.from('1f8b08040000000000ff0600424302001b0003000000000000000000', 'hex');

/** One BGZF block (gzip member with the BC extra field) holding ≤ 65 280 bytes. */
export function bgzfBlock(data: Uint8Array): Buffer {
  const body = deflateRawSync(data, { level: 6 });
  const size = 18 + body.length + 8;
  const out = Buffer.alloc(size);
  out.set([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, 0x42, 0x43, 2, 0], 0);
  out.writeUInt16LE(size - 1, 16);
  out.set(body, 18);
  out.writeUInt32LE(crc32(data), 18 + body.length);
  out.writeUInt32LE(data.length, 22 + body.length);
  return out;
}

/** Whole text as a BGZF file (for small outputs such as truth VCFs), so tabix can index it. */
export function bgzf(text: string): Buffer {
  const raw = Buffer.from(text, 'utf8');
  const blocks: Buffer[] = [];
  for (let p = 0; p < raw.length; p += 65_280) blocks.push(bgzfBlock(raw.subarray(p, p + 65_280)));
  blocks.push(BGZF_EOF);
  return Buffer.concat(blocks);
}

/** A simulator option out of range: reported like any other bad input (exit code 2). */
export function badOption(message: string): InputError {
  return new InputError('SIM_OPTION', message);
}
