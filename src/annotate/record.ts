/**
 * VCF record lines as the annotator reads them: from bytes, with only the fields it needs
 * made into strings, and checked like a full parse would (columns, POS, REF against the
 * reference, ALT, GT). Records no transcript can reach are only checked ("quiet"): most of a
 * VCF, written out as they are.
 */
import { InputError } from '../util/errors.js';
import { type Change, trimAllele } from './consequence.js';
import type { BaseWindow, IndexedFasta } from './fasta.js';

/** One VCF record in flight. */
export interface Rec {
  idx: number;
  /** The line is buf[s, e) (latin1, no line end); strings are made from it only when needed. */
  buf: Buffer;
  s: number;
  e: number;
  /** All columns, split only when the line must be rewritten. */
  cols: string[] | null;
  chrom: string;
  pos: number;
  /** REF as written and upper-cased ('' for a record no transcript can reach: only its bytes are checked). */
  refRaw: string;
  ref: string;
  /** INFO is buf[infoBeg, infoEnd). */
  infoBeg: number;
  infoEnd: number;
  alleles: Array<{ alt: string; ch: Change } | null>;
  /** BCSQ entries (ordered, unique). */
  bcsq: string[];
  csq: string[];
  /** Per sample, the allele index (0 = REF, -1 = missing) on each haplotype; null without genotypes. */
  gt: number[][] | null;
  /** FORMAT/BCSQ per sample: bit 2*i+h set when INFO/BCSQ entry i (i < 15) is on haplotype h (h < 2). */
  hapBits: number[] | null;
}


/** Reads record lines against one reference and the transcripts' reach; keeps per-chromosome state between lines. */
export class RecordParser {
  /** Raw window over the records (REF checks). */
  private recWin: BaseWindow | null = null;

  constructor(
    private readonly fa: IndexedFasta,
    /** `reach` of the transcripts on a chromosome (genemodel.ts: `GeneModel.reacher`). */
    private readonly reacher: (chrom: string) => (beg: number, end: number) => number,
  ) {}

  /** Closes the reference (for a parser that owns it). */
  close(): void {
    this.fa.close();
  }

  /** The record window, moved to hold [b, e] (null when it cannot). */
  private recWindow(chrom: string, b: number, e: number): BaseWindow | null {
    if (this.recWin?.holds(chrom, b, e)) return this.recWin;
    if (e - b > 1 << 18) return null;
    this.recWin = this.fa.window(chrom, b, b + (1 << 20));
    return this.recWin?.holds(chrom, b, e) ? this.recWin : null;
  }

  private lastChrom = '';
  /** `lastChrom` is in the reference (null: not looked up yet). */
  private lastChromKnown: boolean | null = null;
  private readonly tabs = new Int32Array(9);
  /** `model.reach` on `reachChrom`. */
  private reachChrom: string | null = null;
  private reach: (beg: number, end: number) => number = () => -1;
  private lastChromBytes: Buffer = Buffer.alloc(0);

