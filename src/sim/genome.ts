/**
 * Reference genome primitives: contigs with isochore GC structure, interspersed repeat
 * families, tandem repeats, homopolymers, segmental duplications and N gaps.
 *
 * Features overwrite bases in place (never insert), so coordinates planned early (genes,
 * gaps, duplication targets) stay valid while later layers are painted. `Occupancy`
 * records which bases are already spoken for, so features do not overwrite each other
 * and the BED of what was placed stays true.
 */
import { Rng } from './rng.js';
import { A, C, G, T, N, BASES, TRANSITION, TRANSVERSIONS, reverseComplement, type Interval } from './seq.js';

export interface Contig {
  name: string;
  seq: Uint8Array;
}

/** One placed feature; written as BED6+2 (class and key=value details). */
export interface PlacedFeature {
  chrom: string;
  start: number;
  end: number;
  name: string;
  strand: '+' | '-' | '.';
  cls: 'SINE' | 'LINE' | 'DNA' | 'microsatellite' | 'minisatellite' | 'homopolymer' | 'segdup' | 'gap' | 'isochore';
  info: string;
}

export interface SegDup {
  id: string;
  srcChrom: string;
  srcStart: number;
  dstChrom: string;
  dstStart: number;
  length: number;
  strand: '+' | '-';
  /** Fraction of identical bases between source and copy (substitutions only). */
  identity: number;
}

/** Per-contig byte mask of bases that later layers must not overwrite. */
export class Occupancy {
  private readonly masks = new Map<string, Uint8Array>();

  constructor(contigs: readonly Contig[]) {
    for (const c of contigs) this.masks.set(c.name, new Uint8Array(c.seq.length));
  }

  isFree(chrom: string, start: number, end: number): boolean {
    const m = this.masks.get(chrom)!;
    if (start < 0 || end > m.length) return false;
    for (let i = start; i < end; i++) if (m[i]) return false;
    return true;
  }

  take(chrom: string, start: number, end: number): void {
    this.masks.get(chrom)!.fill(1, Math.max(0, start), end);
  }
}

/** Split `total` bases over `k` contigs of decreasing, unequal length (like real chromosomes). */
export function contigLengths(total: number, k: number): number[] {
  const weights = Array.from({ length: k }, (_, i) => 1 / (1 + 0.35 * i));
  const sum = weights.reduce((a, b) => a + b, 0);
  const lens = weights.map((w) => Math.floor((total * w) / sum));
  lens[0] += total - lens.reduce((a, b) => a + b, 0);
  return lens;
}

/** GC classes of human isochores (L1, L2, H1, H2, H3) and their relative frequency. */
const ISOCHORE_GC = [0.37, 0.41, 0.46, 0.5, 0.55];
const ISOCHORE_WEIGHT = [0.3, 0.33, 0.2, 0.1, 0.07];

/**
 * Fill a contig with random sequence whose GC content changes in blocks (isochores),
 * returning the blocks so analysis can see the GC landscape.
 */
export function paintIsochores(name: string, length: number, rng: Rng): { seq: Uint8Array; blocks: PlacedFeature[] } {
  const seq = new Uint8Array(length);
  const blocks: PlacedFeature[] = [];
  let pos = 0;
  // Block lengths scale with the contig so even a small demo genome has several isochores.
  const minBlock = Math.max(5_000, Math.floor(length / 40));
  const maxBlock = Math.max(minBlock + 1, Math.floor(length / 6));
  while (pos < length) {
    const end = Math.min(length, pos + rng.range(minBlock, maxBlock));
    const gc = ISOCHORE_GC[rng.weighted(ISOCHORE_WEIGHT)];
    // One byte of a 32-bit draw per base: bit 0 picks within the pair, the other seven
    // decide GC vs AT (GC content resolved to 1/128).
    const threshold = Math.round(gc * 128);
    let x = 0;
    for (let i = pos, k = 0; i < end; i++, k = (k + 1) & 3) {
      if (k === 0) x = rng.u32();
      const b = (x >>> (k << 3)) & 0xff;
      seq[i] = b >>> 1 < threshold ? (b & 1 ? C : G) : b & 1 ? A : T;
    }
    blocks.push({ chrom: name, start: pos, end, name: `isochore_gc${Math.round(gc * 100)}`, strand: '.', cls: 'isochore', info: `gc=${gc}` });
    pos = end;
  }
  return { seq, blocks };
}

export function randomSequence(length: number, gc: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const isGc = rng.float() < gc;
    const lo = rng.u32() & 1;
    out[i] = isGc ? (lo ? C : G) : lo ? A : T;
  }
  return out;
}

