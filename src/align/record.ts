/**
 * One alignment record, field for field what a BAM record stores (SAM spec §4.2), so a
 * BAM writer encodes it without interpretation and the SAM writer prints it:
 *   refId/nextRefId: index into the header's references, -1 for '*';
 *   pos/nextPos: 0-based leftmost mapped base, -1 when unplaced (SAM prints pos + 1);
 *   cigar: BAM encoding (len << 4 | op, ops 0..8 = MIDNSHP=X);
 *   seq: bases as stored (reverse-complemented when flag 0x10), upper case, '' for '*';
 *   qual: Phred scores (no +33 offset) in the same orientation, null for '*'.
 * Tags are written in the order NM, MD, MC, AS, XS, SA, RG (typed as in BAM: NM, AS, XS
 * integers 'i'; MD, MC, SA, RG strings 'Z').
 */
export interface AlignmentTags {
  NM?: number;
  MD?: string;
  MC?: string;
  AS?: number;
  XS?: number;
  SA?: string;
  RG?: string;
}

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
  tags: AlignmentTags;
}

export interface ReferenceSeq {
  name: string;
  length: number;
}

export interface ReadGroup {
  id: string;
  sample: string;
  /** Further @RG fields (e.g. PL, LB), printed as TAG:value. */
  extra?: Record<string, string>;
}

export interface AlignmentHeader {
  /** SO value of @HD: 'unsorted' from the aligner, 'coordinate' after sorting. */
  sortOrder: 'unsorted' | 'coordinate' | 'queryname';
  references: ReferenceSeq[];
  readGroups: ReadGroup[];
  program: { id: string; name: string; version: string; commandLine: string; description?: string };
}

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
  QC_FAIL: 0x200,
  DUPLICATE: 0x400,
  SUPPLEMENTARY: 0x800,
} as const;

const OPS = 'MIDNSHP=X';

export function cigarString(cigar: Uint32Array): string {
  if (cigar.length === 0) return '*';
  let s = '';
  for (const c of cigar) s += `${c >>> 4}${OPS[c & 15]}`;
  return s;
}

/** Reference bases covered by a CIGAR (M, D, N, =, X). */
export function cigarRefLength(cigar: Uint32Array): number {
  let n = 0;
  for (const c of cigar) {
    const op = c & 15;
    if (op === 0 || op === 2 || op === 3 || op === 7 || op === 8) n += c >>> 4;
  }
  return n;
}
