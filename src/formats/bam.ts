/**
 * BAM (SAM spec §4.2): header and record codec, raw-record accessors, a streaming
 * reader, and SAM text conversion (for debugging and for tests against samtools).
 *
 * Records travel between stages as *raw* encoded buffers (block_size prefix included)
 * so sorting, duplicate marking, indexing and QC never need to decode them;
 * `encodeRecord`/`decodeRecord` convert from/to `AlignmentRecord`.
 */
import { InputError } from '../util/errors.js';
import { BgzfWriter, fileSink, readBgzfBlocks, type BgzfReadOptions, type BgzfWriterOptions, type ByteSink } from './bgzf.js';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { AlignmentHeader, AlignmentRecord as AlignerRecord } from '../align/record.js';
import { samHeader } from '../align/sam.js';
import {
  CIGAR_REF_CONSUMING,
  fromAlignerRecord,
  cigarQueryLength,
  formatCigar,
  parseCigar,
  type AlignmentRecord,
  type AlignmentTag,
  type ArraySubtype,
} from './sam-record.js';

export interface BamReference {
  name: string;
  length: number;
}

export interface BamHeader {
  /** SAM header text (@HD, @SQ, @RG, @PG, @CO lines), newline-terminated. */
  text: string;
  refs: BamReference[];
}

// ---------------------------------------------------------------- header

/** Builds a header from references (+ optional extra lines), @HD first. */
export function makeHeader(refs: BamReference[], opts: { sortOrder?: string; extraLines?: string[] } = {}): BamHeader {
  const lines = [`@HD\tVN:1.6\tSO:${opts.sortOrder ?? 'unsorted'}`];
  for (const r of refs) lines.push(`@SQ\tSN:${r.name}\tLN:${r.length}`);
  for (const l of opts.extraLines ?? []) lines.push(l);
  return { text: lines.join('\n') + '\n', refs: refs.map((r) => ({ ...r })) };
}

/** Parses SAM header text; references come from the @SQ lines. */
export function parseSamHeader(text: string, file = 'SAM header'): BamHeader {
  const refs: BamReference[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.startsWith('@SQ\t')) continue;
    let name: string | undefined;
    let length: number | undefined;
    for (const f of line.split('\t').slice(1)) {
      if (f.startsWith('SN:')) name = f.slice(3);
      else if (f.startsWith('LN:')) length = Number(f.slice(3));
    }
    if (!name || length === undefined || !Number.isInteger(length) || length < 0) {
      throw new InputError('SAM_HEADER', '@SQ line needs SN and a numeric LN', { file, line: i + 1 });
    }
    refs.push({ name, length });
  }
  const norm = text.length === 0 || text.endsWith('\n') ? text : text + '\n';
  return { text: norm, refs };
}

/** Returns header text with @HD SO set (adding an @HD line when missing). */
export function withSortOrder(text: string, order: 'coordinate' | 'queryname' | 'unsorted' | 'unknown'): string {
  const lines = text.split('\n').filter((l, i, a) => l.length > 0 || i < a.length - 1);
  if (lines.length > 0 && lines[0].startsWith('@HD\t')) {
    const fields = lines[0].split('\t').filter((f) => !f.startsWith('SO:') && !f.startsWith('GO:') && !f.startsWith('SS:'));
    fields.push(`SO:${order}`);
    lines[0] = fields.join('\t');
  } else {
    lines.unshift(`@HD\tVN:1.6\tSO:${order}`);
  }
  return lines.filter((l) => l.length > 0).join('\n') + '\n';
}

export function encodeHeader(h: BamHeader): Buffer {
  const text = Buffer.from(h.text, 'utf8');
  let size = 4 + 4 + text.length + 4;
  const names = h.refs.map((r) => Buffer.from(r.name + '\0', 'latin1'));
  for (const n of names) size += 4 + n.length + 4;
  const out = Buffer.allocUnsafe(size);
  out.write('BAM\x01', 0, 'latin1');
  out.writeInt32LE(text.length, 4);
  text.copy(out, 8);
  let p = 8 + text.length;
  out.writeInt32LE(h.refs.length, p);
  p += 4;
  for (let i = 0; i < names.length; i++) {
    out.writeInt32LE(names[i].length, p);
    names[i].copy(out, p + 4);
    p += 4 + names[i].length;
    out.writeInt32LE(h.refs[i].length, p);
    p += 4;
  }
  return out;
}

