/**
 * Pileup evidence for one region of one sample, read through the BAI.
 *
 * SNVs: for every position of the region and every base b, the count of reads showing b
 * (base quality ≥ minBaseQ), how many of them on the forward strand, and three sums of
 * per-read log10 likelihood terms with the read's error e = 10^(-min(BQ, MAPQ)/10):
 *   S1[b] = Σ log10(1 − e)           (the read's base is the allele)
 *   S2[b] = Σ log10(e / 3)           (it is not)
 *   S3[b] = Σ log10((1 − e + e/3)/2) (it is one of the two alleles of a heterozygote)
 * which give every diploid genotype likelihood exactly (see genotype.ts) in one pass over
 * the bases. Bases of a read that ends next to a candidate indel it does not carry are left
 * out (maskFor): such read ends are usually the indel aligned as mismatches.
 *
 * Indels: events from the CIGARs (I/D ops not at a read end) and the soft clips
 * (clipIndels) of reads overlapping [start − pad, end + pad), left-aligned and normalised
 * against the reference, kept when their normalised POS lies in the region (±
 * CANDIDATE_MARGIN); each read's span, its record and its set of events are kept for the
 * realignment that genotypes them (indels.ts).
 *
 * Two steps: collectReads (reads, candidates, masks), then addBaseEvidence, so that the
 * realignment can name reads to leave out of the base evidence in between.
 */
import { open } from 'node:fs/promises';
import type { BaiIndex } from '../formats/bai.js';
import { inflateBgzfRange } from '../formats/bgzf.js';
import { InputError } from '../util/errors.js';
import { pileupBases, type BaseEvidence } from './kernel.js';

export interface PileupOptions {
  /** Minimum mapping quality (default 20). */
  minMapQ?: number;
  /** Minimum base quality (default 13). */
  minBaseQ?: number;
  /** Bases read past the region end for indels that left-align into it (default 500). */
  indelPad?: number;
  /**
   * Where the per-base evidence loop runs: 'wasm' (default; wasm/caller/pileup.c) or
   * 'js', the reference implementation it must equal (tests).
   */
  baseKernel?: 'wasm' | 'js';
}

export const DEFAULT_PILEUP = { minMapQ: 20, minBaseQ: 13, indelPad: 500 } as const;

/** Indel sites this far outside the region are called (not emitted) for the SNV gap filter. */
export const INDEL_MARGIN = 60;

/**
 * Candidates this far outside the region are kept: a site within SITE_MARGIN (indels.ts)
 * realigns its reads against the candidates of its window too, so every region plan sees
 * the same ones (below the default indelPad, so their reads are all read).
 */
export const CANDIDATE_MARGIN = 480;

/** Soft clips at least this long are searched for the indel they may hide (clipIndels). */
export const CLIP_MIN = 8;
/** Reference bases a clip must match beside the indel it is read as. */
const CLIP_ANCHOR = 6;
/** Longest deletion looked for behind a clip. */
const CLIP_MAX_DEL = 50;

/** Flags whose reads are skipped: unmapped, secondary, QC fail, duplicate, supplementary. */
const SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800;

export interface IndelEvent {
  /** 0-based position of the anchor base (VCF POS − 1). */
  anchor: number;
  ref: string;
  alt: string;
}

export interface ReadSpan {
  start: number;
  end: number;
  mapq: number;
  reverse: boolean;
  /** Index of the read's record in RegionPileup.records. */
  rec: number;
  /** Reference projection of its first and past its last query base (soft clips continue the alignment). */
  qStart: number;
  qEnd: number;
  /** Keys (`anchor:ref:alt`) of the normalised indels this read carries. */
  indels: string[];
}

export interface RegionPileup extends BaseEvidence {
  start: number;
  end: number;
  /** Normalised indel candidates with POS in the region (± INDEL_MARGIN), by key. */
  indels: Map<string, IndelEvent>;
  /** Reads (passing filters) sorted by start, for indel support. */
  reads: ReadSpan[];
  /** Longest projection (qEnd − start) and leading soft clip of a read (bound the search for reads covering a position). */
  maxQEnd: number;
  maxLeadClip: number;
  /** The region's raw records (ReadSpan.rec indexes them). */
  records: readonly Buffer[];
  /** Per read, the interval [lo, hi) whose bases count (maskFor). */
  masks: Int32Array;
}

