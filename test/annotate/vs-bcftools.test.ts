/**
 * Our annotator against Debian's `bcftools csq` binary (a black-box oracle) on a synthetic
 * genome with hand-designed hard spots. The Debian binary is bcftools 1.16; the public
 * conformance cases were recorded with a newer bcftools and differ from 1.16 in places
 * (e.g. start-codon SNVs carry the amino-acid change there). Where the two versions
 * disagree we follow the conformance cases, so:
 *  - SNVs must agree exactly (start_lost compared on its first five fields);
 *  - indels and haplotype compounds must agree at least as often as measured here
 *    (floors below; a regression fails), and the disagreements are printed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotateVcf } from '../../src/annotate/annotate.js';
import { readText, runBcftoolsCsq, vcfRows } from './helpers.js';
import { buildSynthetic, denseVariants, sparseVariants, type SynVariant, writeSynthetic, writeVcf } from './synthetic.js';

const bcsqOf = (info: string) => /(?:^|;)BCSQ=([^;]*)/.exec(info)?.[1] ?? '.';
/** Start-codon SNVs: bcftools 1.16 omits the amino-acid fields that newer versions print. */
const norm = (e: string) => (/^start_lost\|/.test(e) ? e.split('|').slice(0, 5).join('|') : e);

function compare(ours: string, theirs: string, keep: (pos: number, ref: string, alt: string) => boolean = () => true): { n: number; diffs: string[] } {
  const a = vcfRows(ours), b = vcfRows(theirs);
  if (a.length !== b.length) return { n: 0, diffs: [`record count ${a.length} vs ${b.length}`] };
  const diffs: string[] = [];
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (!keep(Number(a[i][1]), a[i][3], a[i][4])) continue;
    n++;
    const x = bcsqOf(a[i][7]), y = bcsqOf(b[i][7]);
    const sx = x.split(',').map(norm).sort().join(','), sy = y.split(',').map(norm).sort().join(',');
    if (sx !== sy) diffs.push(`${a[i][1]} ${a[i][3]}>${a[i][4]}: ours ${x} bcftools ${y}`);
  }
  return { n, diffs };
}

const isSnv = (_p: number, ref: string, alt: string) => ref.length === 1 && alt.length === 1;

