/**
 * Region plan for calling: the genome (the @SQ references, or the intervals of a BED)
 * cut into 0-based half-open regions sized for the pool. Regions never overlap, so a
 * variant is emitted by exactly one region: the one containing its POS (each region
 * task reads a padding around its region for reads and indels crossing the boundary,
 * but only emits records whose POS lies inside it).
 */
import { readFileSync } from 'node:fs';
import { InputError } from '../util/errors.js';

export interface CallRegion {
  chrom: string;
  /** Index of `chrom` in the BAM's @SQ list. */
  refId: number;
  /** 0-based, inclusive. */
  start: number;
  /** 0-based, exclusive. */
  end: number;
}

export interface RegionPlanOptions {
  /** Worker threads the plan is for (default 1). */
  threads?: number;
  /** Regions per thread aimed at, for load balance (default 4). */
  perThread?: number;
  /** Smallest region (default 50 kb) and largest (default 1 Mb). */
  minSize?: number;
  maxSize?: number;
  /** Restrict to these intervals (e.g. from a BED); default: every reference, whole. */
  targets?: { chrom: string; start: number; end: number }[];
}

/** Parses a BED (chrom, start, end; 0-based half-open), merging overlaps per chrom. */
export function parseBed(text: string, file = 'BED'): { chrom: string; start: number; end: number }[] {
  const out: { chrom: string; start: number; end: number }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    if (!line || line.startsWith('#') || line.startsWith('track') || line.startsWith('browser')) continue;
    const f = line.split('\t');
    const start = Number(f[1]);
    const end = Number(f[2]);
    if (f.length < 3 || !f[0] || !Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start) {
      throw new InputError('BED_BAD_LINE', 'expected chrom<TAB>start<TAB>end with 0 <= start <= end', { file, line: i + 1 });
    }
    if (end > start) out.push({ chrom: f[0], start, end });
  }
  return out;
}

export function readBed(path: string): { chrom: string; start: number; end: number }[] {
  return parseBed(readFileSync(path, 'utf8'), path);
}

/** Cuts the references (in @SQ order) or the targets into regions. */
export function planRegions(refs: { name: string; length: number }[], opts: RegionPlanOptions = {}): CallRegion[] {
  const threads = Math.max(1, opts.threads ?? 1);
  const minSize = opts.minSize ?? 50_000;
  const maxSize = opts.maxSize ?? 1_000_000;
  const ids = new Map(refs.map((r, i) => [r.name, i]));
  let intervals: { chrom: string; start: number; end: number }[];
  if (opts.targets) {
    for (const t of opts.targets) {
      const id = ids.get(t.chrom);
      if (id === undefined) throw new InputError('REGION_UNKNOWN_CONTIG', `region contig ${t.chrom} is not in the BAM header`, { field: 'chrom' });
      if (t.end > refs[id].length) {
        throw new InputError('REGION_OUT_OF_RANGE', `region ${t.chrom}:${t.start + 1}-${t.end} ends past the contig length ${refs[id].length}`);
      }
    }
    // sort by @SQ order then start; merge overlaps
    const sorted = [...opts.targets].sort((a, b) => ids.get(a.chrom)! - ids.get(b.chrom)! || a.start - b.start);
    intervals = [];
    for (const t of sorted) {
      const last = intervals[intervals.length - 1];
      if (last && last.chrom === t.chrom && t.start <= last.end) last.end = Math.max(last.end, t.end);
      else intervals.push({ ...t });
    }
  } else {
    intervals = refs.filter((r) => r.length > 0).map((r) => ({ chrom: r.name, start: 0, end: r.length }));
  }
  const total = intervals.reduce((s, t) => s + (t.end - t.start), 0);
  const target = Math.min(maxSize, Math.max(minSize, Math.ceil(total / (threads * (opts.perThread ?? 4)))));
  const out: CallRegion[] = [];
  for (const t of intervals) {
    const len = t.end - t.start;
    const n = Math.max(1, Math.round(len / target));
    const step = Math.ceil(len / n);
    for (let s = t.start; s < t.end; s += step) {
      out.push({ chrom: t.chrom, refId: ids.get(t.chrom)!, start: s, end: Math.min(t.end, s + step) });
    }
  }
  return out;
}
