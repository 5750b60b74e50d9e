/**
 * Truth variants for one simulated patient and the two haplotypes they make.
 *
 * Every variant is written normalised (the form `bcftools norm -f ref.fa` produces):
 * indels are left-aligned against the reference and carry one anchor base, MNPs change
 * every base they span. Variants never overlap and keep a margin from each other over
 * the whole range an indel could slide in a repeat, so no record's normal form depends
 * on another and the haplotypes are unambiguous.
 */
import { Rng } from './rng.js';
import { BASES, COMPLEMENT, N, text } from './seq.js';
import { substitute } from './genome.js';
import { cdsPositions, type GeneModel } from './genes.js';
import type { SimReference } from './reference.js';
import { badOption } from './io.js';

export type VariantKind = 'SNV' | 'MNP' | 'INS' | 'DEL';
export type Allele = 0 | 1;

export interface TruthVariant {
  chrom: string;
  /** VCF POS (1-based) */
  pos: number;
  ref: string;
  alt: string;
  kind: VariantKind;
  /** alleles on haplotype 1 and 2 (written phased, e.g. 0|1) */
  gt: [Allele, Allele];
  /** indel placed in a tandem repeat or homopolymer (INFO/STR) */
  repeat?: boolean;
  /** planted driver: gene name and intended consequence (INFO/DRIVER, INFO/DRIVER_CSQ) */
  driver?: { gene: string; consequence: DriverConsequence };
}

export type DriverConsequence = 'stop_gained' | 'frameshift';

export interface DriverRequest {
  /** gene Name (e.g. SIM003) or gene id; must be protein_coding */
  gene: string;
  /** default: stop_gained or frameshift at random */
  consequence?: DriverConsequence;
}

export interface VariantOptions {
  /** seed of this patient's variant stream */
  seed: number;
  /** background variants per reference base (default 0.001, about human heterozygosity) */
  rate?: number;
  /** relative weights of SNV, MNP, insertion, deletion (default 0.85, 0.03, 0.06, 0.06) */
  mix?: { snv: number; mnp: number; ins: number; del: number };
  /** fraction of variants homozygous alt (default 0.35) */
  homFraction?: number;
  /** fraction of indels placed in tandem repeats / homopolymers (default 0.35) */
  repeatIndelFraction?: number;
  /** longest indel (default 20) */
  maxIndel?: number;
  /** HIGH-impact variants to plant (heterozygous) */
  drivers?: DriverRequest[];
  /** reference intervals (0-based half-open) where no background variant may fall */
  avoid?: { chrom: string; start: number; end: number }[];
}

/** Bases kept clear around every variant (beyond an indel's sliding range). */
const MARGIN = 12;

class VariantMask {
  private readonly masks = new Map<string, Uint8Array>();
  constructor(ref: SimReference) {
    for (const c of ref.contigs) this.masks.set(c.name, new Uint8Array(c.seq.length));
  }
  free(chrom: string, start: number, end: number): boolean {
    const m = this.masks.get(chrom)!;
    const s = Math.max(0, start - MARGIN);
    const e = Math.min(m.length, end + MARGIN);
    for (let i = s; i < e; i++) if (m[i]) return false;
    return true;
  }
  take(chrom: string, start: number, end: number): void {
    this.masks.get(chrom)!.fill(1, Math.max(0, start), end);
  }
}

/** A candidate in 0-based coordinates before normalisation. */
type Edit =
  | { kind: 'SNV' | 'MNP'; start: number; alt: Uint8Array }
  | { kind: 'DEL'; start: number; end: number }
  | { kind: 'INS'; after: number; seq: Uint8Array };

interface Placed {
  v: TruthVariant;
  /** reference range the record or its sliding could touch */
  lo: number;
  hi: number;
}

function hasN(seq: Uint8Array, start: number, end: number): boolean {
  if (start < 0 || end > seq.length) return true;
  for (let i = start; i < end; i++) if (seq[i] === N) return true;
  return false;
}

/**
 * Normalise an edit against the reference: returns the VCF record (0-based anchor) and
 * the range it could slide over, or undefined when it cannot be written (N nearby,
 * contig start).
 */
