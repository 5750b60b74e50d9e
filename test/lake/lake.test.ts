import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compareKeys } from '../../src/lake/keys.js';
import { LocalLake } from '../../src/lake/local.js';
import { S3Lake, type S3LakeOptions } from '../../src/lake/s3.js';
import { PUBLISHED_MARKER, type Lake, type ObjectInfo } from '../../src/lake/types.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

const MiB = 1024 * 1024;

async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out;
}

async function keysOf(lake: Lake, prefix: string): Promise<string[]> {
  return (await collect(lake.list(prefix))).map((o) => o.key);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A stream of `total` pseudo-random bytes in 64 KiB chunks, plus the digest of what it will emit. */
function randomStream(total: number, seed = 1): { stream: Readable; digest: string } {
  const chunk = 64 * 1024;
  const hash = createHash('sha256');
  const parts: Buffer[] = [];
  // Deterministic content so a mismatch is reproducible.
  let x = seed;
  for (let off = 0; off < total; off += chunk) {
    const n = Math.min(chunk, total - off);
    const full = Buffer.alloc(Math.ceil(n / 4) * 4);
    for (let i = 0; i < full.length; i += 4) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      full.writeUInt32LE(x, i);
    }
    const b = full.subarray(0, n);
    hash.update(b);
    parts.push(b);
  }
  return { stream: Readable.from(parts), digest: hash.digest('hex') };
}

/** A stream that emits some data and then fails, like a network read that breaks. */
function failingStream(): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent < 3) {
        sent++;
        this.push(Buffer.alloc(256 * 1024, sent));
      } else {
        this.destroy(new Error('source broke'));
      }
    },
  });
}

async function expectCode(p: Promise<unknown> | (() => Promise<unknown>), code: string): Promise<void> {
  const promise = typeof p === 'function' ? p() : p;
  await expect(promise).rejects.toMatchObject({ code });
}

interface LakeUnderTest {
  lake: Lake;
  cleanup(): Promise<void>;
}

