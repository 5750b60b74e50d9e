/**
 * The per-chunk work of the annotator, the same in the main thread (`--threads 1`) and in
 * pool workers (workers/annotate.ts): VCF record lines in, annotated lines out.
 *
 * A task carries whole chunks (records that may share transcripts; the driver in
 * annotate.ts cuts chunks only where no transcript spans the cut, and between
 * chromosomes), so the compound consequences of a haplotype never depend on how records
 * were grouped into tasks.
 *
 * Haplotype mode (default): on each haplotype, alleles that change codons in common in
 * one transcript (or follow a frameshift that is not yet restored) are applied together;
 * the full annotation goes to the record of the group's first allele in transcript order,
 * the others get `@<POS>` of it; after a new stop codon, later entries are prefixed `*`.
 * Haplotypes come from GT (taken as phased, in the order written); without genotypes all
 * alleles form one haplotype. INFO/BCSQ is the union over haplotypes; with samples a
 * FORMAT/BCSQ bitmask (bit 2*i+h: entry i on haplotype h) is added.
 * Local mode (`local: true`): every record alone.
 */
import { deserialize, serialize } from 'node:v8';
import { InputError } from '../util/errors.js';
import {
  cdsEdit, codingEffect, type Change, type FetchSeq, joinTerms, place, startRetained, type Term, touchesCodingEdge, touchesStart, touchesStop, trimAllele, TxContext,
} from './consequence.js';
import { type BaseWindow, IndexedFasta } from './fasta.js';
import { type GeneModel, indexModel, loadGeneModel, type Transcript } from './genemodel.js';
import { KnownMatcher, type KnownDbSpec, type KnownDbStats } from './known.js';
import { vepEntry } from './vep.js';

/** What a chunk annotator is built from: plain data, so a worker can build its own. */
export interface AnnotatorSpec {
  reference: string;
  gff?: string;
  gtf?: string;
  /** One record at a time (no compound consequences). */
  local: boolean;
  /** Also write INFO/CSQ. */
  vep: boolean;
  known?: KnownDbSpec[];
}

/** Consecutive chunks of one VCF, as text. */
export interface AnnotateTask {
  spec: AnnotatorSpec;
  /** Identifies one annotateVcf call (a worker keeps per-run state, e.g. known-db statistics, under it). */
  run: string;
  /** Input file, for error places. */
  file: string;
  /** Record lines (latin1) joined by '\n' (blank lines may occur and are skipped, but counted as lines). */
  data: Uint8Array;
  /** Records per chunk, in order. */
  chunks: number[];
  /** Record number (1-based) and file line number of the first record. */
  firstRecord: number;
  firstLine: number;
  /**
   * The driver's gene model (v8-serialised transcripts in shared memory, so every task
   * carries it without a copy): a thread deserialises it once instead of parsing the GFF.
   */
  model?: SharedArrayBuffer;
  /** Identifies `model` (its source files, or the run when the caller gave a model in memory). */
  modelKey: string;
}

export interface AnnotateTaskResult {
  /** Output lines (latin1), each ending in '\n'. */
  bytes: Uint8Array;
  records: number;
  annotated: number;
  /** Cumulative statistics of this thread's known-variant matcher for the run. */
  known?: KnownDbStats[];
  /** Thread that produced `known` (statistics are merged per thread). */
  thread?: number;
}

/** One VCF record in flight. */
interface Rec {
  idx: number;
  line: string;
  /** All columns, split only when the line must be rewritten. */
  cols: string[] | null;
  chrom: string;
  pos: number;
  /** REF as written and upper-cased. */
  refRaw: string;
  ref: string;
  /** INFO is line[infoBeg, infoEnd). */
  infoBeg: number;
  infoEnd: number;
  alleles: Array<{ alt: string; ch: Change } | null>;
  /** BCSQ entries (ordered, unique). */
  bcsq: string[];
  csq: string[];
  /** Per sample, the allele index (0 = REF, -1 = missing) on each haplotype; null without genotypes. */
  gt: number[][] | null;
  /** BCSQ entries seen on each haplotype (key: hapKey), for FORMAT/BCSQ. */
  hapEntries: Map<number, Set<string>> | null;
}

/** Map key of haplotype `h` of sample `s`. */
const hapKey = (s: number, h: number) => s * 0x100000 + h;