/** A repeat family: one consensus sequence copied many times with divergence. */
export interface RepeatFamily {
  name: string;
  cls: 'SINE' | 'LINE' | 'DNA';
  consensus: Uint8Array;
  /** copies per megabase of genome */
  perMb: number;
  minDiv: number;
  maxDiv: number;
  /** LINEs are mostly 5'-truncated: inserted copies keep a 3' piece of the consensus. */
  truncate: boolean;
}

function withPolyA(body: Uint8Array, tail: number): Uint8Array {
  const out = new Uint8Array(body.length + tail);
  out.set(body);
  out.fill(A, body.length);
  return out;
}

/** Terminal inverted repeats make a DNA-transposon-like consensus. */
function withTirs(body: Uint8Array, tirLen: number): Uint8Array {
  const tir = body.subarray(0, tirLen);
  const out = new Uint8Array(body.length);
  out.set(body);
  out.set(reverseComplement(tir), body.length - tirLen);
  return out;
}

export function makeRepeatFamilies(rng: Rng): RepeatFamily[] {
  return [
    { name: 'SimSINE_A', cls: 'SINE', consensus: withPolyA(randomSequence(290, 0.56, rng), 22), perMb: 110, minDiv: 0.02, maxDiv: 0.14, truncate: false },
    { name: 'SimSINE_B', cls: 'SINE', consensus: withPolyA(randomSequence(250, 0.52, rng), 18), perMb: 60, minDiv: 0.08, maxDiv: 0.2, truncate: false },
    { name: 'SimLINE_1', cls: 'LINE', consensus: withPolyA(randomSequence(5980, 0.42, rng), 20), perMb: 22, minDiv: 0.02, maxDiv: 0.12, truncate: true },
    { name: 'SimLINE_2', cls: 'LINE', consensus: randomSequence(3300, 0.45, rng), perMb: 14, minDiv: 0.12, maxDiv: 0.2, truncate: true },
    { name: 'SimDNA_1', cls: 'DNA', consensus: withTirs(randomSequence(1400, 0.44, rng), 30), perMb: 12, minDiv: 0.06, maxDiv: 0.2, truncate: false },
  ];
}

/**
 * A diverged copy of `src`: substitutions at rate `div` (transitions twice as likely as
 * each transversion pair) and short indels at a tenth of that rate.
 */
export function divergedCopy(src: Uint8Array, div: number, rng: Rng): Uint8Array {
  const out: number[] = [];
  const indelRate = div * 0.1;
  for (let i = 0; i < src.length; i++) {
    const r = rng.float();
    if (r < indelRate) {
      const len = rng.range(1, 3);
      if (rng.chance(0.5)) {
        i += len - 1; // deletion: skip bases
        continue;
      }
      for (let k = 0; k < len; k++) out.push(rng.pick(BASES));
      out.push(src[i]);
    } else if (r < indelRate + div) {
      out.push(substitute(src[i], rng));
    } else {
      out.push(src[i]);
    }
  }
  return Uint8Array.from(out);
}

/** A different base; transitions are two thirds of substitutions (Ti/Tv ≈ 2). */
export function substitute(base: number, rng: Rng): number {
  if (base === N) return N;
  if (rng.chance(2 / 3)) return TRANSITION[base];
  return TRANSVERSIONS[base][rng.u32() & 1];
}

/** Pick a free window of `len` bases on a contig chosen by length; undefined after many misses. */
function findFree(contigs: readonly Contig[], occ: Occupancy, len: number, rng: Rng, margin = 0): { contig: Contig; start: number } | undefined {
  const weights = contigs.map((c) => c.seq.length);
  for (let attempt = 0; attempt < 50; attempt++) {
    const contig = contigs[rng.weighted(weights)];
    if (contig.seq.length < len + 2 * margin + 2) continue;
    const start = rng.range(margin + 1, contig.seq.length - len - margin - 1);
    if (occ.isFree(contig.name, start - margin, start + len + margin)) return { contig, start };
  }
  return undefined;
}

