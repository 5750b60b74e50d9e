/**
 * VCF data lines → variants-table rows (one per sample × alternate allele), as Arrow
 * tables per chromosome. Runs inside the `variants` worker on one slice of a VCF.
 *
 * Works on the slice's bytes: fields are found by scanning for tabs, strings are copied
 * byte range → Arrow Utf8 buffers (offsets + data) and numbers parsed from digits, so a
 * record costs no JS strings or arrays. Loading was bound by exactly that per-record work
 * (profiled: string slicing, splitting, re-encoding to UTF-8 and the garbage it made).
 * Strings are made only for rare spellings (numbers in exotic notation, symbolic ALTs)
 * and for error messages, so values and checks are those of the string-based reader this
 * replaced (test/variants/oracle/ keeps it as the oracle the tests compare against).
 */
import { isUtf8 } from 'node:buffer';
import { Float64, Int32, Int64, Table, Utf8, makeData, makeVector, type Data, type Vector } from 'apache-arrow';
import type { VcfHeader } from '../formats/vcf.js';
import { InputError } from '../util/errors.js';
import {
  ANN_CONSEQUENCE,
  ANN_GENE,
  ANN_HGVS_C,
  ANN_HGVS_P,
  ANN_IMPACT,
  ANN_SLOTS,
  ANN_TRANSCRIPT,
  IMPACT_BY_RANK,
  annotationScanner,
  knownKeys,
  type AnnotationScanner,
  type RecordAlleles,
} from './annotation.js';
import { VARIANTS_SCHEMA } from './schema.js';

export interface SampleSelection {
  /** 0-based index among the VCF's sample columns. */
  column: number;
  /** sample_id written to the rows. */
  sampleId: string;
}

export interface RowContext {
  samples: SampleSelection[];
  runId: string;
  reference: string;
  genolakeVersion: string;
}

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const IMPACT_BYTES = IMPACT_BY_RANK.map(utf8);

function text(buf: Uint8Array, s: number, e: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('utf8');
}

function growBitmap(bits: Uint8Array, rows: number): Uint8Array {
  const b = new Uint8Array((rows + 7) >> 3);
  b.set(bits);
  return b;
}

/**
 * Columns mark their null rows (rare) instead of their valid ones (every row); Arrow's
 * validity bitmap is the complement, made once at the end.
 */
function validityOf(nullBits: Uint8Array, nulls: number, n: number): Uint8Array | undefined {
  if (nulls === 0) return undefined;
  const bytes = (n + 7) >> 3;
  const valid = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) valid[i] = ~nullBits[i];
  if (n & 7) valid[bytes - 1] &= (1 << (n & 7)) - 1;
  return valid;
}

/** An Arrow Utf8 column being filled row by row (rows in order, capacity managed by ChromColumns). */
class StrCol {
  offsets: Int32Array;
  data: Uint8Array;
  nullBits: Uint8Array;
  bytes = 0;
  nulls = 0;

  constructor(rows: number, bytes: number) {
    this.offsets = new Int32Array(rows + 1);
    this.data = new Uint8Array(bytes);
    this.nullBits = new Uint8Array((rows + 7) >> 3);
  }

  growRows(rows: number): void {
    const o = new Int32Array(rows + 1);
    o.set(this.offsets);
    this.offsets = o;
    this.nullBits = growBitmap(this.nullBits, rows);
  }

  put(row: number, src: Uint8Array, s: number, e: number): void {
    const n = e - s;
    const at = this.bytes;
    if (at + n > this.data.length) {
      const d = new Uint8Array(Math.max(this.data.length * 2, at + n + 1024));
      d.set(this.data.subarray(0, at));
      this.data = d;
    }
    const d = this.data;
    if (n <= 32) for (let i = 0; i < n; i++) d[at + i] = src[s + i];
    else d.set(src.subarray(s, e), at);
    this.bytes = at + n;
    this.offsets[row + 1] = at + n;
  }

  putNull(row: number): void {
    this.offsets[row + 1] = this.bytes;
    this.nullBits[row >> 3] |= 1 << (row & 7);
    this.nulls++;
  }

  reset(): void {
    this.bytes = 0;
    this.nulls = 0;
    this.nullBits.fill(0);
  }

  toData(n: number): Data<Utf8> {
    return makeData({
      type: new Utf8(),
      length: n,
      nullCount: this.nulls,
      nullBitmap: validityOf(this.nullBits, this.nulls, n),
      valueOffsets: this.offsets.subarray(0, n + 1),
      data: this.data.subarray(0, this.bytes),
    });
  }
}