/** Records a BCSQ entry on a record, and on the haplotypes (of its samples) that carry allele `ai`. */
function note(r: Rec, e: string, ai: number, hap?: [number, number] | null): void {
  pushUnique(r.bcsq, e);
  if (!r.gt) return;
  const he = (r.hapEntries ??= new Map());
  const put = (s: number, h: number) => {
    const k = hapKey(s, h);
    let set = he.get(k);
    if (!set) he.set(k, (set = new Set()));
    set.add(e);
  };
  if (hap) put(hap[0], hap[1]);
  else r.gt.forEach((g, s) => g.forEach((a, h) => a === ai + 1 && put(s, h)));
}

/** FORMAT/BCSQ: per sample, bit 2*i+h set when INFO/BCSQ entry i (i < 15) is on haplotype h. */
function formatMasks(r: Rec): string[] {
  return r.gt!.map((g, s) => {
    let m = 0;
    for (let h = 0; h < Math.min(2, g.length); h++) {
      const set = r.hapEntries?.get(hapKey(s, h));
      if (!set) continue;
      r.bcsq.forEach((e, i) => {
        if (i < 15 && set.has(e)) m |= 1 << (2 * i + h);
      });
    }
    return String(m >>> 0);
  });
}

/** Haplotypes of a chunk as [sample, haplotype]; [null] (one haplotype carrying everything) without genotypes. */
function haplotypes(chunk: Rec[]): Array<[number, number] | null> {
  let ns = 0, ploidy = 0;
  for (const r of chunk) {
    if (!r.gt) continue;
    ns = Math.max(ns, r.gt.length);
    for (const g of r.gt) ploidy = Math.max(ploidy, g.length);
  }
  if (!ns) return [null];
  const out: Array<[number, number]> = [];
  for (let s = 0; s < ns; s++) for (let h = 0; h < ploidy; h++) out.push([s, h]);
  return out;
}

/** The allele is carried by some haplotype (always, without genotypes). */
function carried(r: Rec, ai: number): boolean {
  return !r.gt || r.gt.some((g) => g.includes(ai + 1));
}

/** A coding hit waiting for haplotype grouping. */
interface Hit {
  rec: Rec;
  ai: number;
  ctx: TxContext;
  edit: { c1: number; c2: number; ins: string };
  k1: number;
  k2: number;
  delta: number;
  spliceMerged: Set<Term>;
}

/** Per-run state in a thread: the known-variant matcher (its statistics belong to one run). */
interface RunState {
  run: string;
  known: KnownMatcher;
  /** Opened here (else the caller's, closed by the caller). */
  owned: boolean;
}

/** The transcripts of a gene model in shared memory, for `AnnotateTask.model`. */
export function shareModel(model: GeneModel): SharedArrayBuffer {
  const bytes = serialize(model.transcripts);
  const sab = new SharedArrayBuffer(bytes.length);
  new Uint8Array(sab).set(bytes);
  return sab;
}

/** The gene model of `shareModel`. */
export function sharedModel(sab: SharedArrayBuffer): GeneModel {
  return indexModel(deserialize(new Uint8Array(sab)) as Transcript[]);
}

/** Reads gene model and reference once; annotates any number of tasks. */
export class ChunkAnnotator {
  /** Raw window over the records (REF checks). */
  private recWin: BaseWindow | null = null;
  /** Transcript sequence (exons, start codons) is read directly: small reads that jump ahead of the records. */
  readonly fetch: FetchSeq;
  private runs: RunState[] = [];

  private constructor(
    readonly spec: AnnotatorSpec,
    readonly model: GeneModel,
    readonly fa: IndexedFasta,
    private readonly ownFasta: boolean,
  ) {
    this.fetch = (c, b, e) => this.fa.fetch(c, b, e);
  }

  /**
   * `model` and `shared.fasta` reuse what the caller has open; `shared.known` is the
   * caller's known-variant matcher for one run.
   */
  static async open(spec: AnnotatorSpec, model?: GeneModel, shared: { fasta?: IndexedFasta; known?: { run: string; matcher: KnownMatcher } } = {}): Promise<ChunkAnnotator> {
    const m = model ?? (await loadGeneModel((spec.gff ?? spec.gtf)!, spec.gtf ? 'gtf' : 'gff3'));
    const fa = shared.fasta ?? (await IndexedFasta.open(spec.reference));
    const a = new ChunkAnnotator(spec, m, fa, !shared.fasta);
    if (shared.known) a.runs.push({ run: shared.known.run, known: shared.known.matcher, owned: false });
    return a;
  }