/** Tries to parse a BAM header at the start of `buf`; undefined when more bytes are needed. */
export function tryDecodeHeader(buf: Buffer, file = 'BAM'): { header: BamHeader; size: number } | undefined {
  if (buf.length < 8) return undefined;
  if (buf.toString('latin1', 0, 4) !== 'BAM\x01') throw new InputError('BAM_MAGIC', 'not a BAM file (bad magic)', { file });
  const lText = buf.readInt32LE(4);
  if (lText < 0) throw new InputError('BAM_HEADER', 'negative header text length', { file });
  let p = 8 + lText;
  if (buf.length < p + 4) return undefined;
  const textEnd = buf.indexOf(0, 8);
  const text = buf.toString('utf8', 8, textEnd >= 8 && textEnd < p ? textEnd : p);
  const nRef = buf.readInt32LE(p);
  p += 4;
  const refs: BamReference[] = [];
  for (let i = 0; i < nRef; i++) {
    if (buf.length < p + 4) return undefined;
    const lName = buf.readInt32LE(p);
    if (buf.length < p + 4 + lName + 4) return undefined;
    const name = buf.toString('latin1', p + 4, p + 4 + lName - 1);
    const length = buf.readInt32LE(p + 4 + lName);
    refs.push({ name, length });
    p += 8 + lName;
  }
  return { header: { text, refs }, size: p };
}

// ---------------------------------------------------------------- binning

/** UCSC/SAM bin of the 0-based half-open interval [beg, end). */
export function reg2bin(beg: number, end: number): number {
  --end;
  if (beg >> 14 === end >> 14) return ((1 << 15) - 1) / 7 + (beg >> 14);
  if (beg >> 17 === end >> 17) return ((1 << 12) - 1) / 7 + (beg >> 17);
  if (beg >> 20 === end >> 20) return ((1 << 9) - 1) / 7 + (beg >> 20);
  if (beg >> 23 === end >> 23) return ((1 << 6) - 1) / 7 + (beg >> 23);
  if (beg >> 26 === end >> 26) return ((1 << 3) - 1) / 7 + (beg >> 26);
  return 0;
}

// ---------------------------------------------------------------- raw record layout

/** Byte offsets inside a raw record (block_size prefix included). */
export const RAW = {
  BLOCK_SIZE: 0,
  REF_ID: 4,
  POS: 8,
  L_READ_NAME: 12,
  MAPQ: 13,
  BIN: 14,
  N_CIGAR: 16,
  FLAG: 18,
  L_SEQ: 20,
  NEXT_REF_ID: 24,
  NEXT_POS: 28,
  TLEN: 32,
  READ_NAME: 36,
} as const;

export const rawRefId = (r: Buffer): number => r.readInt32LE(4);
export const rawPos = (r: Buffer): number => r.readInt32LE(8);
export const rawFlag = (r: Buffer): number => r.readUInt16LE(18);
export const rawMapq = (r: Buffer): number => r[13];
export const rawNextRefId = (r: Buffer): number => r.readInt32LE(24);
export const rawNextPos = (r: Buffer): number => r.readInt32LE(28);
export const rawTlen = (r: Buffer): number => r.readInt32LE(32);
export const rawLSeq = (r: Buffer): number => r.readInt32LE(20);
export const rawNCigar = (r: Buffer): number => r.readUInt16LE(16);
export function setRawFlag(r: Buffer, flag: number): void {
  r.writeUInt16LE(flag & 0xffff, 18);
}
export function rawQname(r: Buffer): string {
  return r.toString('latin1', 36, 36 + r[12] - 1);
}
export function rawCigarOffset(r: Buffer): number {
  return 36 + r[12];
}
export function rawCigar(r: Buffer): Uint32Array {
  const n = r.readUInt16LE(16);
  const off = 36 + r[12];
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.readUInt32LE(off + 4 * i);
  return out;
}
/** Reference span of the alignment (0 when it has no reference-consuming op). */
export function rawRefSpan(r: Buffer): number {
  const n = r.readUInt16LE(16);
  const off = 36 + r[12];
  let len = 0;
  for (let i = 0; i < n; i++) {
    const c = r.readUInt32LE(off + 4 * i);
    if (CIGAR_REF_CONSUMING[c & 0xf]) len += c >>> 4;
  }
  return len;
}
/** End (exclusive) used for binning/indexing: pos + span, or pos + 1 when unmapped/no span. */
export function rawEnd(r: Buffer): number {
  const pos = r.readInt32LE(8);
  const flag = r.readUInt16LE(18);
  const span = flag & 4 ? 0 : rawRefSpan(r);
  return pos + (span > 0 ? span : 1);
}
export function rawQualOffset(r: Buffer): number {
  const lSeq = r.readInt32LE(20);
  return 36 + r[12] + 4 * r.readUInt16LE(16) + ((lSeq + 1) >> 1);
}
export function rawTagsOffset(r: Buffer): number {
  return rawQualOffset(r) + r.readInt32LE(20);
}

