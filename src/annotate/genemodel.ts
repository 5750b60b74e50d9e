/**
 * Gene models from Ensembl-style GFF3 or GENCODE/Ensembl GTF, read line by line.
 *
 * Coordinates are 0-based inclusive. Each transcript keeps its exons, its coding
 * segments (CDS, with the GFF phase of the segment that starts the coding sequence in
 * transcript order) and its UTRs, all sorted by genomic position.
 */
import { InputError } from '../util/errors.js';
import { lineBatches } from './vcf.js';

export type Strand = '+' | '-';

export interface Interval {
  beg: number;
  end: number;
}

export interface CdsSegment extends Interval {
  /** GFF phase: bases to skip at the 5' end (transcript orientation) of this segment before a codon starts. */
  phase: number;
}

export interface Transcript {
  id: string;
  chrom: string;
  strand: Strand;
  geneId: string;
  geneName: string;
  /** Biotype as printed in BCSQ (nonsense_mediated_decay → NMD, IG_V_gene → IG_V, mRNA → protein_coding). */
  biotype: string;
  /** Has coding segments. */
  coding: boolean;
  beg: number;
  end: number;
  exons: Interval[];
  cds: CdsSegment[];
  utr5: Interval[];
  utr3: Interval[];
  /**
   * Junctions between coding segments that overlap or abut (no intron between them, e.g.
   * ribosomal slippage, where the overlapping bases are read twice): flat pairs of the
   * upstream segment's last base and the downstream segment's first base, genomic order.
   * Absent when there are none (almost every transcript).
   */
  cdsJunctions?: number[];
  /**
   * The transcript's GFF row reaches past its exon rows: bit 1, its first exon's start is a
   * splice junction (an intron lies before it, up to the transcript start); bit 2, its last
   * exon's end is. 0 otherwise, and when the exons are made from CDS rows.
   */
  edgeJunctions?: number;
}

/** The `cdsJunctions` of coding segments sorted by start (undefined when there are none). */
export function cdsJunctions(cds: Interval[]): number[] | undefined {
  let out: number[] | undefined;
  for (let i = 1; i < cds.length; i++) if (cds[i].beg <= cds[i - 1].end + 1) (out ??= []).push(cds[i - 1].end, cds[i].beg);
  return out;
}

export interface GeneModel {
  transcripts: Transcript[];
  chroms(): string[];
  /** Transcripts on `chrom` whose span [beg, end] overlaps [beg, end] (0-based inclusive), sorted by start. */
  overlapping(chrom: string, beg: number, end: number): Transcript[];
  /** The largest end of the transcripts `overlapping` would return, or -1 when there are none (allocates nothing). */
  reach(chrom: string, beg: number, end: number): number;
  /**
   * `reach` on one chromosome for queries that mostly come in ascending order (records of a
   * sorted VCF): a cursor moves forward instead of a search per query (any order stays correct).
   */
  reacher(chrom: string): (beg: number, end: number) => number;
}

/** Short biotype name as bcftools prints it. */
export function displayBiotype(b: string): string {
  if (b === 'mRNA') return 'protein_coding';
  if (b === 'nonsense_mediated_decay') return 'NMD';
  const m = /^(IG|TR)_([A-Z]+)_gene$/.exec(b);
  if (m) return `${m[1]}_${m[2]}`;
  return b;
}

interface RawTx {
  id: string;
  chrom: string;
  strand: Strand | null;
  parent: string | null;
  biotype: string | null;
  type: string;
  line: number;
  exons: Interval[];
  cds: CdsSegment[];
  utr5: Interval[];
  utr3: Interval[];
  utr: Interval[];
  stop: Interval[];
  name: string | null;
  beg: number;
  end: number;
}

interface RawGene {
  id: string;
  name: string | null;
  biotype: string | null;
}

const stripPrefix = (s: string) => (s.startsWith('gene:') ? s.slice(5) : s.startsWith('transcript:') ? s.slice(11) : s);