  /** The known-variant matcher of a run (opened on first use; the last two runs are kept). */
  private async knownFor(run: string): Promise<KnownMatcher | null> {
    if (!this.spec.known?.length) return null;
    let st = this.runs.find((r) => r.run === run);
    if (!st) {
      st = { run, known: await KnownMatcher.open({ databases: this.spec.known, reference: this.spec.reference }, { fasta: this.fa }), owned: true };
      this.runs.push(st);
      while (this.runs.length > 2) {
        const old = this.runs.shift()!;
        if (old.owned) old.known.close();
      }
    }
    return st.known;
  }

  close(): void {
    for (const r of this.runs) if (r.owned) r.known.close();
    this.runs = [];
    if (this.ownFasta) this.fa.close();
  }

  async runTask(task: AnnotateTask): Promise<AnnotateTaskResult> {
    const known = await this.knownFor(task.run);
    const d = task.data;
    const lines = Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('latin1').split('\n');
    const res: AnnotateTaskResult = { bytes: EMPTY, records: 0, annotated: 0 };
    let li = 0;
    let recNo = task.firstRecord;
    let lineNo = task.firstLine;
    const out = new LineBuffer(d.byteLength + (d.byteLength >> 1));
    for (const n of task.chunks) {
      const chunk: Rec[] = new Array(n);
      for (let k = 0; k < n; k++) {
        while (!lines[li]) {
          li++;
          lineNo++;
        }
        chunk[k] = this.parseRec(lines[li], recNo, lineNo, task.file);
        li++;
        lineNo++;
        recNo++;
      }
      res.records += n;
      if (touchesModel(chunk, this.model)) annotateRecords(chunk, this.model, this.spec.local, this.spec.vep, this.fetch);
      // --- known-variant databases (known.ts): rewrites ID and INFO of the rows in place ---
      if (known) await known.annotateRows(chunk.map(colsOf));
      res.annotated += this.format(chunk, out);
    }
    res.bytes = out.bytes();
    if (known) res.known = known.stats();
    return res;
  }

  /** Appends a chunk's output lines to `out`; returns how many records got BCSQ or CSQ. */
  private format(chunk: Rec[], out: LineBuffer): number {
    let annotated = 0;
    for (const r of chunk) {
      const hasB = r.bcsq.length > 0, hasC = this.spec.vep && r.csq.length > 0;
      if (hasB || r.csq.length) annotated++;
      if (!hasB && !hasC && !r.cols) {
        out.push(r.line);
        continue;
      }
      const masks = r.gt && hasB ? formatMasks(r) : null;
      if (!r.cols) {
        // the line is rewritten from INFO on only
        const line = r.line;
        let info = line.slice(r.infoBeg, r.infoEnd);
        if (hasB) info = setInfoKey(info, 'BCSQ', r.bcsq.join(','));
        if (hasC) info = setInfoKey(info, 'CSQ', r.csq.join(','));
        let text = line.slice(0, r.infoBeg) + info;
        if (masks) {
          // FORMAT gets ':BCSQ', each sample column (one mask per column) ':<mask>'
          let p = r.infoEnd;
          let q = line.indexOf('\t', p + 1);
          text += `${line.slice(p, q < 0 ? line.length : q)}:BCSQ`;
          for (let i = 0; i < masks.length; i++) {
            p = q;
            q = line.indexOf('\t', p + 1);
            text += `${line.slice(p, q < 0 ? line.length : q)}:${masks[i]}`;
          }
        } else text += line.slice(r.infoEnd);
        out.push(text);
        continue;
      }
      const cols = r.cols;
      let info = cols[7];
      if (hasB) info = setInfoKey(info, 'BCSQ', r.bcsq.join(','));
      if (hasC) info = setInfoKey(info, 'CSQ', r.csq.join(','));
      cols[7] = info;
      if (masks) {
        cols[8] += ':BCSQ';
        for (let i = 0; i < masks.length; i++) cols[9 + i] += `:${masks[i]}`;
      }
      out.push(cols.join('\t'));
    }
    return annotated;
  }

  /** The record window, moved to hold [b, e] (null when it cannot). */
  private recWindow(chrom: string, b: number, e: number): BaseWindow | null {
    if (this.recWin?.holds(chrom, b, e)) return this.recWin;
    if (e - b > 1 << 18) return null;
    this.recWin = this.fa.window(chrom, b, b + (1 << 20));
    return this.recWin?.holds(chrom, b, e) ? this.recWin : null;
  }