  /**
   * Parses the fields the annotator needs from the bytes of line [s, e) of `b`, validating
   * them like a full parse would. Strings are made only for records a transcript may reach.
   */
  /** (`quietNull`: null instead of a quiet record.) */
  parse(b: Buffer, s: number, e: number, idx: number, lineNo: number, file: string, quietNull = false): Rec | null {
    // tab positions of the first 9 columns, in one pass (-1: absent)
    const tabs = this.tabs;
    let nt = 0;
    for (let i = s; i < e && nt < 9; i++) if (b[i] === 9) tabs[nt++] = i;
    while (nt < 9) tabs[nt++] = -1;
    const t0 = tabs[0], t1 = tabs[1], t2 = tabs[2], t3 = tabs[3], t4 = tabs[4], t6 = tabs[6], t7 = tabs[7], t8 = tabs[8];
    if (t6 < 0) {
      let cols = 1;
      for (let i = s; i < e; i++) if (b[i] === 9) cols++;
      throw new InputError('bad_vcf', `expected at least 8 columns, found ${cols}`, { file, record: idx, line: lineNo });
    }
    let pos1 = 0;
    for (let i = t0 + 1; i < t1; i++) {
      const dg = b[i] - 48;
      if (dg < 0 || dg > 9 || i - t0 > 15) {
        pos1 = -1;
        break;
      }
      pos1 = pos1 * 10 + dg;
    }
    if (pos1 < 1) {
      const posText = b.toString('latin1', t0 + 1, t1);
      pos1 = Number(posText);
      if (!Number.isInteger(pos1) || pos1 < 1) throw new InputError('bad_vcf', `bad POS ${JSON.stringify(posText)}`, { file, record: idx, line: lineNo, field: 'POS' });
    }
    // REF: upper-case A, C, G, T, N (any case as written)
    const r0 = t2 + 1, refLen = t3 - r0;
    let refUpper = refLen > 0;
    for (let i = r0; i < t3; i++) {
      const c = b[i];
      if (c !== 65 && c !== 67 && c !== 71 && c !== 84 && c !== 78) {
        refUpper = false;
        break;
      }
    }
    if (!refUpper) {
      const raw = b.toString('latin1', r0, t3);
      if (!/^[ACGTN]+$/.test(raw.toUpperCase())) throw new InputError('bad_vcf', `bad REF ${JSON.stringify(raw)}`, { file, record: idx, line: lineNo, field: 'REF' });
    }
    let chrom = this.lastChrom;
    const cb = this.lastChromBytes;
    let same = t0 - s === cb.length;
    for (let i = 0; same && i < cb.length; i++) same = b[s + i] === cb[i];
    if (!same || this.lastChromKnown === null) {
      this.lastChrom = chrom = b.toString('latin1', s, t0);
      this.lastChromBytes = Buffer.from(b.subarray(s, t0));
      this.lastChromKnown = this.fa.has(chrom);
    }
    const pos = pos1 - 1;
    const infoEnd = t7 < 0 ? e : t7;
    let alleles: Rec['alleles'] = NO_ALLELES;
    let refRaw = '', ref = '';
    /** No transcript can reach the record (and it has no symbolic allele): it is only checked, and written as it is. */
    let quiet = true;
    let nAlt = 0;
    if (this.lastChromKnown) {
      const rw = this.recWin;
      const w = rw !== null && rw.name === chrom && pos >= rw.beg && pos + refLen - 1 <= rw.end ? rw : this.recWindow(chrom, pos, pos + refLen - 1);
      let match = w !== null;
      for (let i = 0; match && i < refLen; i++) {
        const c = b[r0 + i];
        match = w!.code(pos + i) === (c >= 97 && c <= 122 ? c - 32 : c);
      }
      if (!match) {
        const raw = b.toString('latin1', r0, t3);
        const up = raw.toUpperCase();
        const real = this.fa.fetch(chrom, pos, pos + refLen - 1);
        for (let i = 0; i < real.length; i++) {
          if (up[i] !== 'N' && real[i] !== 'N' && up[i] !== real[i]) {
            throw new InputError('ref_mismatch', `REF ${raw} does not match the reference (${real}) at ${chrom}:${pos1}`, { file, record: idx, line: lineNo, field: 'REF' });
          }
        }
      }
      const hasAlt = !(t4 === t3 + 2 && b[t3 + 1] === 46 /* . */);
      let symbolic = false;
      for (let i = t3 + 1; i < t4; i++) {
        if (b[i] === 60 /* < */) {
          symbolic = true;
          break;
        }
      }
      // every trimmed allele lies within [pos - 1, pos + REF length]
      if (this.reachChrom !== chrom) {
        this.reachChrom = chrom;
        this.reach = this.reacher(chrom);
      }
      quiet = !symbolic && this.reach(pos - 1, pos + refLen) < 0;
      if (quiet && hasAlt) {
        nAlt = 1;
        for (let i = t3 + 1; i < t4; i++) if (b[i] === 44 /* , */) nAlt++;
      }
      if (!quiet) {
        refRaw = refLen === 1 ? LATIN1_CHAR[b[r0]] : b.toString('latin1', r0, t3);
        ref = refUpper ? refRaw : refRaw.toUpperCase();
      }
      if (!quiet && hasAlt) {
        // ALT values one by one, from the bytes (most are one base: a shared one-character string); one ALT makes an array of one
        let list: Rec['alleles'] | null = null;
        for (let q = t3 + 1; q <= t4; ) {
          let c = q;
          while (c < t4 && b[c] !== 44 /* , */) c++;
          const a0 = c - q === 1 ? LATIN1_CHAR[b[q]] : b.toString('latin1', q, c);
          const one = q === t3 + 1 && c === t4;
          q = c + 1;
          const al = alleleOf(a0, pos, ref);
          if (one) list = [al];
          else (list ??= []).push(al);
        }
        alleles = list!;
      } else if (!quiet) alleles = [];
    }
    if (!quiet) nAlt = alleles.length;
    let gt: number[][] | null = null;
    // FORMAT and at least one sample column, FORMAT starting with GT
    if (t8 >= 0 && b[t7 + 1] === 71 && b[t7 + 2] === 84 && (t7 + 3 === t8 || b[t7 + 3] === 58)) {
      // a quiet record's genotypes are checked, not kept (no haplotype of it carries a consequence): its `gt` stays null
      let q = t8 + 1;
      for (;;) {
        const tab = tabAt(b, q, e);
        const end = tab < 0 ? e : tab;
        let c = q;
        while (c < end && b[c] !== 58 /* : */) c++;
        // diploid single-digit genotypes without making a string
        let g: number[] | null = null;
        if (c - q === 3 && (b[q + 1] === 124 || b[q + 1] === 47)) {
          const x = gtDigit(b[q]), y = gtDigit(b[q + 2]);
          if (x > -2 && y > -2 && x <= nAlt && y <= nAlt) g = quiet ? CHECKED : [x, y];
        }
        g ??= parseGt(b.toString('latin1', q, c), nAlt, file, idx, lineNo);
        if (!quiet) {
          // one sample: an array of one
          if (tab < 0 && q === t8 + 1) gt = [g];
          else (gt ??= []).push(g);
        }
        if (tab < 0) break;
        q = tab + 1;
      }
    }
    if (quiet && quietNull) return null;
    // entries start as a shared empty list (note/addCsq replace it; a quiet record gets none)
    return { idx, buf: b, s, e, cols: null, chrom, pos, refRaw, ref, infoBeg: t6 + 1, infoEnd, alleles, bcsq: NO_ENTRIES, csq: NO_ENTRIES, gt, hapBits: null };
  }
}

