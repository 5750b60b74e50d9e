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
import { BGZF_MAX_BLOCK_DATA, bgzfBlockSync } from '../formats/bgzf.js';
import {
  cdsEdit, codingEffect, type Change, laterCopyEdits, type FetchSeq, joinTerms, place, startRetained, symbolicInsertionTerms, type Term, touchesCodingEdge, touchesStart, touchesStop, trimAllele, TxContext,
} from './consequence.js';
import { type BaseWindow, IndexedFasta } from './fasta.js';
import { type GeneModel, loadGeneModel, type Transcript } from './genemodel.js';
// known.ts (and the tabix reader) is loaded only when databases are given
import type { KnownMatcher, KnownDbSpec, KnownDbStats } from './known.js';
import { type Rec, RecordParser } from './record.js';
import { vepAllele, vepEntry, vepTail } from './vep.js';

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
   * Per chunk, 1 when the chunk is one record that was checked already and no transcript
   * can reach (`QuietChecker`): it is copied through without being read again.
   */
  checkedQuiet?: Uint8Array;
  /**
   * The driver's gene model (v8-serialised transcripts in shared memory, so every task
   * carries it without a copy): a thread deserialises it once instead of parsing the GFF.
   */
  model?: SharedArrayBuffer;
  /** Identifies `model` (its source files, or the run when the caller gave a model in memory). */
  modelKey: string;
  /** BGZF output: the task compresses the segments it holds whole at this zlib level (see `bgzfSegments`). */
  bgzfLevel?: number;
  /** Without `bgzfLevel`: return the segment ends of the text (`cuts`), for the caller to compress. */
  cuts?: boolean;
}

export interface AnnotateTaskResult {
  /**
   * Output lines (latin1), each ending in '\n'. With `bgzfLevel`: the text before the first
   * segment end (`head` bytes), BGZF blocks of the whole segments (`blocks` bytes), then the
   * text after the last segment end; `cut` tells whether a segment ends in the task at all
   * (else all is text).
   */
  bytes: Uint8Array;
  head?: number;
  blocks?: number;
  cut?: boolean;
  /** With `AnnotateTask.cuts`: offsets in `bytes` after the lines that end a segment. */
  cuts?: number[];
  records: number;
  annotated: number;
  /** Cumulative statistics of this thread's known-variant matcher for the run. */
  known?: KnownDbStats[];
  /** Thread that produced `known` (statistics are merged per thread). */
  thread?: number;
}

/** Records a BCSQ entry on a record, and on the haplotypes (of its samples) that carry allele `ai`. */
function note(r: Rec, e: string, ai: number, hap?: [number, number] | null): void {
  let i = r.bcsq.indexOf(e);
  if (i < 0) {
    // records start with the shared empty list; the first entry makes an array of one
    if (r.bcsq.length) i = r.bcsq.push(e) - 1;
    else {
      r.bcsq = [e];
      i = 0;
    }
  }
  const gt = r.gt;
  // only the first 15 entries have bits
  if (!gt || i >= 15) return;
  const ns = gt.length;
  const bits = (r.hapBits ??= ns === 1 ? [0] : new Array<number>(ns).fill(0));
  if (hap) {
    if (hap[1] < 2) bits[hap[0]] |= 1 << (2 * i + hap[1]);
    return;
  }
  for (let s = 0; s < ns; s++) {
    const g = gt[s];
    for (let h = 0; h < g.length && h < 2; h++) if (g[h] === ai + 1) bits[s] |= 1 << (2 * i + h);
  }
}

/**
 * bcftools csq calls a record intronic only when nothing else hits it (any transcript, any
 * gene): the gene-level intron entries are dropped beside any other entry, and the
 * haplotype bits of the entries that stay move with them.
 */
function dropIntronsBesideHits(r: Rec): void {
  const e = r.bcsq;
  let introns = 0;
  for (let i = 0; i < e.length; i++) if (e[i].startsWith('intron|')) introns++;
  if (introns === 0 || introns === e.length) return;
  const keep: string[] = [];
  const moved = new Int32Array(e.length);
  for (let i = 0; i < e.length; i++) {
    if (e[i].startsWith('intron|')) moved[i] = -1;
    else moved[i] = keep.push(e[i]) - 1;
  }
  const bits = r.hapBits;
  if (bits) {
    for (let s = 0; s < bits.length; s++) {
      let nb = 0;
      for (let i = 0; i < e.length && i < 15; i++) {
        const j = moved[i];
        if (j >= 0) nb |= ((bits[s] >>> (2 * i)) & 3) << (2 * j);
      }
      bits[s] = nb;
    }
  }
  r.bcsq = keep;
}

