/**
 * Index parts: a simulated genome (repeat families, segmental duplications across
 * contigs) forced into several parts aligns to exactly the records of the single-part
 * index, through `genolake index --max-part-bases` and `genolake align --threads 2`.
 * Needs dist/ (workers): run `npx tsc` first.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { alignToSam } from '../../src/align/align.js';
import { buildIndex, INDEX_FILE, loadIndex, partFile, planParts } from '../../src/align/index-file.js';
import { alignProgram as program } from './program.js';
import { buildReference, writeReference } from '../../src/sim/index.js';
import { inputErrorOf } from '../helpers/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'gl-split-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


async function cli(args: string[]): Promise<string> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    await program().parseAsync(['node', 'genolake', ...args]);
    return out.mock.calls.map((c) => String(c[0])).join('');
  } finally {
    out.mockRestore();
  }
}

const samBody = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter((l) => l && !l.startsWith('@PG'));
const fields = (l: string): string[] => l.split('\t');

const rc = (s: string): string => s.split('').reverse().map((c) => ({ A: 'T', C: 'G', G: 'C', T: 'A' } as Record<string, string>)[c] ?? 'N').join('');

describe('split aligner index (parts)', () => {
  const dir = join(tmp, 'ref');
  const fa = join(dir, 'ref.fa');
  const one = join(tmp, 'one'), split = join(tmp, 'split');
  const r1 = join(tmp, 'r1.fq'), r2 = join(tmp, 'r2.fq');
  let contigs: { name: string; seq: string }[] = [];
  let indexOut = '';

  beforeAll(async () => {
    const ref = buildReference({ seed: 31, length: 360_000, contigs: 6 });
    // copies across index parts: 3 kb of chr1 into chr6 (exact), 2 kb of chr2 into chr5 (1% diverged)
    ref.contigs[5].seq.set(ref.contigs[0].seq.subarray(50_000, 53_000), 10_000);
    const copy = ref.contigs[1].seq.slice(20_000, 22_000);
    for (let i = 50; i < copy.length; i += 100) copy[i] = copy[i] === 65 ? 67 : 65;
    ref.contigs[4].seq.set(copy, 5_000);
    await writeReference(ref, dir);
    contigs = ref.contigs.map((c) => ({ name: c.name, seq: Buffer.from(c.seq).toString('latin1').toUpperCase() }));
    // wgsim pairs (repeat families on every contig make multi-mapping reads), plus chimeric
    // reads whose parts lie in the first and the last index part
    execFileSync('wgsim', ['-S', '4', '-N', '3000', '-1', '150', '-2', '150', '-e', '0.005', '-r', '0.001', '-R', '0.15', fa, r1, r2], { stdio: 'ignore' });
    const first = contigs[0].seq, last = contigs[5].seq;
    const extra1: [string, string][] = [], extra2: [string, string][] = [];
    for (let i = 0; i < 20; i++) {
      const at = 20_000 + 1000 * i;
      extra1.push([`chim${i}`, first.slice(at, at + 90) + rc(last.slice(30_000 + 700 * i, 30_000 + 700 * i + 60))]);
      extra2.push([`chim${i}`, rc(first.slice(at + 250, at + 400))]);
    }
    writeFileSync(r1, readFileSync(r1, 'utf8') + extra1.map(([n, s]) => `@${n}\n${s}\n+\n${'I'.repeat(s.length)}\n`).join(''));
    writeFileSync(r2, readFileSync(r2, 'utf8') + extra2.map(([n, s]) => `@${n}\n${s}\n+\n${'I'.repeat(s.length)}\n`).join(''));
    await cli(['index', fa, '--out', one]);
    indexOut = await cli(['index', fa, '--out', split, '--max-part-bases', '110000']);
  }, 120_000);

  it('splits by whole contigs into a manifest and checksummed parts', async () => {
    expect(indexOut).toMatch(/index: 6 contigs, 360000 bp, .* \(\d parts, \d+ bytes\)/);
    const ix = await loadIndex(split);
    expect(ix.header.version).toBe(2);
    const parts = ix.header.parts!;
    expect(parts.length).toBeGreaterThanOrEqual(3);
    expect(parts.map((p) => p.nContigs).reduce((a, b) => a + b, 0)).toBe(6);
    for (const p of parts) expect(p.bases).toBeLessThanOrEqual(110_000);
    expect(ix.parts!.map((b) => b.length)).toEqual(parts.map((p) => p.blobBytes));
    expect((await loadIndex(one)).header.version).toBe(1);
    expect(existsSync(join(one, partFile(1)))).toBe(false);
  });

  it('gives the same SAM records as the single-part index (genolake align, 2 threads)', async () => {
    const a = join(tmp, 'one.sam'), b = join(tmp, 'split.sam');
    await cli(['align', '--index', one, '--r1', r1, '--r2', r2, '--rg', 'g:s', '--threads', '2', '--out', a]);
    await cli(['align', '--index', split, '--r1', r1, '--r2', r2, '--rg', 'g:s', '--threads', '2', '--out', b]);
    const A = samBody(a), B = samBody(b);
    expect(A.length).toBeGreaterThan(6040);
    expect(B).toEqual(A);
    // the comparison covered what merging decides: multi-mapping, MAPQ, pairs, chimeras across parts
    const recs = A.filter((l) => !l.startsWith('@')).map(fields);
    const parts = (await loadIndex(split, { headerOnly: true })).header.parts!;
    const partOf = (name: string): number => parts.findIndex((p) => name >= contigs[p.firstContig].name && name <= contigs[p.firstContig + p.nContigs - 1].name);
    expect(new Set(recs.filter((r) => r[2] !== '*').map((r) => partOf(r[2]))).size).toBe(parts.length);
    expect(recs.filter((r) => r[4] === '0' && !(Number(r[1]) & 4)).length).toBeGreaterThan(20);
    expect(recs.filter((r) => r.some((t) => t.startsWith('XS:i:'))).length).toBeGreaterThan(50);
    const sup = recs.filter((r) => Number(r[1]) & 0x800);
    expect(sup.length).toBeGreaterThanOrEqual(10);
    expect(sup.some((r) => partOf(r[2]) !== partOf(recs.find((p) => p[0] === r[0] && !(Number(p[1]) & 0x800) && (Number(p[1]) & 0x40))![2]))).toBe(true);
    expect(A.filter((l) => (Number(fields(l)[1]) & 2) !== 0).length).toBeGreaterThan(5500);
  }, 120_000);

  it('gives the same records when max_occ and max_ext bite (whole-genome counts, chains chosen after merging)', async () => {
    const a = join(tmp, 'occ1.sam'), b = join(tmp, 'occ2.sam');
    const params = ['--param', 'maxOcc=3', '--param', 'maxExt=2', '--param', 'maxRescue=1'];
    await cli(['align', '--index', one, '--r1', r1, '--r2', r2, '--threads', '2', ...params, '--out', a]);
    await cli(['align', '--index', split, '--r1', r1, '--r2', r2, '--threads', '2', ...params, '--out', b]);
    const A = samBody(a);
    expect(samBody(b)).toEqual(A);
    expect(A.join('\n')).not.toEqual(samBody(join(tmp, 'one.sam')).join('\n'));
  }, 120_000);

  it('with --all-hits, adds secondary records (0x100, MAPQ 0) that samtools reads, the same with parts', async () => {
    const a = join(tmp, 'all1.sam'), b = join(tmp, 'all2.sam');
    await cli(['align', '--index', one, '--r1', r1, '--r2', r2, '--threads', '2', '--all-hits', '--out', a]);
    await cli(['align', '--index', split, '--r1', r1, '--r2', r2, '--threads', '2', '-a', '--out', b]);
    const A = samBody(a);
    expect(samBody(b)).toEqual(A);
    const base = samBody(join(tmp, 'one.sam')).filter((l) => !l.startsWith('@')).map((l) => fields(l).slice(0, 2).join(' ') + ' ' + fields(l).slice(2, 9).join(' '));
    const recs = A.filter((l) => !l.startsWith('@')).map(fields);
    const sec = recs.filter((r) => Number(r[1]) & 0x100);
    expect(sec.length).toBeGreaterThan(50);
    for (const r of sec) {
      expect(r[4]).toBe('0');
      expect(r[9]).toBe('*');
      expect(r.find((t) => t.startsWith('XS:i:'))).toBeUndefined();
      const prim = recs.find((p) => p[0] === r[0] && !(Number(p[1]) & 0x900) && (Number(p[1]) & 0xc0) === (Number(r[1]) & 0xc0))!;
      expect(prim.find((t) => t.startsWith('XS:i:'))).toBeDefined(); // a secondary is a competitor the primary's XS counted
      expect(`${r[2]}:${r[3]}`).not.toBe(`${prim[2]}:${prim[3]}`);
    }
    // everything else is what the run without secondaries wrote
    expect(recs.filter((r) => !(Number(r[1]) & 0x100)).map((r) => r.slice(0, 2).join(' ') + ' ' + r.slice(2, 9).join(' '))).toEqual(base);
    expect(execFileSync('samtools', ['flagstat', a], { encoding: 'utf8' })).toMatch(new RegExp(`^${sec.length} \\+ 0 secondary`, 'm'));
    const calmd = execFileSync('samtools', ['calmd', a, fa], { encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'ignore'] });
    const md = (t: string): string[] => t.split('\n').filter((l) => l && !l.startsWith('@') && !(Number(fields(l)[1]) & 4)).map((l) => fields(l).filter((x) => /^(NM|MD):/.test(x)).sort().join(' '));
    expect(md(calmd)).toEqual(md(readFileSync(a, 'utf8')));
  }, 120_000);

  it('gives the same records single-end, with 1 thread and small batches', async () => {
    const a = join(tmp, 'se1.sam'), b = join(tmp, 'se2.sam');
    await alignToSam({ indexDir: one, r1, threads: 1, out: a, batchSize: 500 });
    await alignToSam({ indexDir: split, r1, threads: 1, out: b, batchSize: 500 });
    expect(samBody(b)).toEqual(samBody(a));
  }, 60_000);

  it('refuses a missing, corrupt or foreign part, and a contig larger than a part', async () => {
    const d = join(tmp, 'bad');
    await buildIndex(fa, d, undefined, { maxPartBases: 110_000 });
    const p2 = join(d, partFile(2));
    const good = readFileSync(p2);
    unlinkSync(p2);
    let e = await inputErrorOf(loadIndex(d));
    expect(e.code).toBe('INDEX_PART_MISSING');
    expect(e.place.file).toBe(p2);
    expect((await inputErrorOf(loadIndex(d, { headerOnly: true }))).code).toBe('INDEX_PART_MISSING');
    await expect(alignToSam({ indexDir: d, r1, threads: 1, out: join(tmp, 'missing.sam') })).rejects.toMatchObject({ code: 'INDEX_PART_MISSING' });
    expect(existsSync(join(tmp, 'missing.sam'))).toBe(false);
    const bad = Buffer.from(good);
    bad[bad.length >> 1] ^= 0x10;
    writeFileSync(p2, bad);
    e = await inputErrorOf(loadIndex(d));
    expect(e.code).toBe('INDEX_CORRUPT');
    expect(e.message).toMatch(/checksum/);
    expect(e.place.file).toBe(p2);
    copyFileSync(join(d, partFile(3)), p2); // a valid part, but not this one
    expect((await inputErrorOf(loadIndex(d))).code).toBe('INDEX_PART_FOREIGN');
    // the same part from a build with another split
    await buildIndex(fa, join(tmp, 'other'), undefined, { maxPartBases: 180_000 });
    copyFileSync(join(tmp, 'other', partFile(2)), p2);
    expect((await inputErrorOf(loadIndex(d))).code).toBe('INDEX_PART_FOREIGN');
    writeFileSync(p2, good);
    await loadIndex(d);
    // rebuilding as one part removes the old parts
    await buildIndex(fa, d);
    expect(existsSync(p2)).toBe(false);
    expect((await loadIndex(d)).header.version).toBe(1);
    expect(readFileSync(join(d, INDEX_FILE)).equals(readFileSync(join(one, INDEX_FILE)))).toBe(true);
    e = await inputErrorOf(buildIndex(fa, join(tmp, 'small'), undefined, { maxPartBases: 20_000 }));
    expect(e.code).toBe('INDEX_CONTIG_TOO_BIG');
    expect(e.message).toContain('never split');
    const many = join(tmp, 'many.fa');
    writeFileSync(many, Array.from({ length: 70 }, (_, i) => `>c${i}\n${contigs[0].seq.slice(i * 100, i * 100 + 100)}\n`).join(''));
    expect((await inputErrorOf(buildIndex(many, join(tmp, 'many'), undefined, { maxPartBases: 100 }))).code).toBe('INDEX_TOO_MANY_PARTS');
  }, 60_000);

  it('plans parts of whole contigs, in order', () => {
    expect(planParts([5, 5, 5], 10)).toEqual([[0, 2], [2, 3]]);
    expect(planParts([3, 8, 2, 2], 10)).toEqual([[0, 1], [1, 3], [3, 4]]);
    expect(planParts([10], 10)).toEqual([[0, 1]]);
  });
});