const TAG_INT_SIZE: Record<string, number> = { A: 1, c: 1, C: 1, s: 2, S: 2, i: 4, I: 4, f: 4 };

/** Finds a tag in a raw record; returns the offset of its type byte, or -1. */
export function rawFindTag(r: Buffer, tag: string): number {
  const t0 = tag.charCodeAt(0);
  const t1 = tag.charCodeAt(1);
  const end = r.readInt32LE(0) + 4;
  let p = rawTagsOffset(r);
  while (p + 3 <= end) {
    const type = String.fromCharCode(r[p + 2]);
    if (r[p] === t0 && r[p + 1] === t1) return p + 2;
    p += 3;
    const sz = TAG_INT_SIZE[type];
    if (sz !== undefined) p += sz;
    else if (type === 'Z' || type === 'H') {
      const z = r.indexOf(0, p);
      p = z < 0 ? end : z + 1;
    } else if (type === 'B') {
      const sub = String.fromCharCode(r[p]);
      p += 5 + (TAG_INT_SIZE[sub] ?? 1) * r.readInt32LE(p + 1);
    } else return -1;
  }
  return -1;
}

/** Integer value of a numeric tag, or undefined. */
export function rawTagInt(r: Buffer, tag: string): number | undefined {
  const p = rawFindTag(r, tag);
  if (p < 0) return undefined;
  switch (r[p]) {
    case 99: return r.readInt8(p + 1); // c
    case 67: return r[p + 1]; // C
    case 115: return r.readInt16LE(p + 1); // s
    case 83: return r.readUInt16LE(p + 1); // S
    case 105: return r.readInt32LE(p + 1); // i
    case 73: return r.readUInt32LE(p + 1); // I
    default: return undefined;
  }
}

/** String value of a Z tag, or undefined. */
export function rawTagString(r: Buffer, tag: string): string | undefined {
  const p = rawFindTag(r, tag);
  if (p < 0 || (r[p] !== 90 && r[p] !== 72)) return undefined;
  const z = r.indexOf(0, p + 1);
  return r.toString('latin1', p + 1, z < 0 ? r.length : z);
}

/** Returns a copy of the record with extra tags appended (existing tags of the same name removed). */
export function rawWithTags(r: Buffer, tags: AlignmentTag[]): Buffer {
  const names = new Set(tags.map((t) => t.tag));
  const end = r.readInt32LE(0) + 4;
  const tagStart = rawTagsOffset(r);
  const kept: Buffer[] = [r.subarray(0, tagStart)];
  let p = tagStart;
  while (p + 3 <= end) {
    const start = p;
    const name = r.toString('latin1', p, p + 2);
    const type = String.fromCharCode(r[p + 2]);
    p += 3;
    const sz = TAG_INT_SIZE[type];
    if (sz !== undefined) p += sz;
    else if (type === 'Z' || type === 'H') p = r.indexOf(0, p) + 1;
    else if (type === 'B') p += 5 + (TAG_INT_SIZE[String.fromCharCode(r[p])] ?? 1) * r.readInt32LE(p + 1);
    else throw new Error(`bad tag type ${type}`);
    if (!names.has(name)) kept.push(r.subarray(start, p));
  }
  kept.push(encodeTags(tags));
  const out = Buffer.concat(kept);
  out.writeInt32LE(out.length - 4, 0);
  return out;
}

// ---------------------------------------------------------------- record codec

const NT16 = '=ACMGRSVTWYHKDBN';
const NT16_CODE = new Uint8Array(256).fill(15);
for (let i = 0; i < 16; i++) {
  NT16_CODE[NT16.charCodeAt(i)] = i;
  NT16_CODE[NT16.toLowerCase().charCodeAt(i)] = i;
}