/** L1, L2, L3 by quality (0..99), one buffer so the kernel gets them in one copy. */
const LUT = new Float32Array(300);
const L1 = LUT.subarray(0, 100);
const L2 = LUT.subarray(100, 200);
const L3 = LUT.subarray(200, 300);
for (let q = 0; q < 100; q++) {
  const e = Math.min(0.75, Math.max(1e-7, 10 ** (-q / 10)));
  L1[q] = Math.log10(1 - e);
  L2[q] = Math.log10(e / 3);
  L3[q] = Math.log10((1 - e + e / 3) / 2);
}

/** nt16 code → base index 0..3, or −1. */
const NT16_TO_IDX = new Int8Array(16).fill(-1);
NT16_TO_IDX[1] = 0;
NT16_TO_IDX[2] = 1;
NT16_TO_IDX[4] = 2;
NT16_TO_IDX[8] = 3;
const NT16 = '=ACMGRSVTWYHKDBN';

/** Bins that may hold records overlapping [beg, end) (UCSC scheme). */
export function reg2bins(beg: number, end: number): number[] {
  const bins = [0];
  end -= 1;
  const levels: [number, number][] = [
    [1, 26],
    [9, 23],
    [73, 20],
    [585, 17],
    [4681, 14],
  ];
  for (const [off, shift] of levels) for (let k = off + (beg >> shift); k <= off + (end >> shift); k++) bins.push(k);
  return bins;
}

/**
 * Raw records of `refId` overlapping [beg, end), in file order, read through the BAI.
 * Unsorted input is an InputError.
 */
export async function readRegionRecords(bam: string, bai: BaiIndex, refId: number, beg: number, end: number): Promise<Buffer[]> {
  const ref = bai.refs[refId];
  if (!ref || end <= beg) return [];
  const wi = Math.min(beg >> 14, ref.linear.length - 1);
  const minOff = wi >= 0 ? ref.linear[wi] : 0;
  let lo = Infinity;
  let hi = -1;
  for (const bin of reg2bins(beg, end)) {
    for (const [cb, ce] of ref.bins.get(bin) ?? []) {
      if (ce <= minOff) continue;
      lo = Math.min(lo, Math.max(cb, minOff));
      hi = Math.max(hi, ce);
    }
  }
  if (hi < 0) return [];
  const cLo = Math.floor(lo / 65536);
  const uLo = lo % 65536;
  const cHi = Math.floor(hi / 65536);
  const uHi = hi % 65536;
  const fh = await open(bam, 'r');
  let data: Buffer;
  let stopAt: number;
  try {
    const head = Buffer.alloc(18);
    const { bytesRead } = await fh.read(head, 0, 18, cHi);
    let lastSize = 0;
    let lastIsize = 0;
    if (bytesRead === 18 && uHi > 0) {
      lastSize = head.readUInt16LE(16) + 1;
      const tail = Buffer.alloc(4);
      await fh.read(tail, 0, 4, cHi + lastSize - 4);
      lastIsize = tail.readUInt32LE(0);
    }
    data = await inflateBgzfRange(fh, cLo, cHi + lastSize, bam);
    stopAt = data.length - lastIsize + uHi;
  } finally {
    await fh.close();
  }
  const out: Buffer[] = [];
  let p = uLo;
  let lastPos = -1;
  while (p + 4 <= stopAt && p + 4 <= data.length) {
    const bs = data.readInt32LE(p);
    if (bs < 32 || p + 4 + bs > data.length) throw new InputError('BAM_CORRUPT', `bad record at virtual offset ${cLo}:${p}`, { file: bam });
    const r = data.subarray(p, p + 4 + bs);
    p += 4 + bs;
    const rid = r.readInt32LE(4);
    const pos = r.readInt32LE(8);
    if (rid !== refId) {
      if (rid > refId || rid < 0) break;
      continue;
    }
    if (pos < lastPos) throw new InputError('BAM_UNSORTED', `records are not sorted by position (${pos + 1} after ${lastPos + 1})`, { file: bam });
    lastPos = pos;
    if (pos >= end) break;
    out.push(r);
  }
  return out;
}

/**
 * The indels a soft clip may hide: an aligner often clips a read a few bases before an
 * indel instead of aligning through it. `clip` is the clipped bases, `leading` whether it
 * is at the read's start, `at` the reference position of the read's first aligned base
 * (leading) or one past its last. The clip is an insertion of its bases nearest the
 * alignment when the rest (≥ CLIP_ANCHOR bases) matches the reference next to it, or a
 * deletion when all of it matches the reference up to CLIP_MAX_DEL bases further on.
 * The shortest of each kind, normalised; the realignment decides whether they are real.
 */