/** The conformance suite every Lake implementation must pass. */
function describeLake(name: string, makeLake: () => Promise<LakeUnderTest>): void {
  describe(`Lake conformance: ${name}`, () => {
    let lake: Lake;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ lake, cleanup } = await makeLake());
    });
    afterEach(async () => {
      await cleanup();
    });

    it('round-trips Buffer, string, Uint8Array and a multi-MB stream', async () => {
      const buf = randomBytes(1000);
      await lake.put('raw/a.bin', buf);
      await lake.put('raw/b.txt', 'héllo lake\n');
      await lake.put('raw/c.bin', new Uint8Array([1, 2, 3]));
      const { stream, digest } = randomStream(6 * MiB + 123);
      await lake.put('raw/big.bin', stream);

      expect(await lake.getBuffer('raw/a.bin')).toEqual(buf);
      expect((await lake.getBuffer('raw/b.txt')).toString('utf8')).toBe('héllo lake\n');
      expect([...(await lake.getBuffer('raw/c.bin'))]).toEqual([1, 2, 3]);
      const big = await readAll(await lake.get('raw/big.bin'));
      expect(big.length).toBe(6 * MiB + 123);
      expect(sha256(big)).toBe(digest);
      expect(await readAll(await lake.get('raw/a.bin'))).toEqual(buf);
    });

    it('overwrites an object whole', async () => {
      await lake.put('x/o.txt', 'first version, longer');
      await lake.put('x/o.txt', 'second');
      expect((await lake.getBuffer('x/o.txt')).toString()).toBe('second');
      expect(await lake.stat('x/o.txt')).toEqual({ key: 'x/o.txt', size: 6 });
    });

    it('moves an object, replacing the target whole', async () => {
      await lake.put('_staging/x/part.bin', 'new contents');
      await lake.put('curated/t/part.bin', 'old');
      await lake.move('_staging/x/part.bin', 'curated/t/part.bin');
      expect((await lake.getBuffer('curated/t/part.bin')).toString()).toBe('new contents');
      expect(await lake.exists('_staging/x/part.bin')).toBe(false);
      await lake.put('a/one.txt', '1');
      await lake.move('a/one.txt', 'b/c/two.txt');
      expect((await lake.getBuffer('b/c/two.txt')).toString()).toBe('1');
      await expect(lake.move('a/missing.txt', 'b/x.txt')).rejects.toMatchObject({ code: 'LAKE_NOT_FOUND' });
      await expect(lake.move('b/c/two.txt', '../escape.txt')).rejects.toMatchObject({ code: 'LAKE_BAD_KEY' });
    });

    it('stat and exists', async () => {
      await lake.put('p/q/r.txt', '12345');
      expect(await lake.stat('p/q/r.txt')).toEqual({ key: 'p/q/r.txt', size: 5 });
      expect(await lake.stat('p//q/r.txt')).toEqual({ key: 'p/q/r.txt', size: 5 });
      expect(await lake.exists('p/q/r.txt')).toBe(true);
      expect(await lake.stat('p/q/missing.txt')).toBeUndefined();
      expect(await lake.exists('p/q/missing.txt')).toBe(false);
      // A prefix is not an object.
      expect(await lake.exists('p/q')).toBe(false);
    });

    it('missing keys fail with LAKE_NOT_FOUND', async () => {
      await lake.put('here/yes.txt', 'y');
      await expectCode(() => lake.get('here/no.txt'), 'LAKE_NOT_FOUND');
      await expectCode(() => lake.getBuffer('here/no.txt'), 'LAKE_NOT_FOUND');
      await expectCode(() => lake.getBuffer('nowhere/at/all.txt'), 'LAKE_NOT_FOUND');
      // A prefix is not an object either.
      await expectCode(() => lake.get('here'), 'LAKE_NOT_FOUND');
    });

    it('lists recursively, sorted, within prefix boundaries, staging hidden', async () => {
      const keys = [
        'a/b/x.txt',
        'a/b/y/z.txt',
        'a/b/y/w.txt',
        'a/bc/q.txt',
        'a/c.txt',
        'top.txt',
        'patient_id=P1/chrom=chr1/part-0.parquet',
        'patient_id=P1/chrom=chr10/part-0.parquet',
        'patient_id=P1/chrom=chr2/part-0.parquet',
      ];
      for (const k of [...keys].reverse()) await lake.put(k, k);
      const staging = lake.stagingPrefix('stage one');
      await lake.put(`${staging}hidden.txt`, 'not yet');

      const sorted = [...keys].sort(compareKeys);
      expect(await keysOf(lake, '')).toEqual(sorted);
      expect(await keysOf(lake, 'a/b')).toEqual(['a/b/x.txt', 'a/b/y/w.txt', 'a/b/y/z.txt']);
      expect(await keysOf(lake, 'a/b/')).toEqual(['a/b/x.txt', 'a/b/y/w.txt', 'a/b/y/z.txt']);
      expect(await keysOf(lake, 'a/bc')).toEqual(['a/bc/q.txt']);
      expect(await keysOf(lake, 'a')).toEqual(['a/b/x.txt', 'a/b/y/w.txt', 'a/b/y/z.txt', 'a/bc/q.txt', 'a/c.txt']);
      expect(await keysOf(lake, 'patient_id=P1')).toEqual([
        'patient_id=P1/chrom=chr1/part-0.parquet',
        'patient_id=P1/chrom=chr10/part-0.parquet',
        'patient_id=P1/chrom=chr2/part-0.parquet',
      ]);
      // A key is not a prefix of itself.
      expect(await keysOf(lake, 'top.txt')).toEqual([]);
      expect(await keysOf(lake, 'nothing/here')).toEqual([]);
      // Staging stays invisible even when asked for directly.
      expect(await keysOf(lake, staging)).toEqual([]);
      expect(await keysOf(lake, '_staging')).toEqual([]);
      // But it is there to read back.
      expect((await lake.getBuffer(`${staging}hidden.txt`)).toString()).toBe('not yet');

      const sizes = await collect(lake.list('a/bc'));
      expect(sizes).toEqual([{ key: 'a/bc/q.txt', size: 'a/bc/q.txt'.length }]);
    });

    it('delete and deletePrefix', async () => {
      for (const k of ['d/1.txt', 'd/sub/2.txt', 'd/sub/3.txt', 'dd/4.txt', 'd.txt']) await lake.put(k, k);
      await lake.delete('d/1.txt');
      await lake.delete('d/1.txt'); // idempotent
      await lake.delete('d/never-there.txt');
      expect(await lake.exists('d/1.txt')).toBe(false);
      await lake.deletePrefix('d/sub');
      expect(await keysOf(lake, '')).toEqual(['d.txt', 'dd/4.txt']);
      // Prefix boundary: deleting 'd' leaves 'dd/' and 'd.txt'.
      await lake.put('d/5.txt', '5');
      await lake.deletePrefix('d');
      expect(await keysOf(lake, '')).toEqual(['d.txt', 'dd/4.txt']);
      await lake.deletePrefix('not/there');
      await expectCode(() => lake.deletePrefix(''), 'LAKE_BAD_KEY');
      // A staging area is deleted with deletePrefix too.
      const staging = lake.stagingPrefix('tmp');
      await lake.put(`${staging}x.txt`, 'x');
      await lake.deletePrefix(staging);
      expect(await lake.exists(`${staging}x.txt`)).toBe(false);
    });

    it('rejects unsafe keys with LAKE_BAD_KEY', async () => {
      for (const bad of ['../x', '/abs', 'a/../../b', 'a/./b', 'a\\b', '..', 'C:/x']) {
        await expectCode(() => lake.put(bad, 'x'), 'LAKE_BAD_KEY');
        await expectCode(() => lake.get(bad), 'LAKE_BAD_KEY');
        await expectCode(() => lake.getBuffer(bad), 'LAKE_BAD_KEY');
        await expectCode(() => lake.stat(bad), 'LAKE_BAD_KEY');
        await expectCode(() => lake.exists(bad), 'LAKE_BAD_KEY');
        await expectCode(() => lake.delete(bad), 'LAKE_BAD_KEY');
        await expectCode(() => lake.deletePrefix(bad), 'LAKE_BAD_KEY');
        await expectCode(() => collect(lake.list(bad)), 'LAKE_BAD_KEY');
        await expectCode(() => lake.publish(bad, 'ok/final'), 'LAKE_BAD_KEY');
        await expectCode(() => lake.publish(lake.stagingPrefix('s'), bad), 'LAKE_BAD_KEY');
        await expectCode(() => lake.isPublished(bad), 'LAKE_BAD_KEY');
      }
      // An object key must name an object.
      await expectCode(() => lake.put('', 'x'), 'LAKE_BAD_KEY');
      await expectCode(() => lake.put('dir/', 'x'), 'LAKE_BAD_KEY');
      expect(await keysOf(lake, '')).toEqual([]);
    });

    it('a failing source stream leaves no object behind', async () => {
      await expect(lake.put('broken/obj.bin', failingStream())).rejects.toThrow(/source broke/);
      expect(await lake.exists('broken/obj.bin')).toBe(false);
      expect(await keysOf(lake, '')).toEqual([]);
      // The previous version of an object survives a failed overwrite.
      await lake.put('broken/obj.bin', 'good');
      await expect(lake.put('broken/obj.bin', failingStream())).rejects.toThrow(/source broke/);
      expect((await lake.getBuffer('broken/obj.bin')).toString()).toBe('good');
    });

    it('publishes a staged tree with the marker written, staging removed', async () => {
      const final = 'staged/patient_id=P1/sample_id=S1/run_id=R1';
      const staging = lake.stagingPrefix('call P1/S1');
      expect(staging.startsWith('_staging/')).toBe(true);
      expect(staging.endsWith('/')).toBe(true);
      expect(lake.stagingPrefix('call P1/S1')).not.toBe(staging);

      await lake.put(`${staging}calls.vcf.gz`, 'vcf');
      await lake.put(`${staging}qc/qc.json`, '{"ok":true}');
      // Half-written: nothing is published, neither the staging area nor the final prefix.
      expect(await lake.isPublished(final)).toBe(false);
      expect(await lake.isPublished(staging)).toBe(false);
      expect(await keysOf(lake, final)).toEqual([]);

      await lake.publish(staging, final, { stage: 'call', inputs: ['a'] });
      expect(await lake.isPublished(final)).toBe(true);
      expect(await lake.isPublished(`${final}/`)).toBe(true);
      expect(await keysOf(lake, final)).toEqual([`${final}/${PUBLISHED_MARKER}`, `${final}/calls.vcf.gz`, `${final}/qc/qc.json`]);
      expect((await lake.getBuffer(`${final}/qc/qc.json`)).toString()).toBe('{"ok":true}');
      const marker = JSON.parse((await lake.getBuffer(`${final}/${PUBLISHED_MARKER}`)).toString()) as Record<string, unknown>;
      expect(marker).toMatchObject({ stage: 'call', inputs: ['a'], objects: 2 });
      expect(typeof marker.publishedAt).toBe('string');
      // The staging area is gone.
      expect(await lake.exists(`${staging}calls.vcf.gz`)).toBe(false);
      expect(await lake.exists(`${staging}qc/qc.json`)).toBe(false);
      // Nothing else leaked into the visible lake.
      expect(await keysOf(lake, '')).toEqual([`${final}/${PUBLISHED_MARKER}`, `${final}/calls.vcf.gz`, `${final}/qc/qc.json`]);
    });

    it('publish replaces an old tree completely', async () => {
      const final = 'curated/variants/patient_id=P2';
      const s1 = lake.stagingPrefix('v1');
      await lake.put(`${s1}chrom=1/part-0.parquet`, 'old-1');
      await lake.put(`${s1}chrom=2/part-0.parquet`, 'old-2');
      await lake.put(`${s1}shared.txt`, 'old');
      await lake.publish(s1, final);
      expect(await keysOf(lake, final)).toHaveLength(4);

      const s2 = lake.stagingPrefix('v2');
      await lake.put(`${s2}chrom=3/part-0.parquet`, 'new-3');
      await lake.put(`${s2}shared.txt`, 'newer');
      await lake.publish(s2, final, { version: 2 });
      expect(await keysOf(lake, final)).toEqual([
        `${final}/${PUBLISHED_MARKER}`,
        `${final}/chrom=3/part-0.parquet`,
        `${final}/shared.txt`,
      ]);
      expect((await lake.getBuffer(`${final}/shared.txt`)).toString()).toBe('newer');
      const marker = JSON.parse((await lake.getBuffer(`${final}/${PUBLISHED_MARKER}`)).toString()) as Record<string, unknown>;
      expect(marker.version).toBe(2);

      // Publishing an empty staging area leaves just the marker: an output with no files.
      const s3 = lake.stagingPrefix('v3');
      await lake.publish(s3, final);
      expect(await keysOf(lake, final)).toEqual([`${final}/${PUBLISHED_MARKER}`]);
      expect(await lake.isPublished(final)).toBe(true);
      // Siblings of the final prefix are untouched.
      await lake.put('curated/variants/patient_id=P22/x.txt', 'sibling');
      const s4 = lake.stagingPrefix('v4');
      await lake.put(`${s4}y.txt`, 'y');
      await lake.publish(s4, final);
      expect(await lake.exists('curated/variants/patient_id=P22/x.txt')).toBe(true);
    });

    it('a marker left in staging does not publish early and is replaced', async () => {
      const staging = lake.stagingPrefix('m');
      await lake.put(`${staging}${PUBLISHED_MARKER}`, '{"stale":true}');
      await lake.put(`${staging}out.txt`, 'out');
      expect(await lake.isPublished('final/m')).toBe(false);
      await lake.publish(staging, 'final/m', { fresh: true });
      const marker = JSON.parse((await lake.getBuffer(`final/m/${PUBLISHED_MARKER}`)).toString()) as Record<string, unknown>;
      expect(marker.fresh).toBe(true);
      expect(marker.stale).toBeUndefined();
      expect(marker.objects).toBe(1);
    });

    it('refuses to publish overlapping or hidden prefixes', async () => {
      const staging = lake.stagingPrefix('o');
      await lake.put(`${staging}f.txt`, 'f');
      await expectCode(() => lake.publish(staging, staging), 'LAKE_BAD_KEY');
      await expectCode(() => lake.publish(staging, `${staging}inner`), 'LAKE_BAD_KEY');
      await expectCode(() => lake.publish('out', 'out/inner'), 'LAKE_BAD_KEY');
      await expectCode(() => lake.publish(staging, '_staging/elsewhere'), 'LAKE_BAD_KEY');
      await expectCode(() => lake.publish(staging, ''), 'LAKE_BAD_KEY');
      // Nothing was touched.
      expect(await lake.exists(`${staging}f.txt`)).toBe(true);
    });
  });
}