function intTypeFor(v: number): 'c' | 'C' | 's' | 'S' | 'i' | 'I' {
  if (v >= 0) {
    if (v <= 0xff) return 'C';
    if (v <= 0xffff) return 'S';
    if (v <= 0xffffffff) return 'I';
  } else {
    if (v >= -0x80) return 'c';
    if (v >= -0x8000) return 's';
    if (v >= -0x80000000) return 'i';
  }
  throw new RangeError(`integer tag value ${v} out of 32-bit range`);
}

function writeNum(out: Buffer, p: number, type: string, v: number): number {
  switch (type) {
    case 'c': out.writeInt8(v, p); return p + 1;
    case 'C': out.writeUInt8(v, p); return p + 1;
    case 's': out.writeInt16LE(v, p); return p + 2;
    case 'S': out.writeUInt16LE(v, p); return p + 2;
    case 'i': out.writeInt32LE(v, p); return p + 4;
    case 'I': out.writeUInt32LE(v, p); return p + 4;
    case 'f': out.writeFloatLE(v, p); return p + 4;
    default: throw new RangeError(`bad numeric type ${type}`);
  }
}

/** Encodes tags in BAM binary form. */
export function encodeTags(tags: AlignmentTag[]): Buffer {
  let size = 0;
  for (const t of tags) {
    if (t.tag.length !== 2) throw new RangeError(`tag name '${t.tag}' must have 2 characters`);
    size += 3;
    if (t.type === 'A') size += 1;
    else if (t.type === 'Z' || t.type === 'H') size += Buffer.byteLength(t.value, 'latin1') + 1;
    else if (t.type === 'B') size += 5 + TAG_INT_SIZE[t.subtype] * t.value.length;
    else if (t.type === 'f') size += 4;
    else size += TAG_INT_SIZE[t.type === 'i' ? intTypeFor(t.value) : t.type];
  }
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  for (const t of tags) {
    out.write(t.tag, p, 'latin1');
    p += 2;
    if (t.type === 'A') {
      out[p++] = 65;
      out[p++] = t.value.charCodeAt(0);
    } else if (t.type === 'Z' || t.type === 'H') {
      out[p++] = t.type.charCodeAt(0);
      p += out.write(t.value, p, 'latin1');
      out[p++] = 0;
    } else if (t.type === 'B') {
      out[p++] = 66;
      out[p++] = t.subtype.charCodeAt(0);
      out.writeInt32LE(t.value.length, p);
      p += 4;
      for (const v of t.value) p = writeNum(out, p, t.subtype, v);
    } else {
      const v = t.value as number;
      const type = t.type === 'i' ? intTypeFor(v) : t.type;
      out[p++] = type.charCodeAt(0);
      p = writeNum(out, p, type, v);
    }
  }
  return out;
}

/** Encodes a record (with its block_size prefix). */
export function encodeRecord(rec: AlignmentRecord): Buffer {
  const nameLen = Buffer.byteLength(rec.qname, 'latin1') + 1;
  if (nameLen > 255 || nameLen < 2) throw new RangeError(`read name '${rec.qname}' must have 1..254 characters`);
  const nCigar = rec.cigar.length;
  if (nCigar > 0xffff) throw new RangeError(`CIGAR with ${nCigar} ops is not supported`);
  const lSeq = rec.seq.length;
  if (rec.qual && rec.qual.length !== lSeq) throw new RangeError(`QUAL length ${rec.qual.length} != SEQ length ${lSeq}`);
  const tags = rec.tags.length ? encodeTags(rec.tags) : undefined;
  const size = 36 + nameLen + 4 * nCigar + ((lSeq + 1) >> 1) + lSeq + (tags?.length ?? 0);
  const out = Buffer.allocUnsafe(size);
  out.writeInt32LE(size - 4, 0);
  out.writeInt32LE(rec.refId, 4);
  out.writeInt32LE(rec.pos, 8);
  out[12] = nameLen;
  out[13] = rec.mapq;
  let end = rec.pos;
  if (!(rec.flag & 4)) for (let i = 0; i < nCigar; i++) if (CIGAR_REF_CONSUMING[rec.cigar[i] & 0xf]) end += rec.cigar[i] >>> 4;
  if (end === rec.pos) end = rec.pos + 1;
  out.writeUInt16LE(rec.refId < 0 && rec.pos < 0 ? 4680 : reg2bin(rec.pos, end), 14);
  out.writeUInt16LE(nCigar, 16);
  out.writeUInt16LE(rec.flag, 18);
  out.writeInt32LE(lSeq, 20);
  out.writeInt32LE(rec.nextRefId, 24);
  out.writeInt32LE(rec.nextPos, 28);
  out.writeInt32LE(rec.tlen, 32);
  let p = 36 + out.write(rec.qname, 36, 'latin1');
  out[p++] = 0;
  for (let i = 0; i < nCigar; i++, p += 4) out.writeUInt32LE(rec.cigar[i], p);
  const s = rec.seq;
  for (let i = 0; i + 1 < lSeq; i += 2) out[p++] = (NT16_CODE[s.charCodeAt(i)] << 4) | NT16_CODE[s.charCodeAt(i + 1)];
  if (lSeq & 1) out[p++] = NT16_CODE[s.charCodeAt(lSeq - 1)] << 4;
  if (rec.qual) out.set(rec.qual, p);
  else out.fill(0xff, p, p + lSeq);
  p += lSeq;
  if (tags) tags.copy(out, p);
  return out;
}