  private lastChrom = '';

  /** Parses the fields the annotator needs, validating them like a full parse would. */
  private parseRec(line: string, idx: number, lineNo: number, file: string): Rec {
    // tab positions of the first 9 columns
    const t0 = line.indexOf('\t');
    const t1 = t0 < 0 ? -1 : line.indexOf('\t', t0 + 1);
    const t2 = t1 < 0 ? -1 : line.indexOf('\t', t1 + 1);
    const t3 = t2 < 0 ? -1 : line.indexOf('\t', t2 + 1);
    const t4 = t3 < 0 ? -1 : line.indexOf('\t', t3 + 1);
    const t5 = t4 < 0 ? -1 : line.indexOf('\t', t4 + 1);
    const t6 = t5 < 0 ? -1 : line.indexOf('\t', t5 + 1);
    if (t6 < 0) {
      throw new InputError('bad_vcf', `expected at least 8 columns, found ${line.split('\t').length}`, { file, record: idx, line: lineNo });
    }
    const t7 = line.indexOf('\t', t6 + 1);
    let pos1 = 0;
    for (let i = t0 + 1; i < t1; i++) {
      const d = line.charCodeAt(i) - 48;
      if (d < 0 || d > 9 || i - t0 > 15) {
        pos1 = -1;
        break;
      }
      pos1 = pos1 * 10 + d;
    }
    if (pos1 < 1) {
      const posText = line.slice(t0 + 1, t1);
      pos1 = Number(posText);
      if (!Number.isInteger(pos1) || pos1 < 1) throw new InputError('bad_vcf', `bad POS ${JSON.stringify(posText)}`, { file, record: idx, line: lineNo, field: 'POS' });
    }
    const refRaw = line.slice(t2 + 1, t3);
    let ref = refRaw;
    if (!isBases(ref)) {
      ref = refRaw.toUpperCase();
      if (!/^[ACGTN]+$/.test(ref)) throw new InputError('bad_vcf', `bad REF ${JSON.stringify(refRaw)}`, { file, record: idx, line: lineNo, field: 'REF' });
    }
    let chrom = this.lastChrom;
    if (t0 !== chrom.length || !line.startsWith(chrom)) this.lastChrom = chrom = line.slice(0, t0);
    const pos = pos1 - 1;
    const infoEnd = t7 < 0 ? line.length : t7;
    let alleles: Rec['alleles'] = [];
    /** No transcript can reach the record (and it has no symbolic allele): it is only checked, and written as it is. */
    let quiet = true;
    let nAlt = 0;
    if (this.fa.has(chrom)) {
      const w = this.recWindow(chrom, pos, pos + ref.length - 1);
      let same = w !== null;
      for (let i = 0; same && i < ref.length; i++) same = w!.code(pos + i) === ref.charCodeAt(i);
      if (!same) {
        const real = this.fa.fetch(chrom, pos, pos + ref.length - 1);
        for (let i = 0; i < real.length; i++) {
          if (ref[i] !== 'N' && real[i] !== 'N' && ref[i] !== real[i]) {
            throw new InputError('ref_mismatch', `REF ${refRaw} does not match the reference (${real}) at ${chrom}:${pos1}`, { file, record: idx, line: lineNo, field: 'REF' });
          }
        }
      }
      const hasAlt = !(t4 === t3 + 2 && line.charCodeAt(t3 + 1) === 46 /* . */);
      const lt = line.indexOf('<', t3 + 1);
      // every trimmed allele lies within [pos - 1, pos + REF length]
      quiet = !(lt >= 0 && lt < t4) && this.model.reach(chrom, pos - 1, pos + ref.length) < 0;
      if (quiet && hasAlt) {
        nAlt = 1;
        for (let i = line.indexOf(',', t3 + 1); i >= 0 && i < t4; i = line.indexOf(',', i + 1)) nAlt++;
      }
      if (!quiet && hasAlt) {
        const altText = line.slice(t3 + 1, t4);
        for (const a0 of altText.indexOf(',') < 0 ? [altText] : altText.split(',')) {
          if (a0.charCodeAt(0) === 60 /* < */) {
            if (/^<(INS|DUP|DEL)/.test(a0)) {
              alleles.push({ alt: a0, ch: { beg: pos, end: pos, ins: '' } });
              continue;
            }
          }
          const a = isBases(a0) ? a0 : a0.toUpperCase();
          if (a === ref || (a === a0 ? !isBases(a) : !/^[ACGTN]+$/.test(a))) {
            alleles.push(null);
            continue;
          }
          alleles.push({ alt: a, ch: trimAllele(pos, ref, a) });
        }
      }
    }
    if (!quiet) nAlt = alleles.length;
    else alleles = NO_ALLELES;
    let gt: number[][] | null = null;
    // FORMAT and at least one sample column, FORMAT starting with GT
    const t8 = t7 < 0 ? -1 : line.indexOf('\t', t7 + 1);
    if (t8 >= 0 && line.charCodeAt(t7 + 1) === 71 && line.charCodeAt(t7 + 2) === 84 && (t7 + 3 === t8 || line.charCodeAt(t7 + 3) === 58)) {
      // a quiet record's genotypes are checked, not kept (no haplotype of it carries a consequence)
      gt = [];
      let s = t8 + 1;
      for (;;) {
        const tab = line.indexOf('\t', s);
        const e = tab < 0 ? line.length : tab;
        let c = line.indexOf(':', s);
        if (c < 0 || c > e) c = e;
        // diploid single-digit genotypes without slicing the line
        let g: number[] | null = null;
        if (c - s === 3 && (line.charCodeAt(s + 1) === 124 || line.charCodeAt(s + 1) === 47)) {
          const x = gtDigit(line.charCodeAt(s)), y = gtDigit(line.charCodeAt(s + 2));
          if (x > -2 && y > -2 && x <= nAlt && y <= nAlt) g = quiet ? CHECKED : [x, y];
        }
        if (g) {
          if (!quiet) gt.push(g);
        } else {
          const parsed = parseGt(line.slice(s, c), nAlt, file, idx, lineNo);
          if (!quiet) gt.push(parsed);
        }
        if (tab < 0) break;
        s = tab + 1;
      }
      if (quiet) gt = null;
    }
    return { idx, line, cols: null, chrom, pos, refRaw, ref, infoBeg: t6 + 1, infoEnd, alleles, bcsq: [], csq: [], gt, hapEntries: null };
  }
}