/** A nullable Int32 or Float64 column: typed values plus a null bitmap. */
class NumCol<T extends Int32 | Float64> {
  values: T['TArray'];
  nullBits: Uint8Array;
  nulls = 0;
  constructor(
    private readonly type: T,
    rows: number,
  ) {
    this.values = new type.ArrayType(rows) as T['TArray'];
    this.nullBits = new Uint8Array((rows + 7) >> 3);
  }
  growRows(rows: number): void {
    const v = new this.type.ArrayType(rows) as T['TArray'];
    v.set(this.values);
    this.values = v;
    this.nullBits = growBitmap(this.nullBits, rows);
  }
  put(row: number, v: number): void {
    this.values[row] = v;
  }
  putNull(row: number): void {
    this.nullBits[row >> 3] |= 1 << (row & 7);
    this.nulls++;
  }
  reset(): void {
    this.nulls = 0;
    this.nullBits.fill(0);
  }
  toData(n: number): Data<T> {
    const nullBitmap = validityOf(this.nullBits, this.nulls, n);
    return makeData({ type: this.type, length: n, nullCount: this.nulls, nullBitmap, data: this.values.subarray(0, n) } as never) as unknown as Data<T>;
  }
}

/** Int64 without nulls, written as two uint32 words (little-endian, like every platform Node runs on). */
class Int64Col {
  words: Uint32Array;
  constructor(rows: number) {
    this.words = new Uint32Array(rows * 2);
  }
  growRows(rows: number): void {
    const w = new Uint32Array(rows * 2);
    w.set(this.words);
    this.words = w;
  }
  put(row: number, v: number): void {
    if (v >= 0 && v < 4294967296) {
      this.words[2 * row] = v;
      this.words[2 * row + 1] = 0;
    } else {
      // Beyond uint32 (or a huge POS in exponent range): wraps modulo 2^64 as BigInt64Array does.
      const b = BigInt.asUintN(64, BigInt(v));
      this.words[2 * row] = Number(b & 0xffffffffn);
      this.words[2 * row + 1] = Number(b >> 32n);
    }
  }
  toData(n: number): Data<Int64> {
    return makeData({ type: new Int64(), length: n, data: new BigInt64Array(this.words.buffer, 0, n) });
  }
}

/**
 * A Utf8 column of one value repeated n times. The buffers are cached per value and
 * shared (read-only) by every table of this thread: run_id, reference and the version
 * are the same for every row of a load.
 */
const constantColumns = new Map<string, { rows: number; offsets: Int32Array; data: Uint8Array }>();

function constantUtf8(text: string, n: number): Data<Utf8> {
  let c = constantColumns.get(text);
  if (!c || c.rows < n) {
    const value = utf8(text);
    const len = value.length;
    const rows = Math.max(n, (c?.rows ?? 0) * 2, 1024);
    const data = new Uint8Array(len * rows);
    if (len > 0) {
      data.set(value, 0);
      for (let have = len; have < data.length; have *= 2) data.copyWithin(have, 0, Math.min(have, data.length - have));
    }
    const offsets = new Int32Array(rows + 1);
    for (let i = 1; i <= rows; i++) offsets[i] = i * len;
    if (constantColumns.size >= 16) constantColumns.clear();
    constantColumns.set(text, (c = { rows, offsets, data }));
  }
  const bytes = c.offsets[n];
  return makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: c.offsets.subarray(0, n + 1), data: c.data.subarray(0, bytes) });
}

/** Column-wise accumulator for one chromosome's rows. */
class ChromColumns {
  rows = 0;
  cap: number;
  readonly sample_id: StrCol;
  readonly pos: Int64Col;
  readonly end: Int64Col;
  readonly id: StrCol;
  readonly ref: StrCol;
  readonly alt: StrCol;
  readonly qual: NumCol<Float64>;
  readonly filter: StrCol;
  readonly gt: StrCol;
  readonly alt_count: NumCol<Int32>;
  readonly dp: NumCol<Int32>;
  readonly ad_ref: NumCol<Int32>;
  readonly ad_alt: NumCol<Int32>;
  readonly vaf: NumCol<Float64>;
  readonly gq: NumCol<Int32>;
  readonly gene: StrCol;
  readonly transcript: StrCol;
  readonly consequence: StrCol;
  readonly impact: StrCol;
  readonly hgvs_c: StrCol;
  readonly hgvs_p: StrCol;
  readonly known: StrCol;
  records = 0;
  lastPos = 0;