// ---------------------------------------------------------------------------------
// Local directory

const localRoots: string[] = [];
afterAll(async () => {
  await Promise.all(localRoots.map((r) => rm(r, { recursive: true, force: true })));
});

async function makeLocal(fsync = false): Promise<LakeUnderTest & { lake: LocalLake; root: string }> {
  const root = await mkdtemp(join(tmpdir(), 'genolake-lake-'));
  localRoots.push(root);
  return { lake: new LocalLake(root, { fsync }), root, cleanup: () => rm(root, { recursive: true, force: true }) };
}

describeLake('LocalLake', () => makeLocal());
describeLake('LocalLake (fsync)', () => makeLocal(true));

describe('LocalLake specifics', () => {
  it('gives local paths inside the root and refuses unsafe ones', async () => {
    const { lake, root, cleanup } = await makeLocal();
    try {
      expect(lake.localPath('raw/x.fastq.gz')).toBe(join(root, 'raw', 'x.fastq.gz'));
      expect(() => lake.localPath('../x')).toThrow(expect.objectContaining({ code: 'LAKE_BAD_KEY' }));
      expect(lake.config).toEqual({ kind: 'local', root });
      expect(lake.describe()).toBe(root);
    } finally {
      await cleanup();
    }
  });

  it('leaves no temporary files and hides foreign .tmp- files', async () => {
    const { lake, root, cleanup } = await makeLocal();
    try {
      await lake.put('d/a.txt', 'a');
      await expect(lake.put('d/b.txt', failingStream())).rejects.toThrow();
      expect(await readdir(join(root, 'd'))).toEqual(['a.txt']);
      // A writer that died mid-put leaves a .tmp- file: it is never listed.
      await writeFile(join(root, 'd', '.tmp-dead'), 'partial');
      expect(await keysOf(lake, 'd')).toEqual(['d/a.txt']);
      // Publishing leaves nothing in the staging area.
      const s = lake.stagingPrefix('x');
      await lake.put(`${s}o.txt`, 'o');
      await lake.publish(s, 'pub');
      await lake.put(`${lake.stagingPrefix('y')}o.txt`, 'o');
      const s2 = lake.stagingPrefix('z');
      await lake.put(`${s2}o.txt`, 'o2');
      await lake.publish(s2, 'pub');
      const staged = await readdir(join(root, '_staging'));
      expect(staged.filter((n) => !n.startsWith('y-'))).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('concurrent publishes of the same final end with exactly one whole tree', async () => {
    const { lake, cleanup } = await makeLocal();
    try {
      const trees = ['A', 'B', 'C'];
      const stagings = await Promise.all(
        trees.map(async (t) => {
          const s = lake.stagingPrefix(t);
          for (let i = 0; i < 5; i++) await lake.put(`${s}${t}-${i}.txt`, t);
          return s;
        }),
      );
      await Promise.all(stagings.map((s, i) => lake.publish(s, 'out', { tree: trees[i] })));
      const marker = JSON.parse((await lake.getBuffer(`out/${PUBLISHED_MARKER}`)).toString()) as { tree: string };
      const keys = await keysOf(lake, 'out');
      expect(keys).toEqual([`out/${PUBLISHED_MARKER}`, ...[0, 1, 2, 3, 4].map((i) => `out/${marker.tree}-${i}.txt`)].sort(compareKeys));
    } finally {
      await cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------
// S3 on s3rver

let server: S3TestServer;
const s3Lakes: S3Lake[] = [];
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  for (const l of s3Lakes) l.destroy();
  await server?.close();
});

function makeS3(prefix = `t-${randomUUID()}`, options: S3LakeOptions = {}): S3Lake {
  const lake = new S3Lake(server.config(prefix), options);
  s3Lakes.push(lake);
  return lake;
}

describeLake('S3Lake (s3rver)', async () => {
  const lake = makeS3();
  return { lake, cleanup: async () => lake.destroy() };
});

describeLake('S3Lake at the bucket root, small pages and parts', async () => {
  // The bucket root is shared with the other tests' prefixes, so use a bucket of its own.
  const bucket = `root-${randomUUID().slice(0, 8)}`;
  const first = makeS3('');
  const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
  await first.client.send(new CreateBucketCommand({ Bucket: bucket }));
  const lake = new S3Lake({ ...server.config(''), bucket }, { pageSize: 2, partSize: 5 * MiB, singlePutMax: 1024, copyObjectMax: 64 });
  s3Lakes.push(lake);
  return { lake, cleanup: async () => lake.destroy() };
});

describe('S3Lake specifics', () => {
  it('keeps every key under the configured prefix', async () => {
    const lake = makeS3('lakes/one');
    const other = makeS3('lakes/one-more');
    expect(lake.describe()).toBe(`s3://${server.bucket}/lakes/one`);
    expect(lake.localPath('x')).toBeUndefined();
    await lake.put('raw/a.txt', 'a');
    await other.put('raw/b.txt', 'b');
    const raw = await lake.client.send(new ListObjectsV2Command({ Bucket: server.bucket, Prefix: 'lakes/' }));
    expect((raw.Contents ?? []).map((o) => o.Key).sort()).toEqual(['lakes/one-more/raw/b.txt', 'lakes/one/raw/a.txt']);
    expect(await keysOf(lake, '')).toEqual(['raw/a.txt']);
    expect(await keysOf(other, '')).toEqual(['raw/b.txt']);
    // Leading/trailing slashes in the configured prefix mean the same lake.
    const same = makeS3('/lakes/one/');
    expect(await keysOf(same, '')).toEqual(['raw/a.txt']);
  });

  it('uploads a 12 MB stream as a multipart object', async () => {
    const lake = makeS3();
    const commands: string[] = [];
    lake.client.middlewareStack.add(
      (next, context) => async (args) => {
        commands.push(context.commandName ?? '?');
        return next(args);
      },
      { step: 'initialize', name: 'recordCommands' },
    );
    const { stream, digest } = randomStream(12 * MiB, 7);
    await lake.put('raw/reads.fastq.gz', stream);
    // 12 MB in 8 MiB parts: two parts, visible only once completed.
    expect(commands.filter((c) => c === 'UploadPartCommand')).toHaveLength(2);
    expect(commands).toContain('CreateMultipartUploadCommand');
    expect(commands.at(-1)).toBe('CompleteMultipartUploadCommand');
    const head = await lake.client.send(
      new HeadObjectCommand({ Bucket: server.bucket, Key: `${lake.config.prefix}/raw/reads.fastq.gz` }),
    );
    expect(head.ContentLength).toBe(12 * MiB);
    expect(await lake.stat('raw/reads.fastq.gz')).toEqual({ key: 'raw/reads.fastq.gz', size: 12 * MiB });
    expect(sha256(await lake.getBuffer('raw/reads.fastq.gz'))).toBe(digest);
    // A 12 MB Buffer goes the same way (above singlePutMax).
    commands.length = 0;
    const buf = randomBytes(12 * MiB);
    await lake.put('raw/buf.bin', buf);
    expect(commands.filter((c) => c === 'UploadPartCommand')).toHaveLength(2);
    expect((await lake.getBuffer('raw/buf.bin')).equals(buf)).toBe(true);
  });

  it('pages through listings and deletes more than one page', async () => {
    const lake = makeS3(undefined, { pageSize: 3 });
    const keys = Array.from({ length: 11 }, (_, i) => `many/k${String(i).padStart(2, '0')}.txt`);
    await Promise.all(keys.map((k) => lake.put(k, k)));
    expect(await keysOf(lake, 'many')).toEqual(keys);
    await lake.deletePrefix('many');
    expect(await keysOf(lake, '')).toEqual([]);
  });

  it('copies objects above the CopyObject limit by streaming them', async () => {
    const lake = makeS3(undefined, { copyObjectMax: 1024, partSize: 5 * MiB });
    const s = lake.stagingPrefix('big');
    const { stream, digest } = randomStream(6 * MiB, 3);
    await lake.put(`${s}big.bin`, stream);
    await lake.put(`${s}small.txt`, 'small');
    await lake.publish(s, 'out/big');
    expect(sha256(await lake.getBuffer('out/big/big.bin'))).toBe(digest);
    expect((await lake.getBuffer('out/big/small.txt')).toString()).toBe('small');
  });

  it('a reader never sees a published prefix with a mix of old and new objects', async () => {
    const prefix = `t-${randomUUID()}`;
    const writer = makeS3(prefix);
    const reader = makeS3(prefix);
    const final = 'staged/patient_id=P/sample_id=S/run_id=R';
    const s1 = writer.stagingPrefix('old');
    await writer.put(`${s1}old-only.txt`, 'old');
    await writer.put(`${s1}shared.txt`, 'old');
    await writer.publish(s1, final);
    const s2 = writer.stagingPrefix('new');
    for (let i = 0; i < 4; i++) await writer.put(`${s2}new-${i}.txt`, 'newer');
    await writer.put(`${s2}shared.txt`, 'newer');

    const snapshot = async (): Promise<string> =>
      (await collect(reader.list(final))).map((o) => `${o.key.slice(final.length + 1)}:${o.size}`).join(' ');
    const oldTree = await snapshot();
    const seen: { command: string; published: boolean; tree: string }[] = [];
    // Observe the lake from another client before every request the publish sends.
    writer.client.middlewareStack.add(
      (next, context) => async (args) => {
        seen.push({ command: context.commandName ?? '?', published: await reader.isPublished(final), tree: await snapshot() });
        return next(args);
      },
      { step: 'initialize', name: 'observePublish' },
    );
    await writer.publish(s2, final);
    writer.client.middlewareStack.remove('observePublish');
    const newTree = await snapshot();
    expect(newTree).toBe(`${PUBLISHED_MARKER}:${newTree.split(' ')[0].split(':')[1]} new-0.txt:5 new-1.txt:5 new-2.txt:5 new-3.txt:5 shared.txt:5`);

    expect(seen.length).toBeGreaterThan(5);
    for (const s of seen) {
      if (s.published) expect([oldTree, newTree]).toContain(s.tree);
      else expect(s.tree).not.toContain(PUBLISHED_MARKER);
    }
    // It went published(old) → unpublished (the window) → published(new), once each.
    const phases = seen.map((s) => (s.published ? (s.tree === oldTree ? 'old' : 'new') : 'none'));
    const collapsed = phases.filter((p, i) => i === 0 || p !== phases[i - 1]);
    expect(collapsed).toEqual(['old', 'none', 'new']);
    // The marker write is the request that ends the window: all new objects are in place before it.
    const markerPut = seen.findIndex((s, i) => !s.published && phases[i + 1] === 'new');
    expect(seen[markerPut].command).toBe('PutObjectCommand');
    expect(seen[markerPut].tree).toBe(newTree.split(' ').slice(1).join(' '));
  });

  it('reports a missing bucket clearly', async () => {
    const lake = new S3Lake({ ...server.config('x'), bucket: 'no-such-bucket' });
    s3Lakes.push(lake);
    await expectCode(() => lake.put('a.txt', 'a'), 'LAKE_NO_BUCKET');
    await expectCode(() => collect(lake.list('')), 'LAKE_NO_BUCKET');
  });
});