const TX_TYPES = new Set(['mRNA', 'transcript', 'lincRNA', 'lnc_RNA', 'ncRNA', 'processed_transcript', 'NMD_transcript_variant', 'snRNA', 'snoRNA', 'miRNA', 'rRNA', 'pseudogenic_transcript', 'unconfirmed_transcript', 'primary_transcript', 'V_gene_segment', 'J_gene_segment', 'C_gene_segment', 'D_gene_segment', 'scRNA', 'tRNA']);

/**
 * GFF3 column 9, read on demand: most rows need one or two keys of many, so no map of
 * all of them is built. `key=value` pairs split on ';', key and value trimmed, the last
 * pair of a key wins, values percent-decoded.
 */
class GffAttrs {
  constructor(private readonly s: string) {}

  get(key: string): string | undefined {
    const s = this.s;
    let found: string | undefined;
    let p = 0;
    while (p <= s.length) {
      let q = s.indexOf(';', p);
      if (q < 0) q = s.length;
      const eq = s.indexOf('=', p);
      if (eq >= 0 && eq < q) {
        // trimmed key == key, compared in place
        let kb = p, ke = eq;
        while (kb < ke && isSpace(s.charCodeAt(kb))) kb++;
        while (ke > kb && isSpace(s.charCodeAt(ke - 1))) ke--;
        if (ke - kb === key.length && s.startsWith(key, kb)) found = s.slice(eq + 1, q).trim();
      }
      p = q + 1;
    }
    return found === undefined || found.indexOf('%') < 0 ? found : decodeURIComponent(found);
  }
}

/** What String.prototype.trim removes, for the ASCII range and the common Unicode spaces. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 160 || c === 0xfeff || c === 0x2028 || c === 0x2029 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000;
}

function parseGtfAttrs(s: string): Map<string, string> {
  const m = new Map<string, string>();
  const re = /\s*([^\s;]+)\s+(?:"([^"]*)"|([^;\s]+))\s*;?/g;
  let x: RegExpExecArray | null;
  while ((x = re.exec(s))) if (!m.has(x[1])) m.set(x[1], x[2] ?? x[3]);
  return m;
}

/** A GFF coordinate as `Number` reads it (plain digits without making a number from a string). */
function gffNumber(t: string): number {
  if (t.length === 0 || t.length > 15) return Number(t);
  let v = 0;
  for (let i = 0; i < t.length; i++) {
    const d = t.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return Number(t);
    v = v * 10 + d;
  }
  return v;
}

/** What the rows of a gene model file gather. */
interface GffState {
  file: string;
  fmt: 'gff3' | 'gtf';
  genes: Map<string, RawGene>;
  txs: Map<string, RawTx>;
  children: Array<{ parent: string; type: string; iv: CdsSegment; strand: Strand; chrom: string; line: number }>;
}