/** FORMAT/BCSQ: per sample, bit 2*i+h set when INFO/BCSQ entry i (i < 15) is on haplotype h. */
function formatMasks(r: Rec): string[] {
  const ns = r.gt!.length;
  const bits = r.hapBits;
  const out: string[] = new Array(ns);
  for (let s = 0; s < ns; s++) out[s] = String(bits ? bits[s] >>> 0 : 0);
  return out;
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
  const gt = r.gt;
  if (!gt) return true;
  for (let s = 0; s < gt.length; s++) if (gt[s].includes(ai + 1)) return true;
  return false;
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

/**
 * Checks the chunks of a task that are one record no transcript can reach ("quiet", most of
 * a VCF) with the annotator's own record reader, in a thread other than the annotator's,
 * and marks them in `checkedQuiet`: the annotator then copies them through unread. From a
 * record that fails its check on, nothing is marked, so the annotator reads that record
 * itself and reports its error after annotating what comes before, as in a one-pass run.
 */
export class QuietChecker {
  private checking = true;

  constructor(
    private readonly records: RecordParser,
    private readonly file: string,
  ) {}

  static async open(reference: string, reacher: (chrom: string) => (beg: number, end: number) => number, file: string): Promise<QuietChecker> {
    return new QuietChecker(new RecordParser(await IndexedFasta.open(reference), reacher), file);
  }

  /** `checkedQuiet` of a task (records joined by '\n' as `AnnotateTask.data`), or undefined when none is. */
  mark(data: Uint8Array, chunks: number[], firstRecord: number, firstLine: number): Uint8Array | undefined {
    if (!this.checking) return undefined;
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const marks = new Uint8Array(chunks.length);
    let any = false;
    let p = 0, recNo = firstRecord, lineNo = firstLine;
    for (let ci = 0; ci < chunks.length; ci++) {
      const m = chunks[ci];
      for (let k = 0; k < m; k++) {
        const q = recordStart(b, p);
        lineNo += q - p;
        p = q;
        const e = lineEnd(b, p);
        if (m === 1 && this.checking) {
          try {
            if (this.records.parse(b, p, e, recNo, lineNo, this.file, true) === null) {
              marks[ci] = 1;
              any = true;
            }
          } catch {
            this.checking = false;
          }
        }
        p = e + 1;
        lineNo++;
        recNo++;
      }
    }
    return any ? marks : undefined;
  }

  close(): void {
    this.records.close();
  }
}

/** Where the next record line of a task starts, at or after `p` (blank lines, one '\n' each, skipped). */
function recordStart(b: Buffer, p: number): number {
  while (p < b.length && b[p] === 10) p++;
  return p;
}

/** The end of the line that starts at `p` (its '\n', or the end of the task). */
function lineEnd(b: Buffer, p: number): number {
  const e = b.indexOf(10, p);
  return e < 0 ? b.length : e;
}

/** Reads gene model and reference once; annotates any number of tasks. */
export class ChunkAnnotator {
  /** Reads the record lines (and checks them). */
  private readonly records: RecordParser;
  /** Transcript sequence (exons, start codons) is read directly: small reads that jump ahead of the records. */
  readonly fetch: FetchSeq;
  private runs: RunState[] = [];

  private constructor(
    readonly spec: AnnotatorSpec,
    readonly model: GeneModel,
    readonly fa: IndexedFasta,
    private readonly ownFasta: boolean,
  ) {
    this.fetch = (c, b, e) => this.seq(c, b, e);
    this.records = new RecordParser(fa, (c) => model.reacher(c));
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
      st = { run, known: await (await import('./known.js')).KnownMatcher.open({ databases: this.spec.known, reference: this.spec.reference }, { fasta: this.fa }), owned: true };
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
    const buf = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    const n = buf.length;
    const res: AnnotateTaskResult = { bytes: EMPTY, records: 0, annotated: 0 };
    const out = new LineBuffer(n + (n >> 1));
    const at = { p: 0, recNo: task.firstRecord, lineNo: task.firstLine };
    const chunks = task.chunks;
    for (let ci = 0; ci < chunks.length; ) {
      // the records' loop runs in a plain function (V8 optimises it as a whole; in this async one it would stay unoptimised)
      ci = this.runChunks(task, buf, chunks, ci, at, out, res, known !== null);
      if (ci < 0) break;
      // --- known-variant databases (known.ts): rewrites ID and INFO of the rows in place ---
      const chunk = this.pendingKnown!;
      this.pendingKnown = null;
      await known!.annotateRows(chunk.map(colsOf));
      res.annotated += this.format(chunk, out);
      ci++;
    }
    res.bytes = out.bytes();
    if (task.bgzfLevel !== undefined) Object.assign(res, bgzfSegments(res.bytes, out.cuts, task.bgzfLevel));
    else if (task.cuts) res.cuts = out.cuts;
    if (known) res.known = known.stats();
    return res;
  }

  /** With a known-variant matcher: the chunk `runChunks` stopped at, annotated, waiting for the matcher. */
  private pendingKnown: Rec[] | null = null;

  /**
   * Parses, annotates and formats chunks `ci` on. Returns -1 when all are done, or (with
   * `known`) the index of a chunk left in `pendingKnown` for the matcher, not yet formatted.
   */
  private runChunks(task: AnnotateTask, buf: Buffer, chunks: number[], ci: number, at: { p: number; recNo: number; lineNo: number }, out: LineBuffer, res: AnnotateTaskResult, known: boolean): number {
    let p = at.p, recNo = at.recNo, lineNo = at.lineNo;
    const checked = task.checkedQuiet;
    for (; ci < chunks.length; ci++) {
      const m = chunks[ci];
      if (checked && checked[ci] === 1) {
        const q = recordStart(buf, p);
        lineNo += q - p;
        p = q;
        const e = lineEnd(buf, p);
        out.passLine(buf, p, e);
        p = e + 1;
        lineNo++;
        recNo++;
        res.records++;
        continue;
      }
      // (a lone record no transcript reaches needs no chunk array)
      let chunk: Rec[] | null = null;
      for (let k = 0; k < m; k++) {
        // blank lines are skipped, but counted
        const q = recordStart(buf, p);
        lineNo += q - p;
        p = q;
        const e = lineEnd(buf, p);
        // a chunk of one record no transcript can reach (most of a VCF) is checked and copied, with no record built
        const r = this.records.parse(buf, p, e, recNo, lineNo, task.file, m === 1 && !known);
        if (r) (chunk ??= new Array<Rec>(m))[k] = r;
        else out.passLine(buf, p, e);
        p = e + 1;
        lineNo++;
        recNo++;
      }
      res.records += m;
      if (!chunk) continue;
      if (touchesModel(chunk, this.model)) {
        this.trimContexts(chunk[0]);
        annotateRecords(chunk, this.model, this.spec.local, this.spec.vep, this.fetch, this.ctxOf);
      }
      if (known) {
        at.p = p;
        at.recNo = recNo;
        at.lineNo = lineNo;
        this.pendingKnown = chunk;
        return ci;
      }
      res.annotated += this.format(chunk, out);
    }
    return -1;
  }

  /**
   * Transcript contexts (spliced CDS and 3' tail) live across chunks and tasks: records come
   * sorted, so the transcripts of one neighbourhood are prepared once, not once per chunk.
   */
  private readonly contexts = new Map<Transcript, TxContext>();
  private contextLimit = 64;
  readonly ctxOf = (t: Transcript): TxContext => {
    let c = this.contexts.get(t);
    if (!c) this.contexts.set(t, (c = new TxContext(t, this.fetch)));
    return c;
  };

  /** Drops the contexts of transcripts behind `r` (another chromosome, or ending before it) once there are many. */
  private trimContexts(r: Rec): void {
    if (this.contexts.size <= this.contextLimit) return;
    for (const t of this.contexts.keys()) if (t.chrom !== r.chrom || t.end < r.pos) this.contexts.delete(t);
    this.contextLimit = Math.max(64, 2 * this.contexts.size);
  }

  /** Appends a chunk's output lines to `out`; returns how many records got BCSQ or CSQ. */
  private format(chunk: Rec[], out: LineBuffer): number {
    let annotated = 0;
    for (const r of chunk) {
      if (r.bcsq.length > 1) dropIntronsBesideHits(r);
      const hasB = r.bcsq.length > 0, hasC = this.spec.vep && r.csq.length > 0;
      if (hasB || r.csq.length) annotated++;
      if (!hasB && !hasC && !r.cols) {
        out.passLine(r.buf, r.s, r.e);
        continue;
      }
      out.beginLine();
      if (!r.cols) {
        // the line is rewritten from INFO on only; the bytes around are copied as they are
        const b = r.buf;
        if (plainInfo(b, r.infoBeg, r.infoEnd)) {
          // neither key is there: both are appended
          out.copy(b, r.s, r.infoEnd);
          if (hasB) out.list(KEY_BCSQ, r.bcsq);
          if (hasC) out.list(KEY_CSQ, r.csq);
        } else {
          let info = b.toString('latin1', r.infoBeg, r.infoEnd);
          if (hasB) info = setInfoKey(info, 'BCSQ', r.bcsq.join(','));
          if (hasC) info = setInfoKey(info, 'CSQ', r.csq.join(','));
          out.copy(b, r.s, r.infoBeg);
          out.text(info);
        }
        if (r.gt && hasB) {
          // FORMAT gets ':BCSQ', each sample column (one mask per column) ':<mask>' (as formatMasks gives them)
          const ns = r.gt.length, bits = r.hapBits;
          let q = tabAfter(b, r.infoEnd + 1, r.e);
          out.copy(b, r.infoEnd, q);
          out.ascii(COLON_BCSQ);
          for (let i = 0; i < ns; i++) {
            const p = q;
            q = tabAfter(b, p + 1, r.e);
            out.copy(b, p, q);
            out.byte(58 /* : */);
            out.uint(bits ? bits[i] >>> 0 : 0);
          }
        } else out.copy(b, r.infoEnd, r.e);
        out.endLine();
        continue;
      }
      const cols = r.cols;
      let info = cols[7];
      if (hasB) info = setInfoKey(info, 'BCSQ', r.bcsq.join(','));
      if (hasC) info = setInfoKey(info, 'CSQ', r.csq.join(','));
      cols[7] = info;
      const masks = r.gt && hasB ? formatMasks(r) : null;
      if (masks) {
        cols[8] += ':BCSQ';
        for (let i = 0; i < masks.length; i++) cols[9 + i] += `:${masks[i]}`;
      }
      out.text(cols.join('\t'));
      out.endLine();
    }
    return annotated;
  }

  /** Window the transcript sequence is read from (transcripts come in genomic order, so one read serves many). */
  private seqWin: BaseWindow | null = null;

  /** As `fa.fetch`, through a window of about 1 MiB instead of a read per segment. */
  private seq(chrom: string, b: number, e: number): string {
    const len = this.fa.length(chrom);
    if (len === undefined || b < 0 || e >= len || e < b) return this.fa.fetch(chrom, b, e);
    if (!this.seqWin?.holds(chrom, b, e)) {
      if (e - b > 1 << 18) return this.fa.fetch(chrom, b, e);
      this.seqWin = this.fa.window(chrom, Math.max(0, b - (1 << 16)), b + (1 << 20));
      if (!this.seqWin?.holds(chrom, b, e)) return this.fa.fetch(chrom, b, e);
    }
    return this.seqWin.text(b, e);
  }

}

const KEY_BCSQ = Buffer.from(';BCSQ=', 'latin1');
const KEY_CSQ = Buffer.from(';CSQ=', 'latin1');
const COLON_BCSQ = Buffer.from(':BCSQ', 'latin1');

/** Index of the first tab in b[from, end), or `end`. */
function tabAfter(b: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) if (b[i] === 9) return i;
  return end;
}