function readNum(b: Buffer, p: number, type: string): number {
  switch (type) {
    case 'c': return b.readInt8(p);
    case 'C': return b[p];
    case 's': return b.readInt16LE(p);
    case 'S': return b.readUInt16LE(p);
    case 'i': return b.readInt32LE(p);
    case 'I': return b.readUInt32LE(p);
    case 'f': return b.readFloatLE(p);
    default: throw new RangeError(`bad numeric type ${type}`);
  }
}

/** Decodes tags from `b[start, end)`. */
export function decodeTags(b: Buffer, start: number, end: number): AlignmentTag[] {
  const tags: AlignmentTag[] = [];
  let p = start;
  while (p + 3 <= end) {
    const tag = b.toString('latin1', p, p + 2);
    const type = String.fromCharCode(b[p + 2]);
    p += 3;
    if (type === 'A') {
      tags.push({ tag, type, value: String.fromCharCode(b[p]) });
      p += 1;
    } else if (type === 'Z' || type === 'H') {
      const z = b.indexOf(0, p);
      if (z < 0 || z >= end) throw new RangeError(`unterminated ${type} tag ${tag}`);
      tags.push({ tag, type, value: b.toString('latin1', p, z) });
      p = z + 1;
    } else if (type === 'B') {
      const subtype = String.fromCharCode(b[p]) as ArraySubtype;
      const n = b.readInt32LE(p + 1);
      const sz = TAG_INT_SIZE[subtype];
      if (!sz || (subtype as string) === 'A') throw new RangeError(`bad B-array subtype ${subtype}`);
      p += 5;
      const value: number[] = new Array(n);
      for (let i = 0; i < n; i++, p += sz) value[i] = readNum(b, p, subtype);
      tags.push({ tag, type: 'B', subtype, value });
    } else if (TAG_INT_SIZE[type] !== undefined) {
      tags.push({ tag, type: type as 'i', value: readNum(b, p, type) });
      p += TAG_INT_SIZE[type];
    } else throw new RangeError(`bad tag type '${type}' for ${tag}`);
  }
  return tags;
}

/** Decodes a raw record (block_size prefix included). */
export function decodeRecord(r: Buffer): AlignmentRecord {
  const nameLen = r[12];
  const nCigar = r.readUInt16LE(16);
  const lSeq = r.readInt32LE(20);
  let p = 36 + nameLen;
  const cigar = new Uint32Array(nCigar);
  for (let i = 0; i < nCigar; i++, p += 4) cigar[i] = r.readUInt32LE(p);
  let seq = '';
  const chars: string[] = new Array(lSeq);
  for (let i = 0; i < lSeq; i++) chars[i] = NT16[(r[p + (i >> 1)] >> (i & 1 ? 0 : 4)) & 0xf];
  seq = chars.join('');
  p += (lSeq + 1) >> 1;
  const qual = lSeq > 0 && r[p] === 0xff ? null : Uint8Array.from(r.subarray(p, p + lSeq));
  p += lSeq;
  return {
    qname: r.toString('latin1', 36, 36 + nameLen - 1),
    flag: r.readUInt16LE(18),
    refId: r.readInt32LE(4),
    pos: r.readInt32LE(8),
    mapq: r[13],
    cigar,
    nextRefId: r.readInt32LE(24),
    nextPos: r.readInt32LE(28),
    tlen: r.readInt32LE(32),
    seq,
    qual: lSeq === 0 ? null : qual,
    tags: decodeTags(r, p, r.readInt32LE(0) + 4),
  };
}