/** One line of a GFF3/GTF file. */
function readGffLine(st: GffState, line: string, lineNo: number): void {
  const { file, fmt, genes, txs, children } = st;
  if (!line || line[0] === '#') return;
  // the 9 columns by their tabs (no array of all of them: most are not needed)
  const t0 = line.indexOf('\t'), t1 = line.indexOf('\t', t0 + 1), t2 = line.indexOf('\t', t1 + 1), t3 = line.indexOf('\t', t2 + 1);
  const t4 = line.indexOf('\t', t3 + 1), t5 = line.indexOf('\t', t4 + 1), t6 = line.indexOf('\t', t5 + 1), t7 = line.indexOf('\t', t6 + 1);
  if (t0 < 0 || t1 < 0 || t2 < 0 || t3 < 0 || t4 < 0 || t5 < 0 || t6 < 0 || t7 < 0) {
    throw new InputError('bad_gff', `expected 9 columns, found ${line.split('\t').length}`, { file, line: lineNo });
  }
  const t8 = line.indexOf('\t', t7 + 1);
  const c0 = line.slice(0, t0);
  const type = line.slice(t1 + 1, t2);
  const begText = line.slice(t2 + 1, t3), endText = line.slice(t3 + 1, t4);
  const beg = Math.max(0, gffNumber(begText) - 1), end = gffNumber(endText) - 1;
  if (!Number.isInteger(beg) || !Number.isInteger(end) || end < beg) throw new InputError('bad_gff', `bad coordinates ${begText}-${endText}`, { file, line: lineNo, field: 'start/end' });
  const sc = t6 === t5 + 2 ? line.charCodeAt(t5 + 1) : 0;
  const strand = sc === 43 ? '+' : sc === 45 ? '-' : null;
  const pc = t7 === t6 + 2 ? line.charCodeAt(t6 + 1) : 0;
  const phase = pc === 46 ? 0 : pc >= 48 && pc <= 50 ? pc - 48 : Number(line.slice(t6 + 1, t7));
  if (!(phase === 0 || phase === 1 || phase === 2)) throw new InputError('bad_gff', `bad phase ${JSON.stringify(line.slice(t6 + 1, t7))}`, { file, line: lineNo, field: 'phase' });
  const attrs = line.slice(t7 + 1, t8 < 0 ? line.length : t8);
  if (fmt === 'gff3') {
    const a = new GffAttrs(attrs);
    // parts of a transcript (most rows) need only their Parent
    const part = type === 'exon' || type === 'CDS' || type === 'five_prime_UTR' || type === 'three_prime_UTR' || type === 'stop_codon' || type === 'start_codon';
    const id = part ? undefined : a.get('ID');
    const parent = a.get('Parent');
    if (type === 'gene' || type.endsWith('_gene') || (id && id.startsWith('gene:'))) {
      if (!id) return;
      const gid = stripPrefix(id);
      genes.set(gid, { id: gid, name: a.get('Name') ?? null, biotype: a.get('biotype') ?? a.get('gene_biotype') ?? null });
      return;
    }
    if (part) {
      if (!parent) throw new InputError('bad_gff', `${type} without Parent`, { file, line: lineNo, field: 'Parent' });
      if (!strand) throw new InputError('bad_gff', `${type} without strand`, { file, line: lineNo, field: 'strand' });
      for (const p of parent.indexOf(',') < 0 ? [parent] : parent.split(',')) children.push({ parent: stripPrefix(p), type, iv: { beg, end, phase }, strand, chrom: c0, line: lineNo });
      return;
    }
    if (id && (id.startsWith('transcript:') || TX_TYPES.has(type) || (parent && parent.startsWith('gene:')))) {
      const tid = stripPrefix(id);
      txs.set(tid, newTx(tid, c0, strand, parent ? stripPrefix(parent.split(',')[0]) : null, a.get('biotype') ?? a.get('transcript_biotype') ?? null, type, lineNo, beg, end, a.get('Name') ?? null));
    }
  } else {
    const a = parseGtfAttrs(attrs);
    const gid = a.get('gene_id');
    const tid = a.get('transcript_id');
    if (type === 'gene') {
      if (gid) genes.set(gid, { id: gid, name: a.get('gene_name') ?? null, biotype: a.get('gene_type') ?? a.get('gene_biotype') ?? null });
      return;
    }
    if (!tid) return;
    if (gid && !genes.has(gid)) genes.set(gid, { id: gid, name: a.get('gene_name') ?? null, biotype: a.get('gene_type') ?? a.get('gene_biotype') ?? null });
    if (type === 'transcript') {
      txs.set(tid, newTx(tid, c0, strand, gid ?? null, a.get('transcript_type') ?? a.get('transcript_biotype') ?? null, type, lineNo, beg, end, null));
      return;
    }
    if (!strand) throw new InputError('bad_gff', `${type} without strand`, { file, line: lineNo, field: 'strand' });
    if (!txs.has(tid)) txs.set(tid, newTx(tid, c0, strand, gid ?? null, a.get('transcript_type') ?? a.get('transcript_biotype') ?? null, 'transcript', lineNo, beg, end, null));
    const t = type === 'UTR' || type === 'five_prime_utr' || type === 'three_prime_utr' ? (type === 'five_prime_utr' ? 'five_prime_UTR' : type === 'three_prime_utr' ? 'three_prime_UTR' : 'UTR') : type;
    if (t === 'exon' || t === 'CDS' || t === 'UTR' || t === 'five_prime_UTR' || t === 'three_prime_UTR' || t === 'stop_codon') children.push({ parent: tid, type: t, iv: { beg, end, phase }, strand, chrom: c0, line: lineNo });
  }
}

