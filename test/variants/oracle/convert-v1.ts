/**
 * The string-based VCF → Arrow converter genolake used before the byte-level one
 * (src/variants/convert.ts), kept only as the test oracle: the new converter must give
 * the same table, value for value.
 */
import { Float64, Int32, Int64, Table, Utf8, makeData, makeVector, type Vector } from 'apache-arrow';
import { infoValue, parseGenotype, sampleColumn, VcfRecordParser, type VcfHeader } from '../../../src/formats/vcf.js';
import { InputError } from '../../../src/util/errors.js';
import { annotationReader, type AnnotationReader } from './annotation-v1.js';
import { VARIANTS_SCHEMA } from '../../../src/variants/schema.js';
// The result shapes are the module's contract: the oracle fills the same ones.
import type { ChromRows, ConvertResult, RowContext, SampleSelection } from '../../../src/variants/convert.js';
export type { ChromRows, ConvertResult, RowContext, SampleSelection };


/** Validity bitmap (Arrow: bit i set = value i present), or undefined when nothing is null. */
function validity<T>(values: readonly (T | null)[]): { bitmap?: Uint8Array; nulls: number } {
  let nulls = 0;
  for (const v of values) if (v === null) nulls++;
  if (nulls === 0) return { nulls };
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  for (let i = 0; i < values.length; i++) if (values[i] !== null) bitmap[i >> 3] |= 1 << (i & 7);
  return { bitmap, nulls };
}

/**
 * Builds Arrow columns straight from typed buffers: Arrow's generic builders encode each
 * string separately and were most of the stage's time (profiled), this is one native
 * write per value into one buffer.
 */
export function utf8Vector(values: readonly (string | null)[]): Vector<Utf8> {
  const n = values.length;
  const offsets = new Int32Array(n + 1);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v !== null) bytes += Buffer.byteLength(v, 'utf8');
    offsets[i + 1] = bytes;
  }
  const data = Buffer.allocUnsafe(bytes);
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v !== null && v.length) data.write(v, offsets[i], 'utf8');
  }
  const { bitmap, nulls } = validity(values);
  return makeVector(
    makeData({ type: new Utf8(), length: n, nullCount: nulls, nullBitmap: bitmap, valueOffsets: offsets, data: new Uint8Array(data.buffer, data.byteOffset, bytes) }),
  );
}

function int32Vector(values: readonly (number | null)[]): Vector<Int32> {
  const { bitmap, nulls } = validity(values);
  const data = Int32Array.from(values, (v) => v ?? 0);
  return makeVector(makeData({ type: new Int32(), length: values.length, nullCount: nulls, nullBitmap: bitmap, data }));
}

function float64Vector(values: readonly (number | null)[]): Vector<Float64> {
  const { bitmap, nulls } = validity(values);
  const data = Float64Array.from(values, (v) => v ?? 0);
  return makeVector(makeData({ type: new Float64(), length: values.length, nullCount: nulls, nullBitmap: bitmap, data }));
}

/** Column-wise accumulator for one chromosome's rows. */
class Columns {
  sample_id: string[] = [];
  pos: number[] = [];
  end: number[] = [];
  id: (string | null)[] = [];
  ref: string[] = [];
  alt: string[] = [];
  qual: (number | null)[] = [];
  filter: (string | null)[] = [];
  gt: (string | null)[] = [];
  alt_count: (number | null)[] = [];
  dp: (number | null)[] = [];
  ad_ref: (number | null)[] = [];
  ad_alt: (number | null)[] = [];
  vaf: (number | null)[] = [];
  gq: (number | null)[] = [];
  gene: (string | null)[] = [];
  transcript: (string | null)[] = [];
  consequence: (string | null)[] = [];
  impact: (string | null)[] = [];
  hgvs_c: (string | null)[] = [];
  hgvs_p: (string | null)[] = [];
  known: (string | null)[] = [];
  records = 0;
  firstPos = 0;
  lastPos = 0;

  get length(): number {
    return this.pos.length;
  }