/** INFO b[beg, end) is neither '.' nor empty and cannot hold a BCSQ or CSQ key (no 'CSQ' in it): keys are simply appended. */
function plainInfo(b: Buffer, beg: number, end: number): boolean {
  if (end <= beg || (end === beg + 1 && b[beg] === 46)) return false;
  for (let i = beg + 2; i < end; i++) if (b[i] === 81 && b[i - 1] === 83 && b[i - 2] === 67) return false;
  return true;
}

/** The line of a record as a string. */
const lineOf = (r: Rec): string => r.buf.toString('latin1', r.s, r.e);

/** Some allele of the chunk may overlap a transcript (symbolic alleles are left to the full pass). */
function touchesModel(chunk: Rec[], model: GeneModel): boolean {
  for (const r of chunk) {
    for (let ai = 0; ai < r.alleles.length; ai++) {
      const a = r.alleles[ai];
      if (!a) continue;
      if (a.alt.charCodeAt(0) === 60) return true;
      const tr = a.ch;
      // the whole REF counts: a long one can reach a transcript its trimmed change does not
      if (model.reach(r.chrom, Math.min(tr.beg, tr.end, r.pos), Math.max(tr.beg, tr.end, r.pos + r.ref.length - 1)) >= 0) return true;
    }
  }
  return false;
}