export function normalise(seq: Uint8Array, e: Edit): { pos0: number; ref: string; alt: string; lo: number; hi: number } | undefined {
  if (e.kind === 'SNV' || e.kind === 'MNP') {
    const end = e.start + e.alt.length;
    if (hasN(seq, e.start, end)) return undefined;
    return { pos0: e.start, ref: text(seq.subarray(e.start, end)), alt: text(e.alt), lo: e.start, hi: end };
  }
  if (e.kind === 'DEL') {
    let a = e.start;
    let b = e.end;
    if (hasN(seq, a, b)) return undefined;
    while (a > 0 && seq[a - 1] === seq[b - 1] && seq[a - 1] !== N) {
      a--;
      b--;
    }
    if (a < 1 || seq[a - 1] === N) return undefined;
    let ra = a;
    let rb = b;
    while (rb < seq.length && seq[rb] === seq[ra] && seq[rb] !== N) {
      ra++;
      rb++;
    }
    if (rb >= seq.length) return undefined;
    return { pos0: a - 1, ref: text(seq.subarray(a - 1, b)), alt: String.fromCharCode(seq[a - 1]), lo: a - 1, hi: rb + 1 };
  }
  // insertion of e.seq between e.after and e.after + 1
  const ins = e as Extract<Edit, { kind: 'INS' }>;
  let p = ins.after;
  const s: number[] = Array.from(ins.seq);
  if (p < 0 || p >= seq.length - 1 || seq[p] === N) return undefined;
  while (p > 0 && seq[p] === s[s.length - 1] && seq[p] !== N) {
    s.unshift(s.pop()!);
    p--;
  }
  if (p < 1 || seq[p] === N) return undefined;
  // rightmost equivalent position, for the clear range
  let q = p;
  const r = s.slice();
  while (q + 1 < seq.length && seq[q + 1] === r[0] && seq[q + 1] !== N) {
    r.push(r.shift()!);
    q++;
  }
  if (q + 1 >= seq.length) return undefined;
  const anchor = String.fromCharCode(seq[p]);
  return { pos0: p, ref: anchor, alt: anchor + String.fromCharCode(...s), lo: p, hi: q + 2 };
}

function indelLength(rng: Rng, max: number): number {
  // roughly half 1 bp, then a geometric tail (like human small indels)
  return Math.min(max, 1 + rng.geometric(0.45));
}

function randomBases(len: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = BASES[rng.u32() & 3];
  return out;
}

/** Reverse-strand aware base of the transcript at a genomic position. */
function txBase(seq: Uint8Array, pos: number, strand: '+' | '-'): number {
  return strand === '+' ? seq[pos] : COMPLEMENT[seq[pos]];
}

const STOP = new Set(['TAA', 'TAG', 'TGA']);

export function findGene(ref: SimReference, nameOrId: string): GeneModel | undefined {
  return ref.genes.map((p) => p.gene).find((g) => g.name === nameOrId || g.id === nameOrId);
}

/** Reference intervals of a gene's coding exons (with a margin), to keep background variants out. */
export function codingIntervals(gene: GeneModel, pad = 30): { chrom: string; start: number; end: number }[] {
  const out: { chrom: string; start: number; end: number }[] = [];
  for (const t of gene.transcripts) {
    for (const e of t.exons) out.push({ chrom: gene.chrom, start: e.start - pad, end: e.end + pad });
  }
  return out;
}

/**
 * A heterozygous HIGH-impact variant in `gene`: a stop-gain SNV in a codon shared by all
 * isoforms, or a 1–2 bp deletion (frameshift) well inside a coding exon.
 */
