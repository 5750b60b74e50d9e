/**
 * Parallel annotation (`threads > 1` or a pool): the same bytes as one thread, with
 * phased same-codon compounds cut into many small tasks over two chromosomes.
 * Needs a built dist/ (`npx tsc`): pool workers run compiled code.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotateVcf } from '../../src/annotate/annotate.js';
import { QuietChecker } from '../../src/annotate/chunk.js';
import { loadGeneModel } from '../../src/annotate/genemodel.js';
import { register } from '../../src/cli/commands/annotate.js';
import { createPool, type TaskPool } from '../../src/engine/pool.js';
import { InputError } from '../../src/util/errors.js';
import { sparseVariants, writeTwoContigs, type SynVariant } from './synthetic.js';

describe('annotate on a pool', () => {
  let dir: string;
  let fa: string, gff: string, vcf: string;
  let pool: TaskPool;
  let lines: string[];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gl-ann-par-'));
    const { g, g2 } = writeTwoContigs(dir);
    fa = join(dir, 'ref.fa');
    gff = join(dir, 'genes.gff3');
    lines = ['##fileformat=VCFv4.2', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB'];
    const add = (chrom: string, vs: SynVariant[]) => {
      for (const v of vs) lines.push([chrom, v.pos, '.', v.ref, v.alt, '.', '.', '.', 'GT', ...(v.gts ?? [])].join('\t'));
    };
    add('chrS', sparseVariants(g, 21, 2));
    add('chrT', sparseVariants(g, 22, 2));
    vcf = join(dir, 'in.vcf');
    writeFileSync(vcf, lines.join('\n') + '\n');
    pool = createPool({ threads: 2 });
  });
  afterAll(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** No temporary output is left in the directory. */
  const noTempFiles = () => !readdirSync(dir).some((f) => f.startsWith('.tmp-'));

  const run = async (name: string, extra: Partial<Parameters<typeof annotateVcf>[0]>) => {
    const out = join(dir, name);
    const stats = await annotateVcf({ reference: fa, gff, vcf, out, ...extra });
    return { bytes: readFileSync(out), stats };
  };

  it('writes the bytes of a one-thread run, whatever the task size', async () => {
    const one = await run('t1.vcf.gz', { threads: 1 });
    const text = gunzipSync(one.bytes).toString('latin1');
    // the case is there: phased compounds (the other records of a group point at its first with @POS)
    expect(text).toMatch(/BCSQ=[^\t]*@\d+/);
    expect(text).toMatch(/\tGT:BCSQ\t/);
    expect(one.stats.records).toBe(lines.length - 2);
    expect(one.stats.records).toBeGreaterThan(400);
    const small = await run('t1-small.vcf.gz', { threads: 1, taskRecords: 7 });
    expect(small.bytes.equals(one.bytes)).toBe(true);
    const two = await run('t2.vcf.gz', { threads: 2, taskRecords: 7 });
    expect(two.bytes.equals(one.bytes)).toBe(true);
    expect(two.stats).toEqual(one.stats);
    // the CLI with --threads 2
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(['node', 'genolake', 'annotate', '--reference', fa, '--gff', gff, '--vcf', vcf, '--out', join(dir, 'cli.vcf.gz'), '--threads', '2']);
    expect(readFileSync(join(dir, 'cli.vcf.gz')).equals(one.bytes)).toBe(true);
    // a caller's pool (the run's pool in `genolake run`), plain text output, local mode too
    // (one pool for both modes: its threads keep annotators by settings)
    const plain1 = await run('t1.vcf', { threads: 1 });
    expect((await run('pool.vcf', { pool, taskRecords: 5 })).bytes.equals(plain1.bytes)).toBe(true);
    const local1 = await run('t1-local.vcf', { threads: 1, local: true });
    expect(local1.bytes.equals(plain1.bytes)).toBe(false);
    expect((await run('pool-local.vcf', { pool, taskRecords: 5, local: true })).bytes.equals(local1.bytes)).toBe(true);
  });

  it('cuts BGZF blocks by the text alone: any task size and thread count, a long run of equal lines too', async () => {
    const data = lines.slice(2);
    // one record many times (1.2 MB of equal lines: no line in it ends a block segment, so the segment is cut in whole blocks)
    const dup = data[200].replace(/\t\.\tGT\t/, `\t${'D'.repeat(90)}\tGT\t`);
    const f = join(dir, 'long.vcf');
    writeFileSync(f, [...lines.slice(0, 2), ...data.slice(0, 201), ...Array<string>(12000).fill(dup), ...data.slice(201)].join('\n') + '\n');
    const out = async (name: string, extra: Partial<Parameters<typeof annotateVcf>[0]>) => {
      await annotateVcf({ reference: fa, gff, vcf: f, out: join(dir, name), ...extra });
      return readFileSync(join(dir, name));
    };
    const plain = await out('long.vcf.out', { threads: 1 });
    const one = await out('long1.vcf.gz', { threads: 1 });
    expect(gunzipSync(one).equals(plain)).toBe(true);
    expect((await out('long1s.vcf.gz', { threads: 1, taskRecords: 3001 })).equals(one)).toBe(true);
    // workers compress (a caller's pool; three threads of our own), a worker of our own compresses (two threads)
    expect((await out('long2.vcf.gz', { pool, taskRecords: 2000 })).equals(one)).toBe(true);
    expect((await out('long3.vcf.gz', { threads: 3, taskRecords: 2500 })).equals(one)).toBe(true);
    expect((await out('long4.vcf.gz', { threads: 2, taskRecords: 1500 })).equals(one)).toBe(true);
    // the same text read from BGZF (64 KiB blocks: lines run across block ends) gives the same bytes
    execFileSync('bgzip', ['-k', '-f', f]);
    await annotateVcf({ reference: fa, gff, vcf: `${f}.gz`, out: join(dir, 'long-from-gz.vcf.gz'), threads: 2, taskRecords: 1500 });
    expect(readFileSync(join(dir, 'long-from-gz.vcf.gz')).equals(one)).toBe(true);
    // uncompressed block sizes (ISIZE): the long run gives full blocks, the rest smaller ones
    const sizes: number[] = [];
    for (let i = 0; i < one.length; ) {
      const bsize = one.readUInt16LE(i + 16) + 1;
      sizes.push(one.readUInt32LE(i + bsize - 4));
      i += bsize;
    }
    expect(sizes.filter((n) => n === 0xff00).length).toBeGreaterThanOrEqual(15);
    expect(sizes.filter((n) => n > 0 && n < 0xff00).length).toBeGreaterThan(0);
    // another level: other bytes, the same text
    const level9 = await out('long9.vcf.gz', { threads: 1, level: 9 });
    expect(level9.equals(one)).toBe(false);
    expect(gunzipSync(level9).equals(plain)).toBe(true);
    await expect(annotateVcf({ reference: fa, gff, vcf: f, out: join(dir, 'bad.vcf.gz'), level: 10 })).rejects.toBeInstanceOf(InputError);
  });

  it('marks for the annotator the records alone in their chunk that no transcript reaches, until a record fails its check', async () => {
    const model = await loadGeneModel(gff);
    const data = lines.slice(2);
    const reaches = (l: string) => {
      const c = l.split('\t');
      return model.reach(c[0], Number(c[1]) - 2, Number(c[1]) + c[3].length - 1) >= 0;
    };
    // one record per chunk (marks are per chunk), then a chunk of two quiet records (never marked: it is annotated as a chunk)
    const body = data.slice(0, 200);
    const twoQuiet = data.findIndex((l, i) => i > 200 && !reaches(l) && !reaches(data[i + 1]));
    const task = (rows: string[], chunks: number[]) => ({ data: Buffer.from(rows.join('\n')), chunks });
    const checker = await QuietChecker.open(fa, (c) => model.reacher(c), vcf);
    try {
      const t = task([...body, data[twoQuiet], data[twoQuiet + 1]], [...body.map(() => 1), 2]);
      const marks = checker.mark(t.data, t.chunks, 1, 3)!;
      expect([...marks.subarray(0, 200)]).toEqual(body.map((l) => (reaches(l) ? 0 : 1)));
      expect(marks[200]).toBe(0);
      // a quiet record with a bad genotype stops the marking, there and after it
      const bad = body.findIndex((l, i) => i > 50 && !reaches(l));
      const rows = body.map((l, i) => (i === bad ? l.replace(/\tGT\t[^\t]+/, '\tGT\t9|0') : l));
      const after = checker.mark(Buffer.from(rows.join('\n')), body.map(() => 1), 1, 3)!;
      expect([...after.subarray(0, bad)]).toEqual(body.slice(0, bad).map((l) => (reaches(l) ? 0 : 1)));
      expect([...after.subarray(bad)].every((x) => x === 0)).toBe(true);
      expect(checker.mark(t.data, t.chunks, 1, 3)).toBeUndefined();
    } finally {
      checker.close();
    }
  });

  it('reports the first bad record, as one thread does, from a worker or from the reader', async () => {
    /**
     * The error of a one-thread run, of a pool run and of a two-thread run (where the other
     * thread reads the VCF and writes the BGZF output) on the same file; nothing is published.
     */
    const errorsOf = async (name: string, body: string[] | Buffer) => {
      const f = join(dir, `${name}.vcf`);
      writeFileSync(f, Buffer.isBuffer(body) ? body : [...lines.slice(0, 2), ...body].join('\n') + '\n');
      const got = [];
      for (const [out, extra] of [
        [`${name}.out.vcf`, { threads: 1 }],
        [`${name}.out.vcf`, { pool, taskRecords: 7 }],
        [`${name}.out.vcf.gz`, { threads: 2, taskRecords: 7 }],
      ] as const) {
        const e = await annotateVcf({ reference: fa, gff, vcf: f, out: join(dir, out), ...extra }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(InputError);
        got.push({ code: (e as InputError).code, place: (e as InputError).place, message: (e as InputError).message });
        expect(existsSync(join(dir, out))).toBe(false);
        expect(noTempFiles()).toBe(true);
      }
      expect(got[1]).toEqual(got[0]);
      expect(got[2]).toEqual(got[0]);
      return got[0];
    };
    const data = lines.slice(2);
    // a bad genotype deep in the file (found by a worker) before an unsorted record (found by the reader)
    const badGt = [...data.slice(0, 300), data[300].replace(/\tGT\t[^\t]+/, '\tGT\t7|0'), ...data.slice(301, 320), data[10], ...data.slice(320)];
    expect((await errorsOf('gt', badGt)).place).toMatchObject({ record: 301, field: 'GT' });
    // the unsorted record alone
    const unsorted = [...data.slice(0, 320), data[10], ...data.slice(320)];
    expect((await errorsOf('unsorted', unsorted)).place).toMatchObject({ record: 321, field: 'POS' });
    // records no transcript reaches (with two threads, checked by the reading thread): a bad REF, a bad genotype
    const model = await loadGeneModel(gff);
    const quiet = data.flatMap((l, i) => {
      const c = l.split('\t');
      return model.reach(c[0], Number(c[1]) - 2, Number(c[1]) + c[3].length - 1) < 0 ? [i] : [];
    });
    expect(quiet.length).toBeGreaterThan(50);
    const k = quiet[Math.floor(quiet.length * 0.7)];
    const c = data[k].split('\t');
    const wrongRef = [...data.slice(0, k), [c[0], c[1], c[2], c[3][0] === 'A' ? 'C' + c[3].slice(1) : 'A' + c[3].slice(1), ...c.slice(4)].join('\t'), ...data.slice(k + 1)];
    expect(await errorsOf('quietref', wrongRef)).toMatchObject({ code: 'ref_mismatch', place: { record: k + 1, field: 'REF' } });
    const badQuietGt = [...data.slice(0, k), data[k].replace(/\tGT\t[^\t]+/, '\tGT\t9|0'), ...data.slice(k + 1)];
    expect(await errorsOf('quietgt', badQuietGt)).toMatchObject({ code: 'bad_vcf', place: { record: k + 1, field: 'GT' } });
    // no #CHROM line: the line is named
    expect(await errorsOf('nohead', Buffer.from([lines[0], ...data.slice(0, 5)].join('\n') + '\n'))).toMatchObject({ code: 'bad_vcf', place: { line: 2 } });
    // a BGZF file cut short: the file is named
    const whole = join(dir, 'whole.vcf');
    writeFileSync(whole, lines.join('\n') + '\n');
    execFileSync('bgzip', ['-f', whole]);
    const gz = readFileSync(`${whole}.gz`);
    const cutShort = join(dir, 'short.vcf.gz');
    writeFileSync(cutShort, gz.subarray(0, gz.length - 200));
    const shortErrors = [];
    for (const [out, extra] of [['short.out.vcf', { threads: 1 }], ['short.out.vcf.gz', { threads: 2 }]] as const) {
      const e = await annotateVcf({ reference: fa, gff, vcf: cutShort, out: join(dir, out), ...extra }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).place).toMatchObject({ file: cutShort });
      expect(existsSync(join(dir, out))).toBe(false);
      shortErrors.push((e as InputError).message);
    }
    expect(shortErrors[1]).toBe(shortErrors[0]);
    expect(noTempFiles()).toBe(true);
  });
});
