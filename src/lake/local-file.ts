/**
 * A local file for a lake object, for tools that need a path and random access (a BAM
 * read through its index, a FASTQ handed to the aligner): the object itself on a local
 * lake, else a download into `dir` (the caller owns and removes `dir`).
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Lake } from './types.js';

export async function lakeFileCopy(lake: Lake, key: string, dir: string, name?: string): Promise<string> {
  const direct = lake.localPath(key);
  if (direct) return direct;
  const path = join(dir, name ?? key.replace(/[^A-Za-z0-9._-]/g, '_'));
  await pipeline(await lake.get(key), createWriteStream(path));
  return path;
}
