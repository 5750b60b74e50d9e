/**
 * Variant consequences on transcripts, written from the biology:
 *   1. a variant is trimmed to the bases it really changes;
 *   2. its place in the transcript is found (exon/CDS/UTR, intron, splice site/region);
 *   3. when it touches the coding sequence, the alternate CDS is built (all variants of
 *      one haplotype that share codons in this transcript applied together), both
 *      versions are translated over the affected codons and compared.
 * Terms use the Sequence Ontology names in the short spelling of BCSQ
 * (e.g. `missense` for SO:0001583 missense_variant).
 */
import type { Interval, Transcript } from './genemodel.js';

/** Terms in the order they are joined with '&'. */
export const TERM_ORDER = [
  'intergenic', 'synonymous', 'missense', 'stop_lost', 'stop_gained', 'inframe_deletion', 'inframe_insertion', 'frameshift',
  'splice_acceptor', 'splice_donor', 'start_lost', 'splice_region', 'stop_retained', '5_prime_utr', '3_prime_utr', 'non_coding',
  'intron', 'inframe_altering', 'start_retained', 'coding_sequence', 'feature_elongation', 'feature_truncation',
] as const;
export type Term = (typeof TERM_ORDER)[number];

const TERM_BIT = new Map<Term, number>(TERM_ORDER.map((t, i) => [t, 1 << i]));
/** Joined terms by bit set (TERM_ORDER has fewer than 31 terms); few distinct sets occur. */
const joined = new Map<number, string>();

/** The set of terms as a bit set (TERM_ORDER positions). */
export function termMask(ts: Iterable<Term>): number {
  let m = 0;
  for (const t of ts) m |= TERM_BIT.get(t) ?? 0;
  return m;
}

export function joinTerms(ts: Iterable<Term>): string {
  const m = termMask(ts);
  let got = joined.get(m);
  if (got === undefined) {
    got = TERM_ORDER.filter((t) => m & TERM_BIT.get(t)!).join('&');
    joined.set(m, got);
  }
  return got;
}

/** The changed part of an allele: REF bases [beg, end] (end = beg-1 for a pure insertion) replaced by `ins`. */
export interface Change {
  beg: number;
  end: number;
  ins: string;
}

export function trimAllele(pos: number, ref: string, alt: string): Change {
  let b = 0;
  while (b < ref.length && b < alt.length && ref[b] === alt[b]) b++;
  let e = 0;
  while (e < ref.length - b && e < alt.length - b && ref[ref.length - 1 - e] === alt[alt.length - 1 - e]) e++;
  return { beg: pos + b, end: pos + ref.length - 1 - e, ins: alt.slice(b, alt.length - e) };
}

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A', N: 'N' };
/** Complement by character code (anything but A, C, G, T, N → N). */
const COMP_CODE = (() => {
  const t = new Uint8Array(256).fill(78);
  t[65] = 84;
  t[67] = 71;
  t[71] = 67;
  t[84] = 65;
  return t;
})();
let revBytes = Buffer.allocUnsafe(4096);
export function revcomp(s: string): string {
  const n = s.length;
  if (n <= 16) {
    let o = '';
    for (let i = n - 1; i >= 0; i--) o += COMP[s[i]] ?? 'N';
    return o;
  }
  if (revBytes.length < n) revBytes = Buffer.allocUnsafe(2 * n);
  const out = revBytes;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(n - 1 - i);
    out[i] = c < 256 ? COMP_CODE[c] : 78;
  }
  return out.toString('latin1', 0, n);
}

const BASES = 'TCAG';
const AA = 'FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG';
export function translateCodon(c: string): string {
  const a = BASES.indexOf(c[0]), b = BASES.indexOf(c[1]), d = BASES.indexOf(c[2]);
  if (a < 0 || b < 0 || d < 0) return 'X';
  return AA[a * 16 + b * 4 + d];
}
/** Index of a base in BASES by character code (-1: not a base). */
const BASE_INDEX = (() => {
  const t = new Int8Array(256).fill(-1);
  for (let i = 0; i < 4; i++) t[BASES.charCodeAt(i)] = i;
  return t;
})();
const baseIndex = (c: number) => (c < 256 ? BASE_INDEX[c] : -1);