/** Loads a GFF3 (default) or GTF (`.gtf`, `.gtf.gz`, or format 'gtf') gene model. */
export async function loadGeneModel(file: string, format?: 'gff3' | 'gtf'): Promise<GeneModel> {
  const fmt = format ?? (/\.gtf(\.gz)?$/i.test(file) ? 'gtf' : 'gff3');
  const genes = new Map<string, RawGene>();
  const txs = new Map<string, RawTx>();
  const children: Array<{ parent: string; type: string; iv: CdsSegment; strand: Strand; chrom: string; line: number }> = [];
  let lineNo = 0;
  const st: GffState = { file, fmt, genes, txs, children };
  for await (const batch of lineBatches(file, 'utf8')) {
    // one call per line: the line's work compiles as a function of its own, not as the loop of this long one
    for (const line of batch) readGffLine(st, line, ++lineNo);
  }

  for (const ch of children) {
    const t = txs.get(ch.parent);
    if (!t) throw new InputError('bad_gff', `${ch.type} refers to unknown parent transcript ${JSON.stringify(ch.parent)}`, { file, line: ch.line, field: 'Parent' });
    if (t.strand === null) t.strand = ch.strand;
    if (t.strand !== ch.strand) throw new InputError('bad_gff', `${ch.type} on strand ${ch.strand} but transcript ${t.id} is on ${t.strand}`, { file, line: ch.line, field: 'strand' });
    if (t.chrom !== ch.chrom) throw new InputError('bad_gff', `${ch.type} on ${ch.chrom} but transcript ${t.id} is on ${t.chrom}`, { file, line: ch.line, field: 'seqid' });
    const iv = { beg: ch.iv.beg, end: ch.iv.end };
    if (ch.type === 'exon') t.exons.push(iv);
    else if (ch.type === 'CDS') t.cds.push({ beg: iv.beg, end: iv.end, phase: ch.iv.phase, line: ch.line } as CdsSegment);
    else if (ch.type === 'five_prime_UTR') t.utr5.push(iv);
    else if (ch.type === 'three_prime_UTR') t.utr3.push(iv);
    else if (ch.type === 'UTR') t.utr.push(iv);
    else if (ch.type === 'stop_codon') t.stop.push(iv);
  }

  const out: Transcript[] = [];
  for (const t of txs.values()) {
    const strand = t.strand;
    if (!strand) throw new InputError('bad_gff', `transcript ${t.id} has no strand`, { file, line: t.line, field: 'strand' });
    if (!t.exons.length && !t.cds.length) continue;
    const g = t.parent ? genes.get(t.parent) : undefined;
    if (t.parent && !g && fmt === 'gff3') throw new InputError('bad_gff', `transcript ${t.id} refers to unknown gene ${JSON.stringify(t.parent)}`, { file, line: t.line, field: 'Parent' });
    const byBeg = (a: Interval, b: Interval) => a.beg - b.beg;
    let cds = mergeCds(t.cds.sort(byBeg));
    // GTF: stop codon rows are outside CDS; join them
    for (const s of t.stop) cds = addStop(cds, s);
    let exons = mergeIntervals(t.exons.sort(byBeg));
    const exonRows = exons.length > 0;
    if (!exonRows) exons = mergeIntervals(cds.map((x) => ({ beg: x.beg, end: x.end })));
    for (const c of cds) {
      if (!exons.some((e) => e.beg <= c.beg && c.end <= e.end)) {
        throw new InputError('bad_gff', `CDS ${c.beg + 1}-${c.end + 1} of transcript ${t.id} lies outside its exons`, { file, line: (c as CdsSegment & { line?: number }).line ?? t.line, field: 'CDS' });
      }
    }
    const utr5: Interval[] = [], utr3: Interval[] = [];
    if (cds.length) {
      const cb = cds[0].beg, ce = cds[cds.length - 1].end;
      // UTRs derived from exons outside the coding span (robust to missing UTR rows)
      for (const e of exons) {
        if (e.beg < cb) (strand === '+' ? utr5 : utr3).push({ beg: e.beg, end: Math.min(e.end, cb - 1) });
        if (e.end > ce) (strand === '+' ? utr3 : utr5).push({ beg: Math.max(e.beg, ce + 1), end: e.end });
      }
    }
    const rawBt = t.biotype ?? g?.biotype ?? t.type;
    const beg = Math.min(t.beg, exons[0].beg), end = Math.max(t.end, exons[exons.length - 1].end);
    const junctions = cdsJunctions(cds);
    const edgeJunctions = exonRows ? (t.beg < exons[0].beg ? 1 : 0) | (t.end > exons[exons.length - 1].end ? 2 : 0) : 0;
    out.push({
      id: t.id,
      chrom: t.chrom,
      strand,
      geneId: g?.id ?? t.parent ?? t.id,
      geneName: g?.name ?? g?.id ?? t.parent ?? t.id,
      biotype: displayBiotype(rawBt),
      coding: cds.length > 0,
      beg,
      end,
      exons,
      cds: cds.map(({ beg, end, phase }) => ({ beg, end, phase })),
      utr5,
      utr3,
      cdsJunctions: junctions,
      edgeJunctions,
    });
  }
  out.sort((a, b) => (a.chrom < b.chrom ? -1 : a.chrom > b.chrom ? 1 : a.beg - b.beg || a.end - b.end));
  return indexModel(out);
}