  constructor(
    public chrom: string,
    public firstPos: number,
  ) {
    const r = (this.cap = 1024);
    this.sample_id = new StrCol(r, r * 4);
    this.pos = new Int64Col(r);
    this.end = new Int64Col(r);
    this.id = new StrCol(r, r * 4);
    this.ref = new StrCol(r, r * 2);
    this.alt = new StrCol(r, r * 2);
    this.qual = new NumCol(new Float64(), r);
    this.filter = new StrCol(r, r * 4);
    this.gt = new StrCol(r, r * 3);
    this.alt_count = new NumCol(new Int32(), r);
    this.dp = new NumCol(new Int32(), r);
    this.ad_ref = new NumCol(new Int32(), r);
    this.ad_alt = new NumCol(new Int32(), r);
    this.vaf = new NumCol(new Float64(), r);
    this.gq = new NumCol(new Int32(), r);
    this.gene = new StrCol(r, r * 8);
    this.transcript = new StrCol(r, r * 16);
    this.consequence = new StrCol(r, r * 16);
    this.impact = new StrCol(r, r * 8);
    this.hgvs_c = new StrCol(r, r * 12);
    this.hgvs_p = new StrCol(r, r * 8);
    this.known = new StrCol(r, 64);
  }

  /** Empties the columns for another chromosome, keeping their buffers. */
  reuse(chrom: string, firstPos: number): this {
    this.chrom = chrom;
    this.firstPos = firstPos;
    this.rows = 0;
    this.records = 0;
    this.lastPos = 0;
    for (const c of [this.sample_id, this.id, this.ref, this.alt, this.filter, this.gt, this.gene, this.transcript, this.consequence]) c.reset();
    for (const c of [this.impact, this.hgvs_c, this.hgvs_p, this.known, this.qual, this.vaf]) c.reset();
    for (const c of [this.alt_count, this.dp, this.ad_ref, this.ad_alt, this.gq]) c.reset();
    return this;
  }

  /** Makes room for one more row. */
  reserve(): void {
    if (this.rows < this.cap) return;
    const cap = (this.cap *= 2);
    for (const c of [this.sample_id, this.pos, this.end, this.id, this.ref, this.alt, this.qual, this.filter, this.gt]) c.growRows(cap);
    for (const c of [this.alt_count, this.dp, this.ad_ref, this.ad_alt, this.vaf, this.gq]) c.growRows(cap);
    for (const c of [this.gene, this.transcript, this.consequence, this.impact, this.hgvs_c, this.hgvs_p, this.known]) c.growRows(cap);
  }

  toTable(ctx: RowContext): Table {
    const n = this.rows;
    const constant = (s: string) => constantUtf8(s, n);
    const cols: Record<string, Data> = {
      sample_id: this.sample_id.toData(n),
      run_id: constant(ctx.runId),
      pos: this.pos.toData(n),
      end: this.end.toData(n),
      id: this.id.toData(n),
      ref: this.ref.toData(n),
      alt: this.alt.toData(n),
      qual: this.qual.toData(n),
      filter: this.filter.toData(n),
      gt: this.gt.toData(n),
      alt_count: this.alt_count.toData(n),
      dp: this.dp.toData(n),
      ad_ref: this.ad_ref.toData(n),
      ad_alt: this.ad_alt.toData(n),
      vaf: this.vaf.toData(n),
      gq: this.gq.toData(n),
      gene: this.gene.toData(n),
      transcript: this.transcript.toData(n),
      consequence: this.consequence.toData(n),
      impact: this.impact.toData(n),
      hgvs_c: this.hgvs_c.toData(n),
      hgvs_p: this.hgvs_p.toData(n),
      known: this.known.toData(n),
      reference: constant(ctx.reference),
      genolake_version: constant(ctx.genolakeVersion),
    };
    const vectors: Record<string, Vector> = {};
    for (const f of VARIANTS_SCHEMA.fields) vectors[f.name] = makeVector(cols[f.name]);
    return new Table(vectors);
  }
}

/**
 * Column buffers of finished conversions, kept for the next ones in this thread: a slice
 * allocates ~100 MB of buffers otherwise, and that churn of external memory was what
 * triggered most of the worker's full GCs (measured with --trace-gc). A few, largest kept.
 */
const spareColumns: ChromColumns[] = [];
const MAX_SPARE_COLUMNS = 4;

export interface ChromRows {
  chrom: string;
  /** VCF records (lines) of this chromosome in the slice. */
  records: number;
  rows: number;
  firstPos: number;
  lastPos: number;
  table: Table;
}

export interface ConvertResult {
  /** Data lines parsed. */
  records: number;
  chroms: ChromRows[];
}

const isBase = (c: number) =>
  c === 65 || c === 67 || c === 71 || c === 84 || c === 78 || c === 97 || c === 99 || c === 103 || c === 116 || c === 110;
const ALT_RE = /^(?:[ACGTNacgtn]+|\*|<[^<>]+>|[ACGTNacgtn]*[[\]][^[\]]+[[\]][ACGTNacgtn]*|\.[ACGTNacgtn]+|[ACGTNacgtn]+\.)$/;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Number(text) of a field [s, e), read from the digits when they are plain (the usual case). */
function decimal(buf: Uint8Array, s: number, e: number): number {
  let m = 0;
  let digits = 0;
  let dot = -1;
  for (let i = s; i < e; i++) {
    const c = buf[i];
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
    } else if (c === 46 && dot < 0) dot = i;
    else return Number(text(buf, s, e));
  }
  // Up to 15 digits the mantissa and 10^k are exact, so one division rounds like Number().
  if (digits === 0 || digits > 15) return Number(text(buf, s, e));
  return dot < 0 ? m : m / POW10[e - dot - 1];
}