const EMPTY = new Uint8Array(0);
/** No splice terms (shared, never changed). */
const NO_TERMS: Set<Term> = new Set<Term>();

/**
 * BGZF blocks that do not depend on how records were grouped into tasks (or threads): the
 * output text is cut into segments after the lines that `endsSegment` picks (a function of
 * the line alone, about one per SEGMENT_BYTES), and each segment is compressed on its own,
 * in equal pieces of at most BGZF_MAX_BLOCK_DATA bytes (in pieces of exactly that size, the
 * last one shorter, for a segment longer than SEGMENT_CAP). So a task compresses the
 * segments it holds whole, and the driver joins the partial segments at task edges.
 */
export const SEGMENT_BYTES = 120000;
export const SEGMENT_CAP = 1 << 20;
const SEGMENT_P = Math.floor(2 ** 32 / SEGMENT_BYTES);

/** Line [s, e) (line end not included) ends a segment: a hash of its first bytes and length, with odds in proportion to its length. */
export function endsSegment(b: Uint8Array, s: number, e: number): boolean {
  let h = (0x811c9dc5 ^ (e - s)) | 0;
  const n = Math.min(e, s + 24);
  for (let i = s; i < n; i++) h = Math.imul(h ^ b[i], 16777619);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0 < (e - s + 1) * SEGMENT_P;
}

/** The block contents of one whole segment (views of it), appended to `out`. */
export function segmentPieces(seg: Uint8Array, out: Uint8Array[]): void {
  const n = seg.length;
  if (!n) return;
  const size = n > SEGMENT_CAP ? BGZF_MAX_BLOCK_DATA : Math.ceil(n / Math.ceil(n / BGZF_MAX_BLOCK_DATA));
  for (let i = 0; i < n; i += size) out.push(seg.subarray(i, Math.min(n, i + size)));
}

/** The BGZF blocks of one whole segment, appended to `out`. */
export function compressSegment(seg: Uint8Array, level: number, out: Buffer[]): void {
  const pieces: Uint8Array[] = [];
  segmentPieces(seg, pieces);
  for (const x of pieces) out.push(bgzfBlockSync(x, level));
}

/** A task's output as head text, blocks of its whole segments, and tail text (see AnnotateTaskResult). */
function bgzfSegments(text: Uint8Array, cuts: number[], level: number): Pick<AnnotateTaskResult, 'bytes' | 'head' | 'blocks' | 'cut'> {
  if (!cuts.length) return { bytes: text, head: text.length, blocks: 0, cut: false };
  const blocks: Buffer[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) compressSegment(text.subarray(cuts[i], cuts[i + 1]), level, blocks);
  const head = cuts[0], last = cuts[cuts.length - 1];
  let blockBytes = 0;
  for (const b of blocks) blockBytes += b.length;
  const bytes = Buffer.allocUnsafe(head + blockBytes + text.length - last);
  bytes.set(text.subarray(0, head), 0);
  let o = head;
  for (const b of blocks) {
    bytes.set(b, o);
    o += b.length;
  }
  bytes.set(text.subarray(last), o);
  return { bytes, head, blocks: blockBytes, cut: true };
}

/** Node's latin1 writer without `Buffer.write`'s argument handling (undocumented: `write` when absent). */
const latin1Write = (Buffer.prototype as unknown as { latin1Write?: (this: Buffer, s: string, offset: number) => number }).latin1Write ?? null;

/**
 * Output lines written straight into a growing buffer: lines that pass unchanged are copied
 * from the task's bytes (runs of them at once), rewritten ones are assembled from copied
 * ranges and latin1 text.
 */
