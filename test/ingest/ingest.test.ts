import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { S3Lake } from '../../src/lake/s3.js';
import { PUBLISHED_MARKER, type Lake } from '../../src/lake/types.js';
import { ManifestError } from '../../src/manifest/load.js';
import { ingestArchive, ingestFromLake, type IngestOptions } from '../../src/stages/ingest.js';
import { InputError } from '../../src/util/errors.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { buildTar, buildTgz, buildZip, dropManifest, everything, fastq, goodMembers, type Member } from './helpers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work: string;
let s3: S3TestServer;
let lakeNo = 0;
const opened: Lake[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'genolake-ingest-test-'));
  s3 = await startS3Server();
});
afterAll(async () => {
  for (const l of opened) if (l instanceof S3Lake) l.destroy();
  await s3?.close();
  await rm(work, { recursive: true, force: true });
});

type Kind = 'local' | 's3';
function freshLake(kind: Kind): Lake {
  lakeNo++;
  const lake = kind === 'local' ? new LocalLake(join(work, `lake-${lakeNo}`)) : new S3Lake(s3.config(`lake-${lakeNo}`));
  opened.push(lake);
  return lake;
}

async function writeArchive(name: string, data: Buffer): Promise<string> {
  const path = join(work, `${lakeNo}-${Math.random().toString(36).slice(2)}`, name);
  await import('node:fs/promises').then((fs) => fs.mkdir(join(path, '..'), { recursive: true }));
  await writeFile(path, data);
  return path;
}