export function clipIndels(clip: string, leading: boolean, at: number, refSeq: string, refOff: number): IndelEvent[] {
  if (clip.includes('N')) return [];
  const out: IndelEvent[] = [];
  const c = clip.length;
  const p = at - refOff;
  for (let ins = 1; c - ins >= CLIP_ANCHOR; ins++) {
    const flank = c - ins;
    const matches = leading ? p - flank >= 0 && refSeq.startsWith(clip.slice(0, flank), p - flank) : refSeq.startsWith(clip.slice(ins), p);
    if (matches) {
      const ev = normaliseIndel(refSeq, refOff, at, 0, leading ? clip.slice(flank) : clip.slice(0, ins));
      if (ev) out.push(ev);
      break;
    }
  }
  for (let del = 1; del <= CLIP_MAX_DEL; del++) {
    const matches = leading ? p - del - c >= 0 && refSeq.startsWith(clip, p - del - c) : refSeq.startsWith(clip, p + del);
    if (matches) {
      const ev = normaliseIndel(refSeq, refOff, leading ? at - del : at, del, '');
      if (ev) out.push(ev);
      break;
    }
  }
  return out;
}

/** Left-aligns and normalises an indel at 0-based ref position `pos` (see module doc). */
export function normaliseIndel(
  refSeq: string,
  refOff: number,
  pos: number,
  del: number,
  ins: string,
): IndelEvent | undefined {
  // deletion of refSeq[pos, pos+del) or insertion of `ins` before pos
  let p = pos - refOff;
  if (del > 0) {
    while (p - 1 >= 0 && refSeq[p - 1] === refSeq[p + del - 1] && refSeq[p - 1] !== 'N') p--;
    if (p - 1 < 0 || p + del > refSeq.length) return undefined;
    return { anchor: p - 1 + refOff, ref: refSeq.slice(p - 1, p + del), alt: refSeq[p - 1] };
  }
  let s = ins;
  while (p - 1 >= 0 && refSeq[p - 1] === s[s.length - 1] && refSeq[p - 1] !== 'N') {
    s = refSeq[p - 1] + s.slice(0, -1);
    p--;
  }
  if (p - 1 < 0) return undefined;
  return { anchor: p - 1 + refOff, ref: refSeq[p - 1], alt: refSeq[p - 1] + s };
}

export const indelKey = (e: IndelEvent): string => `${e.anchor}:${e.ref}:${e.alt}`;

/**
 * Builds the pileup of [start, end) from raw records (see readRegionRecords, read over
 * [start − pad, end + pad)); `refSeq` is the reference from `refOff` covering at least
 * [start − pad, end + pad). The two steps of collectReads and addBaseEvidence.
 */
export function buildPileup(
  records: Buffer[],
  start: number,
  end: number,
  refSeq: string,
  refOff: number,
  opts: PileupOptions = {},
  file = 'BAM',
): RegionPileup {
  const pu = collectReads(records, start, end, refSeq, refOff, opts);
  addBaseEvidence(pu, opts, file);
  return pu;
}

/**
 * The first step of a pileup: the reads that pass the filters, their spans and indels (and
 * so the candidates), and the interval of each read whose bases count (maskFor). The base
 * evidence arrays stay empty until addBaseEvidence.
 */
export function collectReads(
  records: Buffer[],
  start: number,
  end: number,
  refSeq: string,
  refOff: number,
  opts: PileupOptions = {},
): RegionPileup {
  const pu: RegionPileup = {
    start,
    end,
    count: new Uint32Array(0),
    forward: new Uint32Array(0),
    s1: new Float32Array(0),
    s2: new Float32Array(0),
    s3: new Float32Array(0),
    depth: new Uint32Array(0),
    mq2: new Float64Array(0),
    indels: new Map(),
    reads: [],
    maxQEnd: 0,
    maxLeadClip: 0,
    records,
    masks: new Int32Array(0),
  };
  scanRecords(pu, 0, refSeq, refOff, opts, pu.masks);
  // candidates seen in two reads or more: read ends next to one are masked (maskFor)
  const support = new Map<string, number>();
  for (const sp of pu.reads) for (const k of sp.indels) support.set(k, (support.get(k) ?? 0) + 1);
  const strong = [...support]
    .filter(([, n]) => n >= 2)
    .map(([key]) => {
      const ev = pu.indels.get(key)!;
      return { anchor: ev.anchor, refLen: ev.ref.length, len: Math.abs(ev.ref.length - ev.alt.length), key };
    })
    .sort((a, b) => a.anchor - b.anchor);
  pu.masks = new Int32Array(2 * pu.reads.length);
  pu.reads.forEach((sp, j) => pu.masks.set(maskFor(sp, strong), 2 * j));
  // keep candidates whose POS is in the region, or outside it within CANDIDATE_MARGIN: those
  // are not emitted here but filter SNVs next to them (region.ts) and take part in the
  // realignment of the sites near them, the same way in every plan
  for (const [k, ev] of pu.indels) if (ev.anchor < start - CANDIDATE_MARGIN || ev.anchor >= end + CANDIDATE_MARGIN) pu.indels.delete(k);
  return pu;
}