/** One ALT value as a record allele (null: the REF itself, or not bases). */
function alleleOf(a0: string, pos: number, ref: string): Rec['alleles'][number] {
  if (a0.charCodeAt(0) === 60 /* < */ && /^<(INS|DUP|DEL)/.test(a0)) return { alt: a0, ch: { beg: pos, end: pos, ins: '' } };
  const a = isBases(a0) ? a0 : a0.toUpperCase();
  if (a === ref || (a === a0 ? !isBases(a) : !/^[ACGTN]+$/.test(a))) return null;
  return { alt: a, ch: trimAllele(pos, ref, a) };
}

/** The one-character string of each latin1 code. */
const LATIN1_CHAR: string[] = Array.from({ length: 256 }, (_, c) => String.fromCharCode(c));

/** Index of the first tab in b[from, end), or -1. */
function tabAt(b: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) if (b[i] === 9) return i;
  return -1;
}

const NO_ALLELES: Rec['alleles'] = Object.freeze([]) as unknown as Rec['alleles'];
export const NO_ENTRIES: string[] = Object.freeze([]) as unknown as string[];
/** Stands for a genotype that was checked and is not kept. */
const CHECKED: number[] = Object.freeze([]) as unknown as number[];

/** Allele index of one GT character: '.' → -1, a digit → its value, else -2. */
const gtDigit = (c: number) => (c === 46 ? -1 : c >= 48 && c <= 57 ? c - 48 : -2);


function isBases(s: string): boolean {
  if (!s.length) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 65 && c !== 67 && c !== 71 && c !== 84 && c !== 78) return false;
  }
  return true;
}


/** Allele indexes of one GT value (haploid or diploid single digits take a fast path). */
function parseGt(v: string, nAlt: number, file: string, idx: number, lineNo: number): number[] {
  const dig = gtDigit;
  let a: number[] | null = null;
  if (v.length === 3 && (v.charCodeAt(1) === 124 || v.charCodeAt(1) === 47)) {
    const x = dig(v.charCodeAt(0)), y = dig(v.charCodeAt(2));
    if (x > -2 && y > -2) a = [x, y];
  } else if (v.length === 1) {
    const x = dig(v.charCodeAt(0));
    if (x > -2) a = [x];
  }
  a ??= v.split(/[|/]/).map((x) => (x === '.' ? -1 : Number(x)));
  if (a.some((x) => !Number.isInteger(x) || x > nAlt)) {
    throw new InputError('bad_vcf', `bad genotype ${JSON.stringify(v)}`, { file, record: idx, line: lineNo, field: 'GT' });
  }
  return a;
}