/** Amino acids of a long translation, as bytes (decoded once instead of a string per residue). */
let aaBytes = Buffer.allocUnsafe(1024);

/** Translation of the whole codons of s[from, to) (as translateCodon on each, without slicing them out). */
export function translate(s: string, untilStop = false, from = 0, to = s.length): string {
  if (to - from <= 12) {
    let o = '';
    for (let i = from; i + 3 <= to; i += 3) {
      const a = baseIndex(s.charCodeAt(i)), b = baseIndex(s.charCodeAt(i + 1)), d = baseIndex(s.charCodeAt(i + 2));
      const aa = a < 0 || b < 0 || d < 0 ? 'X' : AA[a * 16 + b * 4 + d];
      o += aa;
      if (untilStop && aa === '*') break;
    }
    return o;
  }
  const n = Math.floor((to - from) / 3);
  if (aaBytes.length < n) aaBytes = Buffer.allocUnsafe(2 * n);
  const out = aaBytes;
  let o = 0;
  for (let i = from; i + 3 <= to; i += 3) {
    const a = baseIndex(s.charCodeAt(i)), b = baseIndex(s.charCodeAt(i + 1)), d = baseIndex(s.charCodeAt(i + 2));
    const c = a < 0 || b < 0 || d < 0 ? 88 /* X */ : AA_CODES[a * 16 + b * 4 + d];
    out[o++] = c;
    if (untilStop && c === 42 /* * */) break;
  }
  return out.toString('latin1', 0, o);
}
const AA_CODES = Uint8Array.from(AA, (c) => c.charCodeAt(0));

/** Reference access: upper-case bases of [beg, end] (0-based inclusive). */
export type FetchSeq = (chrom: string, beg: number, end: number) => string;

/** A transcript with its spliced coding sequence prepared. */
export class TxContext {
  /** Coding segments in transcript order. */
  readonly segs: Interval[];
  /** Offset of each segment's first base (transcript order) in the phase-trimmed CDS; may be negative for the first. */
  readonly segOff: number[];
  readonly phase: number;
  /** Phase-trimmed CDS (transcript orientation), whole codons plus possibly a partial tail. */
  readonly cds: string;
  /** Transcript sequence downstream of the CDS (3' UTR exons), transcript orientation. */
  readonly tail: string;
  /** CDS begins with a start codon (not 5'-incomplete). */
  readonly hasStart: boolean;
  /** Some coding segments overlap (their common bases are in `cds` twice, once per segment). */
  readonly overlappingSegs: boolean;
  constructor(readonly tx: Transcript, fetch: FetchSeq) {
    const fwd = tx.strand === '+';
    this.segs = fwd ? tx.cds.map((c) => ({ beg: c.beg, end: c.end })) : [...tx.cds].reverse().map((c) => ({ beg: c.beg, end: c.end }));
    this.phase = fwd ? (tx.cds[0]?.phase ?? 0) : (tx.cds[tx.cds.length - 1]?.phase ?? 0);
    this.segOff = [];
    let off = -this.phase;
    let seq = '';
    for (const s of this.segs) {
      this.segOff.push(off);
      off += s.end - s.beg + 1;
      const g = fetch(tx.chrom, s.beg, s.end);
      seq += fwd ? g : revcomp(g);
    }
    this.cds = seq.slice(this.phase);
    let tail = '';
    if (this.segs.length) {
      const last = this.segs[this.segs.length - 1];
      const down = fwd ? tx.exons.filter((e) => e.end > last.end) : [...tx.exons].reverse().filter((e) => e.beg < last.beg);
      for (const e of down) {
        const b = fwd ? Math.max(e.beg, last.end + 1) : e.beg;
        const en = fwd ? e.end : Math.min(e.end, last.beg - 1);
        const g = fetch(tx.chrom, b, en);
        tail += fwd ? g : revcomp(g);
      }
    }
    this.tail = tail;
    this.hasStart = this.phase === 0 && this.cds.startsWith('ATG');
    this.overlappingSegs = tx.cds.some((c, i) => i > 0 && c.beg <= tx.cds[i - 1].end);
  }