/**
 * The second step: the per-base evidence of [start, end), in the kernel or in JS
 * (opts.baseKernel). `drop` (indexes into pu.reads) names reads whose bases count for
 * nothing (their depth still counts): reads the realignment found misaligned (indels.ts).
 */
export function addBaseEvidence(pu: RegionPileup, opts: PileupOptions = {}, file = 'BAM', drop?: ReadonlySet<number>): void {
  const masks = pu.masks.slice();
  if (drop) for (const j of drop) masks[2 * j + 1] = masks[2 * j];
  if ((opts.baseKernel ?? 'wasm') === 'wasm') {
    const minBaseQ = opts.minBaseQ ?? DEFAULT_PILEUP.minBaseQ;
    const passing = pu.reads.map((sp) => sp.rec);
    Object.assign(pu, pileupBases(pu.records, passing, masks, pu.start, pu.end, minBaseQ, LUT, file));
    return;
  }
  const L = pu.end - pu.start;
  pu.count = new Uint32Array(4 * L);
  pu.forward = new Uint32Array(4 * L);
  pu.s1 = new Float32Array(4 * L);
  pu.s2 = new Float32Array(4 * L);
  pu.s3 = new Float32Array(4 * L);
  pu.depth = new Uint32Array(L);
  pu.mq2 = new Float64Array(L);
  scanRecords(pu, 1, '', 0, opts, masks);
}

/**
 * The JS loop over the records: phase 0 collects the reads and their indels, phase 1 counts
 * their bases into the evidence arrays (the reference the kernel's gc_pileup must equal).
 */
