import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildReference, writeReference, type SimReference } from '../../src/sim/reference.js';
import { ascii, text } from '../../src/sim/seq.js';
import { buildHaplotypes, mutationsIn, normalise, simulateVariants, toReference, truthVcf, type TruthVariant } from '../../src/sim/variants.js';
import { bgzf } from '../../src/sim/io.js';

function run(cmd: string, args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const body = (vcf: string): string => vcf.split('\n').filter((l) => l && !l.startsWith('##')).join('\n');

describe('normalise', () => {
  const seq = ascii('GGCATTTTTGCACACACAGT');
  it('left-aligns a deletion in a homopolymer onto the base before it', () => {
    // delete the last T of TTTTT (0-based 8): becomes C(A)TTTTT → POS of the C
    expect(normalise(seq, { kind: 'DEL', start: 8, end: 9 })).toMatchObject({ pos0: 3, ref: 'AT', alt: 'A' });
  });
  it('left-aligns a tandem-repeat insertion and keeps the rotated unit', () => {
    // insert CA after the last CA copy: shifts left to the G before the array, inserted unit 'CA'
    const n = normalise(seq, { kind: 'INS', after: 17, seq: ascii('CA') })!;
    expect(n).toMatchObject({ pos0: 9, ref: 'G', alt: 'GCA' });
    expect(n.hi).toBeGreaterThan(17);
  });
  it('refuses edits touching N', () => {
    expect(normalise(ascii('ACGTNNNNACGT'), { kind: 'SNV', start: 5, alt: ascii('A') })).toBeUndefined();
  });
});

describe('truth variants', () => {
  let dir: string;
  let ref: SimReference;
  let variants: TruthVariant[];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-sim-var-'));
    ref = buildReference({ seed: 5, length: 300_000 });
    await writeReference(ref, dir);
    variants = simulateVariants(ref, { seed: 77, rate: 0.004 });
    await writeFile(join(dir, 'truth.vcf'), truthVcf(ref, variants, 'S1'));
    await writeFile(join(dir, 'truth.vcf.gz'), bgzf(truthVcf(ref, variants, 'S1')));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has SNVs, MNPs, insertions, deletions (1–20 bp, some in repeats), het and hom, at about the rate', () => {
    const kinds = new Map<string, number>();
    for (const v of variants) kinds.set(v.kind, (kinds.get(v.kind) ?? 0) + 1);
    for (const k of ['SNV', 'MNP', 'INS', 'DEL']) expect(kinds.get(k) ?? 0, k).toBeGreaterThan(5);
    const indelLens = variants.filter((v) => v.kind === 'INS' || v.kind === 'DEL').map((v) => Math.abs(v.alt.length - v.ref.length));
    expect(Math.min(...indelLens)).toBe(1);
    expect(Math.max(...indelLens)).toBeLessThanOrEqual(20);
    expect(Math.max(...indelLens)).toBeGreaterThan(4);
    expect(variants.filter((v) => v.repeat).length).toBeGreaterThan(10);
    expect(variants.some((v) => v.gt[0] === 1 && v.gt[1] === 1)).toBe(true);
    expect(variants.some((v) => v.gt[0] !== v.gt[1])).toBe(true);
    // spacing rules drop some candidates; most survive
    expect(variants.length).toBeGreaterThan(0.6 * 0.004 * 300_000);
    expect(variants.length).toBeLessThan(1.3 * 0.004 * 300_000);
  });

  it('is deterministic for a seed', () => {
    expect(simulateVariants(ref, { seed: 77, rate: 0.004 })).toEqual(variants);
    expect(simulateVariants(ref, { seed: 78, rate: 0.004 })).not.toEqual(variants);
  });

  it('is already normalised: bcftools norm -c e -f ref.fa changes nothing', async () => {
    for (const input of ['truth.vcf', 'truth.vcf.gz']) {
      const r = run('bcftools', ['norm', '-c', 'e', '-f', 'ref.fa', '-Ov', '-o', `norm-${input}.vcf`, input], dir);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`total/split/realigned/skipped:\\s+${variants.length}/0/0/0`));
      expect(body(await readFile(join(dir, `norm-${input}.vcf`), 'utf8'))).toBe(body(await readFile(join(dir, 'truth.vcf'), 'utf8')));
    }
    // the BGZF output is indexable
    expect(run('tabix', ['-p', 'vcf', 'truth.vcf.gz'], dir).code).toBe(0);
  });

  it('builds haplotypes carrying exactly their alleles, with a map back to the reference', () => {
    const haps = buildHaplotypes(ref, variants);
    expect(haps.length).toBe(2 * ref.contigs.length);
    for (const h of haps) {
      const contig = ref.contigs.find((c) => c.name === h.chrom)!;
      const mine = variants.filter((v) => v.chrom === h.chrom && v.gt[h.index - 1] === 1);
      expect(h.seq.length).toBe(contig.seq.length + mine.reduce((s, v) => s + v.alt.length - v.ref.length, 0));
      // walk: each alt allele sits at its mapped position; bases between map 1:1
      let shift = 0;
      for (const v of mine) {
        const hp = v.pos - 1 + shift;
        expect(text(h.seq.subarray(hp, hp + v.alt.length))).toBe(v.alt);
        expect(toReference(h, hp)).toBe(v.pos - 1);
        expect(toReference(h, hp + v.alt.length)).toBe(v.pos - 1 + v.ref.length);
        expect(mutationsIn(h, hp, hp + 1)).toEqual(v.kind === 'INS' || v.kind === 'DEL' ? { sub: 0, indel: 1 } : { sub: 1, indel: 0 });
        shift += v.alt.length - v.ref.length;
      }
      expect(toReference(h, h.seq.length - 1)).toBe(contig.seq.length - 1);
    }
  });
});