/** An integer field as the string reader took it: null if absent, '', '.' or not an integer. */
function intOrNull(buf: Uint8Array, s: number, e: number): number | null {
  if (s < 0 || e === s || (e - s === 1 && buf[s] === 46)) return null;
  let i = s;
  const neg = buf[i] === 45; /* - */
  if (neg) i++;
  if (i < e && e - i <= 15) {
    let v = 0;
    for (; i < e; i++) {
      const c = buf[i] - 48;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
    }
    if (i === e) return neg ? -v : v;
  }
  const v = Number(text(buf, s, e));
  return Number.isInteger(v) ? v : null;
}

/** A GT allele: '.' or '' = -1, else Number() of it (NaN for junk, as before). */
function alleleIndex(buf: Uint8Array, s: number, e: number): number {
  if (e === s || (e - s === 1 && buf[s] === 46)) return -1;
  if (e - s <= 9) {
    let v = 0;
    let i = s;
    for (; i < e; i++) {
      const c = buf[i] - 48;
      if (c < 0 || c > 9) break;
      v = v * 10 + c;
    }
    if (i === e) return v;
  }
  return Number(text(buf, s, e));
}

function sameBytes(a: Uint8Array, as: number, b: Uint8Array, bs: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[as + i] !== b[bs + i]) return false;
  return true;
}

/** Hex digits of the \u00XX escapes JSON.stringify writes for control characters. */
const HEX = '0123456789abcdef';

interface FormatIndex {
  gt: number;
  dp: number;
  ad: number;
  gq: number;
}

/** Per selected sample, 8 int32: start/end of GT, DP, AD, GQ (start -1 = the field is absent). */
const S_GT = 0;
const S_DP = 2;
const S_AD = 4;
const S_GQ = 6;

/**
 * Converts data lines. Record numbers in errors are 1-based among the lines given to this
 * converter (the coordinator makes them global).
 */
export class VariantConverter {
  private readonly byChrom = new Map<string, ChromColumns>();
  private readonly order: ChromColumns[] = [];
  private cur: ChromColumns | undefined;
  private curChrom = new Uint8Array(64);
  private curChromLen = -1;
  private records = 0;
  private readonly columns: number;
  private readonly tabs: Int32Array;
  private readonly annotations: AnnotationScanner;
  /** INFO keys to find in each record: the annotation key first (if any), then known keys. */
  private readonly infoKeys: Uint8Array[];
  private readonly infoStart: Int32Array;
  private readonly infoEnd: Int32Array;
  /** Known keys in the order JSON.stringify writes them, as indexes into infoKeys, with their `"key":` bytes. */
  private readonly knownOrder: { slot: number; prefix: Uint8Array }[];
  private readonly annSlot: number;
  private readonly sampleIds: Uint8Array[];
  private readonly rec: RecordAlleles = { buf: new Uint8Array(0), refStart: 0, refEnd: 0, altStart: new Int32Array(8), altEnd: new Int32Array(8), nAlts: 0 };
  private ann = new Int32Array(8 * ANN_SLOTS);
  private readonly sampleFields: Int32Array;
  private gtAlleles = new Float64Array(8);
  private adValues = new Float64Array(8);
  private knownBuf = new Uint8Array(256);
  private knownLen = -1;
  private lastFormat = new Uint8Array(64);
  private lastFormatLen = -1;
  private fmt: FormatIndex = { gt: -1, dp: -1, ad: -1, gq: -1 };
  private readonly formats = new Map<string, FormatIndex>();

  constructor(
    private readonly header: VcfHeader,
    private readonly file: string,
    private readonly ctx: RowContext,
  ) {
    for (const s of ctx.samples) {
      if (s.column < 0 || s.column >= header.samples.length) {
        throw new InputError('VCF_SAMPLE_MISMATCH', `sample column ${s.column + 1} does not exist (the VCF has ${header.samples.length})`, { file });
      }
    }
    this.columns = header.samples.length ? 9 + header.samples.length : 8;
    this.tabs = new Int32Array(this.columns - 1);
    this.annotations = annotationScanner(header);
    const keys: string[] = [];
    if (this.annotations.key !== undefined) keys.push(this.annotations.key);
    this.annSlot = this.annotations.key === undefined ? -1 : 0;
    const known = knownKeys(header);
    for (const k of known) if (!keys.includes(k)) keys.push(k);
    this.infoKeys = keys.map(utf8);
    this.infoStart = new Int32Array(keys.length);
    this.infoEnd = new Int32Array(keys.length);
    // JS objects list integer-like keys first: keep the order the JSON of an object had.
    const jsOrder = Object.keys(Object.fromEntries(known.map((k) => [k, true])));
    this.knownOrder = jsOrder.map((k) => ({ slot: keys.indexOf(k), prefix: utf8(`${JSON.stringify(k)}:`) }));
    this.sampleIds = ctx.samples.map((s) => utf8(s.sampleId));
    this.sampleFields = new Int32Array(ctx.samples.length * 8);
  }