  toTable(ctx: RowContext): Table {
    const n = this.length;
    const str = utf8Vector;
    const i32 = int32Vector;
    const f64 = float64Vector;
    const i64 = (v: number[]) => makeVector(makeData({ type: new Int64(), length: n, data: BigInt64Array.from(v, BigInt) }));
    const constant = (s: string) => str(new Array<string>(n).fill(s));
    const cols: Record<string, Vector> = {
      sample_id: str(this.sample_id),
      run_id: constant(ctx.runId),
      pos: i64(this.pos),
      end: i64(this.end),
      id: str(this.id),
      ref: str(this.ref),
      alt: str(this.alt),
      qual: f64(this.qual),
      filter: str(this.filter),
      gt: str(this.gt),
      alt_count: i32(this.alt_count),
      dp: i32(this.dp),
      ad_ref: i32(this.ad_ref),
      ad_alt: i32(this.ad_alt),
      vaf: f64(this.vaf),
      gq: i32(this.gq),
      gene: str(this.gene),
      transcript: str(this.transcript),
      consequence: str(this.consequence),
      impact: str(this.impact),
      hgvs_c: str(this.hgvs_c),
      hgvs_p: str(this.hgvs_p),
      known: str(this.known),
      reference: constant(ctx.reference),
      genolake_version: constant(ctx.genolakeVersion),
    };
    // Same field order and types as VARIANTS_SCHEMA, whatever vectorFromArray inferred.
    const t = new Table(Object.fromEntries(VARIANTS_SCHEMA.fields.map((f) => [f.name, cols[f.name]])));
    return t;
  }
}


function intOrNull(v: string | undefined): number | null {
  if (v === undefined || v === '' || v === '.') return null;
  const n = Number(v);
  return Number.isInteger(n) ? n : null;
}

/**
 * Converts data lines. `firstRecord` is the 1-based number of the first line among the
 * file's data lines (for error messages; 0 if unknown, then records are named by CHROM:POS).
 */
export class VariantConverter {
  private readonly parser: VcfRecordParser;
  private readonly annotations: AnnotationReader;
  private readonly byChrom = new Map<string, Columns>();
  private readonly order: string[] = [];
  private records = 0;

  constructor(
    header: VcfHeader,
    private readonly file: string,
    private readonly ctx: RowContext,
  ) {
    this.parser = new VcfRecordParser(header, file);
    this.annotations = annotationReader(header);
    for (const s of ctx.samples) {
      if (s.column < 0 || s.column >= header.samples.length) {
        throw new InputError('VCF_SAMPLE_MISMATCH', `sample column ${s.column + 1} does not exist (the VCF has ${header.samples.length})`, { file });
      }
    }
  }