function newTx(id: string, chrom: string, strand: Strand | null, parent: string | null, biotype: string | null, type: string, line: number, beg: number, end: number, name: string | null): RawTx {
  return { id, chrom, strand, parent, biotype, type, line, exons: [], cds: [], utr5: [], utr3: [], utr: [], stop: [], name, beg, end };
}

function mergeIntervals(v: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const x of v) {
    const last = out[out.length - 1];
    if (last && x.beg <= last.end + 1 && x.beg <= last.end) last.end = Math.max(last.end, x.end);
    else out.push({ beg: x.beg, end: x.end });
  }
  return out;
}

/**
 * Coding segments sorted by start: one that lies within the one before it (a repeated row)
 * is dropped; one that starts inside the one before it and ends after it is kept as it is
 * (ribosomal slippage: the bases in both are read twice, bcftools csq --force does the same).
 */
function mergeCds(v: CdsSegment[]): CdsSegment[] {
  const out: CdsSegment[] = [];
  for (const x of v) {
    const last = out[out.length - 1];
    if (last && x.beg >= last.beg && x.end <= last.end) continue;
    if (last && x.beg <= last.beg) last.end = Math.max(last.end, x.end);
    else out.push({ ...x });
  }
  return out;
}

function addStop(cds: CdsSegment[], s: Interval): CdsSegment[] {
  const out = cds.map((c) => ({ ...c }));
  for (const c of out) {
    if (s.beg === c.end + 1 || (s.beg >= c.beg && s.beg <= c.end + 1 && s.end > c.end)) {
      c.end = Math.max(c.end, s.end);
      return out;
    }
    if (s.end === c.beg - 1 || (s.end >= c.beg - 1 && s.end <= c.end && s.beg < c.beg)) {
      c.beg = Math.min(c.beg, s.beg);
      return out;
    }
    if (s.beg >= c.beg && s.end <= c.end) return out;
  }
  out.push({ beg: s.beg, end: s.end, phase: 0 });
  out.sort((a, b) => a.beg - b.beg);
  return out;
}

/**
 * Intervals [beg, end] sorted by start, for the questions records of a sorted VCF ask:
 * which intervals overlap, and how far the overlapping ones reach. A running maximum of the
 * ends finds the first interval that can overlap a position in one search.
 */
export class SpanIndex {
  private readonly maxEnd: Float64Array;

  constructor(
    readonly begs: Float64Array,
    readonly ends: Float64Array,
  ) {
    this.maxEnd = new Float64Array(ends.length);
    let m = -1;
    for (let i = 0; i < ends.length; i++) this.maxEnd[i] = m = Math.max(m, ends[i]);
  }