const NO_ALLELES: Rec['alleles'] = Object.freeze([]) as unknown as Rec['alleles'];
/** Stands for a genotype that was checked and is not kept. */
const CHECKED: number[] = Object.freeze([]) as unknown as number[];

/** Allele index of one GT character: '.' → -1, a digit → its value, else -2. */
const gtDigit = (c: number) => (c === 46 ? -1 : c >= 48 && c <= 57 ? c - 48 : -2);

/** Some allele of the chunk may overlap a transcript (symbolic alleles are left to the full pass). */
function touchesModel(chunk: Rec[], model: GeneModel): boolean {
  for (const r of chunk) {
    for (let ai = 0; ai < r.alleles.length; ai++) {
      const a = r.alleles[ai];
      if (!a) continue;
      if (a.alt.charCodeAt(0) === 60) return true;
      const tr = a.ch;
      if (model.reach(r.chrom, Math.min(tr.beg, tr.end), Math.max(tr.beg, tr.end)) >= 0) return true;
    }
  }
  return false;
}

const EMPTY = new Uint8Array(0);

/** Output lines written straight into a growing latin1 buffer (no joined string, no second copy). */
class LineBuffer {
  private buf: Buffer;
  private len = 0;
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, capacity));
  }
  push(line: string): void {
    const need = this.len + line.length + 1;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.len += this.buf.write(line, this.len, 'latin1');
    this.buf[this.len++] = 10;
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** All characters are upper-case A, C, G, T or N (and there is at least one). */
function isBases(s: string): boolean {
  if (!s.length) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 65 && c !== 67 && c !== 71 && c !== 84 && c !== 78) return false;
  }
  return true;
}

const colsOf = (r: Rec): string[] => (r.cols ??= r.line.split('\t'));

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

/** The spellings a key can have in an INFO column, per key (a few keys are set, so they are kept). */
const infoKeyForms = new Map<string, string[]>();

/** The INFO column has `key` (as a flag or key=value). */
function hasInfoKey(info: string, key: string): boolean {
  let f = infoKeyForms.get(key);
  if (!f) infoKeyForms.set(key, (f = [`${key}=`, `${key};`, `;${key}=`, `;${key};`, `;${key}`]));
  return info === key || info.startsWith(f[0]) || info.startsWith(f[1]) || info.includes(f[2]) || info.includes(f[3]) || info.endsWith(f[4]);
}