  /** Adds one data line; `record` is its 1-based number among the slice's lines. */
  add(line: string, record: number): void {
    this.records++;
    const r = this.parser.parse(line, { file: this.file, record });
    let cols = this.byChrom.get(r.chrom);
    if (!cols) {
      if (this.order.length > 0 && this.order[this.order.length - 1] !== r.chrom && this.byChrom.has(r.chrom)) {
        throw new InputError('VCF_UNSORTED', `${r.chrom}:${r.pos} comes after records of another contig: the VCF is not sorted`, {
          file: this.file,
          record,
        });
      }
      cols = new Columns();
      cols.firstPos = r.pos;
      this.byChrom.set(r.chrom, cols);
      this.order.push(r.chrom);
    } else if (this.order[this.order.length - 1] !== r.chrom) {
      throw new InputError('VCF_UNSORTED', `${r.chrom}:${r.pos} comes after records of another contig: the VCF is not sorted`, {
        file: this.file,
        record,
      });
    } else if (r.pos < cols.lastPos) {
      throw new InputError('VCF_UNSORTED', `${r.chrom}:${r.pos} comes after position ${cols.lastPos}: the VCF is not sorted by position`, {
        file: this.file,
        record,
      });
    }
    cols.lastPos = r.pos;
    cols.records++;
    if (r.alts.length === 0) return;

    const id = r.id === '.' ? null : r.id;
    const filter = r.filter === '.' ? null : r.filter;
    const end = r.pos + r.ref.length - 1;
    const info = r.info;
    const anns = r.alts.map((_, a) => this.annotations.forAllele(info, r.ref, r.alts, a));
    let known: string | null = null;
    if (this.annotations.knownKeys.length) {
      const k: Record<string, string[] | true> = {};
      for (const key of this.annotations.knownKeys) {
        const v = infoValue(info, key);
        if (v !== undefined) k[key] = v === '' ? true : v.split(',');
      }
      if (Object.keys(k).length) known = JSON.stringify(k);
    }

    // Per selected sample: GT, DP, AD, GQ as written (FORMAT positions cached per FORMAT string).
    const fmt = r.format === undefined ? undefined : this.formatIndex(r.format);
    const nSamples = this.parser.header.samples.length;
    const gts = new Array<string | undefined>(nSamples);
    const dps = new Array<string | undefined>(nSamples);
    const ads = new Array<string | undefined>(nSamples);
    const gqs = new Array<string | undefined>(nSamples);
    if (fmt) {
      for (const sel of this.ctx.samples) {
        const f = sampleColumn(r, sel.column).split(':');
        const get = (i: number) => (i < 0 || i >= f.length ? undefined : f[i]);
        gts[sel.column] = get(fmt.gt);
        dps[sel.column] = get(fmt.dp);
        ads[sel.column] = get(fmt.ad);
        gqs[sel.column] = get(fmt.gq);
      }
    }

    for (const sel of this.ctx.samples) {
      const gt = gts[sel.column];
      const alleles = gt === undefined ? undefined : parseGenotype(gt);
      const missingGt = alleles === undefined || alleles.every((x) => x < 0);
      for (const x of alleles ?? []) {
        if (x > r.alts.length) {
          throw new InputError('VCF_BAD_RECORD', `GT ${gt} of sample ${this.parser.header.samples[sel.column]} names allele ${x}, the record has ${r.alts.length} ALT`, {
            file: this.file,
            record,
            field: 'GT',
          });
        }
      }
      const ad = ads[sel.column]?.split(',').map((v) => intOrNull(v));
      const adSum = ad ? ad.reduce<number>((s, v) => s + (v ?? 0), 0) : 0;
      const dp = intOrNull(dps[sel.column]);
      const gq = intOrNull(gqs[sel.column]);
      for (let a = 0; a < r.alts.length; a++) {
        const ann = anns[a];
        cols.sample_id.push(sel.sampleId);
        cols.pos.push(r.pos);
        cols.end.push(end);
        cols.id.push(id);
        cols.ref.push(r.ref);
        cols.alt.push(r.alts[a]);
        cols.qual.push(r.qual);
        cols.filter.push(filter);
        cols.gt.push(gt ?? null);
        cols.alt_count.push(missingGt ? null : alleles!.filter((x) => x === a + 1).length);
        cols.dp.push(dp);
        const adRef = ad ? (ad[0] ?? null) : null;
        const adAlt = ad ? (ad[a + 1] ?? null) : null;
        cols.ad_ref.push(adRef);
        cols.ad_alt.push(adAlt);
        cols.vaf.push(adAlt !== null && adSum > 0 ? adAlt / adSum : null);
        cols.gq.push(gq);
        cols.gene.push(ann.gene);
        cols.transcript.push(ann.transcript);
        cols.consequence.push(ann.consequence);
        cols.impact.push(ann.impact);
        cols.hgvs_c.push(ann.hgvs_c);
        cols.hgvs_p.push(ann.hgvs_p);
        cols.known.push(known);
      }
    }
  }

  private readonly formats = new Map<string, { gt: number; dp: number; ad: number; gq: number }>();

  private formatIndex(format: string): { gt: number; dp: number; ad: number; gq: number } {
    let f = this.formats.get(format);
    if (!f) {
      const keys = format.split(':');
      f = { gt: keys.indexOf('GT'), dp: keys.indexOf('DP'), ad: keys.indexOf('AD'), gq: keys.indexOf('GQ') };
      this.formats.set(format, f);
    }
    return f;
  }

  finish(): ConvertResult {
    return {
      records: this.records,
      chroms: this.order.map((chrom) => {
        const c = this.byChrom.get(chrom)!;
        return { chrom, records: c.records, rows: c.length, firstPos: c.firstPos, lastPos: c.lastPos, table: c.toTable(this.ctx) };
      }),
    };
  }
}
