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
  for (const n of task.sizes) {
    out.push(bgzfBlockSync(task.data.subarray(o, o + n), task.level));
    o += n;
  }
  // an exact copy: a view would carry its whole backing store
  return Uint8Array.prototype.slice.call(Buffer.concat(out));
}
