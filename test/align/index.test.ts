import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIndex, INDEX_FILE, loadIndex } from '../../src/align/index-file.js';
import { InputError } from '../../src/util/errors.js';
import { makeGenome } from '../../benchmarks/lib/refgen.mjs';
import { inputErrorOf } from '../helpers/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'gl-index-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function writeFa(path: string, seed: number, length: number): void {
  const g = makeGenome({ length, seed, contigs: 2 }) as { name: string; seq: Uint8Array }[];
  writeFileSync(path, g.map((c) => `>${c.name}\n${Buffer.from(c.seq).toString('latin1').replace(/(.{60})/g, '$1\n')}\n`).join(''));
}

const failure = inputErrorOf;

describe('aligner index', () => {
  const fa = join(tmp, 'ref.fa');
  const dir = join(tmp, 'idx');
  beforeAll(async () => {
    writeFa(fa, 3, 60_000);
    await buildIndex(fa, dir, { k: 19, w: 10 });
  });

  it('writes a checksummed, versioned index that loads back', async () => {
    const ix = await loadIndex(dir);
    expect(ix.header.version).toBe(1);
    expect(ix.header.params).toEqual({ k: 19, w: 10 });
    expect(ix.header.contigs.map((c) => c.name)).toEqual(['chr1', 'chr2']);
    expect(ix.header.contigs.reduce((s, c) => s + c.length, 0)).toBe(60_000);
    expect(ix.header.fasta.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ix.blob.length).toBe(ix.header.blobBytes);
    expect(readFileSync(join(dir, 'ref.fa.fai'), 'utf8').split('\n')[0]).toMatch(/^chr1\t\d+\t6\t60\t61$/);
  });

  it('is deterministic', async () => {
    await buildIndex(fa, join(tmp, 'idx2'));
    expect(readFileSync(join(tmp, 'idx2', INDEX_FILE)).equals(readFileSync(join(dir, INDEX_FILE)))).toBe(true);
  });

  it('refuses a corrupt index', async () => {
    const d = join(tmp, 'corrupt');
    await buildIndex(fa, d);
    const f = join(d, INDEX_FILE);
    const b = readFileSync(f);
    b[b.length >> 1] ^= 0x40;
    writeFileSync(f, b);
    const e = await failure(loadIndex(d));
    expect(e.code).toBe('INDEX_CORRUPT');
    expect(e.message).toMatch(/checksum/);
    // a header-only check (is the cached index current?) does not read the blob
    expect((await loadIndex(d, { headerOnly: true })).header.blobBytes).toBeGreaterThan(0);
    writeFileSync(f, b.subarray(0, b.length - 100));
    expect((await failure(loadIndex(d))).code).toBe('INDEX_CORRUPT');
  });

  it('refuses a foreign file and another format version', async () => {
    const d = join(tmp, 'foreign');
    await buildIndex(fa, d);
    const f = join(d, INDEX_FILE);
    const good = readFileSync(f);
    writeFileSync(f, Buffer.from('>chr1\nACGT\n'.repeat(20)));
    expect((await failure(loadIndex(d))).code).toBe('INDEX_FOREIGN');
    const v = Buffer.from(good);
    v.writeUInt32LE(99, 8);
    writeFileSync(f, v);
    const e = await failure(loadIndex(d));
    expect(e.code).toBe('INDEX_VERSION');
    expect(e.message).toContain('99');
  });

  it('refuses a stale index (the FASTA changed) and an index from another FASTA', async () => {
    const fa2 = join(tmp, 'ref2.fa');
    writeFa(fa2, 3, 60_000);
    const d = join(tmp, 'stale');
    await buildIndex(fa2, d);
    await loadIndex(d);
    writeFa(fa2, 4, 60_000); // same size, other contents
    const e = await failure(loadIndex(d));
    expect(e.code).toBe('INDEX_STALE');
    // explicitly checking against another FASTA
    expect((await failure(loadIndex(dir, { reference: fa2 }))).code).toBe('INDEX_STALE');
    // a .fai from another reference next to the index
    const fa3 = join(tmp, 'other.fa');
    writeFileSync(fa3, '>x\nACGTACGTAC\n');
    const d3 = join(tmp, 'other');
    await buildIndex(fa3, d3);
    copyFileSync(join(d3, 'other.fa.fai'), join(dir, 'ref.fa.fai'));
    expect((await failure(loadIndex(dir))).code).toBe('INDEX_FOREIGN');
    await buildIndex(fa, dir); // restore
  });

  it('reports a missing index with the command to build it', async () => {
    const e = await failure(loadIndex(join(tmp, 'nothing')));
    expect(e.code).toBe('INDEX_MISSING');
    expect(e.message).toContain('genolake index');
  });

  it('refuses bad FASTA input', async () => {
    const bad = join(tmp, 'bad.fa');
    writeFileSync(bad, '>a\nACGT\n>a\nACGT\n');
    const e = await failure(buildIndex(bad, join(tmp, 'badidx')));
    expect(e.code).toBe('FASTA_DUPLICATE_NAME');
    expect(e.place.file).toBe(bad);
  });
});
