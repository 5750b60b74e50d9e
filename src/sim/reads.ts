/**
 * Paired-end Illumina-like reads drawn from a patient's two haplotypes.
 *
 * Fragments: a haplotype chosen by length, a uniform start, a normal insert size; read 1
 * comes from the fragment's left end on the forward strand or from its right end on the
 * reverse strand (50/50), read 2 from the other end. Fragments whose reads would touch
 * an N are drawn again. Qualities follow a position-dependent profile (high at the
 * start, falling towards the end of the read) shifted so that the mean error probability
 * equals `errorRate`; each base is then miscalled with exactly the probability its
 * quality states, with an Illumina-like substitution bias.
 *
 * Names carry the truth the way wgsim writes it, so `wgsim_eval.pl alneval` scores an
 * alignment: `@<chrom>_<left>_<right>_<e1>:<s1>:<i1>_<e2>:<s2>:<i2>_<pair index, hex>/1`
 * with left/right the 1-based reference coordinates of the fragment's ends, e = sequencing
 * errors, s = substitution and i = indel alleles of the haplotype inside the read.
 *
 * Everything streams: one pair at a time into gzip writers.
 */
import { Rng } from './rng.js';
import { A, C, G, T, N, COMPLEMENT } from './seq.js';
import { mutationsIn, toReference, type Haplotype } from './variants.js';
import { Sink, badOption } from './io.js';

export interface ReadOptions {
  seed: number;
  /** mean depth over the reference, counting both mates (default 10) */
  coverage?: number;
  /** bases per read (default 150) */
  readLength?: number;
  /** fragment (insert) size: normal(mean, sd), never shorter than one read (default 350, 50) */
  insertMean?: number;
  insertSd?: number;
  /** mean per-base substitution error rate (default 0.002); 0 for perfect reads */
  errorRate?: number;
  /** exact number of pairs (overrides coverage) */
  pairs?: number;
  /** gzip level of the FASTQ files (default 1) */
  gzipLevel?: number;
  /** called every 10 000 pairs and at the end */
  onProgress?: (done: number, total: number) => void;
}

export interface ReadGroupFiles {
  r1: string;
  r2: string;
}

export interface ReadStats {
  pairs: number;
  /** pairs written to each read group, in order */
  pairsPerGroup: number[];
  bases: number;
  /** sequencing errors introduced */
  errors: number;
  /** errors / bases */
  observedErrorRate: number;
  /** mean of 10^(-Q/10) over all bases written */
  expectedErrorRate: number;
}

const MAX_Q = 41;
const MIN_Q = 2;
/** Per-base quality jitter around the profile (3 bits of a draw pick one). */
const JITTER = [-7, -3, -2, -1, 0, 0, 1, 2];

/** Profile quality at cycle i of a read of length L, before the calibration shift. */
function profile(i: number, len: number): number {
  const x = len > 1 ? i / (len - 1) : 0;
  return 37 - 2.5 * Math.max(0, 1 - i / 5) - 11 * x * x;
}

function clampQ(q: number): number {
  return Math.max(MIN_Q, Math.min(MAX_Q, Math.round(q)));
}

/**
 * The shift added to the profile so that the mean error probability over cycles and
 * jitter equals `rate` (bisection; the mean is monotone in the shift).
 */
export function calibrateQualities(len: number, rate: number): { shift: number; table: Uint8Array[] } {
  const meanErr = (shift: number): number => {
    let s = 0;
    for (let i = 0; i < len; i++) for (const j of JITTER) s += 10 ** (-clampQ(profile(i, len) + shift + j) / 10);
    return s / (len * JITTER.length);
  };
  let shift = 0;
  if (rate > 0) {
    let lo = -40;
    let hi = 40;
    for (let k = 0; k < 60; k++) {
      const mid = (lo + hi) / 2;
      if (meanErr(mid) > rate) lo = mid;
      else hi = mid;
    }
    shift = (lo + hi) / 2;
  } else shift = 40;
  const table = Array.from({ length: len }, (_, i) => Uint8Array.from(JITTER, (j) => clampQ(profile(i, len) + shift + j)));
  return { shift, table };
}

