/**
 * Worker entry that compresses BGZF blocks: the annotator (src/annotate/annotate.ts) sends
 * the contents of consecutive blocks, already cut, and writes the blocks back in order.
 */
import { bgzfBlockSync } from '../src/formats/bgzf.js';

export interface BgzfBlocksTask {
  /** The blocks' contents, one after another. */
  data: Uint8Array;
  /** Bytes of each block (each at most BGZF_MAX_BLOCK_DATA). */
  sizes: number[];
  /** zlib level. */
  level: number;
}

export default async function bgzfBlocks(task: BgzfBlocksTask): Promise<Uint8Array> {
  const out: Buffer[] = [];
  let o = 0;
  let total = 0;
  for (const n of task.sizes) {
    const block = bgzfBlockSync(task.data.subarray(o, o + n), task.level);
    out.push(block);
    total += block.length;
    o += n;
  }
  // one buffer of its own (Buffer.concat may return a slice of Node's shared pool, whose whole backing store would be sent)
  const all = new Uint8Array(total);
  let at = 0;
  for (const b of out) {
    all.set(b, at);
    at += b.length;
  }
  return all;
}
