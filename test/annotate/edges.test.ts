/**
 * SNVs at every position within 5 bases of every exon, CDS and UTR edge of every public
 * conformance model (real Ensembl transcripts, both strands, trimmed GFFs, introns of one or
 * two bases), against Debian's bcftools csq 1.16 as the oracle. Records are written in
 * batches at least 12 bases apart, so no two share a codon and each is judged alone.
 *
 * The named records hold the three exon-edge rules bcftools applies (each must agree
 * exactly); the rest must agree at least as often as measured. Known differences: exons the
 * GFF covers with neither UTR nor CDS rows (bcftools 1.16 calls them intronic, we call them
 * UTR) and transcripts given by CDS rows alone (1.16 finds no splice sites in them; the
 * newer bcftools of the conformance cases does).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotateVcf } from '../../src/annotate/annotate.js';
import { conformanceCases, readText, runBcftoolsCsq, vcfRows } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'gl-csq-edges-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readFasta(path: string): Map<string, string> {
  const seqs = new Map<string, string>();
  let name = '';
  let parts: string[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('>')) {
      if (name) seqs.set(name, parts.join(''));
      name = line.slice(1).split(/\s/)[0];
      parts = [];
    } else parts.push(line.trim());
  }
  if (name) seqs.set(name, parts.join(''));
  return seqs;
}

const SUBSTITUTE: Record<string, string> = { A: 'G', G: 'A', C: 'T', T: 'C' };

/** SNV rows around every feature edge, in batches whose records lie ≥ 12 bases apart. */
function snvBatches(gff: string, fasta: Map<string, string>): string[][] {
  const at = new Set<string>();
  for (const line of readFileSync(gff, 'utf8').split('\n')) {
    const f = line.split('\t');
    if (!['exon', 'CDS', 'five_prime_UTR', 'three_prime_UTR'].includes(f[2]) || !fasta.has(f[0])) continue;
    for (const edge of [Number(f[3]), Number(f[4])]) for (let d = -5; d <= 5; d++) at.add(`${f[0]}\t${edge + d}`);
  }
  const sites = [...at].map((k) => k.split('\t')).sort((a, b) => a[0].localeCompare(b[0]) || Number(a[1]) - Number(b[1]));
  const batches: { last: Map<string, number>; rows: string[] }[] = [];
  for (const [chrom, p] of sites) {
    const pos = Number(p);
    const seq = fasta.get(chrom)!;
    if (pos < 3 || pos > seq.length - 3) continue;
    const ref = seq[pos - 1].toUpperCase();
    if (!SUBSTITUTE[ref]) continue;
    let b = batches.find((x) => !((x.last.get(chrom) ?? -Infinity) > pos - 12));
    if (!b) batches.push((b = { last: new Map(), rows: [] }));
    b.last.set(chrom, pos);
    b.rows.push([chrom, pos, '.', ref, SUBSTITUTE[ref], '.', '.', '.'].join('\t'));
  }
  return batches.map((b) => b.rows);
}

/** bcftools 1.16 omits the amino-acid fields of start_lost that newer versions print. */
const norm = (e: string) => (/^start_lost\|/.test(e) ? e.split('|').slice(0, 5).join('|') : e);
const bcsq = (info: string) => (/(?:^|;)BCSQ=([^;]*)/.exec(info)?.[1] ?? '.').split(',').map(norm).sort().join(',');

/** Measured 2026-11-23: 5317/5560 (5268/5560 before exon edges were judged one by one, outer exon edges and the intron rule). */
const FLOOR = 5317;

describe('SNVs around every exon edge of the public models agree with bcftools csq', () => {
  /** `case chrom:pos` → [ours, bcftools]. */
  const got = new Map<string, [string, string]>();
  let n = 0;
  let agree = 0;
  beforeAll(async () => {
    const seen = new Set<string>();
    for (const c of conformanceCases()) {
      if (seen.has(c.gff)) continue;
      seen.add(c.gff);
      const fasta = readFasta(c.fasta);
      const name = c.name.split('/')[0];
      const batches = snvBatches(c.gff, fasta);
      for (let i = 0; i < batches.length; i++) {
        const rows = batches[i];
        const contigs = [...new Set(rows.map((r) => r.split('\t')[0]))];
        const vcf = join(dir, `${name.replace(/\W/g, '_')}-${i}.vcf`);
        const header = ['##fileformat=VCFv4.2', ...contigs.map((x) => `##contig=<ID=${x}>`), '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO'];
        writeFileSync(vcf, [...header, ...rows, ''].join('\n'));
        const out = `${vcf}.out.vcf`;
        await annotateVcf({ reference: c.fasta, gff: c.gff, vcf, out, vep: false });
        const ours = vcfRows(readText(out));
        // --force: bcftools refuses overlapping CDS rows (ribosomal slippage) without it
        const theirs = vcfRows(runBcftoolsCsq(c.fasta, c.gff, vcf, ['--force']));
        expect(ours.length).toBe(theirs.length);
        for (let k = 0; k < ours.length; k++) {
          const x = bcsq(ours[k][7]), y = bcsq(theirs[k][7]);
          got.set(`${name} ${ours[k][0]}:${ours[k][1]}`, [x, y]);
          n++;
          if (x === y) agree++;
        }
      }
    }
  }, 300_000);

  it('splice windows cross an intron of two bases into the next exon (ENST00000227471)', () => {
    for (const pos of [6604, 6605, 6616, 6617]) {
      const [ours, theirs] = got.get(`ENST00000227471 11:${pos}`)!;
      expect(ours).toContain('splice_region|UNC93B1|ENST00000227471');
      expect(ours).toBe(theirs);
    }
  });

  it('one base can be the acceptor of one exon and in the splice region of the other (1-base intron, ENSCAFT00000047742)', () => {
    const [ours, theirs] = got.get('ENSCAFT00000047742 chr9:104')!;
    expect(ours).toContain('splice_acceptor&splice_region|DUSP3');
    expect(ours).toBe(theirs);
  });

  it('an outer exon edge inside the transcript span is a splice edge (trimmed model, ENST00000420190)', () => {
    for (const pos of [5330, 5333, 5334, 14641, 14642]) {
      const [ours, theirs] = got.get(`ENST00000420190 1:${pos}`)!;
      expect(ours).toMatch(/splice_(acceptor|donor|region)\|SAMD11\|ENST00000342066/);
      expect(ours).toBe(theirs);
    }
  });

  it('a record any transcript hits otherwise gets no intron entry (ENST00000301246)', () => {
    for (const pos of [420, 421, 423]) {
      const [ours, theirs] = got.get(`ENST00000301246 19:${pos}`)!;
      expect(ours).not.toContain('intron|');
      expect(ours).toBe(theirs);
    }
  });

  it('agrees on the rest at least as often as measured', () => {
    expect(n).toBeGreaterThan(5000);
    const diffs = [...got].filter(([, [x, y]]) => x !== y).map(([k, [x, y]]) => `${k} ours ${x} bcftools ${y}`);
    console.log(`exon-edge SNVs vs bcftools 1.16: ${agree}/${n} agree; first differences:\n  ${diffs.slice(0, 8).join('\n  ')}`);
    expect(agree).toBeGreaterThanOrEqual(FLOOR);
  });
});