  private bad(record: number, field: string, why: string): never {
    throw new InputError('VCF_BAD_RECORD', why, { file: this.file, record, field });
  }

  /**
   * Adds the data lines in `data` (whole lines, '\n' or '\r\n' ended; the last may lack its
   * newline). Empty lines are skipped; records are numbered on from earlier calls.
   */
  addLines(data: Uint8Array): void {
    // Bytes that are not UTF-8 read as U+FFFD, as the string reader decoded them.
    let buf = data;
    if (!isUtf8(buf)) buf = new Uint8Array(Buffer.from(Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString('utf8'), 'utf8'));
    this.rec.buf = buf;
    const tabs = this.tabs;
    const maxTabs = tabs.length;
    const len = buf.length;
    let at = 0;
    while (at < len) {
      let ntabs = 0;
      let i = at;
      for (; i < len; i++) {
        const c = buf[i];
        if (c === 10) break;
        if (c === 9) {
          if (ntabs < maxTabs) tabs[ntabs] = i;
          ntabs++;
        }
      }
      let end = i;
      const lineStart = at;
      at = i + 1;
      if (end > lineStart && buf[end - 1] === 13) end--;
      if (end === lineStart) continue;
      const record = ++this.records;
      if (buf[lineStart] === 35 /* # */) {
        throw new InputError('VCF_BAD_RECORD', 'header line (#) among the data lines', { file: this.file, record });
      }
      this.record(buf, lineStart, end, ntabs, record);
    }
  }

  private record(buf: Uint8Array, ls: number, le: number, ntabs: number, record: number): void {
    const columns = this.columns;
    if (ntabs + 1 !== columns) {
      this.bad(
        record,
        ntabs + 1 < 8 ? 'columns' : 'samples',
        `has ${ntabs + 1} columns, the header declares ${columns}${this.header.samples.length ? ` (${this.header.samples.length} sample(s))` : ''}`,
      );
    }
    const t = this.tabs;
    const t0 = t[0];
    if (t0 === ls) this.bad(record, 'CHROM', 'empty CHROM');

    // POS: digits only, ≥ 1.
    const ps = t0 + 1;
    const pe = t[1];
    let pos = 0;
    let posOk = pe > ps;
    for (let i = ps; i < pe; i++) {
      const c = buf[i] - 48;
      if (c < 0 || c > 9) {
        posOk = false;
        break;
      }
      pos = pos * 10 + c;
    }
    if (posOk && pe - ps > 15) pos = Number(text(buf, ps, pe));
    if (!posOk || pos < 1) this.bad(record, 'POS', `POS must be a positive integer, found ${JSON.stringify(text(buf, ps, pe))}`);

    const rs = t[2] + 1;
    const re = t[3];
    let refOk = re > rs;
    for (let i = rs; i < re && refOk; i++) refOk = isBase(buf[i]);
    if (!refOk) this.bad(record, 'REF', `REF must be bases (ACGTN), found ${JSON.stringify(text(buf, rs, re).slice(0, 40))}`);

    const rec = this.rec;
    rec.refStart = rs;
    rec.refEnd = re;
    const as = re + 1;
    const ae = t[4];
    let nAlts = 0;
    if (!(ae - as === 1 && buf[as] === 46)) {
      let from = as;
      for (let i = as; i <= ae; i++) {
        if (i < ae && buf[i] !== 44 /* , */) continue;
        if (nAlts === rec.altStart.length) {
          const s2 = new Int32Array(nAlts * 2);
          const e2 = new Int32Array(nAlts * 2);
          s2.set(rec.altStart);
          e2.set(rec.altEnd);
          rec.altStart = s2;
          rec.altEnd = e2;
        }
        rec.altStart[nAlts] = from;
        rec.altEnd[nAlts] = i;
        nAlts++;
        let ok = i > from;
        for (let k = from; k < i && ok; k++) ok = isBase(buf[k]);
        if (!ok) {
          const a = text(buf, from, i);
          if (!ALT_RE.test(a)) this.bad(record, 'ALT', `ALT allele ${JSON.stringify(a.slice(0, 40))} is not bases, '*' or a symbolic allele`);
        }
        from = i + 1;
      }
    }
    rec.nAlts = nAlts;