  /** Index of the coding segment containing genomic `pos`, or -1. */
  segOf(pos: number): number {
    for (let i = 0; i < this.segs.length; i++) if (pos >= this.segs[i].beg && pos <= this.segs[i].end) return i;
    return -1;
  }

  /** Offset in the phase-trimmed CDS of genomic `pos` (must be coding). */
  cdsOffset(pos: number, seg = this.segOf(pos)): number {
    const s = this.segs[seg];
    return this.segOff[seg] + (this.tx.strand === '+' ? pos - s.beg : s.end - pos);
  }

  /** The CDS ends with a stop codon. */
  get hasStop(): boolean {
    const c = this.cds.slice(-3);
    return c === 'TAA' || c === 'TAG' || c === 'TGA';
  }

  get cdsBeg(): number {
    return this.tx.cds[0].beg;
  }
  get cdsEnd(): number {
    return this.tx.cds[this.tx.cds.length - 1].end;
  }
}

/** An edit of the CDS: [c1, c2) replaced by `ins` (transcript orientation). */
interface CdsEdit {
  c1: number;
  c2: number;
  ins: string;
}

/**
 * The CDS edit of a raw VCF allele (REF span replaced by ALT, untrimmed so that the
 * codon window covers the whole record) when REF lies within one coding segment.
 */
export function cdsEdit(ctx: TxContext, pos: number, ref: string, alt: string): CdsEdit | null {
  const fwd = ctx.tx.strand === '+';
  const end = pos + ref.length - 1;
  const s = ctx.segOf(pos);
  if (s < 0 || end > ctx.segs[s].end) return null;
  const a = ctx.cdsOffset(pos, s), b = ctx.cdsOffset(end, s);
  return fwd ? { c1: a, c2: b + 1, ins: alt } : { c1: b, c2: a + 1, ins: revcomp(alt) };
}

/**
 * With overlapping coding segments (`TxContext.overlappingSegs`): the edits of a raw allele
 * in the later copies of the bases it changes, one per further segment that holds the whole
 * REF (`cdsEdit` gives the first). Each changes its own codon, as bcftools csq reports it.
 */
export function laterCopyEdits(ctx: TxContext, pos: number, ref: string, alt: string): CdsEdit[] {
  const fwd = ctx.tx.strand === '+';
  const end = pos + ref.length - 1;
  const out: CdsEdit[] = [];
  for (let s = ctx.segOf(pos) + 1; s > 0 && s < ctx.segs.length; s++) {
    if (pos < ctx.segs[s].beg || end > ctx.segs[s].end) continue;
    const a = ctx.cdsOffset(pos, s), b = ctx.cdsOffset(end, s);
    out.push(fwd ? { c1: a, c2: b + 1, ins: alt } : { c1: b, c2: a + 1, ins: revcomp(alt) });
  }
  return out;
}

function overlaps(b: number, e: number, x: number, y: number): boolean {
  return b <= y && x <= e;
}

/** Whether a change touches [x, y]: a deletion/substitution overlaps it; an insertion has a flanking base in it. */
function touches(ch: Change, x: number, y: number): boolean {
  if (ch.end >= ch.beg) return overlaps(ch.beg, ch.end, x, y);
  return overlaps(ch.beg - 1, ch.beg, x, y);
}

/** An insertion lies inside [x, y] (both flanking bases in it). */
function within(ch: Change, x: number, y: number): boolean {
  if (ch.end >= ch.beg) return overlaps(ch.beg, ch.end, x, y);
  return ch.beg - 1 >= x && ch.beg <= y;
}

/** Splice and exon-structure terms of a change on a transcript. */
export function spliceTerms(tx: Transcript, ch: Change): Set<Term> {
  const t = new Set<Term>();
  const fwd = tx.strand === '+';
  forEachSpliceGap(tx, (ib, ie, left, right) => intronEndTerms(t, ch, fwd, ib, ie, left, right));
  // a deletion or substitution over the essential site is reported as that only (a single base
  // that is both, at a tiny intron, keeps both)
  if (ch.end > ch.beg && (t.has('splice_acceptor') || t.has('splice_donor'))) t.delete('splice_region');
  if (tx.cdsJunctions) junctionTerms(tx.cdsJunctions, fwd, ch, t);
  return t;
}

