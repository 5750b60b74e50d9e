/**
 * Random access to a BGZF file by block: each BGZF block is a complete gzip member whose
 * header states its size, so a file can be cut into block ranges without decompressing
 * it, and each range inflated on its own thread. Used to parse one VCF.gz on several
 * workers at once.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { InputError } from '../util/errors.js';

const HEADER = 18;

/** True if `head` (≥ 18 bytes) starts a BGZF block. */
export function isBgzfBlock(head: Uint8Array): boolean {
  return (
    head.length >= HEADER &&
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

export interface BgzfBlock {
  /** Offset of the block in the file. */
  offset: number;
  /** Compressed size of the block, header included. */
  size: number;
}

/** Lists the blocks of a BGZF file from their headers (reads ~18 bytes per block). */
export async function listBgzfBlocks(path: string, file = path): Promise<BgzfBlock[]> {
  const fh = await open(path, 'r');
  try {
    const { size: total } = await fh.stat();
    const blocks: BgzfBlock[] = [];
    const head = Buffer.alloc(HEADER);
    // Read big chunks and walk headers inside them: one syscall per many blocks.
    const chunk = Buffer.alloc(1 << 20);
    let chunkStart = 0;
    let chunkLen = 0;
    let off = 0;
    while (off < total) {
      if (off < chunkStart || off + HEADER > chunkStart + chunkLen) {
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, off);
        chunkStart = off;
        chunkLen = bytesRead;
      }
      const rel = off - chunkStart;
      if (chunkLen - rel < HEADER) {
        throw new InputError('BGZF_TRUNCATED', `truncated BGZF block header at byte ${off}`, { file });
      }
      chunk.copy(head, 0, rel, rel + HEADER);
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
  try {
    return gunzipSync(buf);
  } catch (e) {
    throw new InputError('BGZF_CORRUPT', `corrupt BGZF data between bytes ${start} and ${end}: ${(e as Error).message}`, { file });
  }
}

/** True if the file's last block is the 28-byte empty EOF block every BGZF writer appends. */
export async function hasBgzfEof(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < 28) return false;
    const tail = Buffer.alloc(28);
    await fh.read(tail, 0, 28, size - 28);
    return isBgzfBlock(tail) && tail.readUInt16LE(16) === 27 && tail.readUInt32LE(24) === 0;
  } finally {
    await fh.close();
  }
}