function driverEdit(ref: SimReference, gene: GeneModel, consequence: DriverConsequence, rng: Rng): ReturnType<typeof normalise> {
  const seq = ref.contigs.find((c) => c.name === gene.chrom)!.seq;
  const main = gene.transcripts[0];
  const pos = cdsPositions(main, gene.strand);
  const shared = (p: number): boolean => gene.transcripts.every((t) => t.exons.some((e) => e.start + 15 <= p && p < e.end - 15) && t.cds!.start <= p && p < t.cds!.end);
  const codons = pos.length / 3;
  for (let attempt = 0; attempt < 500; attempt++) {
    const c = rng.range(2, codons - 3);
    const g = [pos[3 * c], pos[3 * c + 1], pos[3 * c + 2]];
    if (!g.every(shared) || Math.abs(g[2] - g[0]) !== 2) continue;
    if (consequence === 'stop_gained') {
      const codon = g.map((p) => txBase(seq, p, gene.strand));
      const options: { k: number; b: number }[] = [];
      for (let k = 0; k < 3; k++) {
        for (const b of BASES) {
          if (b === codon[k]) continue;
          const alt = codon.slice();
          alt[k] = b;
          if (STOP.has(String.fromCharCode(...alt))) options.push({ k, b });
        }
      }
      if (options.length === 0) continue;
      const o = rng.pick(options);
      const gpos = g[o.k];
      const base = gene.strand === '+' ? o.b : COMPLEMENT[o.b];
      return normalise(seq, { kind: 'SNV', start: gpos, alt: Uint8Array.of(base) });
    }
    const len = rng.range(1, 2);
    const start = Math.min(g[0], g[2]);
    const n = normalise(seq, { kind: 'DEL', start, end: start + len });
    // the whole sliding range must stay inside the coding exon, or the call could be splice/UTR
    if (n && shared(n.lo + 1) && shared(n.hi)) return n;
  }
  return undefined;
}

/**
 * Draw one patient's truth variants: planted drivers first, then background variants
 * along the genome (a Poisson process at `rate`) and extra indels in tandem repeats.
 * Returned sorted by contig order and position.
 */