/**
 * The gaps whose exon edges splice, as f(ib, ie, left, right): every intron (both ends),
 * and for a transcript whose GFF row starts before its first exon row or ends after its
 * last one (`edgeJunctions`), the stretch before that first exon (its right end only) or
 * after that last exon (its left end only); the transcript's own ends do not splice.
 */
function forEachSpliceGap(tx: Transcript, f: (ib: number, ie: number, left: boolean, right: boolean) => void): void {
  const ex = tx.exons;
  for (let i = 0; i + 1 < ex.length; i++) {
    const ib = ex[i].end + 1, ie = ex[i + 1].beg - 1;
    if (ie >= ib) f(ib, ie, true, true);
  }
  const edges = tx.edgeJunctions;
  if (edges) {
    if (edges & 1) f(tx.beg, ex[0].beg - 1, false, true);
    if (edges & 2) f(ex[ex.length - 1].end + 1, tx.end, true, false);
  }
}

/**
 * Splice terms of a change at the ends of intron [ib, ie] that border an exon (`left`: the
 * exon before ib; `right`: the exon after ie). The windows are not clipped to the intron: in
 * an intron of 1-8 bases they reach into the exons around it (as bcftools csq reports: e.g.
 * splice_region 6 bases before a 2-base intron).
 */
function intronEndTerms(t: Set<Term>, ch: Change, fwd: boolean, ib: number, ie: number, left: boolean, right: boolean): void {
  const ins = ch.end < ch.beg;
  // left end of intron: donor on '+', acceptor on '-'; an insertion between p-1 and p hits a
  // site when it is inside it or at its exon-facing edge
  if (left && (ins ? ch.beg - 1 >= ib - 1 && ch.beg <= ib + 1 : touches(ch, ib, ib + 1))) t.add(fwd ? 'splice_donor' : 'splice_acceptor');
  if (right && (ins ? ch.beg - 1 >= ie - 1 && ch.beg <= ie + 1 : touches(ch, ie - 1, ie))) t.add(fwd ? 'splice_acceptor' : 'splice_donor');
  // an insertion counts for the region by its anchor (the base before it)
  const r = ins ? { beg: ch.beg - 1, end: ch.beg - 1, ins: '' } : ch;
  if ((left && (touches(r, ib + 2, ib + 7) || touches(r, ib - 3, ib - 1))) || (right && (touches(r, ie - 7, ie - 2) || touches(r, ie + 1, ie + 3)))) t.add('splice_region');
}

/**
 * Splice terms at junctions of coding segments that overlap or abut (no intron), as
 * bcftools csq reports them (measured with --force at overlaps of 0 to 4 bases, both
 * strands): the base before the downstream segment's first base is the splice site
 * (acceptor on '+', donor on '-'), and the last 3 bases of the upstream segment and the
 * first 3 of the downstream one are splice region; a site base in them has both terms.
 */
function junctionTerms(j: number[], fwd: boolean, ch: Change, t: Set<Term>): void {
  const ins = ch.end < ch.beg;
  // an insertion counts by its anchor (the base before it)
  const r = ins ? { beg: ch.beg - 1, end: ch.beg - 1, ins: '' } : ch;
  for (let i = 0; i < j.length; i += 2) {
    const aEnd = j[i], bBeg = j[i + 1];
    if (!ins && touches(r, bBeg - 1, bBeg - 1)) t.add(fwd ? 'splice_acceptor' : 'splice_donor');
    if (touches(r, aEnd - 2, aEnd) || touches(r, bBeg, bBeg + 2)) t.add('splice_region');
  }
}

