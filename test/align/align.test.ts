/**
 * End to end on a simulated genome: wgsim pairs → genolake align → SAM checked with
 * samtools (view, calmd) and scored with wgsim_eval.pl against bwa mem on the same reads.
 * Needs dist/ (workers): run `npx tsc` first.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alignToSam } from '../../src/align/align.js';
import { buildIndex } from '../../src/align/index-file.js';
import { InputError } from '../../src/util/errors.js';
import { writeGenome } from '../../benchmarks/lib/refgen.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'gl-align-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const fa = join(tmp, 'ref.fa');
const idx = join(tmp, 'idx');
const r1 = join(tmp, 'r1.fq');
const r2 = join(tmp, 'r2.fq');

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** wgsim_eval.pl alneval: [mapped, wrong] at MAPQ >= 20. */
function eval20(sam: string): { mapped: number; wrong: number } {
  const out = sh('wgsim_eval.pl', ['alneval', sam]);
  let mapped = 0, wrong = 0;
  for (const line of out.trim().split('\n')) {
    const m = /^(\d+)x\s+(\d+)\s*\/\s*(\d+)\s+(\d+)/.exec(line);
    if (m && Number(m[1]) >= 2) {
      mapped = Number(m[4]);
      wrong += Number(m[2]);
    }
  }
  return { mapped, wrong };
}

/** NM and MD of every mapped record. */
function nmmd(samText: string): string[] {
  return samText.split('\n').filter((l) => l && !l.startsWith('@')).filter((l) => !(Number(l.split('\t')[1]) & 4)).map((l) => {
    const f = l.split('\t');
    return `${f[0]} ${f[1]} ${f.filter((x) => x.startsWith('NM:i:') || x.startsWith('MD:Z:')).sort().join(' ')}`;
  });
}

function fastq(path: string, recs: [string, string][]): void {
  writeFileSync(path, recs.map(([n, s]) => `@${n}\n${s}\n+\n${'I'.repeat(s.length)}\n`).join(''));
}

describe('genolake align (paired, wgsim on a 1 Mb repeat-rich genome)', () => {
  const out = join(tmp, 'out.sam');
  beforeAll(async () => {
    await writeGenome(fa, { length: 1_000_000, seed: 11 });
    await buildIndex(fa, idx);
    sh('wgsim', ['-S', '5', '-N', '20000', '-1', '150', '-2', '150', '-e', '0.005', '-r', '0.001', '-R', '0.15', fa, r1, r2]);
    await alignToSam({ indexDir: idx, r1, r2, threads: 2, out, readGroup: { id: 'rg1', sample: 's1' } });
  }, 300_000);

  it('writes SAM that samtools reads, with header, read group and every read once', () => {
    expect(Number(sh('samtools', ['view', '-c', out]).trim())).toBe(40_000);
    const head = sh('samtools', ['view', '-H', out]);
    expect(head).toMatch(/^@HD\tVN:1.6\tSO:unsorted/);
    expect(head).toContain('@SQ\tSN:chr1\tLN:');
    expect(head).toContain('@RG\tID:rg1\tSM:s1');
    expect(head).toContain('@PG\tID:genolake');
    const fs = sh('samtools', ['flagstat', out]);
    expect(fs).toContain('20000 + 0 read1');
    const proper = Number(/(\d+) \+ 0 properly paired/.exec(fs)![1]);
    expect(proper).toBeGreaterThan(39_000);
    const line = readFileSync(out, 'utf8').split('\n').find((l) => !l.startsWith('@'))!;
    expect(line).toMatch(/\tRG:Z:rg1$/);
    expect(line).toMatch(/\tMC:Z:\d+[MIDS]/);
  });

  it('has NM and MD tags that samtools calmd does not change', () => {
    const ours = nmmd(readFileSync(out, 'utf8'));
    const calmd = nmmd(sh('samtools', ['calmd', out, fa]));
    expect(ours.length).toBeGreaterThan(39_000);
    expect(calmd).toEqual(ours);
  });

  it('has TLEN, mate fields and strands consistent between mates', () => {
    const recs = readFileSync(out, 'utf8').split('\n').filter((l) => l && !l.startsWith('@')).map((l) => l.split('\t'));
    for (let i = 0; i < recs.length; i += 2) {
      const [a, b] = [recs[i], recs[i + 1]];
      expect(a[0]).toBe(b[0]);
      const fa_ = Number(a[1]), fb = Number(b[1]);
      expect(fa_ & 0x40).toBe(0x40);
      expect(fb & 0x80).toBe(0x80);
      if (!(fa_ & 4) && !(fb & 4)) {
        expect(a[7]).toBe(b[3]);
        expect(b[7]).toBe(a[3]);
        expect(Number(a[8]) + Number(b[8])).toBe(0);
        expect(!!(fa_ & 0x20)).toBe(!!(fb & 0x10));
      }
    }
  });

  it('gives identical records with the SIMD and the scalar extension', async () => {
    const head = (f: string, o: string): void => writeFileSync(o, readFileSync(f, 'utf8').split('\n').slice(0, 4 * 3000).join('\n') + '\n');
    const s1 = join(tmp, 's1.fq'), s2 = join(tmp, 's2.fq');
    head(r1, s1);
    head(r2, s2);
    const simd = join(tmp, 'simd.sam'), scalar = join(tmp, 'scalar.sam');
    await alignToSam({ indexDir: idx, r1: s1, r2: s2, threads: 1, out: simd, params: { simd: 1 } });
    await alignToSam({ indexDir: idx, r1: s1, r2: s2, threads: 1, out: scalar, params: { simd: 0 } });
    const body = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter((l) => !l.startsWith('@'));
    const a = body(simd), b = body(scalar);
    expect(a.length).toBe(6001);
    expect(a).toEqual(b);
    expect(a.filter((l) => /\t\d+M\d+[ID]\d+M/.test(l)).length).toBeGreaterThan(10); // gapped alignments were compared too
  });

  it('is about as accurate as bwa mem on the same reads (wgsim_eval.pl alneval, MAPQ >= 20)', () => {
    sh('bwa', ['index', fa]);
    const bwaSam = join(tmp, 'bwa.sam');
    writeFileSync(bwaSam, sh('bwa', ['mem', '-t', '2', fa, r1, r2]));
    const g = eval20(out);
    const b = eval20(bwaSam);
    // mapped with confidence: within 2% of bwa; wrong among those: within 0.05 points of bwa's rate
    expect(g.mapped).toBeGreaterThanOrEqual(0.98 * b.mapped);
    expect(g.wrong / g.mapped).toBeLessThanOrEqual(b.wrong / b.mapped + 0.0005);
  }, 120_000);
});