export function simulateVariants(ref: SimReference, opts: VariantOptions): TruthVariant[] {
  const rng = Rng.derive(opts.seed, 'variants');
  const rate = opts.rate ?? 0.001;
  const mix = opts.mix ?? { snv: 0.85, mnp: 0.03, ins: 0.06, del: 0.06 };
  const mixW = [mix.snv, mix.mnp, mix.ins, mix.del];
  const homFraction = opts.homFraction ?? 0.35;
  const repeatFraction = opts.repeatIndelFraction ?? 0.35;
  const maxIndel = opts.maxIndel ?? 20;
  if (!(rate >= 0 && rate <= 0.02)) throw badOption(`variant rate must be within [0, 0.02] (got ${rate})`);
  if (!(maxIndel >= 1 && maxIndel <= 50)) throw badOption(`maxIndel must be within [1, 50] (got ${maxIndel})`);
  const mask = new VariantMask(ref);
  const placed: Placed[] = [];
  const gt = (): [Allele, Allele] => (rng.chance(homFraction) ? [1, 1] : rng.chance(0.5) ? [1, 0] : [0, 1]);
  const accept = (chrom: string, n: NonNullable<ReturnType<typeof normalise>>, kind: VariantKind, genotype: [Allele, Allele], extra: Partial<TruthVariant> = {}): boolean => {
    if (!mask.free(chrom, n.lo, n.hi)) return false;
    mask.take(chrom, n.lo, n.hi);
    placed.push({ v: { chrom, pos: n.pos0 + 1, ref: n.ref, alt: n.alt, kind, gt: genotype, ...extra }, lo: n.lo, hi: n.hi });
    return true;
  };

  const drng = Rng.derive(opts.seed, 'drivers');
  for (const d of opts.drivers ?? []) {
    const gene = findGene(ref, d.gene);
    if (!gene) throw badOption(`driver gene ${JSON.stringify(d.gene)} is not in the reference`);
    if (gene.biotype !== 'protein_coding') throw badOption(`driver gene ${d.gene} is ${gene.biotype}, not protein_coding`);
    const consequence = d.consequence ?? (drng.chance(0.5) ? 'stop_gained' : 'frameshift');
    let done = false;
    for (let attempt = 0; attempt < 20 && !done; attempt++) {
      const n = driverEdit(ref, gene, consequence, drng);
      if (!n) continue;
      const kind: VariantKind = n.ref.length === n.alt.length ? 'SNV' : 'DEL';
      done = accept(gene.chrom, n, kind, drng.chance(0.5) ? [1, 0] : [0, 1], { driver: { gene: gene.name, consequence } });
    }
    if (!done) throw badOption(`could not plant a ${consequence} driver in ${d.gene}`);
  }
  for (const iv of opts.avoid ?? []) mask.take(iv.chrom, iv.start, iv.end);

  // Background: candidates in genome order, then indels aimed at tandem repeats.
  for (const contig of ref.contigs) {
    const seq = contig.seq;
    const candidates: { edit: Edit; repeat: boolean }[] = [];
    if (rate > 0) {
      for (let p = rng.geometric(rate); p < seq.length; p += 1 + rng.geometric(rate)) {
        const k = rng.weighted(mixW);
        if (k === 0) candidates.push({ edit: { kind: 'SNV', start: p, alt: Uint8Array.of(substitute(seq[p], rng)) }, repeat: false });
        else if (k === 1) {
          const len = rng.range(2, 3);
          const alt = new Uint8Array(len);
          for (let i = 0; i < len; i++) alt[i] = p + i < seq.length ? substitute(seq[p + i], rng) : N;
          candidates.push({ edit: { kind: 'MNP', start: p, alt }, repeat: false });
        } else if (k === 2) candidates.push({ edit: { kind: 'INS', after: p, seq: randomBases(indelLength(rng, maxIndel), rng) }, repeat: false });
        else candidates.push({ edit: { kind: 'DEL', start: p, end: p + indelLength(rng, maxIndel) }, repeat: false });
      }
    }
    // Indels in repeats: the expected indel count scaled by the requested fraction.
    const indelShare = (mix.ins + mix.del) / (mix.snv + mix.mnp + mix.ins + mix.del);
    const repeats = ref.features.filter((f) => f.chrom === contig.name && (f.cls === 'microsatellite' || f.cls === 'homopolymer' || f.cls === 'minisatellite'));
    const wanted = Math.round((seq.length * rate * indelShare * repeatFraction) / Math.max(1e-9, 1 - repeatFraction));
    for (let i = 0; i < wanted && repeats.length > 0; i++) {
      const f = rng.pick(repeats);
      const unit = Number(/unit_len=(\d+)/.exec(f.info)?.[1] ?? '1');
      const copies = Math.max(1, Math.min(Math.floor(maxIndel / unit), rng.chance(0.7) ? 1 : rng.range(1, 3)));
      if (unit * copies > maxIndel || unit * copies > f.end - f.start) continue;
      const at = f.start + unit * rng.int(Math.max(1, Math.floor((f.end - f.start) / unit) - copies));
      if (rng.chance(0.5)) candidates.push({ edit: { kind: 'DEL', start: at, end: at + unit * copies }, repeat: true });
      else candidates.push({ edit: { kind: 'INS', after: at - 1, seq: seq.slice(at, at + unit * copies) }, repeat: true });
    }
    // Repeat indels first (they are rarer and would be crowded out), each list in its own order.
    candidates.sort((a, b) => Number(b.repeat) - Number(a.repeat));
    for (const c of candidates) {
      const n = normalise(seq, c.edit);
      if (!n) continue;
      accept(contig.name, n, c.edit.kind, gt(), c.repeat ? { repeat: true } : {});
    }
  }
  const order = new Map(ref.contigs.map((c, i) => [c.name, i]));
  placed.sort((a, b) => order.get(a.v.chrom)! - order.get(b.v.chrom)! || a.v.pos - b.v.pos);
  return placed.map((p) => p.v);
}