/**
 * Terms of a symbolic insertion (<INS>: no sequence to place) after the base at `pos` on
 * transcript `tx`, or null when it does not reach it. bcftools csq places such an event by
 * its position alone, in genomic terms on both strands, and this follows what it reports
 * (checked against its output at every position around every exon edge, both strands):
 *  - it reaches a coding transcript from the base before its first base to its last base
 *    (a non-coding one from its first base to the base before its last), and gets
 *    coding_sequence or a UTR term from the base after `pos`;
 *  - around an intron [ib, ie] (E = ib − 1, S = ie + 1 the exon bases next to it): the
 *    intron's first site when pos is ib or ib + 1, its last site when pos is ie − 1;
 *    splice_region when pos is in [E − 2, E], [ib + 2, ib + 6], [ie − 7, ie − 2], ie or
 *    [S, S + 3]; intron when pos is in [ib + 7, ie − 9];
 *  - a non-coding transcript gets non_coding alone.
 */
export function symbolicInsertionTerms(tx: Transcript, pos: number): Set<Term> | null {
  const t = new Set<Term>();
  if (!tx.coding) {
    if (pos < tx.beg || pos >= tx.end) return null;
    t.add('non_coding');
    return t;
  }
  if (pos < tx.beg - 1 || pos > tx.end) return null;
  const after = pos + 1;
  const inIv = (ivs: Interval[], p: number) => ivs.some((iv) => p >= iv.beg && p <= iv.end);
  if (inIv(tx.cds, after)) t.add('coding_sequence');
  else if (inIv(tx.utr5, after)) t.add('5_prime_utr');
  else if (inIv(tx.utr3, after)) t.add('3_prime_utr');
  const fwd = tx.strand === '+';
  const inR = (x: number, y: number) => pos >= x && pos <= y;
  // each exon edge on its own: windows are not cut at the far side of an intron of a few bases
  forEachSpliceGap(tx, (ib, ie, left, right) => {
    if (left) {
      const E = ib - 1;
      if (inR(ib, ib + 1)) t.add(fwd ? 'splice_donor' : 'splice_acceptor');
      else if (inR(E - 2, E) || inR(ib + 2, ib + 6)) t.add('splice_region');
    }
    if (right) {
      const S = ie + 1;
      if (pos === ie - 1) t.add(fwd ? 'splice_acceptor' : 'splice_donor');
      else if (inR(ie - 7, ie - 2) || pos === ie || inR(S, S + 3)) t.add('splice_region');
    }
    if (left && right && inR(ib + 7, ie - 9)) t.add('intron');
  });
  return t;
}

function inAny(ivs: Interval[], ch: Change): boolean {
  return ivs.some((iv) => touches(ch, iv.beg, iv.end));
}
function insideAny(ivs: Interval[], ch: Change): boolean {
  return ivs.some((iv) => within(ch, iv.beg, iv.end));
}

/**
 * Local (one change at a time) structural classification of a transcript hit:
 * which parts it touches. Coding effects are computed separately.
 */
export interface Placement {
  exonic: boolean;
  coding: boolean;
  utr5: boolean;
  utr3: boolean;
  splice: Set<Term>;
  /** Reaches outside the transcript. */
  outside: boolean;
}

/** Structural placement of a change (REF span, or an insertion point between beg-1 and beg). */
export function place(tx: Transcript, ch: Change): Placement {
  const ins = ch.end < ch.beg;
  const exonic = ins ? insideAny(tx.exons, ch) : inAny(tx.exons, ch);
  const coding = tx.coding && (ins ? insideAny(tx.cds, ch) : inAny(tx.cds, ch));
  const utr = (ivs: Interval[]) => (ins ? inAny(ivs, ch) && !coding : inAny(ivs, ch));
  return {
    exonic,
    coding,
    utr5: utr(tx.utr5),
    utr3: utr(tx.utr3),
    splice: spliceTerms(tx, ch),
    outside: !ins && (ch.beg < tx.beg || ch.end > tx.end),
  };
}