class LineBuffer {
  private buf: Buffer;
  private len = 0;
  /** Unchanged lines not copied yet: bytes [srcBeg, srcEnd) of `src`, line ends included. */
  private src: Buffer | null = null;
  private srcBeg = 0;
  private srcEnd = 0;
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(1024, capacity));
  }
  private room(n: number): void {
    const need = this.len + n;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
  }
  private settle(): void {
    const src = this.src;
    if (!src) return;
    this.src = null;
    this.copy(src, this.srcBeg, this.srcEnd);
  }
  /** Output offsets after the lines that end a segment (see `endsSegment`). */
  readonly cuts: number[] = [];
  /** Where the line being rewritten starts. */
  private lineStart = 0;

  /** Line [s, e) of `b`, unchanged. */
  passLine(b: Buffer, s: number, e: number): void {
    if (e < b.length && b[e] === 10) {
      if (this.src === b && this.srcEnd === s) this.srcEnd = e + 1;
      else {
        this.settle();
        this.src = b;
        this.srcBeg = s;
        this.srcEnd = e + 1;
      }
      if (endsSegment(b, s, e)) this.cuts.push(this.len + this.srcEnd - this.srcBeg);
      return;
    }
    this.beginLine();
    this.copy(b, s, e);
    this.endLine();
  }
  /** A rewritten line starts. */
  beginLine(): void {
    if (this.src) this.settle();
    this.lineStart = this.len;
  }
  /** Bytes [s, e) of `b`. */
  copy(b: Buffer, s: number, e: number): void {
    if (this.src) this.settle();
    this.room(e - s);
    if (e - s > 64) {
      this.len += b.copy(this.buf, this.len, s, e);
      return;
    }
    // short pieces by hand: Buffer.copy makes a view per call
    const o = this.buf;
    let n = this.len;
    for (let i = s; i < e; i++) o[n++] = b[i];
    this.len = n;
  }
  /** Text (latin1). */
  text(t: string): void {
    if (this.src) this.settle();
    this.room(t.length);
    this.len += latin1Write ? latin1Write.call(this.buf, t, this.len) : this.buf.write(t, this.len, 'latin1');
  }
  /** `key` then the entries joined by ',' (as `key + list.join(',')`, without making that string). */
  list(key: Uint8Array, list: string[]): void {
    this.ascii(key);
    for (let i = 0; i < list.length; i++) {
      if (i) this.byte(44 /* , */);
      this.text(list[i]);
    }
  }
  /** A few constant bytes. */
  ascii(k: Uint8Array): void {
    if (this.src) this.settle();
    this.room(k.length);
    const o = this.buf;
    let n = this.len;
    for (let i = 0; i < k.length; i++) o[n++] = k[i];
    this.len = n;
  }
  byte(c: number): void {
    if (this.src) this.settle();
    this.room(1);
    this.buf[this.len++] = c;
  }
  /** A non-negative integer in decimal, as String(n) writes it. */
  uint(n: number): void {
    if (n < 10) {
      this.byte(48 + n);
      return;
    }
    this.text(String(n));
  }
  /** Ends the line begun by `beginLine`. */
  endLine(): void {
    if (this.src) this.settle();
    if (endsSegment(this.buf, this.lineStart, this.len)) this.cuts.push(this.len + 1);
    this.room(1);
    this.buf[this.len++] = 10;
  }
  bytes(): Uint8Array {
    this.settle();
    return this.buf.subarray(0, this.len);
  }
}

/** All characters are upper-case A, C, G, T or N (and there is at least one). */
const colsOf = (r: Rec): string[] => (r.cols ??= lineOf(r).split('\t'));

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

/** Adds a CSQ entry to a record, once (records start with the shared empty list). */
const addCsq = (r: Rec, s: string) => {
  if (!r.csq.length) r.csq = [s];
  else if (!r.csq.includes(s)) r.csq.push(s);
};

function entry(terms: Iterable<Term>, tx: Transcript, opt: { geneLevel?: boolean; strand?: boolean; aa?: string; dna?: string } = {}): string {
  const tt = txTextOf(tx);
  let e = joinTerms(terms) + (opt.geneLevel ? tt.geneTail : tt.txTail);
  if (opt.strand || opt.aa !== undefined) e += `|${tx.strand}`;
  if (opt.aa !== undefined) e += `|${opt.aa}|${opt.dna ?? ''}`;
  return e;
}

/** Constant texts of a transcript, and its introns, kept per transcript. */
interface TxText {
  /** BCSQ and CSQ (after the allele) of an intron hit, and of any hit on a non-coding transcript. */
  intron: string;
  vepIntron: string;
  nonCoding: string;
  vepNonCoding: string;
  /** Introns as [first base, last base] pairs, in genomic order. */
  introns: number[];
  /** What follows the terms in a BCSQ entry: `|gene|transcript|biotype`, and `|gene||biotype` at gene level. */
  txTail: string;
  geneTail: string;
  /** Whole CSQ entries of intron and non-coding hits per VEP allele (a few per transcript), made once: a flat string is written without being flattened per record. */
  vepIntronBy: Map<string, string> | null;
  vepNonCodingBy: Map<string, string> | null;
}

const txTexts = new WeakMap<Transcript, TxText>();

/** Entries kept per transcript and kind (alleles past these are joined per record). */
const VEP_ENTRY_CACHE = 16;

/** `allele + tail` as one flat string, kept in `by` (made on first use). */
function cachedEntry(by: Map<string, string>, allele: string, tail: string): string {
  let e = by.get(allele);
  if (e === undefined) {
    e = flat(allele + tail);
    if (by.size < VEP_ENTRY_CACHE) by.set(allele, e);
  }
  return e;
}

/** A string's characters in one piece (a concatenation is otherwise kept as its parts until it is read). */
function flat(s: string): string {
  // reading a character makes V8 flatten the string in place
  s.charCodeAt(0);
  return s;
}