/** Insert copies of each family (by overwriting) at free places; returns the BED records. */
export function placeInterspersedRepeats(contigs: readonly Contig[], occ: Occupancy, families: readonly RepeatFamily[], rng: Rng): PlacedFeature[] {
  const totalMb = contigs.reduce((s, c) => s + c.seq.length, 0) / 1e6;
  const placed: PlacedFeature[] = [];
  for (const fam of families) {
    const copies = Math.max(2, Math.round(fam.perMb * totalMb));
    for (let i = 0; i < copies; i++) {
      let piece = fam.consensus;
      if (fam.truncate && !rng.chance(0.12)) {
        // 5' truncation: keep a 3' piece, mostly short (as for L1 in real genomes).
        const keep = Math.min(piece.length, 300 + rng.geometric(1 / 1200));
        piece = piece.subarray(piece.length - keep);
      }
      const div = fam.minDiv + rng.float() * (fam.maxDiv - fam.minDiv);
      let copy = divergedCopy(piece, div, rng);
      const strand = rng.chance(0.5) ? '+' : '-';
      if (strand === '-') copy = reverseComplement(copy);
      const where = findFree(contigs, occ, copy.length, rng, 5);
      if (!where) continue;
      where.contig.seq.set(copy, where.start);
      occ.take(where.contig.name, where.start, where.start + copy.length);
      placed.push({
        chrom: where.contig.name,
        start: where.start,
        end: where.start + copy.length,
        name: fam.name,
        strand,
        cls: fam.cls,
        info: `divergence=${div.toFixed(3)};consensus_len=${fam.consensus.length};copy_of=${fam.consensus.length - piece.length}-${fam.consensus.length}`,
      });
    }
  }
  return placed;
}

/** Tandem arrays of a random unit with a little impurity. */
function tandemArray(unit: Uint8Array, copies: number, impurity: number, rng: Rng): Uint8Array {
  const out = new Uint8Array(unit.length * copies);
  for (let i = 0; i < out.length; i++) {
    const b = unit[i % unit.length];
    out[i] = rng.chance(impurity) ? substitute(b, rng) : b;
  }
  return out;
}

/** Unit of a microsatellite that is not itself periodic with a shorter period (e.g. not ATAT). */
function primitiveUnit(len: number, rng: Rng): Uint8Array {
  for (;;) {
    const u = Uint8Array.from({ length: len }, () => rng.pick(BASES));
    let periodic = false;
    for (let p = 1; p < len && !periodic; p++) {
      if (len % p !== 0) continue;
      periodic = u.every((b, i) => b === u[i % p]);
    }
    if (!periodic) return u;
  }
}

/** Microsatellites (unit 2–6), minisatellites (unit 10–64) and homopolymers. */
export function placeTandemRepeats(contigs: readonly Contig[], occ: Occupancy, rng: Rng): PlacedFeature[] {
  const totalMb = contigs.reduce((s, c) => s + c.seq.length, 0) / 1e6;
  const placed: PlacedFeature[] = [];
  const put = (seq: Uint8Array, name: string, cls: PlacedFeature['cls'], info: string): void => {
    const where = findFree(contigs, occ, seq.length, rng, 3);
    if (!where) return;
    where.contig.seq.set(seq, where.start);
    occ.take(where.contig.name, where.start, where.start + seq.length);
    placed.push({ chrom: where.contig.name, start: where.start, end: where.start + seq.length, name, strand: '+', cls, info });
  };
  for (let i = 0, n = Math.max(10, Math.round(260 * totalMb)); i < n; i++) {
    const unitLen = rng.weighted([0, 0, 45, 20, 20, 8, 7]); // index = unit length; dinucleotides commonest
    const unit = primitiveUnit(unitLen, rng);
    const copies = Math.max(3, Math.round(rng.range(12, 60) / unitLen));
    put(tandemArray(unit, copies, rng.chance(0.6) ? 0 : 0.03, rng), `(${String.fromCharCode(...unit)})n`, 'microsatellite', `unit_len=${unitLen};copies=${copies}`);
  }
  for (let i = 0, n = Math.max(3, Math.round(25 * totalMb)); i < n; i++) {
    const unitLen = rng.range(10, 64);
    const unit = Uint8Array.from({ length: unitLen }, () => rng.pick(BASES));
    const copies = rng.range(4, 30);
    put(tandemArray(unit, copies, 0.01 + rng.float() * 0.04, rng), `minisat_u${unitLen}`, 'minisatellite', `unit_len=${unitLen};copies=${copies}`);
  }
  for (let i = 0, n = Math.max(10, Math.round(300 * totalMb)); i < n; i++) {
    const base = rng.chance(0.8) ? rng.pick([A, T]) : rng.pick([C, G]);
    const len = rng.range(8, 25);
    put(new Uint8Array(len).fill(base), `(${String.fromCharCode(base)})n`, 'homopolymer', `unit_len=1;copies=${len}`);
  }
  return placed;
}

/**
 * Plan segmental duplications: pairs (source, target) of 10–50 kb, some on another
 * contig, some inverted. Targets must not hit anything in `occ` (genes, gaps, other
 * duplications); both ends are then reserved so nothing else overwrites them.
 */