/** Protein-level comparison of a set of CDS edits (one haplotype). */
export function codingEffect(ctx: TxContext, edits: CdsEdit[], altShift = 0): { terms: Set<Term>; aa: string } | null {
  if (!edits.length) return null;
  const R = ctx.cds;
  const es = edits.length === 1 ? edits : [...edits].sort((a, b) => a.c1 - b.c1);
  // the altered CDS is R[0, c1) followed by `rest` (kept as pieces: only windows of it are made)
  const rest = new AltPieces(R);
  let p = 0;
  for (let i = 0; i < es.length; i++) {
    const e = es[i];
    if (e.c1 < p) return null; // overlapping edits on one haplotype
    if (i > 0) rest.range(Math.max(0, p), Math.max(0, e.c1));
    rest.text(e.ins);
    p = e.c2;
  }
  rest.range(p < 0 ? Math.max(0, R.length + p) : p, R.length);
  const c1 = Math.max(0, es[0].c1);
  let c2 = es[0].c2;
  for (let i = 1; i < es.length; i++) if (es[i].c2 > c2) c2 = es[i].c2;
  const delta = c1 + rest.length - R.length;
  /** The altered CDS from `from` (at most c1), `len` bases of it at most. */
  const alt = (from: number, len: number) => (len <= c1 - from ? R.slice(from, from + Math.max(0, len)) : R.slice(from, c1) + rest.take(len - (c1 - from)));
  const terms = new Set<Term>();
  const isIndel = es.some((e) => e.ins.length !== e.c2 - e.c1);
  // first codon: for a pure insertion at a codon boundary, the codon before it
  let k1 = Math.floor(c1 / 3);
  if (c2 === c1 && c1 % 3 === 0 && c1 > 0) k1--;
  if (delta % 3 !== 0) {
    terms.add('frameshift');
    const refAA = translate(R, true, 3 * k1);
    // translated until a stop: usually near, so a window is tried before the whole rest
    let altAA = translate(alt(3 * k1, 600), true);
    if (altAA.length === 200 && altAA[199] !== '*') altAA = translate(alt(3 * k1, Infinity), true);
    // a frameshift starting in the stop codon keeps or loses it
    if (refAA[0] === '*') terms.add(altAA[0] === '*' ? 'stop_retained' : 'stop_lost');
    return { terms, aa: `${k1 + 1}${refAA}>${k1 + 1 + altShift}${altAA}` };
  }
  const k2 = c2 > c1 ? Math.floor((c2 - 1) / 3) : k1;
  const refWin = R.slice(3 * k1, 3 * (k2 + 1));
  const altWin = alt(3 * k1, Math.max(0, 3 * (k2 + 1) + delta - 3 * k1));
  const refAA = translate(refWin);
  const altAA = translate(altWin);
  // was the frame open between the first and the last edit (compensating frameshifts)?
  let run = 0;
  let opened = false;
  for (const e of es.slice(0, -1)) {
    run += e.ins.length - (e.c2 - e.c1);
    if (run % 3 !== 0) opened = true;
  }
  const refStop = refAA.indexOf('*');
  const altStop0 = altAA.indexOf('*');
  if (opened && altStop0 >= 0 && refStop < 0) {
    // a stop appears while the frame is shifted: the rest is not translated
    terms.add('frameshift');
    terms.add('stop_gained');
    return { terms, aa: `${k1 + 1}${refAA}>${k1 + 1 + altShift}${altAA.slice(0, altStop0 + 1)}` };
  }
  if (isIndel) {
    if (delta > 0) terms.add('inframe_insertion');
    else if (delta < 0) terms.add('inframe_deletion');
    else {
      terms.add('inframe_altering');
      if (refAA !== altAA) terms.add('missense');
    }
  }
  const altStop = altAA.indexOf('*');
  if (refStop >= 0 && altStop < 0) terms.add('stop_lost');
  else if (altStop >= 0 && refStop < 0) terms.add('stop_gained');
  if (k1 === 0 && ctx.hasStart) {
    if (altAA[0] !== 'M') terms.add('start_lost');
  }
  if (!isIndel) {
    if (refAA === altAA) {
      // a stop inside the CDS (not its last codon, e.g. a slippage model) kept: bcftools calls it synonymous
      if (refStop >= 0) terms.add(3 * (k1 + refStop) + 3 >= R.length ? 'stop_retained' : 'synonymous');
      else terms.add('synonymous');
    } else if (!terms.has('stop_lost') && !terms.has('stop_gained') && !terms.has('start_lost')) terms.add('missense');
  }
  // a new stop ends the protein: what follows it is not shown
  const altShown = altStop >= 0 && refStop < 0 && altStop + 1 < altAA.length ? altAA.slice(0, altStop + 1) : altAA;
  const aa = refAA === altAA ? `${k1 + 1}${refAA}` : `${k1 + 1}${refAA}>${k1 + 1 + altShift}${altShown}`;
  return { terms, aa };
}