function txTextOf(tx: Transcript): TxText {
  let t = txTexts.get(tx);
  if (!t) {
    const introns: number[] = [];
    for (let i = 0; i + 1 < tx.exons.length; i++) {
      const ib = tx.exons[i].end + 1, ie = tx.exons[i + 1].beg - 1;
      if (ie >= ib) introns.push(ib, ie);
    }
    const geneTail = `|${tx.geneName}||${tx.biotype}`;
    t = {
      intron: `intron${geneTail}`,
      vepIntron: vepTail(['intron'], tx),
      nonCoding: `non_coding${geneTail}`,
      vepNonCoding: vepTail(['non_coding'], tx),
      introns,
      txTail: `|${tx.geneName}|${tx.id}|${tx.biotype}`,
      geneTail,
      vepIntronBy: null,
      vepNonCodingBy: null,
    };
    txTexts.set(tx, t);
  }
  return t;
}

/**
 * The change lies in an intron with at least 8 intronic bases on either side: no exon, UTR,
 * splice site or splice region of the transcript (regions reach 7 bases into an intron and
 * 3 into an exon) can be touched, so `place` would find nothing. An insertion counts by both
 * of its flanking bases.
 */
function deepIntron(t: TxText, chBeg: number, chEnd: number): boolean {
  const lo = Math.min(chBeg, chEnd), hi = Math.max(chBeg, chEnd);
  const v = t.introns;
  for (let i = 0; i < v.length; i += 2) if (lo >= v[i] + 8 && hi <= v[i + 1] - 8) return true;
  return false;
}

const dnaOf = (r: Rec, ai: number) => `${r.pos + 1}${r.ref}>${r.alleles[ai]!.alt}`;

/** Annotates all records of a chunk (records that may share transcripts). */
function annotateRecords(chunk: Rec[], model: GeneModel, local: boolean, vep: boolean, fetch: FetchSeq, ctxOf: (t: Transcript) => TxContext): void {
  const hits = new Map<Transcript, Hit[]>();
  for (const r of chunk) {
    const ref = r.ref;
    for (let ai = 0; ai < r.alleles.length; ai++) {
      const a = r.alleles[ai];
      if (!a || !carried(r, ai)) continue;
      if (a.alt[0] === '<') {
        symbolic(r, a.alt, ai, model, vep);
        continue;
      }
      const alt = a.alt;
      // REF and ALT padded with shared bases beyond one anchor (rare): the allele they pad stands for them
      const norm = ref.length > 1 && alt.length > 1 && (ref.charCodeAt(ref.length - 1) === alt.charCodeAt(alt.length - 1) || ref.charCodeAt(1) === alt.charCodeAt(1)) ? paddedAllele(r.pos, ref, alt) : null;
      const pureIns = norm ? norm.pureIns : ref.length === 1 && alt.length > 1 && alt[0] === ref[0];
      // structural change: insertion point, or the whole REF span
      const pureDel = alt.length === 1 && ref.length > 1 && alt[0] === ref[0];
      const chBeg = norm ? norm.ch.beg : pureIns || pureDel ? r.pos + 1 : r.pos;
      const chEnd = norm ? norm.ch.end : pureIns ? r.pos : r.pos + ref.length - 1;
      // (made when a transcript needs more than the deep-intron test)
      let ch: Change | null = norm ? norm.ch : null;
      const tr = norm ? norm.tr : a.ch;
      const lo = Math.min(tr.beg, tr.end), hi = Math.max(tr.beg, tr.end);
      const vepAl = vep ? vepAllele(alt, ref) : '';
      for (const tx of model.overlapping(r.chrom, lo, hi)) {
        if (tr.end < tr.beg && (tr.beg <= tx.beg || tr.beg > tx.end)) continue;
        const tt = txTextOf(tx);
        if (!tx.coding) {
          // non-coding transcripts: one gene-level term anywhere in the transcript span
          note(r, tt.nonCoding, ai);
          if (vep) addCsq(r, cachedEntry((tt.vepNonCodingBy ??= new Map()), vepAl, tt.vepNonCoding));
          continue;
        }
        if (deepIntron(tt, chBeg, chEnd)) {
          // most records: an intron, away from any splice site or region (what `place` would find, without looking)
          note(r, tt.intron, ai);
          if (vep) addCsq(r, cachedEntry((tt.vepIntronBy ??= new Map()), vepAl, tt.vepIntron));
          continue;
        }
        ch ??= { beg: chBeg, end: chEnd, ins: pureIns ? alt.slice(1) : pureDel ? '' : alt };
        if (r.pos < tx.beg || r.pos + ref.length - 1 > tx.end) {
          const c = clippedToTranscript(r.pos, ref, alt, tx);
          if (c === MISSES) continue;
          if (c) {
            placedHit(r, ai, alt, ref, tx, c.ch, c.tr, c.pureIns, vep, fetch, ctxOf, hits, c);
            continue;
          }
        }
        placedHit(r, ai, alt, ref, tx, ch, tr, pureIns, vep, fetch, ctxOf, hits, norm);
      }
      // a long REF can reach a transcript its trimmed change does not (the rest of the REF is taken to be kept at the other end)
      if (r.pos < lo - 1 || r.pos + ref.length - 1 > hi + 1) {
        for (const tx of model.overlapping(r.chrom, r.pos, r.pos + ref.length - 1)) {
          if (!tx.coding || (tx.beg <= hi && tx.end >= lo && !(tr.end < tr.beg && (tr.beg <= tx.beg || tr.beg > tx.end)))) continue;
          const c = clippedToTranscript(r.pos, ref, alt, tx);
          if (c && c !== MISSES) placedHit(r, ai, alt, ref, tx, c.ch, c.tr, c.pureIns, vep, fetch, ctxOf, hits, c);
        }
      }
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
      if (!got) memo.set(key, (got = emitGroups(tx, hs, local, vep)));
      for (const [r, e, ai] of got) note(r, e, ai, hap);
    }
  }
}