    const qs = t[4] + 1;
    const qe = t[5];
    let qual: number | null = null;
    if (!(qe - qs === 1 && buf[qs] === 46)) {
      qual = decimal(buf, qs, qe);
      if (!Number.isFinite(qual)) this.bad(record, 'QUAL', `QUAL must be a number or '.', found ${JSON.stringify(text(buf, qs, qe))}`);
    }
    const is = t[6] + 1;
    const ie = columns > 8 ? t[7] : le;
    if (ie === is) this.bad(record, 'INFO', "empty INFO (use '.')");

    // Sorted: one contig after another, positions not decreasing.
    let cols = this.cur;
    const cl = t0 - ls;
    if (cols === undefined || cl !== this.curChromLen || !sameBytes(buf, ls, this.curChrom, 0, cl)) {
      const chrom = text(buf, ls, t0);
      if (this.byChrom.has(chrom)) {
        throw new InputError('VCF_UNSORTED', `${chrom}:${pos} comes after records of another contig: the VCF is not sorted`, { file: this.file, record });
      }
      cols = spareColumns.pop()?.reuse(chrom, pos) ?? new ChromColumns(chrom, pos);
      this.byChrom.set(chrom, cols);
      this.order.push(cols);
      this.cur = cols;
      if (this.curChrom.length < cl) this.curChrom = new Uint8Array(cl * 2);
      this.curChrom.set(buf.subarray(ls, t0));
      this.curChromLen = cl;
    } else if (pos < cols.lastPos) {
      throw new InputError('VCF_UNSORTED', `${cols.chrom}:${pos} comes after position ${cols.lastPos}: the VCF is not sorted by position`, {
        file: this.file,
        record,
      });
    }
    cols.lastPos = pos;
    cols.records++;
    if (nAlts === 0) return;

    if (this.ann.length < nAlts * ANN_SLOTS) this.ann = new Int32Array(nAlts * 2 * ANN_SLOTS);
    const ann = this.ann;
    this.scanInfo(buf, is, ie);
    this.buildKnown(buf);

    const samples = this.ctx.samples;
    const nSel = samples.length;
    if (nSel === 0) return;
    // GT, DP, AD, GQ of each selected sample (FORMAT positions cached per FORMAT text).
    const sf = this.sampleFields;
    sf.fill(-1);
    if (columns > 8) {
      const fs = t[7] + 1;
      const fe = t[8];
      const fl = fe - fs;
      if (fl !== this.lastFormatLen || !sameBytes(buf, fs, this.lastFormat, 0, fl)) this.setFormat(buf, fs, fe);
      const { gt: iGt, dp: iDp, ad: iAd, gq: iGq } = this.fmt;
      for (let j = 0; j < nSel; j++) {
        const c = samples[j].column;
        const cs = t[8 + c] + 1;
        const ce = 9 + c < ntabs ? t[9 + c] : le;
        let k = 0;
        let from = cs;
        const o = j * 8;
        for (let i = cs; i <= ce; i++) {
          if (i < ce && buf[i] !== 58 /* : */) continue;
          if (k === iGt) {
            sf[o + S_GT] = from;
            sf[o + S_GT + 1] = i;
          }
          if (k === iDp) {
            sf[o + S_DP] = from;
            sf[o + S_DP + 1] = i;
          }
          if (k === iAd) {
            sf[o + S_AD] = from;
            sf[o + S_AD + 1] = i;
          }
          if (k === iGq) {
            sf[o + S_GQ] = from;
            sf[o + S_GQ + 1] = i;
          }
          k++;
          from = i + 1;
        }
      }
    }