/** A sequence made of ranges of `R` and inserted texts, of which prefixes are taken. */
class AltPieces {
  private readonly parts: Array<string | number> = [];
  length = 0;
  constructor(private readonly R: string) {}
  range(b: number, e: number): void {
    if (e <= b) return;
    this.parts.push(b, e);
    this.length += e - b;
  }
  text(t: string): void {
    if (!t) return;
    this.parts.push(t);
    this.length += t.length;
  }
  /** The first `n` characters (all when n is larger). */
  take(n: number): string {
    let out = '';
    for (let i = 0; i < this.parts.length && n > 0; i++) {
      const x = this.parts[i];
      if (typeof x === 'string') {
        out += x.length <= n ? x : x.slice(0, n);
        n -= x.length;
      } else {
        const e = this.parts[++i] as number;
        const m = Math.min(n, e - x);
        out += this.R.slice(x, x + m);
        n -= m;
      }
    }
    return out;
  }
}

/** Genomic [beg, end] of the start codon (ATG) on the transcript's strand. */
function startCodon(ctx: TxContext): [number, number] {
  return ctx.tx.strand === '+' ? [ctx.cdsBeg, ctx.cdsBeg + 2] : [ctx.cdsEnd - 2, ctx.cdsEnd];
}
function stopCodon(ctx: TxContext): [number, number] {
  return ctx.tx.strand === '+' ? [ctx.cdsEnd - 2, ctx.cdsEnd] : [ctx.cdsBeg, ctx.cdsBeg + 2];
}

export function touchesStart(ctx: TxContext, ch: Change): boolean {
  if (!ctx.tx.coding) return false;
  const [b, e] = startCodon(ctx);
  return ch.end >= ch.beg ? ch.beg <= e && ch.end >= b : ch.beg > b && ch.beg <= e;
}
export function touchesStop(ctx: TxContext, ch: Change): boolean {
  if (!ctx.tx.coding) return false;
  const [b, e] = stopCodon(ctx);
  return ch.end >= ch.beg ? ch.beg <= e && ch.end >= b : ch.beg > b && ch.beg <= e;
}

/**
 * After an indel near the start codon, is there still ATG ending at the codon's last
 * base (transcript orientation)? The base is kept in place; the bases before it come
 * from the altered sequence.
 */
export function startRetained(ctx: TxContext, ch: Change, fetch: FetchSeq): boolean {
  const fwd = ctx.tx.strand === '+';
  const [b, e] = startCodon(ctx);
  const last = fwd ? e : b; // G of ATG (genomic)
  if (ch.end >= ch.beg && ch.beg <= last && ch.end >= last) return false;
  const w0 = Math.max(0, b - 60), w1 = e + 60;
  const ref = fetch(ctx.tx.chrom, w0, w1);
  const cut0 = ch.beg - w0, cut1 = ch.end + 1 - w0;
  const alt = ref.slice(0, cut0) + ch.ins + ref.slice(cut1);
  let i = last - w0; // index of `last` in ref
  if (last > ch.end) i += ch.ins.length - (ch.end - ch.beg + 1);
  const codon = fwd ? alt.slice(i - 2, i + 1) : revcomp(alt.slice(i, i + 3));
  return codon === 'ATG';
}

/** The change touches a coding base at an exon edge that borders an intron. */
export function touchesCodingEdge(tx: Transcript, ch: Change): boolean {
  const edges: number[] = [];
  for (let i = 0; i + 1 < tx.exons.length; i++) edges.push(tx.exons[i].end, tx.exons[i + 1].beg);
  return edges.some((p) => tx.cds.some((c) => p >= c.beg && p <= c.end) && (ch.end >= ch.beg ? p >= ch.beg && p <= ch.end : p === ch.beg - 1 || p === ch.beg));
}