describe('genolake align: bad input', () => {
  const dir = join(tmp, 'bad');
  const seqAt = (p: number, n: number): string => {
    const lines = readFileSync(fa, 'utf8').split('\n');
    const chr1 = lines.slice(1, lines.findIndex((l, i) => i > 0 && l.startsWith('>'))).join('');
    return chr1.slice(p, p + n);
  };
  const rc = (s: string): string => s.split('').reverse().map((c) => ({ A: 'T', C: 'G', G: 'C', T: 'A' } as Record<string, string>)[c] ?? 'N').join('');

  beforeAll(() => {
    rmSync(dir, { recursive: true, force: true });
    execFileSync('mkdir', ['-p', dir]);
  });

  it('gives unmapped records for short and all-N reads, and maps their good mates', async () => {
    const good1 = seqAt(200_000, 150), good2 = rc(seqAt(200_300, 150));
    const a = join(dir, 'a1.fq'), b = join(dir, 'a2.fq'), o = join(dir, 'a.sam');
    fastq(a, [['short', seqAt(100_000, 15)], ['alln', 'N'.repeat(150)], ['ok', good1], ['one', 'ACGTN']]);
    fastq(b, [['short', rc(seqAt(100_200, 150))], ['alln', 'N'.repeat(150)], ['ok', good2], ['one', 'A']]);
    await alignToSam({ indexDir: idx, r1: a, r2: b, threads: 1, out: o });
    const recs = sh('samtools', ['view', o]).trim().split('\n').map((l) => l.split('\t'));
    expect(recs.length).toBe(8);
    const flag = (i: number): number => Number(recs[i][1]);
    expect(flag(0) & 4).toBe(4); // 15 bp: shorter than a seed
    expect(flag(1) & 4).toBe(0); // its mate maps
    expect(flag(0) & 8).toBe(0);
    expect(flag(1) & 8).toBe(8);
    expect(recs[0][2]).toBe(recs[1][2]); // the unmapped mate is placed at its mate
    expect(recs[0][3]).toBe(recs[1][3]);
    expect(flag(2) & 4).toBe(4);
    expect(flag(3) & 4).toBe(4);
    expect(recs[2][2]).toBe('*');
    expect(flag(4) & 2).toBe(2);
    expect(Number(recs[4][3])).toBe(200_001);
    expect(Number(recs[4][8])).toBe(450);
    expect(flag(6) & 4).toBe(4);
    expect(flag(7) & 4).toBe(4);
  });

  it('refuses mismatched pairs, naming files and record', async () => {
    const a = join(dir, 'm1.fq'), b = join(dir, 'm2.fq');
    fastq(a, [['r1', seqAt(1000, 100)], ['r2', seqAt(2000, 100)]]);
    fastq(b, [['r1', seqAt(1200, 100)], ['rX', seqAt(2200, 100)]]);
    let e: unknown;
    try {
      await alignToSam({ indexDir: idx, r1: a, r2: b, threads: 1, out: join(dir, 'm.sam') });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(InputError);
    expect((e as InputError).code).toBe('FASTQ_PAIR_NAME');
    expect((e as InputError).place.record).toBe(2);
    fastq(b, [['r1', seqAt(1200, 100)]]);
    await expect(alignToSam({ indexDir: idx, r1: a, r2: b, threads: 1, out: join(dir, 'm.sam') })).rejects.toMatchObject({ code: 'FASTQ_PAIR_COUNT' });
    expect(() => readFileSync(join(dir, 'm.sam'))).toThrow(); // nothing half-written
  });

  it('with splitAsSecondary (bwa -M), marks the chimeric part secondary: soft clips, whole SEQ; samtools flagstat agrees', async () => {
    const a = join(dir, 'chm1.fq'), b = join(dir, 'chm2.fq'), o = join(dir, 'chm.sam');
    const chim = seqAt(20_000, 90) + rc(seqAt(120_000, 60));
    fastq(a, [['chim', chim]]);
    fastq(b, [['chim', rc(seqAt(20_300, 150))]]);
    await alignToSam({ indexDir: idx, r1: a, r2: b, threads: 1, out: o, splitAsSecondary: true });
    const recs = sh('samtools', ['view', o]).trim().split('\n').map((l) => l.split('\t'));
    expect(recs.length).toBe(3);
    const sec = recs.find((r) => Number(r[1]) & 0x100)!;
    expect(Number(sec[1]) & 0x800).toBe(0);
    expect(sec[3]).toBe('120001');
    expect(sec[5]).toMatch(/^\d+M\d+S$/);
    expect(sec[9].length).toBe(150);
    expect(recs.filter((r) => Number(r[1]) & 0x800)).toHaveLength(0);
    const flagstat = sh('samtools', ['flagstat', o]);
    expect(flagstat).toMatch(/^1 \+ 0 secondary/m);
    expect(flagstat).toMatch(/^0 \+ 0 supplementary/m);
    expect(nmmd(sh('samtools', ['calmd', o, fa]))).toEqual(nmmd(readFileSync(o, 'utf8')));
  });

  it('refuses an index whose FASTA changed since it was built', async () => {
    const f2 = join(dir, 'ref.fa'), d2 = join(dir, 'idx');
    await writeGenome(f2, { length: 50_000, seed: 1 });
    await buildIndex(f2, d2);
    await writeGenome(f2, { length: 50_000, seed: 2 });
    const a = join(dir, 's.fq');
    fastq(a, [['x', seqAt(5000, 100)]]);
    await expect(alignToSam({ indexDir: d2, r1: a, threads: 1, out: join(dir, 's.sam') })).rejects.toMatchObject({ code: 'INDEX_STALE' });
  });

  it('writes a supplementary record with SA tags for a chimeric read', async () => {
    const a = join(dir, 'ch1.fq'), b = join(dir, 'ch2.fq'), o = join(dir, 'ch.sam');
    const chim = seqAt(20_000, 90) + rc(seqAt(120_000, 60)); // 90 bp from one place, 60 bp (reverse strand) from another
    fastq(a, [['chim', chim]]);
    fastq(b, [['chim', rc(seqAt(20_300, 150))]]);
    await alignToSam({ indexDir: idx, r1: a, r2: b, threads: 1, out: o });
    const recs = sh('samtools', ['view', o]).trim().split('\n').map((l) => l.split('\t'));
    expect(recs.length).toBe(3);
    const [prim, sup, mate] = recs;
    expect(Number(prim[1]) & 0x800).toBe(0);
    expect(prim[3]).toBe('20001');
    expect(prim[5]).toBe('90M60S');
    expect(Number(sup[1]) & 0x800).toBe(0x800);
    expect(Number(sup[1]) & 0x10).toBe(0x10);
    expect(sup[3]).toBe('120001');
    // reverse strand: the read's last 60 bases come first on the reference (a base may match by chance)
    const m = /^(\d+)M(\d+)H$/.exec(sup[5])!;
    const [M, H] = [Number(m[1]), Number(m[2])];
    expect(M + H).toBe(150);
    expect(M).toBeGreaterThanOrEqual(60);
    expect(M).toBeLessThanOrEqual(62);
    expect(sup[9]).toBe(seqAt(120_000, M));
    expect(sup[10].length).toBe(M);
    expect(prim.find((t) => t.startsWith("SA:Z:"))).toBe(`SA:Z:chr1,120001,-,${M}M${H}S,${sup[4]},0;`);
    expect(sup.find((t) => t.startsWith('SA:Z:'))).toBe('SA:Z:chr1,20001,+,90M60S,' + prim[4] + ',0;');
    expect(Number(mate[1]) & 0x80).toBe(0x80);
    expect(Number(prim[4])).toBeGreaterThan(20); // the other part is not a competitor
    expect(nmmd(sh('samtools', ['calmd', o, fa]))).toEqual(nmmd(readFileSync(o, 'utf8')));
  });

  it('aligns single-end reads', async () => {
    const a = join(dir, 'se.fq'), o = join(dir, 'se.sam');
    fastq(a, [['f', seqAt(50_000, 120)], ['r', rc(seqAt(150_000, 100))]]);
    await alignToSam({ indexDir: idx, r1: a, threads: 1, out: o });
    const recs = sh('samtools', ['view', o]).trim().split('\n').map((l) => l.split('\t'));
    expect(recs.map((r) => [r[1], r[2], r[3], r[5]])).toEqual([['0', 'chr1', '50001', '120M'], ['16', 'chr1', '150001', '100M']]);
  });
});