// ---------------------------------------------------------------- SAM text

function formatTag(t: AlignmentTag): string {
  if (t.type === 'B') {
    const vals = t.subtype === 'f' ? t.value.map((v) => formatFloat(v)) : t.value.map(String);
    return `${t.tag}:B:${t.subtype}${vals.length ? ',' + vals.join(',') : ''}`;
  }
  if (t.type === 'A' || t.type === 'Z' || t.type === 'H') return `${t.tag}:${t.type}:${t.value}`;
  if (t.type === 'f') return `${t.tag}:f:${formatFloat(t.value)}`;
  return `${t.tag}:i:${t.value}`;
}

function formatFloat(v: number): string {
  // like printf %g: 6 significant digits
  const s = Number(v.toPrecision(6));
  return String(s);
}

/** One SAM line (no newline). */
export function formatSamLine(rec: AlignmentRecord, refNames: string[]): string {
  const rname = rec.refId < 0 ? '*' : refNames[rec.refId];
  const rnext = rec.nextRefId < 0 ? '*' : rec.nextRefId === rec.refId ? '=' : refNames[rec.nextRefId];
  let qual = '*';
  if (rec.qual && rec.seq.length > 0) {
    const q = Buffer.allocUnsafe(rec.qual.length);
    for (let i = 0; i < q.length; i++) q[i] = rec.qual[i] + 33;
    qual = q.toString('latin1');
  }
  const fields = [
    rec.qname,
    String(rec.flag),
    rname,
    String(rec.pos + 1),
    String(rec.mapq),
    formatCigar(rec.cigar),
    rnext,
    String(rec.nextPos + 1),
    String(rec.tlen),
    rec.seq.length ? rec.seq : '*',
    qual,
  ];
  for (const t of rec.tags) fields.push(formatTag(t));
  return fields.join('\t');
}

function parseTag(text: string): AlignmentTag {
  if (text.length < 5 || text[2] !== ':' || text[4] !== ':') throw new Error(`bad optional field '${text}'`);
  const tag = text.slice(0, 2);
  const type = text[3];
  const v = text.slice(5);
  switch (type) {
    case 'A':
      if (v.length !== 1) throw new Error(`bad A value in '${text}'`);
      return { tag, type, value: v };
    case 'Z':
    case 'H':
      return { tag, type, value: v };
    case 'i': {
      const n = Number(v);
      if (!/^[-+]?\d+$/.test(v) || n < -0x80000000 || n > 0xffffffff) throw new Error(`bad integer in '${text}'`);
      return { tag, type, value: n };
    }
    case 'f': {
      const n = Number(v);
      if (v === '' || Number.isNaN(n) && v.toLowerCase() !== 'nan') throw new Error(`bad float in '${text}'`);
      return { tag, type, value: n };
    }
    case 'B': {
      const parts = v.split(',');
      const subtype = parts[0] as ArraySubtype;
      if (!'cCsSiIf'.includes(subtype) || subtype.length !== 1) throw new Error(`bad B subtype in '${text}'`);
      const value = parts.slice(1).map(Number);
      if (value.some((x) => Number.isNaN(x))) throw new Error(`bad B value in '${text}'`);
      return { tag, type: 'B', subtype, value };
    }
    default:
      throw new Error(`unknown tag type '${type}' in '${text}'`);
  }
}

/**
 * Parses one SAM alignment line. `refIds` maps reference names to indices.
 * Errors are InputErrors naming file, line and field.
 */