export function planSegdups(contigs: readonly Contig[], occ: Occupancy, count: number, rng: Rng): SegDup[] {
  const dups: SegDup[] = [];
  const weights = contigs.map((c) => c.seq.length);
  for (let i = 0; i < count; i++) {
    for (let attempt = 0; attempt < 60; attempt++) {
      const src = contigs[rng.weighted(weights)];
      const interContig = contigs.length > 1 && (i % 3 === 1 || rng.chance(0.25));
      const dst = interContig ? contigs.filter((c) => c !== src)[rng.int(contigs.length - 1)] : src;
      const maxLen = Math.floor(Math.min(src.seq.length, dst.seq.length) / 8);
      const length = Math.min(rng.range(10_000, 50_000), maxLen);
      if (length < 1_000) break;
      const srcStart = rng.range(1_000, src.seq.length - length - 1_000);
      const dstStart = rng.range(1_000, dst.seq.length - length - 1_000);
      if (src === dst && Math.abs(srcStart - dstStart) < length + 5_000) continue;
      if (!occ.isFree(src.name, srcStart, srcStart + length) || !occ.isFree(dst.name, dstStart - 500, dstStart + length + 500)) continue;
      occ.take(src.name, srcStart, srcStart + length);
      occ.take(dst.name, dstStart, dstStart + length);
      const identity = 0.95 + rng.float() * 0.045;
      dups.push({ id: `SD${i + 1}`, srcChrom: src.name, srcStart, dstChrom: dst.name, dstStart, length, strand: rng.chance(0.3) ? '-' : '+', identity });
      break;
    }
  }
  return dups;
}

/**
 * Copy each duplication's source over its target and plant exactly
 * round((1 - identity) * length) substitutions at distinct positions, so the
 * identity written in the BED is the identity in the sequence.
 */
export function applySegdups(contigs: readonly Contig[], dups: SegDup[], rng: Rng): PlacedFeature[] {
  const byName = new Map(contigs.map((c) => [c.name, c]));
  const out: PlacedFeature[] = [];
  for (const d of dups) {
    const src = byName.get(d.srcChrom)!.seq.slice(d.srcStart, d.srcStart + d.length);
    const copy = d.strand === '-' ? reverseComplement(src) : src;
    const subs = Math.round((1 - d.identity) * d.length);
    const positions = new Set<number>();
    while (positions.size < subs) positions.add(rng.int(d.length));
    for (const p of positions) copy[p] = substitute(copy[p], rng);
    byName.get(d.dstChrom)!.seq.set(copy, d.dstStart);
    d.identity = 1 - subs / d.length;
    const info = `identity=${d.identity.toFixed(4)};source=${d.srcChrom}:${d.srcStart + 1}-${d.srcStart + d.length};target=${d.dstChrom}:${d.dstStart + 1}-${d.dstStart + d.length}`;
    out.push({ chrom: d.srcChrom, start: d.srcStart, end: d.srcStart + d.length, name: `${d.id}_source`, strand: '+', cls: 'segdup', info });
    out.push({ chrom: d.dstChrom, start: d.dstStart, end: d.dstStart + d.length, name: `${d.id}_copy`, strand: d.strand, cls: 'segdup', info });
  }
  return out;
}

/** One or two assembly gaps (runs of N) per contig, away from the ends. */
export function planGaps(contigs: readonly Contig[], occ: Occupancy, rng: Rng): Interval[][] {
  return contigs.map((c) => {
    const gaps: Interval[] = [];
    const n = c.seq.length > 3_000_000 ? 2 : 1;
    for (let i = 0; i < n; i++) {
      const len = rng.range(500, Math.min(5_000, Math.max(501, Math.floor(c.seq.length / 100))));
      const start = rng.range(Math.floor(c.seq.length * 0.2), Math.floor(c.seq.length * 0.8) - len);
      if (!occ.isFree(c.name, start - 1_000, start + len + 1_000)) continue;
      occ.take(c.name, start - 200, start + len + 200);
      gaps.push({ start, end: start + len });
    }
    return gaps;
  });
}

export function applyGaps(contigs: readonly Contig[], gaps: Interval[][]): PlacedFeature[] {
  const out: PlacedFeature[] = [];
  contigs.forEach((c, i) => {
    for (const g of gaps[i]) {
      c.seq.fill(N, g.start, g.end);
      out.push({ chrom: c.name, start: g.start, end: g.end, name: 'gap', strand: '.', cls: 'gap', info: `length=${g.end - g.start}` });
    }
  });
  return out;
}