describe('agreement with Debian bcftools csq on synthetic hard spots', () => {
  let dir: string;
  let files: { fa: string; gff: string; gtf: string };
  const g = buildSynthetic();
  let dense: SynVariant[];
  let ours = '', theirs = '';
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gl-csq-syn-'));
    files = writeSynthetic(dir, g);
    dense = denseVariants(g);
    const vcf = join(dir, 'dense.vcf');
    writeVcf(vcf, g.chrom, g.seq.length, dense);
    const out = join(dir, 'dense.out.vcf');
    await annotateVcf({ reference: files.fa, gff: files.gff, vcf, out, local: true });
    ours = readText(out);
    theirs = runBcftoolsCsq(files.fa, files.gff, vcf, ['-l']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('covers the hard spots', () => {
    expect(dense.length).toBeGreaterThan(1500);
    for (const term of ['splice_acceptor', 'splice_donor', 'splice_region', 'start_lost', 'frameshift', 'stop_lost', '5_prime_utr', '3_prime_utr', 'non_coding', 'intron', 'stop_gained', 'synonymous', 'missense']) {
      expect(ours).toContain(term);
    }
  });

  it('SNVs agree exactly, both strands (splice sites and regions, start/stop codons, UTRs, lincRNA)', () => {
    const { n, diffs } = compare(ours, theirs, isSnv);
    expect(n).toBeGreaterThan(500);
    expect(diffs).toEqual([]);
  });

  it('reverse-strand splice sites: SNVs within 10 bp of every exon edge agree', () => {
    const rev = g.transcripts.filter((t) => t.strand === '-');
    const near = (p: number) => rev.some((t) => t.exons.some(([b, e]) => Math.abs(p - b) <= 10 || Math.abs(p - e) <= 10));
    const { n, diffs } = compare(ours, theirs, (p, r, a) => isSnv(p, r, a) && near(p));
    expect(n).toBeGreaterThan(150);
    expect(diffs).toEqual([]);
  });

  it('UTR-only exons and the UTR-only 5\' exon transcript: SNVs agree', () => {
    const t = g.transcripts.find((x) => x.id === 'TUTR')!;
    const { n, diffs } = compare(ours, theirs, (p, r, a) => isSnv(p, r, a) && p >= t.exons[0][0] && p < t.cds[0][0]);
    expect(n).toBeGreaterThan(10);
    expect(diffs).toEqual([]);
  });

  it('indels (frameshifts near stops, start codon deletions, splice-edge indels): agreement floor', () => {
    const { n, diffs } = compare(ours, theirs, (p, r, a) => !isSnv(p, r, a));
    console.log(`indels vs bcftools 1.16 (local): ${n - diffs.length}/${n} agree; first differences:\n  ${diffs.slice(0, 15).join('\n  ')}`);
    expect(n).toBeGreaterThan(1000);
    // measured 2026-11-23: 2934/3305 agree (2932 before the stop-gained display fix); see the file comment for the version gap
    expect(n - diffs.length).toBeGreaterThanOrEqual(2934);
  });

  it('frameshifts near the stop codon on both strands: agreement floor', () => {
    const stops = g.transcripts.filter((t) => t.cds.length).map((t) => (t.strand === '+' ? t.cds[t.cds.length - 1][1] - 2 : t.cds[0][0]));
    const near = (p: number) => stops.some((s) => p >= s - 20 && p <= s + 8);
    const { n, diffs } = compare(ours, theirs, (p, r, a) => !isSnv(p, r, a) && (r.length - a.length) % 3 !== 0 && near(p));
    console.log(`frameshifts near stops: ${n - diffs.length}/${n} agree`);
    expect(n).toBeGreaterThan(100);
    expect(n - diffs.length).toBeGreaterThanOrEqual(FS_NEAR_STOP_FLOOR);
  });

  it('haplotype mode, sites only: compound consequences and @POS references (agreement floor)', async () => {
    let agree = 0, total = 0;
    const all: string[] = [];
    for (const seed of [11, 12, 13]) {
      const vcf = join(dir, `hap${seed}.vcf`);
      writeVcf(vcf, g.chrom, g.seq.length, sparseVariants(g, seed));
      const out = join(dir, `hap${seed}.out.vcf`);
      await annotateVcf({ reference: files.fa, gff: files.gff, vcf, out });
      const { n, diffs } = compare(readText(out), runBcftoolsCsq(files.fa, files.gff, vcf));
      total += n;
      agree += n - diffs.length;
      all.push(...diffs);
      expect(readText(out)).toMatch(/BCSQ=[^;\t]*@\d+/);
    }
    console.log(`haplotype mode vs bcftools 1.16: ${agree}/${total} agree\n  ${all.join('\n  ')}`);
    expect(agree).toBeGreaterThanOrEqual(HAPLO_FLOOR);
  });

  it('phased samples: per-haplotype compounds in INFO/BCSQ (agreement floor) and a FORMAT/BCSQ bitmask', async () => {
    let agree = 0, total = 0;
    const all: string[] = [];
    for (const seed of [21, 22]) {
      const vcf = join(dir, `smpl${seed}.vcf`);
      writeVcf(vcf, g.chrom, g.seq.length, sparseVariants(g, seed, 3), ['S1', 'S2', 'S3']);
      const out = join(dir, `smpl${seed}.out.vcf`);
      await annotateVcf({ reference: files.fa, gff: files.gff, vcf, out });
      const { n, diffs } = compare(readText(out), runBcftoolsCsq(files.fa, files.gff, vcf));
      total += n;
      agree += n - diffs.length;
      all.push(...diffs);
      // every annotated record carries a mask per sample; a sample without the allele has 0
      for (const r of vcfRows(readText(out))) {
        if (bcsqOf(r[7]) === '.') continue;
        expect(r[8]).toBe('GT:BCSQ');
        for (const v of r.slice(9)) {
          const [gt, mask] = v.split(':');
          if (gt === '0|0') expect(mask).toBe('0');
          else expect(Number(mask)).toBeGreaterThan(0);
        }
      }
    }
    console.log(`phased samples vs bcftools 1.16 (INFO/BCSQ): ${agree}/${total} agree\n  ${all.join('\n  ')}`);
    expect(agree).toBeGreaterThanOrEqual(PHASED_FLOOR);
  });

  it('GTF (GENCODE style, separate stop_codon and UTR rows) gives the same BCSQ as the GFF3', async () => {
    const vcf = join(dir, 'gtf.vcf');
    writeVcf(vcf, g.chrom, g.seq.length, dense);
    const a = join(dir, 'gtf.a.vcf'), b = join(dir, 'gtf.b.vcf');
    await annotateVcf({ reference: files.fa, gff: files.gff, vcf, out: a, local: true, vep: false });
    await annotateVcf({ reference: files.fa, gtf: files.gtf, vcf, out: b, local: true, vep: false });
    const { n, diffs } = compare(readText(b), readText(a));
    expect(n).toBe(dense.length);
    expect(diffs.slice(0, 20)).toEqual([]);
  });
});

/** Measured 2026-11-23: 376/431. */
const FS_NEAR_STOP_FLOOR = 376;
/** Measured 2026-11-23: 2470/2500 records (2468 before the stop-gained display fix). */
const HAPLO_FLOOR = 2470;
/** Measured 2026-11-23: 1597/1680 records (1595 before the stop-gained display fix). */
const PHASED_FLOOR = 1597;