/** A record's allele clipped to a transcript, with its structural and trimmed changes. */
interface Clipped {
  pos: number;
  ref: string;
  alt: string;
  ch: Change;
  tr: Change;
  pureIns: boolean;
}

/** `clippedToTranscript`: the allele does not reach the transcript. */
const MISSES = 'misses' as const;

/**
 * The allele of a REF that reaches past the transcript's first or last base, as bcftools csq
 * takes it (measured around both ends of real models): shared bases are trimmed from the
 * right first, then from the left; when what is left lies outside the transcript the record
 * does not reach it (`MISSES`); when it lies inside, it is the allele (with one base of
 * anchor when REF or ALT is empty). When it still crosses the transcript's edge, the bases
 * outside are cut from that end of both REF and ALT (taken to be unchanged) and the rest is
 * trimmed again, that end first; null when ALT has no base left inside (the caller's coarse
 * classification applies).
 */
function clippedToTranscript(pos: number, ref: string, alt: string, tx: Transcript): Clipped | null | typeof MISSES {
  let e = 0;
  while (e < ref.length && e < alt.length && ref[ref.length - 1 - e] === alt[alt.length - 1 - e]) e++;
  let b = 0;
  while (b < ref.length - e && b < alt.length - e && ref[b] === alt[b]) b++;
  const sBeg = pos + b, sEnd = pos + ref.length - 1 - e;
  if (sEnd < sBeg ? sBeg <= tx.beg || sBeg > tx.end : sEnd < tx.beg || sBeg > tx.end) return MISSES;
  let rb: number, re: number, ab: number, ae: number;
  if (sBeg >= tx.beg && sEnd <= tx.end) {
    rb = b, re = ref.length - e, ab = b, ae = alt.length - e;
    // one base of anchor (the one before, as VCF writes it) when either side is empty
    if (re === rb || ae === ab) {
      if (rb > 0) rb--, ab--;
      else re++, ae++;
    }
  } else {
    const cutL = Math.max(0, tx.beg - pos), cutR = Math.max(0, pos + ref.length - 1 - tx.end);
    if (cutL + cutR >= ref.length || alt.length <= cutL + cutR) return null;
    rb = cutL, re = ref.length - cutR, ab = cutL, ae = alt.length - cutR;
    const trimRight = () => {
      while (re - rb > 1 && ae - ab > 1 && ref[re - 1] === alt[ae - 1]) re--, ae--;
    };
    const trimLeft = () => {
      while (re - rb > 1 && ae - ab > 1 && ref[rb] === alt[ab]) rb++, ab++;
    };
    if (cutR > 0) trimRight(), trimLeft();
    else trimLeft(), trimRight();
  }
  const cref = ref.slice(rb, re), calt = alt.slice(ab, ae);
  if (cref === calt) return null;
  return clippedAllele(pos + rb, cref, calt);
}

/** An allele that stands for a record's, with its structural change and trimmed change. */
function clippedAllele(pos: number, ref: string, alt: string): Clipped {
  const pureIns = ref.length === 1 && alt.length > 1 && alt[0] === ref[0];
  const pureDel = alt.length === 1 && ref.length > 1 && alt[0] === ref[0];
  const ch: Change = pureIns ? { beg: pos + 1, end: pos, ins: alt.slice(1) } : pureDel ? { beg: pos + 1, end: pos + ref.length - 1, ins: '' } : { beg: pos, end: pos + ref.length - 1, ins: alt };
  return { pos, ref, alt, ch, tr: trimAllele(pos, ref, alt), pureIns };
}

/**
 * The allele a padded REF/ALT pair stands for, as bcftools csq reads it (its codon window and
 * amino-acid change come from the changed bases, not from the padding): shared bases trimmed
 * from the right, then from the left, one base of REF and ALT kept. Null when nothing is
 * trimmed beyond what a VCF anchor base is.
 */
function paddedAllele(pos: number, ref: string, alt: string): Clipped | null {
  let re = ref.length, ae = alt.length;
  while (re > 1 && ae > 1 && ref.charCodeAt(re - 1) === alt.charCodeAt(ae - 1)) re--, ae--;
  let b = 0;
  while (re - b > 1 && ae - b > 1 && ref.charCodeAt(b) === alt.charCodeAt(b)) b++;
  if (b === 0 && re === ref.length) return null;
  return clippedAllele(pos + b, ref.slice(b, re), alt.slice(b, ae));
}

