/**
 * Compares a call set with a truth set by allele, after splitting multiallelic records,
 * decomposing MNPs into SNVs and trimming shared prefix/suffix bases of indels (both
 * inputs are assumed left-aligned, e.g. by `bcftools norm -f ref`). Only sites with a
 * non-reference genotype in the first sample (or no sample column) count.
 * Reports precision, recall and F1 for SNVs and for indels (a simple stand-in for
 * hap.py / vcfeval, which also match differently represented haplotypes).
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

export interface Accuracy {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
  f1: number;
}

export interface Comparison {
  snv: Accuracy;
  indel: Accuracy;
}

/** Data lines of a VCF (.vcf or .vcf.gz / BGZF). */
export function readVcfLines(path: string): string[] {
  const raw = readFileSync(path);
  const text = (raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw).toString('utf8');
  return text.split('\n').filter((l) => l && !l.startsWith('#'));
}

/** Allele keys of the variant lines: `chrom:pos:ref:alt` with SNV / indel classes. */
export function alleleKeys(lines: string[], opts: { passOnly?: boolean } = {}): { snv: Set<string>; indel: Set<string> } {
  const snv = new Set<string>();
  const indel = new Set<string>();
  for (const line of lines) {
    const f = line.split('\t');
    if (opts.passOnly && f[6] !== 'PASS' && f[6] !== '.') continue;
    const alts = f[4].split(',');
    let present = alts.map((_, i) => i + 1);
    if (f.length > 9) {
      const keys = f[8].split(':');
      const gt = f[9].split(':')[keys.indexOf('GT')] ?? '';
      const idx = gt.split(/[/|]/).map(Number).filter((n) => Number.isInteger(n) && n > 0);
      present = [...new Set(idx)];
    }
    for (const a of present) {
      let ref = f[3].toUpperCase();
      let alt = alts[a - 1]?.toUpperCase();
      let pos = Number(f[1]);
      if (!alt || alt.startsWith('<') || alt === '*') continue;
      if (ref.length === alt.length) {
        for (let i = 0; i < ref.length; i++) if (ref[i] !== alt[i]) snv.add(`${f[0]}:${pos + i}:${ref[i]}:${alt[i]}`);
        continue;
      }
      // trim shared suffix, then shared prefix beyond one anchor base
      while (ref.length > 1 && alt.length > 1 && ref[ref.length - 1] === alt[alt.length - 1]) {
        ref = ref.slice(0, -1);
        alt = alt.slice(0, -1);
      }
      while (ref.length > 1 && alt.length > 1 && ref[0] === alt[0] && ref[1] === alt[1]) {
        ref = ref.slice(1);
        alt = alt.slice(1);
        pos++;
      }
      indel.add(`${f[0]}:${pos}:${ref}:${alt}`);
    }
  }
  return { snv, indel };
}

function accuracy(truth: Set<string>, calls: Set<string>): Accuracy {
  let tp = 0;
  for (const k of calls) if (truth.has(k)) tp++;
  const fp = calls.size - tp;
  const fn = truth.size - tp;
  const precision = calls.size ? tp / calls.size : 1;
  const recall = truth.size ? tp / truth.size : 1;
  const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
  return { tp, fp, fn, precision, recall, f1 };
}

export function compareCalls(truthLines: string[], callLines: string[], opts: { passOnly?: boolean } = {}): Comparison {
  const t = alleleKeys(truthLines);
  const c = alleleKeys(callLines, opts);
  return { snv: accuracy(t.snv, c.snv), indel: accuracy(t.indel, c.indel) };
}
