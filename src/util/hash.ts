import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** sha256 of a file, streamed, as lowercase hex. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * The run id of a drop: a function of the archive's bytes, so the same content dropped
 * twice (under any name, by any trigger) maps onto the same run and is processed once.
 */
export function runIdForDrop(sha256Hex: string): string {
  return `r${sha256Hex.slice(0, 16)}`;
}