/** A record's allele on a transcript, not in a deep intron: its place, and its coding hit or its entries. */
function placedHit(
  r: Rec, ai: number, alt: string, ref: string, tx: Transcript, ch: Change, tr: Change, pureIns: boolean,
  vep: boolean, fetch: FetchSeq, ctxOf: (t: Transcript) => TxContext, hits: Map<Transcript, Hit[]>,
  clip: Clipped | null = null,
): void {
  // a REF clipped to the transcript (`clippedToTranscript`) stands for the record in the coding work; CSQ keeps the record's allele
  const pos = clip ? clip.pos : r.pos;
  const cref = clip ? clip.ref : ref, calt = clip ? clip.alt : alt;
  const pl = place(tx, ch);
  const add = (terms: Set<Term>, o: { geneLevel?: boolean; strand?: boolean } = {}) => {
    note(r, entry(terms, tx, o), ai);
    if (vep) addCsq(r, vepEntry(alt, terms, tx, null, r.pos, ref, ai));
  };
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
    return;
  }
  if (pl.coding) {
    const isIndel = cref.length !== calt.length;
    const edit = cdsEdit(ctx, pos, cref, calt);
    if (edit && isIndel && ctx.hasStart && touchesStart(ctx, tr) && startRetained(ctx, tr, fetch)) {
      add(new Set<Term>(['start_retained']), { strand: true });
      return;
    }
    if (edit && isIndel && ctx.hasStart && touchesStart(ctx, pureIns ? { beg: pos, end: pos, ins: calt } : tr)) {
      // an indel in the start codon: the start is lost (what follows is not translated from it)
      add(new Set<Term>(['start_lost', ...pl.splice]), { strand: true });
      return;
    }
    if (edit && !(isIndel && !pureIns && touchesCodingEdge(tx, tr))) {
      const delta = edit.ins.length - (edit.c2 - edit.c1);
      const k1 = Math.floor(Math.max(0, edit.c1) / 3);
      const k2 = Math.floor((edit.c2 - 1) / 3);
      const h: Hit = { rec: r, ai, ctx, edit, k1, k2, delta, spliceMerged: pl.splice };
      let l = hits.get(tx);
      if (!l) hits.set(tx, (l = []));
      l.push(h);
      if (ctx.overlappingSegs && !isIndel) {
        // bases read twice (overlapping segments): each later copy changes a codon of its own
        for (const e of laterCopyEdits(ctx, pos, cref, calt)) l.push({ rec: r, ai, ctx, edit: e, k1: Math.floor(e.c1 / 3), k2: Math.floor((e.c2 - 1) / 3), delta: 0, spliceMerged: NO_TERMS });
      }
      return;
    }
    if (cref.length === calt.length) {
      // substitution reaching past the coding sequence: its coding part, then the rest
      // (the changed bases may all lie outside it: then only the rest)
      const seg = tx.cds.find((c) => c.end >= tr.beg && c.beg <= tr.end);
      const a0 = seg ? Math.max(seg.beg, pos) : 0, b0 = seg ? Math.min(seg.end, pos + cref.length - 1) : -1;
      const e = seg ? cdsEdit(ctx, a0, cref.slice(a0 - pos, b0 - pos + 1), calt.slice(a0 - pos, b0 - pos + 1)) : null;
      const eff = e ? codingEffect(ctx, [e]) : null;
      if (eff) add(eff.terms, { strand: true });
      const rest = new Set<Term>(pl.splice);
      if (pl.utr5) rest.add('5_prime_utr');
      if (pl.utr3) rest.add('3_prime_utr');
      if (rest.size) add(rest);
      return;
    }
    // coarse effect (crosses a coding edge, or an indel at an exon edge)
    if (touchesStart(ctx, tr) && ctx.hasStart) {
      if (startRetained(ctx, tr, fetch)) {
        add(new Set<Term>(['start_retained']), { strand: true });
        return;
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

/** Symbolic <INS>/<DUP>/<DEL> alleles: the transcripts they reach, with structural terms only. */
function symbolic(r: Rec, alt: string, ai: number, model: GeneModel, vep: boolean): void {
  const isIns = /^<(INS|DUP)/.test(alt);
  const isDel = /^<DEL/.test(alt);
  if (!isIns && !isDel) return;
  if (isIns) {
    for (const tx of model.overlapping(r.chrom, r.pos, r.pos + 1)) {
      const t = symbolicInsertionTerms(tx, r.pos);
      if (!t) continue;
      t.add('feature_elongation');
      note(r, entry(t, tx), ai);
      if (vep) addCsq(r, vepEntry(alt, t, tx, null, r.pos, r.refRaw, ai));
    }
    return;
  }
  const m = /(?:^|;)END=(\d+)/.exec(r.buf.toString('latin1', r.infoBeg, r.infoEnd));
  const end = m ? Number(m[1]) - 1 : r.pos;
  const ch: Change = { beg: r.pos + 1, end: Math.max(r.pos + 1, end), ins: '' };
  for (const tx of model.overlapping(r.chrom, ch.beg, ch.end)) {
    const pl = place(tx, ch);
    const t = new Set<Term>(pl.splice);
    t.add('feature_truncation');
    note(r, entry(t, tx), ai);
    if (vep) addCsq(r, vepEntry(alt, t, tx, null, r.pos, r.refRaw, ai));
  }
}

/** Haplotype groups of a transcript's coding hits (shared codons, open frameshifts) and their entries. */
function emitGroups(tx: Transcript, hs: Hit[], local: boolean, vep: boolean): Array<[Rec, string, number]> {
  const emitted: Array<[Rec, string, number]> = [];
  const groups: Hit[][] = [];
  if (local) for (const h of hs) groups.push([h]);
  else {
    let cur: Hit[] = [];
    let reach = -1;
    let frame = 0;
    for (const h of hs) {
      if (cur.length && h.k1 <= reach && h.edit.c1 >= cur[cur.length - 1].edit.c2 && !(h.ctx.overlappingSegs && cur.some((x) => x.rec === h.rec && x.ai === h.ai))) {
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
        addCsq(h.rec, vepEntry(h.rec.alleles[h.ai]!.alt, own, tx, { ctx, edit: h.edit, aa: single?.aa ?? eff.aa }, h.rec.pos, h.rec.refRaw, h.ai));
      }
    }
  }
  return emitted;
}
