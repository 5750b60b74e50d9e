/**
 * One alignment, field for field as in a BAM record (SAM spec §4.2). This is the
 * hand-over type between the aligner (which produces records) and the BAM side
 * (bam.ts encodes them; bam-sort/markdup/bai/qc work on the encoded bytes).
 *
 * Conventions:
 * - `refId`/`nextRefId`: index into the header's reference list, -1 for '*'.
 * - `pos`/`nextPos`: 0-based leftmost position, -1 when absent.
 * - `cigar`: BAM-encoded ops, `length << 4 | op` with op = index in "MIDNSHP=X".
 * - `seq`: bases as text ('' for '*'); `qual`: Phred scores without offset, or
 *   `null` when absent (BAM stores 0xff bytes then).
 * - `tags`: in output order; integer tags may use type 'i' (the encoder then picks
 *   the smallest BAM integer type, as htslib does) or an explicit c/C/s/S/i/I.
 */
export type IntTagType = 'c' | 'C' | 's' | 'S' | 'i' | 'I';
export type ArraySubtype = IntTagType | 'f';

export type AlignmentTag =
  | { tag: string; type: 'A' | 'Z' | 'H'; value: string }
  | { tag: string; type: IntTagType | 'f'; value: number }
  | { tag: string; type: 'B'; subtype: ArraySubtype; value: number[] };

export interface AlignmentRecord {
  qname: string;
  flag: number;
  refId: number;
  pos: number;
  mapq: number;
  cigar: Uint32Array;
  nextRefId: number;
  nextPos: number;
  tlen: number;
  seq: string;
  qual: Uint8Array | null;
  tags: AlignmentTag[];
}

/** SAM FLAG bits. */
export const FLAG = {
  PAIRED: 0x1,
  PROPER_PAIR: 0x2,
  UNMAPPED: 0x4,
  MATE_UNMAPPED: 0x8,
  REVERSE: 0x10,
  MATE_REVERSE: 0x20,
  READ1: 0x40,
  READ2: 0x80,
  SECONDARY: 0x100,
  QCFAIL: 0x200,
  DUPLICATE: 0x400,
  SUPPLEMENTARY: 0x800,
} as const;

export const CIGAR_OPS = 'MIDNSHP=X';
/** Ops that consume the reference: M D N = X. */
export const CIGAR_REF_CONSUMING = [true, false, true, true, false, false, false, true, true] as const;
/** Ops that consume the query: M I S = X. */
export const CIGAR_QUERY_CONSUMING = [true, true, false, false, true, false, false, true, true] as const;

/** "10M2I5S" → BAM ops; '*' or '' → empty. Throws a plain Error on bad syntax (callers wrap it). */
export function parseCigar(text: string): Uint32Array {
  if (text === '*' || text === '') return new Uint32Array(0);
  const ops: number[] = [];
  let n = 0;
  let haveDigit = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      haveDigit = true;
      continue;
    }
    const op = CIGAR_OPS.indexOf(text[i]);
    if (op < 0 || !haveDigit || n >= 1 << 28) throw new Error(`bad CIGAR '${text}'`);
    ops.push(((n << 4) | op) >>> 0);
    n = 0;
    haveDigit = false;
  }
  if (haveDigit) throw new Error(`bad CIGAR '${text}'`);
  return Uint32Array.from(ops);
}

export function formatCigar(cigar: ArrayLike<number>): string {
  if (cigar.length === 0) return '*';
  let s = '';
  for (let i = 0; i < cigar.length; i++) s += (cigar[i] >>> 4) + CIGAR_OPS[cigar[i] & 0xf];
  return s;
}

/** Reference length covered by a CIGAR (0 for none). */
export function cigarRefLength(cigar: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < cigar.length; i++) if (CIGAR_REF_CONSUMING[cigar[i] & 0xf]) n += cigar[i] >>> 4;
  return n;
}

/** Query length implied by a CIGAR. */
export function cigarQueryLength(cigar: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < cigar.length; i++) if (CIGAR_QUERY_CONSUMING[cigar[i] & 0xf]) n += cigar[i] >>> 4;
  return n;
}

/**
 * Unclipped 5' position (0-based) of an alignment, as Picard/samtools markdup use it:
 * forward strand → pos minus leading clips; reverse strand → last reference base plus
 * trailing clips.
 */
export function unclipped5Prime(pos: number, cigar: ArrayLike<number>, reverse: boolean): number {
  if (!reverse) {
    let clip = 0;
    for (let i = 0; i < cigar.length; i++) {
      const op = cigar[i] & 0xf;
      if (op === 4 || op === 5) clip += cigar[i] >>> 4;
      else break;
    }
    return pos - clip;
  }
  let clip = 0;
  for (let i = cigar.length - 1; i >= 0; i--) {
    const op = cigar[i] & 0xf;
    if (op === 4 || op === 5) clip += cigar[i] >>> 4;
    else break;
  }
  return pos + cigarRefLength(cigar) - 1 + clip;
}

// ---------------------------------------------------------------- bridge to the aligner's record type

import type { AlignmentRecord as AlignerRecord, AlignmentTags as AlignerTags } from '../align/record.js';

/** Aligner tags (src/align/record.ts) in their output order, with their BAM types. */
const ALIGNER_TAG_TYPES: [keyof AlignerTags, 'i' | 'Z'][] = [
  ['NM', 'i'],
  ['MD', 'Z'],
  ['MC', 'Z'],
  ['AS', 'i'],
  ['XS', 'i'],
  ['SA', 'Z'],
  ['RG', 'Z'],
];

/** Converts the aligner's record (tags as an object) into this module's record (tags as a typed list). */
export function fromAlignerRecord(r: AlignerRecord): AlignmentRecord {
  const tags: AlignmentTag[] = [];
  for (const [name, type] of ALIGNER_TAG_TYPES) {
    const v = r.tags[name];
    if (v === undefined) continue;
    if (type === 'i') tags.push({ tag: name, type, value: v as number });
    else tags.push({ tag: name, type, value: v as string });
  }
  return { ...r, tags };
}
