/**
 * The annotator's output file: the header text, then the tasks' output in order, written
 * plain or as BGZF. BGZF blocks are cut by the text alone (chunk.ts: `endsSegment`), so the
 * bytes do not depend on how records were grouped into tasks or on the thread count: a task
 * compresses the segments it holds whole (`res.cut`: head text, blocks, tail text) or
 * returns where its segments end (`res.cuts`); the writer cuts the rest (segments that span
 * tasks, the header) into block contents and compresses them.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { BGZF_EOF, BGZF_MAX_BLOCK_DATA, bgzfBlockSync } from '../formats/bgzf.js';
import { type AnnotateTaskResult, SEGMENT_CAP, segmentPieces } from './chunk.js';

/** A task's output, as the writer takes it. */
export type TaskOutput = Pick<AnnotateTaskResult, 'bytes' | 'head' | 'blocks' | 'cut' | 'cuts'>;

export interface TextWriter {
  /** Text (latin1) or bytes. */
  write(s: string | Uint8Array): Promise<void>;
  /** A task's output. */
  task(res: TaskOutput): Promise<void>;
  close(): Promise<void>;
}

/** Bytes of BGZF output that may wait to be written while this thread goes on. */
const WRITE_AHEAD = 32 << 20;

/** Opens `path` for the annotated VCF, BGZF at zlib `level` when `bgzf`. */
export async function openWriter(path: string, bgzf: boolean, level: number): Promise<TextWriter> {
  return bgzf ? openBgzfWriter(path, level) : openPlainWriter(path);
}

async function openBgzfWriter(path: string, level: number): Promise<TextWriter> {
  const fh = await open(path, 'w');
  let carry: Buffer[] = [];
  let carryLen = 0;
  /** The segment being gathered is longer than SEGMENT_CAP: its blocks are whole BGZF_MAX_BLOCK_DATA pieces, cut as they fill. */
  let long = false;
  /** Output in order: compressed blocks, or block contents still to compress. */
  let out: Array<{ blocks: Uint8Array } | { piece: Uint8Array }> = [];
  const text = (b: Uint8Array) => {
    if (!b.length) return;
    carry.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    carryLen += b.length;
    if (carryLen > SEGMENT_CAP) long = true;
    if (long && carryLen >= BGZF_MAX_BLOCK_DATA) {
      const all = Buffer.concat(carry, carryLen);
      let i = 0;
      for (; i + BGZF_MAX_BLOCK_DATA <= all.length; i += BGZF_MAX_BLOCK_DATA) out.push({ piece: all.subarray(i, i + BGZF_MAX_BLOCK_DATA) });
      carry = i < all.length ? [all.subarray(i)] : [];
      carryLen = all.length - i;
    }
  };
  const pieces = (seg: Uint8Array) => {
    const v: Uint8Array[] = [];
    segmentPieces(seg, v);
    for (const piece of v) out.push({ piece });
  };
  const endSegment = () => {
    if (carryLen) pieces(carry.length === 1 ? carry[0] : Buffer.concat(carry, carryLen));
    carry = [];
    carryLen = 0;
    long = false;
  };
  const writeAll = async (data: Uint8Array) => {
    let off = 0;
    while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
  };
  /**
   * Writes run one after another behind this thread's work (a write can wait for the disk
   * for a while); this thread waits only when more than WRITE_AHEAD bytes are not written yet.
   */
  let writing: Promise<void> = Promise.resolve();
  let unwritten = 0;
  const write = async (data: Uint8Array) => {
    unwritten += data.length;
    writing = writing.then(async () => {
      await writeAll(data);
      unwritten -= data.length;
    });
    writing.catch(() => undefined); // a failure surfaces at the next wait
    if (unwritten > WRITE_AHEAD) await writing;
  };
  /** Compresses what is ready and writes it; `all`: then waits for the writes. */
  const flush = async (all: boolean) => {
    const ready = out;
    out = [];
    const blocks: Uint8Array[] = ready.map((x) => ('piece' in x ? bgzfBlockSync(x.piece, level) : x.blocks));
    if (blocks.length) await write(blocks.length === 1 ? blocks[0] : Buffer.concat(blocks));
    if (all) await writing;
  };
  let closed = false;
  return {
    async write(s) {
      text(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
      await flush(false);
    },
    async task(res) {
      const b = res.bytes;
      if (res.cuts) {
        // the text and where its segments end
        const cuts = res.cuts;
        if (!cuts.length) text(b);
        else {
          text(b.subarray(0, cuts[0]));
          endSegment();
          for (let i = 0; i + 1 < cuts.length; i++) pieces(b.subarray(cuts[i], cuts[i + 1]));
          text(b.subarray(cuts[cuts.length - 1]));
        }
      } else if (!res.cut) text(b);
      else {
        const h = res.head!, k = h + res.blocks!;
        text(b.subarray(0, h));
        endSegment();
        out.push({ blocks: b.subarray(h, k) });
        text(b.subarray(k));
      }
      await flush(false);
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        endSegment();
        out.push({ blocks: BGZF_EOF });
        await flush(true);
      } finally {
        await writing.catch(() => undefined);
        await fh.close();
      }
    },
  };
}

async function openPlainWriter(path: string): Promise<TextWriter> {
  const ws = createWriteStream(path);
  await once(ws, 'open'); // a path that cannot be written fails here, not as an unhandled stream error
  let failed: unknown = null;
  ws.on('error', (e) => (failed = e));
  let closed = false;
  const write = async (s: string | Uint8Array) => {
    if (failed) throw failed;
    if (!(typeof s === 'string' ? ws.write(s, 'latin1') : ws.write(s))) await once(ws, 'drain');
  };
  return {
    write,
    task: (res) => write(res.bytes),
    async close() {
      if (closed) return;
      closed = true;
      ws.end();
      await once(ws, 'finish');
    },
  };
}