    const end = pos + (re - rs) - 1;
    const ids = t[1] + 1;
    const ide = t[2];
    const idNull = ide - ids === 1 && buf[ids] === 46;
    const fls = t[5] + 1;
    const fle = t[6];
    const filterNull = fle - fls === 1 && buf[fls] === 46;
    const knownNull = this.knownLen < 0;
    for (let j = 0; j < nSel; j++) {
      const o = j * 8;
      const gs = sf[o + S_GT];
      const ge = sf[o + S_GT + 1];
      // Alleles named by GT ('.' = -1); a missing GT has no alt_count.
      let nGt = 0;
      let missingGt = true;
      if (gs >= 0) {
        let from = gs;
        for (let i = gs; i <= ge; i++) {
          if (i < ge && buf[i] !== 47 /* / */ && buf[i] !== 124 /* | */) continue;
          const x = alleleIndex(buf, from, i);
          if (x > nAlts) {
            throw new InputError(
              'VCF_BAD_RECORD',
              `GT ${text(buf, gs, ge)} of sample ${this.header.samples[samples[j].column]} names allele ${x}, the record has ${nAlts} ALT`,
              { file: this.file, record, field: 'GT' },
            );
          }
          if (!(x < 0)) missingGt = false;
          if (nGt === this.gtAlleles.length) {
            const g = new Float64Array(nGt * 2);
            g.set(this.gtAlleles);
            this.gtAlleles = g;
          }
          this.gtAlleles[nGt++] = x;
          from = i + 1;
        }
      }
      // AD values (NaN = null) and their sum.
      const ads = sf[o + S_AD];
      const ade = sf[o + S_AD + 1];
      let nAd = 0;
      let adSum = 0;
      if (ads >= 0) {
        let from = ads;
        for (let i = ads; i <= ade; i++) {
          if (i < ade && buf[i] !== 44 /* , */) continue;
          const v = intOrNull(buf, from, i);
          if (nAd === this.adValues.length) {
            const g = new Float64Array(nAd * 2);
            g.set(this.adValues);
            this.adValues = g;
          }
          this.adValues[nAd++] = v === null ? NaN : v;
          if (v !== null) adSum += v;
          from = i + 1;
        }
      }
      const adValues = this.adValues;
      const gtAlleles = this.gtAlleles;
      const dp = intOrNull(buf, sf[o + S_DP], sf[o + S_DP + 1]);
      const gq = intOrNull(buf, sf[o + S_GQ], sf[o + S_GQ + 1]);
      const sid = this.sampleIds[j];
      for (let a = 0; a < nAlts; a++) {
        cols.reserve();
        const row = cols.rows++;
        cols.sample_id.put(row, sid, 0, sid.length);
        cols.pos.put(row, pos);
        cols.end.put(row, end);
        if (idNull) cols.id.putNull(row);
        else cols.id.put(row, buf, ids, ide);
        cols.ref.put(row, buf, rs, re);
        cols.alt.put(row, buf, rec.altStart[a], rec.altEnd[a]);
        if (qual === null) cols.qual.putNull(row);
        else cols.qual.put(row, qual);
        if (filterNull) cols.filter.putNull(row);
        else cols.filter.put(row, buf, fls, fle);
        if (gs < 0) cols.gt.putNull(row);
        else cols.gt.put(row, buf, gs, ge);
        if (missingGt) cols.alt_count.putNull(row);
        else {
          let n = 0;
          for (let k = 0; k < nGt; k++) if (gtAlleles[k] === a + 1) n++;
          cols.alt_count.put(row, n);
        }
        if (dp === null) cols.dp.putNull(row);
        else cols.dp.put(row, dp);
        const adRef = nAd > 0 ? adValues[0] : NaN;
        const adAlt = a + 1 < nAd ? adValues[a + 1] : NaN;
        if (adRef !== adRef) cols.ad_ref.putNull(row);
        else cols.ad_ref.put(row, adRef);
        if (adAlt !== adAlt) {
          cols.ad_alt.putNull(row);
          cols.vaf.putNull(row);
        } else {
          cols.ad_alt.put(row, adAlt);
          if (adSum > 0) cols.vaf.put(row, adAlt / adSum);
          else cols.vaf.putNull(row);
        }
        if (gq === null) cols.gq.putNull(row);
        else cols.gq.put(row, gq);
        const ao = a * ANN_SLOTS;
        annotation(cols.gene, row, buf, ann, ao + ANN_GENE);
        annotation(cols.transcript, row, buf, ann, ao + ANN_TRANSCRIPT);
        annotation(cols.consequence, row, buf, ann, ao + ANN_CONSEQUENCE);
        const impS = ann[ao + ANN_IMPACT];
        if (impS <= -2) {
          const b = IMPACT_BYTES[-2 - impS];
          cols.impact.put(row, b, 0, b.length);
        } else annotation(cols.impact, row, buf, ann, ao + ANN_IMPACT);
        annotation(cols.hgvs_c, row, buf, ann, ao + ANN_HGVS_C);
        annotation(cols.hgvs_p, row, buf, ann, ao + ANN_HGVS_P);
        if (knownNull) cols.known.putNull(row);
        else cols.known.put(row, this.knownBuf, 0, this.knownLen);
      }
    }
  }

