/**
 * qc.json for a sample BAM, collected in one pass over the final records:
 * - `flagstat`: the categories of `samtools flagstat -O json`, same names, same
 *   counting rules, split into QC-passed and QC-failed reads;
 * - `insertSize`: |TLEN| of properly paired, primary, non-duplicate read-1 records
 *   (one per pair) on the same reference: histogram, mean, sd, median;
 * - `coverage`: mean depth per contig and overall = aligned bases (CIGAR M/=/X) of
 *   primary, mapped, non-duplicate, QC-passed records / contig length.
 */
import type { BamHeader } from './bam.js';
import { rawCigarOffset, rawFlag, rawMapq, rawNCigar, rawNextRefId, rawRefId, rawTlen } from './bam.js';
import { FLAG } from './sam-record.js';
import type { MarkdupStats } from './markdup.js';

export interface FlagstatCounts {
  total: number;
  primary: number;
  secondary: number;
  supplementary: number;
  duplicates: number;
  'primary duplicates': number;
  mapped: number;
  'mapped %': number | null;
  'primary mapped': number;
  'primary mapped %': number | null;
  'paired in sequencing': number;
  read1: number;
  read2: number;
  'properly paired': number;
  'properly paired %': number | null;
  'with itself and mate mapped': number;
  singletons: number;
  'singletons %': number | null;
  'with mate mapped to a different chr': number;
  'with mate mapped to a different chr (mapQ >= 5)': number;
}

export interface QcReport {
  records: number;
  flagstat: { 'QC-passed reads': FlagstatCounts; 'QC-failed reads': FlagstatCounts };
  insertSize: {
    definition: string;
    pairs: number;
    mean: number | null;
    sd: number | null;
    median: number | null;
    min: number | null;
    max: number | null;
    /** [size, count] for sizes ≤ maxInsert, ascending. */
    histogram: [number, number][];
    /** Pairs with |TLEN| > maxInsert (not in the histogram, nor in mean/sd/median). */
    overflow: number;
  };
  coverage: {
    definition: string;
    overall: number;
    contigs: { name: string; length: number; alignedBases: number; meanCoverage: number }[];
  };
  duplicates?: MarkdupStats;
}

const N = 16; // counters per class
const enum C {
  total,
  primary,
  secondary,
  supplementary,
  dup,
  primaryDup,
  mapped,
  primaryMapped,
  paired,
  read1,
  read2,
  proper,
  pairMapped,
  singletons,
  diffChr,
  diffChrQ5,
}

export class QcCollector {
  private counts = [new Float64Array(N), new Float64Array(N)];
  private insert = new Map<number, number>();
  private overflow = 0;
  private bases: Float64Array;
  records = 0;

  constructor(
    private readonly header: BamHeader,
    private readonly maxInsert = 100_000,
  ) {
    this.bases = new Float64Array(header.refs.length);
  }

  add(r: Buffer): void {
    this.records++;
    const flag = rawFlag(r);
    const c = this.counts[flag & FLAG.QCFAIL ? 1 : 0];
    const unmapped = (flag & FLAG.UNMAPPED) !== 0;
    c[C.total]++;
    if (flag & FLAG.SECONDARY) c[C.secondary]++;
    else if (flag & FLAG.SUPPLEMENTARY) c[C.supplementary]++;
    else {
      c[C.primary]++;
      if (flag & FLAG.PAIRED) {
        c[C.paired]++;
        if (flag & FLAG.PROPER_PAIR && !unmapped) c[C.proper]++;
        if (flag & FLAG.READ1) c[C.read1]++;
        if (flag & FLAG.READ2) c[C.read2]++;
        const mateUnmapped = (flag & FLAG.MATE_UNMAPPED) !== 0;
        if (mateUnmapped && !unmapped) c[C.singletons]++;
        if (!unmapped && !mateUnmapped) {
          c[C.pairMapped]++;
          if (rawNextRefId(r) !== rawRefId(r)) {
            c[C.diffChr]++;
            if (rawMapq(r) >= 5) c[C.diffChrQ5]++;
          }
        }
      }
      if (!unmapped) c[C.primaryMapped]++;
      if (flag & FLAG.DUPLICATE) c[C.primaryDup]++;
    }
    if (!unmapped) c[C.mapped]++;
    if (flag & FLAG.DUPLICATE) c[C.dup]++;

    if (flag & (FLAG.SECONDARY | FLAG.SUPPLEMENTARY | FLAG.DUPLICATE | FLAG.QCFAIL | FLAG.UNMAPPED)) return;
    const tid = rawRefId(r);
    if (tid < 0) return;
    // coverage
    const n = rawNCigar(r);
    const off = rawCigarOffset(r);
    let aligned = 0;
    for (let i = 0; i < n; i++) {
      const op = r.readUInt32LE(off + 4 * i);
      const o = op & 0xf;
      if (o === 0 || o === 7 || o === 8) aligned += op >>> 4;
    }
    this.bases[tid] += aligned;
    // insert size, once per pair
    if ((flag & (FLAG.PAIRED | FLAG.PROPER_PAIR | FLAG.READ1 | FLAG.MATE_UNMAPPED)) === (FLAG.PAIRED | FLAG.PROPER_PAIR | FLAG.READ1) && rawNextRefId(r) === tid) {
      const t = Math.abs(rawTlen(r));
      if (t > this.maxInsert) this.overflow++;
      else this.insert.set(t, (this.insert.get(t) ?? 0) + 1);
    }
  }