/** Asserts `p` rejects with an InputError of `code` naming `file`, and returns it. */
async function refused(p: Promise<unknown>, code: string, file?: string): Promise<InputError> {
  const e = await p.then(
    () => {
      throw new Error(`expected ${code}, but ingest succeeded`);
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(InputError);
  const err = e as InputError;
  expect(err.code, err.message).toBe(code);
  if (file !== undefined) expect(err.place.file).toBe(file);
  return err;
}

const builders = { tar: buildTar, tgz: buildTgz, zip: buildZip } as const;

describe.each(['local', 's3'] as const)('ingest into a %s lake', (kind) => {
  for (const [ext, build] of Object.entries(builders)) {
    it(`unpacks a .${ext} drop into the raw zone and keeps the original`, async () => {
      const lake = freshLake(kind);
      const members = goodMembers();
      members.push({ name: 'README.txt', data: 'hello' }, { name: '__MACOSX/._rg1_R1.fastq.gz', data: 'junk' });
      const archive = await builders[ext as keyof typeof builders](members);
      const path = await writeArchive(`drop 1.${ext}`, archive);
      const res = await ingestArchive(lake, path);
      const sha = sha256(archive);
      expect(res.runId).toBe(`r${sha.slice(0, 16)}`);
      expect(res.dropSha256).toBe(sha);
      expect(res.duplicate).toBe(false);
      expect(res.bytes).toBe(archive.length);
      expect(res.format).toBe(ext === 'tgz' ? 'tar.gz' : ext);
      expect(res.manifest.patient_id).toBe('P1');
      expect(res.ignored.sort()).toEqual(['README.txt', '__MACOSX/._rg1_R1.fastq.gz']);
      const fq = `raw/patient_id=P1/run_id=${res.runId}/fastq/`;
      expect(res.fastqPrefix).toBe(fq);
      expect(res.dropKey).toBe(`raw/_drops/${sha}/drop_1.${ext}`);
      expect(res.readGroups).toEqual([
        { id: 'rg1', lane: 1, library: 'L1', r1: `${fq}rg1_R1.fastq.gz`, r2: `${fq}rg1_R2.fastq.gz` },
        { id: 'rg2', lane: 2, r1: `${fq}rg2_R1.fq`, r2: `${fq}rg2_R2.fq` },
      ]);
      // Byte-identical reads and original, both prefixes published, nothing else anywhere.
      for (const m of members.slice(1, 5)) expect(sha256(await lake.getBuffer(`${fq}${m.name}`))).toBe(sha256(Buffer.from(m.data!)));
      expect(sha256(await lake.getBuffer(res.dropKey))).toBe(sha);
      expect(JSON.parse((await lake.getBuffer(`${fq}manifest.json`)).toString())).toEqual(res.manifest);
      expect(await lake.isPublished(fq)).toBe(true);
      expect(await lake.isPublished(`raw/_drops/${sha}/`)).toBe(true);
      const root = kind === 's3' ? `lake-${lakeNo}/` : '';
      expect((await everything(lake)).map((k) => k.slice(root.length))).toEqual(
        [
          `${fq}${PUBLISHED_MARKER}`,
          `${fq}manifest.json`,
          `${fq}rg1_R1.fastq.gz`,
          `${fq}rg1_R2.fastq.gz`,
          `${fq}rg2_R1.fq`,
          `${fq}rg2_R2.fq`,
          `raw/_drops/${sha}/${PUBLISHED_MARKER}`,
          `raw/_drops/${sha}/drop_1.${ext}`,
          `raw/_drops/${sha}/ingest.json`,
          `raw/_drops/${sha}/manifest.json`,
        ].sort(),
      );
    });
  }

  it('recognises the same content dropped twice: same run, nothing written', async () => {
    const lake = freshLake(kind);
    const archive = await buildTgz(goodMembers());
    const first = await ingestArchive(lake, await writeArchive('a.tgz', archive));
    const before = await everything(lake);
    const second = await ingestArchive(lake, await writeArchive('renamed-copy.tar.gz', archive));
    expect(second.duplicate).toBe(true);
    expect(second.runId).toBe(first.runId);
    expect({ ...second, duplicate: false }).toEqual(first);
    expect(await everything(lake)).toEqual(before);
    // Different content (one more read) is a different run.
    const other = goodMembers(dropManifest(), 'b');
    const third = await ingestArchive(lake, await writeArchive('b.tgz', await buildTgz(other)));
    expect(third.duplicate).toBe(false);
    expect(third.runId).not.toBe(first.runId);
  });

  it('detects the format by content, reads a YAML manifest in a folder, paths relative to it', async () => {
    const lake = freshLake(kind);
    const yaml = [
      'schema_version: 1',
      'patient_id: P2',
      'sample_id: S2',
      'provider: { provider_id: prov, patient_id: x }',
      'reference: sim-demo',
      'platform: ILLUMINA',
      'read_length: 50',
      'paired: false',
      'read_groups:',
      '  - id: rgA',
      '    r1: reads/A.fastq',
    ].join('\n');
    const archive = await buildTar([
      { name: 'drop/', type: 'directory' },
      { name: 'drop/manifest.yaml', data: yaml },
      { name: 'drop/reads/A.fastq', data: fastq(5) },
    ]);
    // A tar named .zip: the magic bytes decide.
    const res = await ingestArchive(lake, await writeArchive('mislabelled.zip', gzipSync(archive)));
    expect(res.format).toBe('tar.gz');
    expect(res.readGroups).toEqual([{ id: 'rgA', r1: `raw/patient_id=P2/run_id=${res.runId}/fastq/reads/A.fastq` }]);
    expect((await lake.getBuffer(res.readGroups[0].r1)).toString()).toBe(fastq(5));
    expect(await lake.exists(`${res.fastqPrefix}manifest.json`)).toBe(true);
  });

  it('ingests an archive already in the lake (S3 trigger path)', async () => {
    const lake = freshLake(kind);
    const archive = await buildZip(goodMembers());
    await lake.put('incoming/lab drop.zip', archive);
    const res = await ingestFromLake(lake, 'incoming/lab drop.zip');
    expect(res.duplicate).toBe(false);
    expect(res.dropKey).toBe(`raw/_drops/${sha256(archive)}/lab_drop.zip`);
    expect(sha256(await lake.getBuffer(res.dropKey))).toBe(sha256(archive));
    expect((await ingestFromLake(lake, 'incoming/lab drop.zip')).duplicate).toBe(true);
    await refused(ingestFromLake(lake, 'incoming/nope.zip'), 'ARCHIVE_NOT_FOUND');
  });

  // ------------------------------------------------------------------ refusals

  const zeros = Buffer.alloc(20 * 1024 * 1024);
  const tinyLimits: IngestOptions['limits'] = { maxRatio: 10, ratioFloorBytes: 64 * 1024 };
  const refusals: { name: string; ext: keyof typeof builders; members: () => Member[]; code: string; entry?: string; limits?: IngestOptions['limits'] }[] = [
    { name: "a '..' entry (tar)", ext: 'tar', members: () => [...goodMembers(), { name: '../evil.fastq', data: 'x' }], code: 'ARCHIVE_UNSAFE_PATH', entry: '../evil.fastq' },
    { name: "a nested '..' entry (tgz)", ext: 'tgz', members: () => [...goodMembers(), { name: 'a/../../evil.fq', data: 'x' }], code: 'ARCHIVE_UNSAFE_PATH', entry: 'a/../../evil.fq' },
    { name: 'an absolute entry (tar)', ext: 'tar', members: () => [...goodMembers(), { name: '/tmp/evil.fastq', data: 'x' }], code: 'ARCHIVE_UNSAFE_PATH', entry: '/tmp/evil.fastq' },
    { name: "a '..' entry (zip)", ext: 'zip', members: () => [...goodMembers(), { name: 'unsafe:../evil.fq', data: 'x' }], code: 'ARCHIVE_UNSAFE_PATH', entry: '../evil.fq' },
    { name: 'an absolute entry (zip)', ext: 'zip', members: () => [...goodMembers(), { name: 'unsafe:/tmp/evil.fq', data: 'x' }], code: 'ARCHIVE_UNSAFE_PATH', entry: '/tmp/evil.fq' },
    { name: 'a symlink (tar)', ext: 'tar', members: () => [...goodMembers(), { name: 'link.fq', type: 'symlink', linkname: '/etc/passwd' }], code: 'ARCHIVE_SPECIAL_ENTRY', entry: 'link.fq' },
    { name: 'a hardlink (tgz)', ext: 'tgz', members: () => [...goodMembers(), { name: 'hard.fq', type: 'link', linkname: 'rg2_R1.fq' }], code: 'ARCHIVE_SPECIAL_ENTRY', entry: 'hard.fq' },
    { name: 'a character device (tar)', ext: 'tar', members: () => [...goodMembers(), { name: 'dev', type: 'character-device' }], code: 'ARCHIVE_SPECIAL_ENTRY', entry: 'dev' },
    { name: 'a fifo (tar)', ext: 'tar', members: () => [...goodMembers(), { name: 'pipe', type: 'fifo' }], code: 'ARCHIVE_SPECIAL_ENTRY', entry: 'pipe' },
    { name: 'a symlink (zip)', ext: 'zip', members: () => [...goodMembers(), { name: 'link.fq', type: 'symlink', linkname: '/etc/passwd' }], code: 'ARCHIVE_SPECIAL_ENTRY', entry: 'link.fq' },
    { name: 'a fifo (zip)', ext: 'zip', members: () => [...goodMembers(), { name: 'pipe', type: 'fifo' }], code: 'ARCHIVE_SPECIAL_ENTRY', entry: 'pipe' },
    { name: 'a gzip bomb inside a tgz (default limits)', ext: 'tgz', members: () => [...goodMembers().slice(0, 3), { name: 'zeros.fastq', data: zeros }], code: 'ARCHIVE_RATIO' },
    { name: 'a zip bomb (default limits)', ext: 'zip', members: () => [...goodMembers().slice(0, 3), { name: 'zeros.fastq', data: zeros }], code: 'ARCHIVE_RATIO', entry: 'zeros.fastq' },
    { name: 'an entry over the configured ratio (zip)', ext: 'zip', members: () => [...goodMembers(), { name: 'z.fq', data: Buffer.alloc(256 * 1024) }], code: 'ARCHIVE_RATIO', entry: 'z.fq', limits: tinyLimits },
    { name: 'more bytes than maxTotalBytes (tar)', ext: 'tar', members: () => goodMembers(), code: 'ARCHIVE_TOO_LARGE', limits: { maxTotalBytes: 3000 } },
    { name: 'more entries than maxEntries (zip)', ext: 'zip', members: () => goodMembers(), code: 'ARCHIVE_TOO_MANY_ENTRIES', limits: { maxEntries: 3 } },
    { name: 'more entries than maxEntries (tar)', ext: 'tar', members: () => goodMembers(), code: 'ARCHIVE_TOO_MANY_ENTRIES', limits: { maxEntries: 3 } },
    { name: 'a FASTQ no read group names', ext: 'tgz', members: () => [...goodMembers(), { name: 'rg3_R1.fastq', data: fastq(2) }], code: 'DROP_UNKNOWN_FILES' },
    { name: 'a missing read file', ext: 'zip', members: () => goodMembers().filter((m) => m.name !== 'rg2_R2.fq'), code: 'DROP_MISSING_FILES' },
    { name: 'no manifest', ext: 'tar', members: () => goodMembers().slice(1), code: 'DROP_NO_MANIFEST' },
    { name: 'two manifests', ext: 'tar', members: () => [...goodMembers(), { name: 'other/manifest.yml', data: 'a: 1' }], code: 'DROP_MANIFEST_AMBIGUOUS', entry: 'other/manifest.yml' },
    { name: 'the same entry twice', ext: 'tar', members: () => [...goodMembers(), { name: 'rg2_R1.fq', data: fastq(3) }], code: 'DROP_DUPLICATE_ENTRY', entry: 'rg2_R1.fq' },
    { name: 'an empty FASTQ', ext: 'tar', members: () => goodMembers().map((m) => (m.name === 'rg2_R1.fq' ? { ...m, data: '' } : m)), code: 'DROP_EMPTY_FILE', entry: 'rg2_R1.fq' },
    { name: 'a FASTQ with an unsafe but relative name', ext: 'tar', members: () => [...goodMembers(), { name: 'my reads.fq', data: 'x' }], code: 'ARCHIVE_UNSAFE_PATH', entry: 'my reads.fq' },
    {
      name: 'a manifest whose patient id would escape the lake',
      ext: 'tgz',
      members: () => goodMembers(dropManifest({ patient_id: '../../etc' })),
      code: 'MANIFEST_INVALID',
    },
  ];

  for (const c of refusals) {
    it(`refuses ${c.name}, naming archive and entry, leaving nothing in the lake`, async () => {
      const lake = freshLake(kind);
      const path = await writeArchive(`bad.${c.ext}`, await builders[c.ext](c.members()));
      const err = await refused(ingestArchive(lake, path, { limits: c.limits, displayName: 'lab/bad-drop' }), c.code);
      expect(err.place.file).toMatch(/^lab\/bad-drop/);
      if (c.entry) expect(err.message).toContain(JSON.stringify(c.entry));
      expect(await everything(lake)).toEqual([]);
    });
  }

  it('refuses files that are not archives and truncated archives', async () => {
    const lake = freshLake(kind);
    await refused(ingestArchive(lake, await writeArchive('x.tar.gz', Buffer.from('hello, not an archive\n'))), 'ARCHIVE_UNKNOWN_FORMAT');
    const tgz = await buildTgz(goodMembers());
    await refused(ingestArchive(lake, await writeArchive('cut.tgz', tgz.subarray(0, tgz.length - 200))), 'ARCHIVE_CORRUPT');
    const zip = await buildZip(goodMembers());
    await refused(ingestArchive(lake, await writeArchive('cut.zip', zip.subarray(0, zip.length - 30))), 'ARCHIVE_CORRUPT');
    await refused(ingestArchive(lake, join(work, 'does-not-exist.tar')), 'ARCHIVE_NOT_FOUND');
    expect(await everything(lake)).toEqual([]);
  });

  it('reports a bad manifest with every problem by field path', async () => {
    const lake = freshLake(kind);
    const manifest = dropManifest({
      read_length: 'long',
      read_groups: [
        { id: 'rg1', r1: 'rg1_R1.fastq.gz', r2: 'rg1_R2.fastq.gz' },
        { id: 'rg 2', r1: 'rg2_R1.fq', lane: 0 },
      ],
      colour: 'blue',
    });
    const path = await writeArchive('m.zip', await buildZip(goodMembers(manifest)));
    const err = await refused(ingestArchive(lake, path, { displayName: 'drops/m.zip' }), 'MANIFEST_INVALID', 'drops/m.zip/manifest.json');
    expect(err).toBeInstanceOf(ManifestError);
    expect((err as ManifestError).issues.map((i) => i.path).sort()).toEqual(
      ['read_length', 'read_groups[1].id', 'read_groups[1].lane', 'read_groups[1].r2', 'colour'].sort(),
    );
    expect(err.message).toContain('read_groups[1].r2: required when paired is true');
    expect(err.message).toContain('colour: unknown field');
    expect(await everything(lake)).toEqual([]);
  });

  it('names every missing read file by its manifest field', async () => {
    const lake = freshLake(kind);
    const members = goodMembers().filter((m) => !['rg1_R2.fastq.gz', 'rg2_R1.fq'].includes(m.name));
    members.push({ name: 'extra_R1.fq.gz', data: gzipSync(fastq(1)) });
    const err = await refused(ingestArchive(lake, await writeArchive('m.tar', await buildTar(members))), 'DROP_MISSING_FILES');
    expect(err.message).toContain('read_groups[0].r2 "rg1_R2.fastq.gz"');
    expect(err.message).toContain('read_groups[1].r1 "rg2_R1.fq"');
    expect(err.message).toContain('"extra_R1.fq.gz"');
    expect(await everything(lake)).toEqual([]);
  });
});

describe('ingest bookkeeping', () => {
  it('keeps a usable name for the original whatever the file was called', async () => {
    const { safeDropFileName } = await import('../../src/stages/ingest.js');
    expect(safeDropFileName('lab drop (1).tar.gz')).toBe('lab_drop__1_.tar.gz');
    expect(safeDropFileName('..')).toBe('drop');
    expect(safeDropFileName('.hidden.zip')).toBe('hidden.zip');
    expect(safeDropFileName('manifest.json')).toBe('drop-manifest.json');
    expect(safeDropFileName('_SUCCESS.json')).toBe('SUCCESS.json');
  });

  it('reads the archive once more to copy it and refuses it if it changed meanwhile', async () => {
    // The copy is hashed again; a file rewritten between hashing and copying is refused.
    const lake = freshLake('local');
    const path = await writeArchive('a.tar', await buildTar(goodMembers()));
    const original = await readFile(path);
    const put = lake.put.bind(lake);
    let swapped = false;
    lake.put = async (key, body) => {
      if (!swapped && key.endsWith('/a.tar')) {
        swapped = true;
        await writeFile(path, await buildTar(goodMembers(dropManifest(), 'z')));
      }
      return put(key, body);
    };
    await refused(ingestArchive(lake, path), 'ARCHIVE_CHANGED');
    expect(swapped).toBe(true);
    expect(original.length).toBeGreaterThan(0);
    expect(await everything(lake)).toEqual([]);
  });
});
