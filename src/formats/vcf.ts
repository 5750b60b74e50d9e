/**
 * VCF: the header and data lines, parsed and checked here. Records are cut into their
 * columns once; INFO keys and sample fields are read on demand (`infoValue`,
 * `sampleColumn`), since a consumer wants a few of them and parsing all was most of the
 * cost of loading a VCF into the lake (profiled). Readers take text in batches of lines:
 * where the bytes come from (BGZF blocks, a gzip stream, a plain file) is the caller's
 * business, so a worker can parse a slice of a file without seeing the rest.
 */
import { InputError } from '../util/errors.js';

export interface VcfFieldDef {
  id: string;
  number: string;
  type: string;
  description: string;
}

export interface VcfHeader {
  /** The header verbatim, every line ending in '\n' (the `#CHROM` line last). */
  text: string;
  fileformat: string;
  samples: string[];
  contigs: { id: string; length?: number }[];
  info: Map<string, VcfFieldDef>;
  format: Map<string, VcfFieldDef>;
  /** `##reference=` if present (a path or a build name). */
  reference?: string;
}

const FIXED = ['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO'];

function metaAttrs(body: string): Record<string, string> {
  // <ID=DP,Number=1,Type=Integer,Description="a, quoted, text">
  const out: Record<string, string> = {};
  const inner = body.replace(/^<|>$/g, '');
  const re = /([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(inner); m; m = re.exec(inner)) {
    out[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1).replace(/\\(.)/g, '$1') : m[2];
  }
  return out;
}

/** Parses and checks a VCF header (all `##` lines and the `#CHROM` line). */
export function parseVcfHeader(text: string, file: string): VcfHeader {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (!lines[0]?.startsWith('##fileformat=VCFv')) {
    throw new InputError('VCF_BAD_HEADER', 'not a VCF: the first line must be ##fileformat=VCFv4.x', { file, line: 1 });
  }
  const header: VcfHeader = {
    text: lines.map((l) => `${l.replace(/\r$/, '')}\n`).join(''),
    fileformat: lines[0].slice('##fileformat='.length).trim(),
    samples: [],
    contigs: [],
    info: new Map(),
    format: new Map(),
  };
  const last = lines[lines.length - 1].replace(/\r$/, '');
  if (!last.startsWith('#CHROM')) throw new InputError('VCF_BAD_HEADER', 'header has no #CHROM line', { file, line: lines.length });
  const cols = last.split('\t');
  for (let i = 0; i < FIXED.length; i++) {
    if (cols[i] !== FIXED[i]) {
      throw new InputError('VCF_BAD_HEADER', `#CHROM line: column ${i + 1} must be ${FIXED[i]}, found ${JSON.stringify(cols[i] ?? '')}`, {
        file,
        line: lines.length,
      });
    }
  }
  if (cols.length > 8) {
    if (cols[8] !== 'FORMAT') throw new InputError('VCF_BAD_HEADER', '#CHROM line: column 9 must be FORMAT', { file, line: lines.length });
    header.samples = cols.slice(9);
    const seen = new Set<string>();
    for (const s of header.samples) {
      if (s === '') throw new InputError('VCF_BAD_HEADER', '#CHROM line: empty sample name', { file, line: lines.length });
      if (seen.has(s)) throw new InputError('VCF_BAD_HEADER', `#CHROM line: sample ${s} appears twice`, { file, line: lines.length });
      seen.add(s);
    }
  }
  for (let i = 1; i < lines.length - 1; i++) {
    const l = lines[i];
    if (!l.startsWith('##')) throw new InputError('VCF_BAD_HEADER', 'header line does not start with ##', { file, line: i + 1 });
    const eq = l.indexOf('=');
    if (eq < 0) continue;
    const key = l.slice(2, eq);
    const body = l.slice(eq + 1);
    if (key === 'contig') {
      const a = metaAttrs(body);
      if (!a.ID) throw new InputError('VCF_BAD_HEADER', '##contig without ID', { file, line: i + 1 });
      header.contigs.push({ id: a.ID, ...(a.length ? { length: Number(a.length) } : {}) });
    } else if (key === 'INFO' || key === 'FORMAT') {
      const a = metaAttrs(body);
      if (!a.ID) throw new InputError('VCF_BAD_HEADER', `##${key} without ID`, { file, line: i + 1 });
      const def = { id: a.ID, number: a.Number ?? '.', type: a.Type ?? 'String', description: a.Description ?? '' };
      (key === 'INFO' ? header.info : header.format).set(a.ID, def);
    } else if (key === 'reference') {
      header.reference = body.trim();
    }
  }
  return header;
}

/** Where a record sits, for error messages. `record` is 1-based among data lines. */
export interface RecordPlace {
  file: string;
  record: number;
  line?: number;
}

/** A parsed, checked data line. `alts` excludes the '.' of a record without alternates. */
export interface VcfRecord {
  chrom: string;
  pos: number;
  id: string;
  ref: string;
  alts: string[];
  qual: number | null;
  filter: string;
  /** INFO as written ('.' when empty); read keys with `infoValue`. */
  info: string;
  /** FORMAT as written, undefined for sites-only VCFs. */
  format: string | undefined;
  /** The line, and the offset of its first sample column (line.length if none). */
  line: string;
  samplesFrom: number;
}

/**
 * One INFO key's value as written ('' for a flag), undefined when absent. A scan of the
 * INFO text: records are read for a few keys each, so parsing all of INFO is wasted work.
 */
export function infoValue(info: string, key: string): string | undefined {
  let from = 0;
  for (;;) {
    const at = info.indexOf(key, from);
    if (at < 0) return undefined;
    const before = at === 0 || info.charCodeAt(at - 1) === 59; /* ; */
    const after = at + key.length;
    const c = info.charCodeAt(after);
    if (before && (after === info.length || c === 59)) return '';
    if (before && c === 61 /* = */) {
      const end = info.indexOf(';', after + 1);
      return info.slice(after + 1, end < 0 ? info.length : end);
    }
    from = at + 1;
  }
}

/** Sample column `column` (0-based) of a record, as written. */
export function sampleColumn(r: VcfRecord, column: number): string {
  let start = r.samplesFrom;
  for (let i = 0; i < column; i++) start = r.line.indexOf('\t', start) + 1;
  const end = r.line.indexOf('\t', start);
  return r.line.slice(start, end < 0 ? r.line.length : end);
}

const REF_RE = /^[ACGTNacgtn]+$/;
const ALT_RE = /^(?:[ACGTNacgtn]+|\*|<[^<>]+>|[ACGTNacgtn]*[[\]][^[\]]+[[\]][ACGTNacgtn]*|\.[ACGTNacgtn]+|[ACGTNacgtn]+\.)$/;

/**
 * Parses data lines against one header; each line is checked for the structure a
 * downstream consumer relies on (column count, POS, REF/ALT alphabet, QUAL).
 */
export class VcfRecordParser {
  readonly columns: number;

  constructor(
    readonly header: VcfHeader,
    readonly file: string,
  ) {
    this.columns = header.samples.length ? 9 + header.samples.length : 8;
  }

  parse(line: string, place: RecordPlace): VcfRecord {
    const bad = (field: string, why: string): never => {
      throw new InputError('VCF_BAD_RECORD', why, { file: place.file, record: place.record, line: place.line, field });
    };
    let tabs = 0;
    for (let i = line.indexOf('\t'); i >= 0; i = line.indexOf('\t', i + 1)) tabs++;
    if (tabs + 1 !== this.columns) {
      bad(
        tabs + 1 < 8 ? 'columns' : 'samples',
        `has ${tabs + 1} columns, the header declares ${this.columns}${this.header.samples.length ? ` (${this.header.samples.length} sample(s))` : ''}`,
      );
    }
    const t1 = line.indexOf('\t');
    const t2 = line.indexOf('\t', t1 + 1);
    const t3 = line.indexOf('\t', t2 + 1);
    const t4 = line.indexOf('\t', t3 + 1);
    const t5 = line.indexOf('\t', t4 + 1);
    const t6 = line.indexOf('\t', t5 + 1);
    const t7 = line.indexOf('\t', t6 + 1);
    const chrom = line.slice(0, t1);
    if (chrom === '') bad('CHROM', 'empty CHROM');
    const posText = line.slice(t1 + 1, t2);
    const pos = Number(posText);
    if (!/^\d+$/.test(posText) || pos < 1) bad('POS', `POS must be a positive integer, found ${JSON.stringify(posText)}`);
    const ref = line.slice(t3 + 1, t4);
    if (!REF_RE.test(ref)) bad('REF', `REF must be bases (ACGTN), found ${JSON.stringify(ref.slice(0, 40))}`);
    const altText = line.slice(t4 + 1, t5);
    const alts = altText === '.' ? [] : altText.split(',');
    for (const a of alts) if (!ALT_RE.test(a)) bad('ALT', `ALT allele ${JSON.stringify(a.slice(0, 40))} is not bases, '*' or a symbolic allele`);
    const qualText = line.slice(t5 + 1, t6);
    const qual = qualText === '.' ? null : Number(qualText);
    if (qual !== null && !Number.isFinite(qual)) bad('QUAL', `QUAL must be a number or '.', found ${JSON.stringify(qualText)}`);
    const info = line.slice(t7 + 1, this.columns > 8 ? line.indexOf('\t', t7 + 1) : line.length);
    if (info === '') bad('INFO', "empty INFO (use '.')");
    let format: string | undefined;
    let samplesFrom = line.length;
    if (this.columns > 8) {
      const t8 = line.indexOf('\t', t7 + 1);
      const t9 = line.indexOf('\t', t8 + 1);
      format = line.slice(t8 + 1, t9);
      samplesFrom = t9 + 1;
    }
    return { chrom, pos, id: line.slice(t2 + 1, t3), ref, alts, qual, filter: line.slice(t6 + 1, t7), info, format, line, samplesFrom };
  }
}

/**
 * A genotype string → allele indexes ('.' = -1). `0/1`, `1|2`, `1`, `./.`.
 */
export function parseGenotype(gt: string): number[] {
  if (gt === '' || gt === '.') return [-1];
  const out: number[] = [];
  let cur = '';
  for (let i = 0; i <= gt.length; i++) {
    const c = gt[i];
    if (i === gt.length || c === '/' || c === '|') {
      out.push(cur === '.' || cur === '' ? -1 : Number(cur));
      cur = '';
    } else cur += c;
  }
  return out;
}
