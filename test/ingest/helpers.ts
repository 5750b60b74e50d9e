import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import tar from 'tar-stream';
import yazl from 'yazl';
import type { Lake } from '../../src/lake/types.js';

/** One archive member for the builders below. */
export interface Member {
  name: string;
  data?: Buffer | string;
  /** tar: any tar-stream type; zip: 'file' | 'symlink' | 'directory'. */
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  linkname?: string;
}

/** A small, valid FASTQ file of `n` reads (names `<prefix>:<i>/<mate>`). */
export function fastq(n: number, prefix = 'read', mate = 1, len = 50): string {
  const bases = 'ACGT';
  let out = '';
  let x = n * 7 + mate;
  for (let i = 0; i < n; i++) {
    let seq = '';
    for (let j = 0; j < len; j++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      seq += bases[(x >>> 16) & 3];
    }
    out += `@${prefix}:${i}/${mate}\n${seq}\n+\n${'I'.repeat(len)}\n`;
  }
  return out;
}

export function dropManifest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schema_version: 1,
    patient_id: 'P1',
    sample_id: 'S1',
    provider: { provider_id: 'prov', patient_id: 'MRN-1' },
    reference: 'sim-demo',
    platform: 'ILLUMINA',
    read_length: 50,
    paired: true,
    read_groups: [
      { id: 'rg1', lane: 1, library: 'L1', r1: 'rg1_R1.fastq.gz', r2: 'rg1_R2.fastq.gz' },
      { id: 'rg2', lane: 2, r1: 'rg2_R1.fq', r2: 'rg2_R2.fq' },
    ],
    ...over,
  };
}

/** The members of a good paired drop matching `dropManifest()`. */
export function goodMembers(manifest: Record<string, unknown> = dropManifest(), seed = 'a'): Member[] {
  return [
    { name: 'manifest.json', data: JSON.stringify(manifest, null, 2) },
    { name: 'rg1_R1.fastq.gz', data: gzipSync(fastq(20, `${seed}rg1`, 1)) },
    { name: 'rg1_R2.fastq.gz', data: gzipSync(fastq(20, `${seed}rg1`, 2)) },
    { name: 'rg2_R1.fq', data: fastq(10, `${seed}rg2`, 1) },
    { name: 'rg2_R2.fq', data: fastq(10, `${seed}rg2`, 2) },
  ];
}

export async function buildTar(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((res, rej) => {
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  for (const m of members) {
    const type = m.type ?? 'file';
    const data = m.data === undefined ? Buffer.alloc(0) : Buffer.from(m.data);
    await new Promise<void>((res, rej) => {
      pack.entry({ name: m.name, type, linkname: m.linkname, mode: type === 'directory' ? 0o755 : 0o644, size: type === 'file' ? data.length : 0 }, type === 'file' ? data : undefined, (err) => (err ? rej(err) : res()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function buildTgz(members: Member[]): Promise<Buffer> {
  return gzipSync(await buildTar(members));
}

/**
 * A zip built by yazl. yazl refuses unsafe names itself, so a member whose name starts
 * with `unsafe:` is written as a same-length placeholder and patched afterwards (the name
 * is not covered by any checksum).
 */
export async function buildZip(members: Member[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  const patches: [string, string][] = [];
  for (const m of members) {
    let name = m.name;
    if (name.startsWith('unsafe:')) {
      const real = name.slice('unsafe:'.length);
      name = real.replace(/[^A-Za-z0-9]/g, 'Q').replace(/^Q/, 'X');
      patches.push([name, real]);
    }
    const data = m.data === undefined ? Buffer.alloc(0) : Buffer.from(m.data);
    if (m.type === 'directory') zip.addEmptyDirectory(name);
    else if (m.type === 'symlink') zip.addBuffer(Buffer.from(m.linkname ?? 'x'), name, { mode: 0o120777 });
    else if (m.type === 'fifo') zip.addBuffer(Buffer.alloc(0), name, { mode: 0o010644 });
    else zip.addBuffer(data, name, { mode: 0o100644 });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  let out = Buffer.concat(chunks);
  for (const [from, to] of patches) {
    const a = Buffer.from(from);
    const b = Buffer.from(to);
    if (a.length !== b.length) throw new Error('patched zip names must keep their length');
    let i = out.indexOf(a);
    let n = 0;
    while (i >= 0) {
      b.copy(out, i);
      n++;
      i = out.indexOf(a, i + 1);
    }
    if (n !== 2) throw new Error(`expected the name twice in the zip, found ${n}`);
    out = Buffer.from(out);
  }
  return out;
}

/** Every file under a local directory, hidden and staging ones included, relative, sorted. */
export async function allLocalFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, d.name);
      if (d.isDirectory()) await walk(p);
      else out.push(relative(root, p));
    }
  }
  await walk(root);
  return out.sort();
}

/** Every object of a lake, staging and temporary ones included (bypassing the Lake's filters). */
export async function everything(lake: Lake): Promise<string[]> {
  const cfg = lake.config;
  if (cfg.kind === 'local') return allLocalFiles(cfg.root);
  const client = new S3Client({ region: cfg.region, endpoint: cfg.endpoint, forcePathStyle: cfg.forcePathStyle, credentials: cfg.credentials });
  try {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const res = await client.send(new ListObjectsV2Command({ Bucket: cfg.bucket, Prefix: cfg.prefix ? `${cfg.prefix}/` : undefined, ContinuationToken: token }));
      for (const o of res.Contents ?? []) keys.push(o.Key!);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  } finally {
    client.destroy();
  }
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
