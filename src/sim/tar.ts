/**
 * A minimal reproducible ustar writer: regular files only, fixed mode/uid/gid/mtime and
 * owner names, members in the order given, gzip without a time stamp. Same inputs give
 * the same bytes, which is what drop archives for tests and benchmarks need.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Sink } from './io.js';

export interface TarMember {
  /** name inside the archive (≤ 100 bytes, '/'-separated) */
  name: string;
  /** contents given directly … */
  data?: Uint8Array | string;
  /** … or read from this file */
  path?: string;
}

export interface TarOptions {
  /** modification time written for every member, in seconds since 1970 (default 0) */
  mtime?: number;
  /** gzip level (default 6) */
  level?: number;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

export function tarHeader(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new RangeError(`tar member name longer than 100 bytes: ${name}`);
  nameBytes.copy(h, 0);
  h.write(octal(0o644, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(mtime, 12), 136, 'latin1');
  h.fill(0x20, 148, 156); // checksum placeholder: spaces
  h.write('0', 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write('root', 265, 'latin1');
  h.write('root', 297, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/** Write `members` as a gzip-compressed tar to `dest`, streaming file members from disk. */
export async function writeTarGz(dest: string, members: readonly TarMember[], opts: TarOptions = {}): Promise<void> {
  const mtime = opts.mtime ?? 0;
  const out = new Sink(dest, { gzip: true, level: opts.level ?? 6 });
  const zeros = Buffer.alloc(1024);
  for (const m of members) {
    const data = m.data === undefined ? undefined : typeof m.data === 'string' ? Buffer.from(m.data, 'utf8') : m.data;
    const size = data ? data.length : (await stat(m.path!)).size;
    await out.write(tarHeader(m.name, size, mtime));
    if (data) await out.write(data);
    else {
      let seen = 0;
      for await (const chunk of createReadStream(m.path!)) {
        seen += (chunk as Buffer).length;
        await out.write(chunk as Buffer);
      }
      if (seen !== size) throw new Error(`${m.path} changed size while being archived`);
    }
    const pad = (512 - (size % 512)) % 512;
    if (pad) await out.write(zeros.subarray(0, pad));
  }
  await out.write(zeros);
  await out.close();
}