  /** The first index whose running maximum end is at least `beg`. */
  first(beg: number): number {
    const maxEnd = this.maxEnd;
    let lo = 0, hi = maxEnd.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (maxEnd[mid] < beg) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The largest end of the intervals overlapping [beg, end], or -1. */
  reach(beg: number, end: number): number {
    return this.reachFrom(this.first(beg), beg, end);
  }

  private reachFrom(at: number, beg: number, end: number): number {
    const { begs, ends } = this;
    let r = -1;
    for (let i = at; i < begs.length && begs[i] <= end; i++) if (ends[i] >= beg && ends[i] > r) r = ends[i];
    return r;
  }

  /** `reach` for queries that mostly come in ascending order: a cursor moves forward instead of a search per query (any order stays correct). */
  reacher(): (beg: number, end: number) => number {
    const maxEnd = this.maxEnd;
    let at = 0;
    let lastBeg = -1;
    return (beg, end) => {
      if (beg < lastBeg) at = this.first(beg);
      else while (at < maxEnd.length && maxEnd[at] < beg) at++;
      lastBeg = beg;
      return this.reachFrom(at, beg, end);
    };
  }
}

/**
 * Texts and numbers in one shared buffer, written and read far faster than a structured
 * clone of many small objects: u32 byte length of the texts as JSON, the JSON, padding to 8,
 * then `count` float64 numbers (returned for the caller to fill).
 */
function packTextsAndNumbers(texts: unknown, count: number): { sab: SharedArrayBuffer; numbers: Float64Array } {
  const json = Buffer.from(JSON.stringify(texts), 'utf8');
  const numOff = (4 + json.length + 7) & ~7;
  const sab = new SharedArrayBuffer(numOff + 8 * count);
  new DataView(sab).setUint32(0, json.length, true);
  new Uint8Array(sab, 4, json.length).set(json);
  return { sab, numbers: new Float64Array(sab, numOff, count) };
}

/** What `packTextsAndNumbers` packed (from its bytes, in shared memory or not). */
function unpackTextsAndNumbers(buf: ArrayBufferLike): { texts: unknown; numbers: Float64Array } {
  const len = new DataView(buf).getUint32(0, true);
  const texts: unknown = JSON.parse(Buffer.from(buf, 4, len).toString('utf8'));
  const numOff = (4 + len + 7) & ~7;
  return { texts, numbers: new Float64Array(buf, numOff, (buf.byteLength - numOff) / 8) };
}

/**
 * The transcripts of a gene model in shared memory, for `AnnotateTask.model`: their texts as
 * JSON, their coordinates as float64 numbers (a flat layout is written and read far faster
 * than a structured clone of many small objects; `packTextsAndNumbers`). The numbers, per
 * transcript: coding, beg, end, the counts of exons, CDS, 5' and 3' UTRs, `edgeJunctions`,
 * and those intervals (CDS with their phase).
 */
export function shareModel(model: GeneModel): SharedArrayBuffer {
  const txs = model.transcripts;
  let n = 0;
  for (const t of txs) n += 8 + 2 * t.exons.length + 3 * t.cds.length + 2 * t.utr5.length + 2 * t.utr3.length;
  const { sab, numbers: v } = packTextsAndNumbers(txs.map((t) => [t.id, t.chrom, t.strand, t.geneId, t.geneName, t.biotype]), n);
  let o = 0;
  for (const t of txs) {
    v[o++] = t.coding ? 1 : 0;
    v[o++] = t.beg;
    v[o++] = t.end;
    v[o++] = t.exons.length;
    v[o++] = t.cds.length;
    v[o++] = t.utr5.length;
    v[o++] = t.utr3.length;
    v[o++] = t.edgeJunctions ?? 0;
    for (const x of t.exons) (v[o++] = x.beg), (v[o++] = x.end);
    for (const x of t.cds) (v[o++] = x.beg), (v[o++] = x.end), (v[o++] = x.phase);
    for (const x of t.utr5) (v[o++] = x.beg), (v[o++] = x.end);
    for (const x of t.utr3) (v[o++] = x.beg), (v[o++] = x.end);
  }
  return sab;
}

/** The gene model of `shareModel` (its bytes, in shared memory or not). */
export function sharedModel(sab: ArrayBufferLike): GeneModel {
  const { texts: json, numbers: v } = unpackTextsAndNumbers(sab);
  const texts = json as Array<[string, string, Strand, string, string, string]>;
  let o = 0;
  const ivs = (k: number): Interval[] => {
    const out: Interval[] = new Array(k);
    for (let i = 0; i < k; i++, o += 2) out[i] = { beg: v[o], end: v[o + 1] };
    return out;
  };
  const txs: Transcript[] = texts.map(([id, chrom, strand, geneId, geneName, biotype]) => {
    const coding = v[o] === 1, beg = v[o + 1], end = v[o + 2];
    const ne = v[o + 3], nc = v[o + 4], n5 = v[o + 5], n3 = v[o + 6], edgeJunctions = v[o + 7];
    o += 8;
    const exons = ivs(ne);
    const cds: CdsSegment[] = new Array(nc);
    for (let i = 0; i < nc; i++, o += 3) cds[i] = { beg: v[o], end: v[o + 1], phase: v[o + 2] };
    const utr5 = ivs(n5);
    const utr3 = ivs(n3);
    const junctions = cdsJunctions(cds);
    return { id, chrom, strand, geneId, geneName, biotype, coding, beg, end, exons, cds, utr5, utr3, cdsJunctions: junctions, edgeJunctions };
  });
  return indexModel(txs);
}

/** Per chromosome, what `GeneModel.reacher` needs: the transcripts' spans. */
export type SpanReacher = (chrom: string) => (beg: number, end: number) => number;

/**
 * The transcript spans of a model in shared memory (for a thread that cuts a VCF into
 * chunks and needs nothing else of the model): [chromosome, transcript count] pairs as
 * JSON, then beg, end pairs (`packTextsAndNumbers`).
 */
export function shareSpans(model: GeneModel): SharedArrayBuffer {
  const counts: Array<[string, number]> = [];
  for (const t of model.transcripts) {
    const last = counts[counts.length - 1];
    if (last && last[0] === t.chrom) last[1]++;
    else counts.push([t.chrom, 1]);
  }
  const { sab, numbers: v } = packTextsAndNumbers(counts, 2 * model.transcripts.length);
  let o = 0;
  for (const t of model.transcripts) (v[o++] = t.beg), (v[o++] = t.end);
  return sab;
}

/** The reacher of `shareSpans`' spans. */
export function spanReacher(sab: SharedArrayBuffer): SpanReacher {
  const { texts, numbers: v } = unpackTextsAndNumbers(sab);
  const counts = texts as Array<[string, number]>;
  const by = new Map<string, SpanIndex>();
  let o = 0;
  for (const [chrom, n] of counts) {
    const begs = new Float64Array(n), ends = new Float64Array(n);
    for (let i = 0; i < n; i++, o += 2) (begs[i] = v[o]), (ends[i] = v[o + 1]);
    by.set(chrom, new SpanIndex(begs, ends));
  }
  return (chrom) => by.get(chrom)?.reacher() ?? NO_REACH;
}

const NO_REACH = (): number => -1;

/** A gene model over transcripts already sorted by chromosome, start and end (as `loadGeneModel` gives them). */
export function indexModel(transcripts: Transcript[]): GeneModel {
  const byChrom = new Map<string, Transcript[]>();
  for (const t of transcripts) {
    const list = byChrom.get(t.chrom);
    if (list) list.push(t);
    else byChrom.set(t.chrom, [t]);
  }
  const by = new Map<string, { tx: Transcript[]; spans: SpanIndex }>();
  for (const [chrom, tx] of byChrom) by.set(chrom, { tx, spans: new SpanIndex(Float64Array.from(tx, (t) => t.beg), Float64Array.from(tx, (t) => t.end)) });
  return {
    transcripts,
    chroms: () => [...by.keys()],
    overlapping(chrom, beg, end) {
      const e = by.get(chrom);
      if (!e) return [];
      const out: Transcript[] = [];
      for (let i = e.spans.first(beg); i < e.tx.length && e.tx[i].beg <= end; i++) if (e.tx[i].end >= beg) out.push(e.tx[i]);
      return out;
    },
    reach: (chrom, beg, end) => by.get(chrom)?.spans.reach(beg, end) ?? -1,
    reacher: (chrom) => by.get(chrom)?.spans.reacher() ?? NO_REACH,
  };
}