  /**
   * Finds the wanted INFO keys (the first entry with each key; value '' for a flag) and
   * reads the annotation key's value in the same pass: it is most of INFO's bytes.
   */
  private scanInfo(buf: Uint8Array, is: number, ie: number): void {
    const keys = this.infoKeys;
    const nKeys = keys.length;
    const vs = this.infoStart;
    const ve = this.infoEnd;
    vs.fill(-1);
    const annSlot = this.annSlot;
    let annDone = false;
    let left = nKeys;
    let es = is;
    while (left > 0 && es <= ie) {
      let j = es;
      while (j < ie) {
        const c = buf[j];
        if (c === 61 /* = */ || c === 59 /* ; */) break;
        j++;
      }
      const hasValue = j < ie && buf[j] === 61;
      let slot = -1;
      for (let k = 0; k < nKeys; k++) {
        const key = keys[k];
        if (vs[k] < 0 && key.length === j - es && sameBytes(buf, es, key, 0, key.length)) {
          slot = k;
          break;
        }
      }
      let end = j;
      if (hasValue) {
        if (slot >= 0 && slot === annSlot) {
          end = this.annotations.scan(this.rec, j + 1, ie, this.ann);
          annDone = true;
        } else {
          end = j + 1;
          while (end < ie && buf[end] !== 59) end++;
        }
      }
      if (slot >= 0) {
        vs[slot] = hasValue ? j + 1 : j;
        ve[slot] = end;
        left--;
      }
      es = end + 1;
    }
    if (!annDone) this.annotations.scan(this.rec, -1, -1, this.ann);
  }

  /** The `known` JSON of the record: {"KEY": ["v1", …] or true for a flag} (what JSON.stringify wrote). */
  private buildKnown(buf: Uint8Array): void {
    this.knownLen = -1;
    const order = this.knownOrder;
    if (order.length === 0) return;
    // Room for the worst case (every byte escaped as \u00XX), so the writes need no checks.
    let room = 2;
    for (const { slot, prefix } of order) {
      if (this.infoStart[slot] >= 0) room += prefix.length + 8 + 6 * (this.infoEnd[slot] - this.infoStart[slot]);
    }
    if (room === 2) return;
    if (this.knownBuf.length < room) this.knownBuf = new Uint8Array(room * 2);
    const out = this.knownBuf;
    let n = 0;
    for (const { slot, prefix } of order) {
      const s = this.infoStart[slot];
      if (s < 0) continue;
      const e = this.infoEnd[slot];
      out[n] = n === 0 ? 123 /* { */ : 44; /* , */
      n++;
      out.set(prefix, n);
      n += prefix.length;
      if (e === s) {
        out[n++] = 116; // true
        out[n++] = 114;
        out[n++] = 117;
        out[n++] = 101;
        continue;
      }
      out[n++] = 91; // [
      out[n++] = 34;
      for (let i = s; i < e; i++) {
        const c = buf[i];
        if (c === 44) {
          out[n++] = 34; // ","
          out[n++] = 44;
          out[n++] = 34;
        } else if (c === 34 || c === 92) {
          out[n++] = 92;
          out[n++] = c;
        } else if (c < 0x20) {
          out[n++] = 92;
          const short = c === 8 ? 98 : c === 9 ? 116 : c === 10 ? 110 : c === 12 ? 102 : c === 13 ? 114 : 0;
          if (short) out[n++] = short;
          else {
            out[n++] = 117; // u00XX
            out[n++] = 48;
            out[n++] = 48;
            out[n++] = HEX.charCodeAt(c >> 4);
            out[n++] = HEX.charCodeAt(c & 15);
          }
        } else out[n++] = c;
      }
      out[n++] = 34;
      out[n++] = 93; // ]
    }
    out[n++] = 125; // }
    this.knownLen = n;
  }

  private setFormat(buf: Uint8Array, s: number, e: number): void {
    const format = text(buf, s, e);
    let f = this.formats.get(format);
    if (!f) {
      const keys = format.split(':');
      f = { gt: keys.indexOf('GT'), dp: keys.indexOf('DP'), ad: keys.indexOf('AD'), gq: keys.indexOf('GQ') };
      this.formats.set(format, f);
    }
    this.fmt = f;
    if (this.lastFormat.length < e - s) this.lastFormat = new Uint8Array((e - s) * 2);
    this.lastFormat.set(buf.subarray(s, e));
    this.lastFormatLen = e - s;
  }

  /**
   * Hands the column buffers to later conversions in this thread. Only once the tables
   * from finish() are no longer used (written out): they share those buffers.
   */
  release(): void {
    for (const c of this.order) spareColumns.push(c);
    spareColumns.sort((a, b) => a.cap - b.cap);
    spareColumns.splice(0, Math.max(0, spareColumns.length - MAX_SPARE_COLUMNS));
    this.order.length = 0;
    this.byChrom.clear();
    this.cur = undefined;
  }

  finish(): ConvertResult {
    this.rec.buf = new Uint8Array(0);
    return {
      records: this.records,
      chroms: this.order.map((c) => ({ chrom: c.chrom, records: c.records, rows: c.rows, firstPos: c.firstPos, lastPos: c.lastPos, table: c.toTable(this.ctx) })),
    };
  }
}

function annotation(col: StrCol, row: number, buf: Uint8Array, ann: Int32Array, at: number): void {
  const s = ann[at];
  if (s < 0) col.putNull(row);
  else col.put(row, buf, s, ann[at + 1]);
}