/** Illumina-like miscall weights: for A,C,G,T the weights of the other bases (in ACGT order). */
const MISCALL: Record<number, [number[], number[]]> = {
  [A]: [[C, G, T], [0.45, 0.2, 0.35]],
  [C]: [[A, G, T], [0.45, 0.15, 0.4]],
  [G]: [[A, C, T], [0.35, 0.15, 0.5]],
  [T]: [[A, C, G], [0.3, 0.2, 0.5]],
};

/** Write paired reads, split round-robin over the read groups' files. */
export async function simulateReads(haplotypes: readonly Haplotype[], groups: readonly ReadGroupFiles[], opts: ReadOptions): Promise<ReadStats> {
  const L = opts.readLength ?? 150;
  const mean = opts.insertMean ?? 350;
  const sd = opts.insertSd ?? 50;
  const errorRate = opts.errorRate ?? 0.002;
  const coverage = opts.coverage ?? 10;
  if (!Number.isInteger(L) || L < 30 || L > 1000) throw badOption(`read length must be an integer within [30, 1000] (got ${L})`);
  if (!(errorRate >= 0 && errorRate <= 0.1)) throw badOption(`error rate must be within [0, 0.1] (got ${errorRate})`);
  if (!(mean >= L && sd >= 0)) throw badOption(`insert size mean must be ≥ read length and sd ≥ 0 (got ${mean}, ${sd})`);
  if (groups.length < 1) throw badOption('at least one read group is needed');
  const refBases = haplotypes.filter((h) => h.index === 1).reduce((s, h) => s + h.refLength, 0);
  const total = opts.pairs ?? Math.round((coverage * refBases) / (2 * L));
  if (!(total >= 0)) throw badOption(`coverage must be ≥ 0 (got ${coverage})`);
  const maxFrag = Math.max(...haplotypes.map((h) => h.seq.length));
  if (maxFrag < L) throw badOption('read length exceeds every contig');

  const rng = Rng.derive(opts.seed, 'reads');
  const { table } = calibrateQualities(L, errorRate);
  // One 32-bit draw per base: 3 bits pick the quality jitter, 29 bits decide the error.
  const errThreshold = new Float64Array(MAX_Q + 1);
  const errProb = new Float64Array(MAX_Q + 1);
  for (let q = 0; q <= MAX_Q; q++) {
    errProb[q] = 10 ** (-q / 10);
    errThreshold[q] = errorRate > 0 ? errProb[q] * 536870912 : 0;
  }
  const weights = haplotypes.map((h) => h.seq.length);
  const cumulative = new Float64Array(weights.length);
  weights.reduce((acc, w, i) => (cumulative[i] = acc + w), 0);
  const totalLen = cumulative[cumulative.length - 1];

  const sinks = groups.map((g) => ({ r1: new Sink(g.r1, { gzip: true, level: opts.gzipLevel ?? 1 }), r2: new Sink(g.r2, { gzip: true, level: opts.gzipLevel ?? 1 }) }));
  const perGroup = new Array<number>(groups.length).fill(0);
  const seq1 = Buffer.alloc(L + 1);
  const seq2 = Buffer.alloc(L + 1);
  const qual1 = Buffer.alloc(L + 1);
  const qual2 = Buffer.alloc(L + 1);
  seq1[L] = seq2[L] = qual1[L] = qual2[L] = 10;
  let errors = 0;

  /** Copy L bases of h from `start` (reverse-complemented if rc) into out; false on N. */
  const copy = (h: Haplotype, start: number, rc: boolean, out: Buffer): boolean => {
    const piece = h.seq.subarray(start, start + L);
    if (piece.includes(N)) return false;
    if (!rc) out.set(piece, 0);
    else for (let i = 0, j = L - 1; i < L; i++, j--) out[i] = COMPLEMENT[piece[j]];
    return true;
  };
  // Quality table flattened: cycle i, jitter j → flatQ[8 * i + j].
  const flatQ = new Uint8Array(8 * L);
  table.forEach((row, i) => flatQ.set(row, 8 * i));
  const miscallAlt = new Uint8Array(256 * 3);
  const miscallCum = new Float64Array(256 * 3);
  for (const b of [A, C, G, T]) {
    const [alts, w] = MISCALL[b];
    let acc = 0;
    for (let k = 0; k < 3; k++) {
      miscallAlt[3 * b + k] = alts[k];
      acc += w[k];
      miscallCum[3 * b + k] = acc;
    }
  }
  const expectedSum = new Float64Array(1);
  /** Qualities and errors for one read in place; returns the number of errors. */
  const sequence = (seq: Buffer, qual: Buffer): number => {
    let n = 0;
    let exp = 0;
    for (let i = 0; i < L; i++) {
      const x = rng.u32();
      const q = flatQ[8 * i + (x & 7)];
      qual[i] = q + 33;
      exp += errProb[q];
      if (x >>> 3 < errThreshold[q]) {
        const b = seq[i];
        const u = rng.float();
        const k = u < miscallCum[3 * b] ? 0 : u < miscallCum[3 * b + 1] ? 1 : 2;
        seq[i] = miscallAlt[3 * b + k];
        n++;
      }
    }
    expectedSum[0] += exp;
    return n;
  };

  for (let pair = 0; pair < total; pair++) {
    let h: Haplotype;
    let fragStart: number;
    let fragLen: number;
    let flip: boolean;
    for (;;) {
      const x = rng.float() * totalLen;
      let k = 0;
      while (cumulative[k] <= x) k++;
      h = haplotypes[k];
      fragLen = Math.max(L, Math.round(mean + sd * rng.normal()));
      if (fragLen > h.seq.length) continue;
      fragStart = rng.int(h.seq.length - fragLen + 1);
      flip = rng.chance(0.5);
      // read 1: forward from the left end, or reverse from the right end
      const leftOk = copy(h, fragStart, false, flip ? seq2 : seq1);
      if (!leftOk) continue;
      const rightOk = copy(h, fragStart + fragLen - L, true, flip ? seq1 : seq2);
      if (!rightOk) continue;
      break;
    }
    const e1 = sequence(seq1, qual1);
    const e2 = sequence(seq2, qual2);
    errors += e1 + e2;
    const left = toReference(h, fragStart) + 1;
    const right = toReference(h, fragStart + fragLen - 1) + 1;
    const mLeft = mutationsIn(h, fragStart, fragStart + L);
    const mRight = mutationsIn(h, fragStart + fragLen - L, fragStart + fragLen);
    const m1 = flip ? mRight : mLeft;
    const m2 = flip ? mLeft : mRight;
    const name = `@${h.chrom}_${left}_${right}_${e1}:${m1.sub}:${m1.indel}_${e2}:${m2.sub}:${m2.indel}_${pair.toString(16)}`;
    const g = pair % groups.length;
    perGroup[g]++;
    const s = sinks[g];
    s.r1.put(`${name}/1\n`);
    s.r1.put(seq1);
    s.r1.put('+\n');
    s.r1.put(qual1);
    s.r2.put(`${name}/2\n`);
    s.r2.put(seq2);
    s.r2.put('+\n');
    s.r2.put(qual2);
    if ((pair & 63) === 63) {
      for (const x of sinks) {
        await x.r1.pump();
        await x.r2.pump();
      }
    }
    if (opts.onProgress && (pair + 1) % 10_000 === 0) opts.onProgress(pair + 1, total);
  }
  for (const s of sinks) {
    await s.r1.close();
    await s.r2.close();
  }
  opts.onProgress?.(total, total);
  const bases = 2 * L * total;
  return {
    pairs: total,
    pairsPerGroup: perGroup,
    bases,
    errors,
    observedErrorRate: bases > 0 ? errors / bases : 0,
    expectedErrorRate: bases > 0 ? (errorRate > 0 ? expectedSum[0] : 0) / bases : 0,
  };
}