export function parseSamLine(line: string, refIds: Map<string, number>, where: { file?: string; line?: number } = {}): AlignmentRecord {
  const f = line.split('\t');
  const fail = (field: string, msg: string): never => {
    throw new InputError('SAM_PARSE', msg, { file: where.file, line: where.line, field });
  };
  if (f.length < 11) fail('line', `SAM line has ${f.length} fields, needs 11`);
  const int = (i: number, name: string): number => {
    const n = Number(f[i]);
    if (!/^-?\d+$/.test(f[i])) fail(name, `'${f[i]}' is not an integer`);
    return n;
  };
  const ref = (name: string, field: string): number => {
    if (name === '*') return -1;
    const id = refIds.get(name);
    if (id === undefined) fail(field, `reference '${name}' is not in the header`);
    return id as number;
  };
  const refId = ref(f[2], 'RNAME');
  const nextRefId = f[6] === '=' ? refId : ref(f[6], 'RNEXT');
  let cigar: Uint32Array = new Uint32Array(0);
  try {
    cigar = parseCigar(f[5]);
  } catch (e) {
    fail('CIGAR', (e as Error).message);
  }
  const seq = f[9] === '*' ? '' : f[9];
  let qual: Uint8Array | null = null;
  if (f[10] !== '*') {
    if (f[10].length !== seq.length) fail('QUAL', `QUAL length ${f[10].length} != SEQ length ${seq.length}`);
    qual = new Uint8Array(f[10].length);
    for (let i = 0; i < qual.length; i++) {
      const q = f[10].charCodeAt(i) - 33;
      if (q < 0 || q > 93) fail('QUAL', `quality character '${f[10][i]}' out of range`);
      qual[i] = q;
    }
  }
  const flag = int(1, 'FLAG');
  if (flag < 0 || flag > 0xffff) fail('FLAG', `FLAG ${flag} out of range`);
  const mapq = int(4, 'MAPQ');
  if (mapq < 0 || mapq > 255) fail('MAPQ', `MAPQ ${mapq} out of range`);
  if (cigar.length > 0 && seq.length > 0 && cigarQueryLength(cigar) !== seq.length) {
    fail('CIGAR', `CIGAR query length ${cigarQueryLength(cigar)} != SEQ length ${seq.length}`);
  }
  const tags: AlignmentTag[] = [];
  for (let i = 11; i < f.length; i++) {
    try {
      tags.push(parseTag(f[i]));
    } catch (e) {
      fail(f[i].slice(0, 2), (e as Error).message);
    }
  }
  return {
    qname: f[0],
    flag,
    refId,
    pos: int(3, 'POS') - 1,
    mapq,
    cigar,
    nextRefId,
    nextPos: int(7, 'PNEXT') - 1,
    tlen: int(8, 'TLEN'),
    seq,
    qual,
    tags,
  };
}

// ---------------------------------------------------------------- streaming reader

/**
 * Streams a BAM: `header` resolves first, `batches()` then yields raw records in file
 * order (each an independent Buffer).
 */
export class BamReader {
  private constructor(
    readonly header: BamHeader,
    private readonly blocks: AsyncGenerator<{ data: Buffer }>,
    private rest: Buffer,
    private readonly name: string,
  ) {}

  static async open(source: string | AsyncIterable<Buffer | Uint8Array>, opts: BgzfReadOptions = {}): Promise<BamReader> {
    const name = opts.name ?? (typeof source === 'string' ? source : 'BAM stream');
    const blocks = readBgzfBlocks(source, { ...opts, name });
    let buf = Buffer.alloc(0);
    for (;;) {
      const parsed = tryDecodeHeader(buf, name);
      if (parsed) return new BamReader(parsed.header, blocks, buf.subarray(parsed.size), name);
      const next = await blocks.next();
      if (next.done) throw new InputError('BAM_TRUNCATED', 'BAM header is truncated', { file: name });
      buf = Buffer.concat([buf, next.value.data]);
    }
  }