/** VCF 4.2 text of a patient's truth (phased GT, one sample column). */
export function truthVcf(ref: SimReference, variants: readonly TruthVariant[], sampleId: string, referenceName = 'ref.fa'): string {
  const lines = [
    '##fileformat=VCFv4.2',
    '##source=genolake-simulate',
    `##reference=${referenceName}`,
    ...ref.contigs.map((c) => `##contig=<ID=${c.name},length=${c.seq.length}>`),
    '##INFO=<ID=TYPE,Number=1,Type=String,Description="Simulated variant class: SNV, MNP, INS or DEL">',
    '##INFO=<ID=STR,Number=0,Type=Flag,Description="Indel placed in a tandem repeat or homopolymer">',
    '##INFO=<ID=DRIVER,Number=1,Type=String,Description="Planted driver variant in this gene">',
    '##INFO=<ID=DRIVER_CSQ,Number=1,Type=String,Description="Intended consequence of the planted driver">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype (phased: haplotype 1|haplotype 2)">',
    `#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t${sampleId}`,
  ];
  for (const v of variants) {
    const info = [`TYPE=${v.kind}`];
    if (v.repeat) info.push('STR');
    if (v.driver) info.push(`DRIVER=${v.driver.gene}`, `DRIVER_CSQ=${v.driver.consequence}`);
    lines.push(`${v.chrom}\t${v.pos}\t.\t${v.ref}\t${v.alt}\t.\tPASS\t${info.join(';')}\tGT\t${v.gt[0]}|${v.gt[1]}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * One haplotype of one contig: its bases and a map back to reference coordinates.
 * Segment i starts at haplotype offset hapStart[i] and reference offset refStart[i];
 * bases inside it map linearly up to maxOffset[i] (alt alleles map onto their REF span).
 */
export interface Haplotype {
  chrom: string;
  /** 1 or 2 */
  index: 1 | 2;
  seq: Uint8Array;
  /** length of the reference contig it derives from */
  refLength: number;
  hapStart: Int32Array;
  refStart: Int32Array;
  maxOffset: Int32Array;
  /** haplotype offsets and classes of the alt alleles (for read-name mutation counts) */
  altStart: Int32Array;
  altEnd: Int32Array;
  altIsIndel: Uint8Array;
}

/** Build both haplotypes of every contig from the truth variants. */
export function buildHaplotypes(ref: SimReference, variants: readonly TruthVariant[]): Haplotype[] {
  const out: Haplotype[] = [];
  for (const c of ref.contigs) {
    const mine = variants.filter((v) => v.chrom === c.name);
    for (const index of [1, 2] as const) {
      const vs = mine.filter((v) => v.gt[index - 1] === 1);
      let len = c.seq.length;
      for (const v of vs) len += v.alt.length - v.ref.length;
      const seq = new Uint8Array(len);
      const hs: number[] = [];
      const rs: number[] = [];
      const mo: number[] = [];
      const as: number[] = [];
      const ae: number[] = [];
      const ai: number[] = [];
      let r = 0;
      let h = 0;
      for (const v of vs) {
        const p0 = v.pos - 1;
        hs.push(h);
        rs.push(r);
        mo.push(Math.max(0, p0 - r - 1));
        seq.set(c.seq.subarray(r, p0), h);
        h += p0 - r;
        hs.push(h);
        rs.push(p0);
        mo.push(v.ref.length - 1);
        for (let i = 0; i < v.alt.length; i++) seq[h + i] = v.alt.charCodeAt(i);
        as.push(h);
        ae.push(h + v.alt.length);
        ai.push(v.kind === 'INS' || v.kind === 'DEL' ? 1 : 0);
        h += v.alt.length;
        r = p0 + v.ref.length;
      }
      hs.push(h);
      rs.push(r);
      mo.push(Math.max(0, c.seq.length - r - 1));
      seq.set(c.seq.subarray(r), h);
      out.push({
        chrom: c.name,
        index,
        seq,
        refLength: c.seq.length,
        hapStart: Int32Array.from(hs),
        refStart: Int32Array.from(rs),
        maxOffset: Int32Array.from(mo),
        altStart: Int32Array.from(as),
        altEnd: Int32Array.from(ae),
        altIsIndel: Uint8Array.from(ai),
      });
    }
  }
  return out;
}

/** Largest i with arr[i] ≤ x (arr ascending, arr[0] ≤ x). */
function floorIndex(arr: Int32Array, x: number): number {
  let lo = 0;
  let hi = arr.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (arr[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Reference offset (0-based) of a haplotype offset. */
export function toReference(h: Haplotype, hapPos: number): number {
  const i = floorIndex(h.hapStart, hapPos);
  return h.refStart[i] + Math.min(hapPos - h.hapStart[i], h.maxOffset[i]);
}

/** Numbers of SNV/MNP and indel alleles overlapping haplotype range [start, end). */
export function mutationsIn(h: Haplotype, start: number, end: number): { sub: number; indel: number } {
  let sub = 0;
  let indel = 0;
  if (h.altStart.length === 0) return { sub, indel };
  // alt alleles are sorted and disjoint: binary-search the first one ending after start
  let lo = 0;
  let hi = h.altEnd.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (h.altEnd[mid] <= start) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < h.altStart.length && h.altStart[i] < end; i++) {
    if (h.altIsIndel[i]) indel++;
    else sub++;
  }
  return { sub, indel };
}