function scanRecords(pu: RegionPileup, phase: 0 | 1, refSeq: string, refOff: number, opts: PileupOptions, masks: Int32Array): void {
  const minMapQ = opts.minMapQ ?? DEFAULT_PILEUP.minMapQ;
  const minBaseQ = opts.minBaseQ ?? DEFAULT_PILEUP.minBaseQ;
  const pad = opts.indelPad ?? DEFAULT_PILEUP.indelPad;
  const { start, end, records, count, forward, s1, s2, s3, depth } = pu;
  const mqSq = pu.mq2;
  let readNo = 0;
  for (let ri = 0; ri < records.length; ri++) {
    const r = records[ri];
    const flag = r.readUInt16LE(18);
    if (flag & SKIP_FLAGS) continue;
    const mapq = r[13];
    if (mapq < minMapQ || mapq === 255) continue;
    const nameLen = r[12];
    const nCig = r.readUInt16LE(16);
    const lSeq = r.readInt32LE(20);
    const cigOff = 36 + nameLen;
    const seqOff = cigOff + 4 * nCig;
    const qualOff = seqOff + ((lSeq + 1) >> 1);
    const reverse = (flag & 0x10) !== 0;
    const span: ReadSpan =
      phase === 0 ? { start: r.readInt32LE(8), end: 0, mapq, reverse, rec: ri, qStart: r.readInt32LE(8), qEnd: 0, indels: [] } : pu.reads[readNo++];
    const maskLo = phase === 1 ? masks[2 * (readNo - 1)] : 0;
    const maskHi = phase === 1 ? masks[2 * (readNo - 1) + 1] : 0;
    let rp = span.start;
    let qp = 0;
    const qcap = Math.min(mapq, 99);
    const mq2 = mapq * mapq;
    // index of the first and last ops that consume the query and are aligned (M/=/X)
    let firstM = -1;
    let lastM = -1;
    for (let i = 0; i < nCig; i++) {
      const op = r.readUInt32LE(cigOff + 4 * i) & 0xf;
      if (op === 0 || op === 7 || op === 8) {
        if (firstM < 0) firstM = i;
        lastM = i;
      }
    }
    for (let i = 0; i < nCig; i++) {
      const c = r.readUInt32LE(cigOff + 4 * i);
      const op = c & 0xf;
      const len = c >>> 4;
      if (op === 0 || op === 7 || op === 8) {
        const a = phase === 0 ? 0 : Math.max(rp, start);
        const b = phase === 0 ? 0 : Math.min(rp + len, end);
        for (let x = a; x < b; x++) {
          const qi = qp + (x - rp);
          const code = (r[seqOff + (qi >> 1)] >> (qi & 1 ? 0 : 4)) & 0xf;
          const k = x - start;
          depth[k]++;
          mqSq[k] += mq2;
          const bi = NT16_TO_IDX[code];
          if (bi < 0 || x < maskLo || x >= maskHi) continue;
          const bq = r[qualOff + qi];
          if (bq < minBaseQ || bq === 255) continue;
          const q = bq < qcap ? bq : qcap;
          const j = k * 4 + bi;
          count[j]++;
          if (!reverse) forward[j]++;
          s1[j] += L1[q];
          s2[j] += L2[q];
          s3[j] += L3[q];
        }
        rp += len;
        qp += len;
      } else if (op === 1) {
        if (phase === 0 && i > firstM && i < lastM && rp >= start - pad && rp < end + pad) {
          let ins = '';
          for (let t = 0; t < len; t++) {
            const qi = qp + t;
            ins += NT16[(r[seqOff + (qi >> 1)] >> (qi & 1 ? 0 : 4)) & 0xf];
          }
          if (!ins.includes('N')) {
            const ev = normaliseIndel(refSeq, refOff, rp, 0, ins);
            if (ev) span.indels.push(addIndel(pu, ev));
          }
        }
        qp += len;
      } else if (op === 2) {
        if (phase === 0 && i > firstM && i < lastM && rp >= start - pad && rp < end + pad) {
          const ev = normaliseIndel(refSeq, refOff, rp, len, '');
          if (ev) span.indels.push(addIndel(pu, ev));
        }
        rp += len;
      } else if (op === 3) rp += len;
      else if (op === 4) {
        if (phase === 0) {
          const leading = i < firstM || firstM < 0;
          if (leading) span.qStart = span.start - len;
          else span.qEnd = rp + len;
          if (firstM >= 0 && len >= CLIP_MIN && rp >= start - pad && rp < end + pad) {
            let clip = '';
            for (let t = 0; t < len; t++) {
              const qi = qp + t;
              clip += NT16[(r[seqOff + (qi >> 1)] >> (qi & 1 ? 0 : 4)) & 0xf];
            }
            for (const ev of clipIndels(clip, leading, rp, refSeq, refOff)) {
              const key = addIndel(pu, ev);
              if (!span.indels.includes(key)) span.indels.push(key);
            }
          }
        }
        qp += len;
      }
    }
    if (phase === 0) {
      span.end = rp;
      if (span.qEnd < rp) span.qEnd = rp;
      if (span.qEnd - span.start > pu.maxQEnd) pu.maxQEnd = span.qEnd - span.start;
      if (span.start - span.qStart > pu.maxLeadClip) pu.maxLeadClip = span.start - span.qStart;
      pu.reads.push(span);
    }
  }
}

/** Bases this far (plus the indel's length) from a read end may be explained by an indel. */
export const END_WINDOW = 20;

/**
 * The reference interval [lo, hi) of a read whose bases count as SNV evidence: a read
 * that ends (or starts) within END_WINDOW + length of a candidate indel (seen in ≥ 2
 * reads) it does not carry is often that indel aligned as mismatches, so its bases
 * beyond the indel are left out (a cheap stand-in for BAQ / local realignment).
 */
export function maskFor(span: ReadSpan, strong: { anchor: number; refLen: number; len: number; key: string }[]): [number, number] {
  let lo = span.start;
  let hi = span.end;
  if (strong.length === 0) return [lo, hi];
  // candidates with anchor in [start − 1, end): binary search the first
  let i = 0;
  let j = strong.length;
  while (i < j) {
    const m = (i + j) >> 1;
    if (strong[m].anchor < span.start - 1) i = m + 1;
    else j = m;
  }
  for (; i < strong.length && strong[i].anchor < span.end; i++) {
    const c = strong[i];
    if (span.indels.includes(c.key)) continue;
    const w = END_WINDOW + c.len;
    const locusEnd = c.anchor + c.refLen;
    if (span.end - locusEnd < w && c.anchor + 1 < hi) hi = Math.max(lo, c.anchor + 1);
    if (c.anchor - span.start < w && locusEnd > lo) lo = Math.min(hi, locusEnd);
  }
  return [lo, hi];
}

function addIndel(pu: RegionPileup, ev: IndelEvent): string {
  const key = indelKey(ev);
  if (!pu.indels.has(key)) pu.indels.set(key, ev);
  return key;
}