  /**
   * Raw records in batches (one batch per ~1 MiB of input). Records are views into a
   * shared batch buffer (no copy); copy one (`Buffer.from`) to keep it alone.
   */
  async *batches(): AsyncGenerator<Buffer[]> {
    let buf = this.rest;
    let recordNo = 0;
    let done = false;
    while (!done) {
      const parts: Buffer[] = [buf];
      let size = buf.length;
      while (size < 1 << 20) {
        const next = await this.blocks.next();
        if (next.done) {
          done = true;
          break;
        }
        parts.push(next.value.data);
        size += next.value.data.length;
      }
      buf = parts.length === 1 ? parts[0] : Buffer.concat(parts, size);
      const out: Buffer[] = [];
      let p = 0;
      while (buf.length - p >= 4) {
        const bs = buf.readInt32LE(p);
        if (bs < 32) throw new InputError('BAM_CORRUPT', `record block_size ${bs} too small`, { file: this.name, record: recordNo + 1 });
        if (buf.length - p < 4 + bs) break;
        // a view, not a copy: the batch buffer lives as long as any of its records
        out.push(buf.subarray(p, p + 4 + bs));
        p += 4 + bs;
        recordNo++;
      }
      buf = buf.subarray(p);
      if (out.length) yield out;
    }
    if (buf.length > 0) throw new InputError('BAM_TRUNCATED', 'BAM ends inside a record', { file: this.name, record: recordNo + 1 });
  }

  async *records(): AsyncGenerator<Buffer> {
    for await (const b of this.batches()) yield* b;
  }
}

// ---------------------------------------------------------------- writer

/**
 * Writes a BAM: header, then raw or decoded records. `writeRaw` returns the record's
 * [begin, end) *logical* virtual offsets (see BgzfWriter.resolve), for indexing.
 * Call `await drain()` whenever `needsDrain` is true to keep memory bounded.
 */
export class BamWriter {
  readonly bgzf: BgzfWriter;
  records = 0;

  constructor(sink: ByteSink, readonly header: BamHeader, opts: BgzfWriterOptions = {}) {
    this.bgzf = new BgzfWriter(sink, opts);
    this.bgzf.write(encodeHeader(header));
    this.bgzf.flushBlock();
  }

  static async toFile(path: string, header: BamHeader, opts: BgzfWriterOptions = {}): Promise<BamWriter> {
    return new BamWriter(await fileSink(path), header, opts);
  }

  writeRaw(rec: Buffer): [number, number] {
    const beg = this.bgzf.tell();
    this.bgzf.write(rec);
    this.records++;
    return [beg, this.bgzf.tell()];
  }

  write(rec: AlignmentRecord): [number, number] {
    return this.writeRaw(encodeRecord(rec));
  }

  get needsDrain(): boolean {
    return this.bgzf.needsDrain;
  }

  drain(): Promise<void> {
    return this.bgzf.drain();
  }

  resolve(logical: number): number {
    return this.bgzf.resolve(logical);
  }

  close(): Promise<void> {
    return this.bgzf.close();
  }
}

/** BAM header from the aligner's header (text as src/align/sam.ts prints it). */
export function headerFromAligner(h: AlignmentHeader): BamHeader {
  return { text: samHeader(h), refs: h.references.map((r) => ({ name: r.name, length: r.length })) };
}

/** Encodes an aligner record (src/align/record.ts) straight to a raw BAM record. */
export function encodeAlignerRecord(r: AlignerRecord): Buffer {
  return encodeRecord(fromAlignerRecord(r));
}

// ---------------------------------------------------------------- SAM text input

/**
 * Streams a SAM text file: the header (all leading '@' lines) first, then raw BAM
 * records in batches. Bad lines raise InputErrors naming file, line and field.
 */
export async function openSam(path: string, batchSize = 4096): Promise<{ header: BamHeader; batches: AsyncGenerator<Buffer[]> }> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  const it = rl[Symbol.asyncIterator]();
  const headerLines: string[] = [];
  let first: string | undefined;
  let lineNo = 0;
  for (;;) {
    const n = await it.next();
    if (n.done) break;
    lineNo++;
    if (n.value.startsWith('@')) headerLines.push(n.value);
    else {
      first = n.value;
      break;
    }
  }
  const header = parseSamHeader(headerLines.join('\n') + (headerLines.length ? '\n' : ''), path);
  const refIds = new Map(header.refs.map((r, i) => [r.name, i]));
  async function* batches(): AsyncGenerator<Buffer[]> {
    let out: Buffer[] = [];
    const take = (line: string): void => {
      if (line.length === 0) return;
      out.push(encodeRecord(parseSamLine(line, refIds, { file: path, line: lineNo })));
    };
    if (first !== undefined) take(first);
    for (;;) {
      const n = await it.next();
      if (n.done) break;
      lineNo++;
      take(n.value);
      if (out.length >= batchSize) {
        yield out;
        out = [];
      }
    }
    if (out.length) yield out;
  }
  return { header, batches: batches() };
}