/** Sets (or replaces, moving it to the end) an INFO key. */
export function setInfoKey(info: string, key: string, value: string): string {
  if (info === '.' || info === '') return `${key}=${value}`;
  if (!hasInfoKey(info, key)) return `${info};${key}=${value}`;
  const parts = info.split(';').filter((kv) => kv !== key && !kv.startsWith(`${key}=`));
  parts.push(`${key}=${value}`);
  return parts.join(';');
}

const pushUnique = (a: string[], s: string) => {
  if (!a.includes(s)) a.push(s);
};

function entry(terms: Iterable<Term>, tx: Transcript, opt: { geneLevel?: boolean; strand?: boolean; aa?: string; dna?: string } = {}): string {
  const f = [joinTerms(terms), tx.geneName, opt.geneLevel ? '' : tx.id, tx.biotype];
  if (opt.strand || opt.aa !== undefined) f.push(tx.strand);
  if (opt.aa !== undefined) f.push(opt.aa, opt.dna ?? '');
  return f.join('|');
}

const dnaOf = (r: Rec, ai: number) => `${r.pos + 1}${r.ref}>${r.alleles[ai]!.alt}`;

/** Annotates all records of a chunk (records that may share transcripts). */
function annotateRecords(chunk: Rec[], model: GeneModel, local: boolean, vep: boolean, fetch: FetchSeq): void {
  const ctxCache = new Map<Transcript, TxContext>();
  const ctxOf = (t: Transcript) => {
    let c = ctxCache.get(t);
    if (!c) ctxCache.set(t, (c = new TxContext(t, fetch)));
    return c;
  };
  const hits = new Map<Transcript, Hit[]>();
  for (const r of chunk) {
    const ref = r.ref;
    r.alleles.forEach((a, ai) => {
      if (!a || !carried(r, ai)) return;
      if (a.alt[0] === '<') {
        symbolic(r, a.alt, ai);
        return;
      }
      const alt = a.alt;
      const pureIns = ref.length === 1 && alt.length > 1 && alt[0] === ref[0];
      // structural change: insertion point, or the whole REF span
      const pureDel = alt.length === 1 && ref.length > 1 && alt[0] === ref[0];
      const ch: Change = pureIns ? { beg: r.pos + 1, end: r.pos, ins: alt.slice(1) } : pureDel ? { beg: r.pos + 1, end: r.pos + ref.length - 1, ins: '' } : { beg: r.pos, end: r.pos + ref.length - 1, ins: alt };
      const tr = a.ch;
      const lo = Math.min(tr.beg, tr.end), hi = Math.max(tr.beg, tr.end);
      for (const tx of model.overlapping(r.chrom, lo, hi)) {
        if (tr.end < tr.beg && (tr.beg <= tx.beg || tr.beg > tx.end)) continue;
        const pl = place(tx, ch);
        const add = (terms: Set<Term>, o: { geneLevel?: boolean; strand?: boolean } = {}) => {
          note(r, entry(terms, tx, o), ai);
          if (vep) pushUnique(r.csq, vepEntry(alt, [...terms], tx, null, r.pos, ref, ai));
        };
        if (!tx.coding) {
          // non-coding transcripts: one gene-level term anywhere in the transcript span
          add(new Set<Term>(['non_coding']), { geneLevel: true });
          continue;
        }
        const ctx = ctxOf(tx);
        const t = new Set<Term>(pl.splice);
        if (pl.outside) {
          if (pl.coding && ctx.cds.length % 3 === 0 && touchesStop(ctx, tr)) {
            let n = 0;
            if (tr.end >= tr.beg) for (const c of tx.cds) n += Math.max(0, Math.min(c.end, tr.end) - Math.max(c.beg, tr.beg) + 1);
            t.add('stop_lost');
            t.add(n % 3 ? 'frameshift' : 'inframe_deletion');
            add(t, { strand: true });
          } else {
            if (pl.exonic) t.add(pl.coding ? 'coding_sequence' : pl.utr5 ? '5_prime_utr' : '3_prime_utr');
            add(t);
          }
          continue;
        }
        if (pl.coding) {
          const isIndel = ref.length !== alt.length;
          const edit = cdsEdit(ctx, r.pos, ref, alt);
          if (edit && isIndel && ctx.hasStart && touchesStart(ctx, tr) && startRetained(ctx, tr, fetch)) {
            add(new Set<Term>(['start_retained']), { strand: true });
            continue;
          }
          if (edit && isIndel && ctx.hasStart && touchesStart(ctx, pureIns ? { beg: r.pos, end: r.pos, ins: alt } : tr)) {
            // an indel in the start codon: the start is lost (what follows is not translated from it)
            add(new Set<Term>(['start_lost', ...pl.splice]), { strand: true });
            continue;
          }
          if (edit && !(isIndel && !pureIns && touchesCodingEdge(tx, tr))) {
            const delta = edit.ins.length - (edit.c2 - edit.c1);
            const k1 = Math.floor(Math.max(0, edit.c1) / 3);
            const k2 = Math.floor((edit.c2 - 1) / 3);
            const h: Hit = { rec: r, ai, ctx, edit, k1, k2, delta, spliceMerged: pl.splice };
            let l = hits.get(tx);
            if (!l) hits.set(tx, (l = []));
            l.push(h);
            continue;
          }
          if (ref.length === alt.length) {
            // substitution reaching past the coding sequence: its coding part, then the rest
            const seg = tx.cds.find((c) => c.end >= tr.beg && c.beg <= tr.end)!;
            const a0 = Math.max(seg.beg, r.pos), b0 = Math.min(seg.end, r.pos + ref.length - 1);
            const e = cdsEdit(ctx, a0, ref.slice(a0 - r.pos, b0 - r.pos + 1), alt.slice(a0 - r.pos, b0 - r.pos + 1));
            const eff = e ? codingEffect(ctx, [e]) : null;
            if (eff) add(eff.terms, { strand: true });
            const rest = new Set<Term>(pl.splice);
            if (pl.utr5) rest.add('5_prime_utr');
            if (pl.utr3) rest.add('3_prime_utr');
            if (rest.size) add(rest);
            continue;
          }
          // coarse effect (crosses a coding edge, or an indel at an exon edge)
          if (touchesStart(ctx, tr) && ctx.hasStart) {
            if (startRetained(ctx, tr, fetch)) {
              add(new Set<Term>(['start_retained']), { strand: true });
              continue;
            }
            t.add('start_lost');
          }
          let n = 0;
          if (tr.end >= tr.beg) for (const c of tx.cds) n += Math.max(0, Math.min(c.end, tr.end) - Math.max(c.beg, tr.beg) + 1);
          const insCoding = tr.end < tr.beg ? (tx.cds.some((c) => tr.beg - 1 >= c.beg && tr.beg <= c.end) ? tr.ins.length : 0) : tr.ins.length;
          const d = insCoding - n;
          if (d % 3 !== 0) t.add('frameshift');
          else if (d < 0) t.add('inframe_deletion');
          else if (d > 0) t.add('inframe_insertion');
          else if (n > 0 && !t.has('start_lost')) t.add('coding_sequence');
          if (ctx.hasStop && touchesStop(ctx, tr)) t.add('stop_lost');
          if (!t.size) t.add(pl.utr5 ? '5_prime_utr' : pl.utr3 ? '3_prime_utr' : 'coding_sequence');
          add(t);
        } else if (pl.exonic) {
          if (pl.utr5) t.add('5_prime_utr');
          if (pl.utr3) t.add('3_prime_utr');
          if (!pl.utr5 && !pl.utr3) t.add('coding_sequence');
          add(t);
        } else if (t.size) add(t);
        else add(new Set<Term>(['intron']), { geneLevel: true });
      }
    });
  }
  function symbolic(r: Rec, alt: string, ai: number): void {
    const isIns = /^<(INS|DUP)/.test(alt);
    const isDel = /^<DEL/.test(alt);
    if (!isIns && !isDel) return;
    const m = /(?:^|;)END=(\d+)/.exec(r.line.slice(r.infoBeg, r.infoEnd));
    const end = m ? Number(m[1]) - 1 : r.pos;
    const ch: Change = isIns ? { beg: r.pos + 1, end: r.pos, ins: '' } : { beg: r.pos + 1, end: Math.max(r.pos + 1, end), ins: '' };
    const lo = Math.min(ch.beg, ch.end), hi = Math.max(ch.beg, ch.end);
    for (const tx of model.overlapping(r.chrom, lo, hi)) {
      if (ch.end < ch.beg && (ch.beg <= tx.beg || ch.beg > tx.end)) continue;
      const pl = place(tx, ch);
      const t = new Set<Term>(pl.splice);
      if (isIns) {
        if (pl.coding) t.add('coding_sequence');
        else if (pl.exonic && !tx.coding) t.add('non_coding');
        else if (pl.utr5) t.add('5_prime_utr');
        else if (pl.utr3) t.add('3_prime_utr');
        t.add('feature_elongation');
      } else t.add('feature_truncation');
      note(r, entry(t, tx), ai);
      if (vep) pushUnique(r.csq, vepEntry(alt, [...t], tx, null, r.pos, r.refRaw, ai));
    }
  }

  if (!hits.size) return;
  // coding hits: per haplotype, group per transcript by shared codons / open frameshifts
  const haps = haplotypes(chunk);
  for (const [tx, all] of hits) {
    all.sort((a, b) => a.edit.c1 - b.edit.c1 || a.rec.idx - b.rec.idx);
    const memo = new Map<string, Array<[Rec, string, number]>>();
    for (const hap of haps) {
      const hs = hap ? all.filter((h) => h.rec.gt !== null && h.rec.gt[hap[0]]?.[hap[1]] === h.ai + 1) : all;
      if (!hs.length) continue;
      const key = hs.map((h) => all.indexOf(h)).join(',');
      let got = memo.get(key);
      if (!got) memo.set(key, (got = emitGroups(tx, hs)));
      for (const [r, e, ai] of got) note(r, e, ai, hap);
    }
  }

  function emitGroups(tx: Transcript, hs: Hit[]): Array<[Rec, string, number]> {
    const emitted: Array<[Rec, string, number]> = [];
    const groups: Hit[][] = [];
    if (local) for (const h of hs) groups.push([h]);
    else {
      let cur: Hit[] = [];
      let reach = -1;
      let frame = 0;
      for (const h of hs) {
        if (cur.length && h.k1 <= reach && h.edit.c1 >= cur[cur.length - 1].edit.c2) {
          cur.push(h);
        } else {
          if (cur.length) groups.push(cur);
          cur = [h];
          frame = 0;
          reach = -1;
        }
        frame += h.delta;
        // an open frameshift reaches to the end; once the frame is restored the group ends at this codon
        reach = frame % 3 !== 0 ? Infinity : reach === Infinity ? h.k2 : Math.max(reach, h.k2);
      }
      if (cur.length) groups.push(cur);
    }
    // downstream groups: protein positions shift by upstream in-frame indels; after a new stop, prefix '*'
    let shiftNt = 0;
    let afterStop = false;
    for (const g of groups) {
      const ctx = g[0].ctx;
      const eff = codingEffect(ctx, g.map((h) => h.edit), local ? 0 : Math.floor(shiftNt / 3));
      if (!eff) continue;
      const star = !local && afterStop ? '*' : '';
      if (!local) {
        shiftNt += g.reduce((n, h) => n + h.delta, 0);
        if (eff.terms.has('stop_gained')) afterStop = true;
      }
      const owner = g[0];
      const byRec = [...g].sort((a, b) => a.rec.idx - b.rec.idx || a.ai - b.ai);
      const dna = byRec.map((h) => dnaOf(h.rec, h.ai)).join('+');
      const splice = new Set<Term>();
      for (const h of g) for (const s of h.spliceMerged) splice.add(s);
      const terms = new Set<Term>(eff.terms);
      const mergeSplice = terms.has('start_lost') || terms.has('stop_lost') || terms.has('stop_retained');
      if (mergeSplice) for (const s of splice) terms.add(s);
      emitted.push([owner.rec, star + entry(terms, tx, { aa: eff.aa, dna }), owner.ai]);
      for (const h of g) {
        if (h.rec !== owner.rec) emitted.push([h.rec, `@${owner.rec.pos + 1}`, h.ai]);
        if (!mergeSplice && h.spliceMerged.size) emitted.push([h.rec, entry(h.spliceMerged, tx), h.ai]);
        if (vep) {
          // CSQ is per allele: its own effect on the transcript
          const single = g.length === 1 ? eff : codingEffect(ctx, [h.edit]);
          const own = new Set<Term>(single?.terms ?? terms);
          for (const s of h.spliceMerged) own.add(s);
          pushUnique(h.rec.csq, vepEntry(h.rec.alleles[h.ai]!.alt, [...own], tx, { ctx, edit: h.edit, aa: single?.aa ?? eff.aa }, h.rec.pos, h.rec.refRaw, h.ai));
        }
      }
    }
    return emitted;
  }
}