  report(duplicates?: MarkdupStats): QcReport {
    const pct = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 10000) / 100 : null);
    const fs = (c: Float64Array): FlagstatCounts => ({
      total: c[C.total],
      primary: c[C.primary],
      secondary: c[C.secondary],
      supplementary: c[C.supplementary],
      duplicates: c[C.dup],
      'primary duplicates': c[C.primaryDup],
      mapped: c[C.mapped],
      'mapped %': pct(c[C.mapped], c[C.total]),
      'primary mapped': c[C.primaryMapped],
      'primary mapped %': pct(c[C.primaryMapped], c[C.primary]),
      'paired in sequencing': c[C.paired],
      read1: c[C.read1],
      read2: c[C.read2],
      'properly paired': c[C.proper],
      'properly paired %': pct(c[C.proper], c[C.paired]),
      'with itself and mate mapped': c[C.pairMapped],
      singletons: c[C.singletons],
      'singletons %': pct(c[C.singletons], c[C.paired]),
      'with mate mapped to a different chr': c[C.diffChr],
      'with mate mapped to a different chr (mapQ >= 5)': c[C.diffChrQ5],
    });
    const hist = [...this.insert.entries()].sort((a, b) => a[0] - b[0]);
    let n = 0;
    let sum = 0;
    let sum2 = 0;
    for (const [s, k] of hist) {
      n += k;
      sum += s * k;
      sum2 += s * s * k;
    }
    let median: number | null = null;
    if (n > 0) {
      // lower median for even n, the midpoint of the two middle values
      const lo = Math.floor((n - 1) / 2);
      const hi = Math.floor(n / 2);
      let acc = 0;
      let vlo = -1;
      let vhi = -1;
      for (const [s, k] of hist) {
        if (vlo < 0 && acc + k > lo) vlo = s;
        if (vhi < 0 && acc + k > hi) vhi = s;
        acc += k;
        if (vhi >= 0) break;
      }
      median = (vlo + vhi) / 2;
    }
    const mean = n > 0 ? sum / n : null;
    const sd = n > 1 && mean !== null ? Math.sqrt(Math.max(0, (sum2 - n * mean * mean) / (n - 1))) : n === 1 ? 0 : null;
    const contigs = this.header.refs.map((ref, i) => ({
      name: ref.name,
      length: ref.length,
      alignedBases: this.bases[i],
      meanCoverage: ref.length > 0 ? this.bases[i] / ref.length : 0,
    }));
    const totLen = contigs.reduce((a, c) => a + c.length, 0);
    const totBases = contigs.reduce((a, c) => a + c.alignedBases, 0);
    return {
      records: this.records,
      flagstat: { 'QC-passed reads': fs(this.counts[0]), 'QC-failed reads': fs(this.counts[1]) },
      insertSize: {
        definition: '|TLEN| of primary, properly paired, non-duplicate, QC-passed read-1 records with both mates on the same contig',
        pairs: n,
        mean,
        sd,
        median,
        min: hist.length ? hist[0][0] : null,
        max: hist.length ? hist[hist.length - 1][0] : null,
        histogram: hist,
        overflow: this.overflow,
      },
      coverage: {
        definition: 'aligned bases (CIGAR M/=/X) of primary, mapped, non-duplicate, QC-passed records divided by contig length',
        overall: totLen > 0 ? totBases / totLen : 0,
        contigs,
      },
      ...(duplicates ? { duplicates } : {}),
    };
  }
}
