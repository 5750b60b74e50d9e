/**
 * Cutting a VCF into the annotator's tasks (see annotate.ts): the file is read as bytes
 * (plain, BGZF or gzip), the header lines are handed over as text, and the records are
 * gathered into tasks of whole chunks — cut only where no transcript spans the cut, and
 * between chromosomes — looking only at CHROM, POS and the REF length of each record (order
 * checks and chunk cuts); records are parsed and checked by the tasks.
 *
 * Runs in the annotating thread, or beside the output's compression in another thread
 * (aside.ts), so that the annotating thread does nothing but annotate: all the reader needs
 * of the gene model is the transcripts' spans (`SpanReacher`).
 */
import { statSync } from 'node:fs';
import { GenolakeError, InputError } from '../util/errors.js';
import type { SpanReacher } from './genemodel.js';
import { byteBatches } from './vcf.js';

/** Records of one chunk at most (a safety valve for huge genes with dense calls). */
const CHUNK_MAX = 20000;
/** A task closes at the first chunk boundary past this many records or bytes. */
const TASK_RECORDS = 32768;
const TASK_BYTES = 1 << 21;

/** Consecutive chunks of records, as the annotator's tasks take them. */
export interface CutTask {
  /** Record lines (latin1) joined by '\n' (blank lines may occur, counted as lines). */
  data: Uint8Array;
  /** Records per chunk, in order. */
  chunks: number[];
  records: number;
  /** Record number (1-based) and file line number of the first record. */
  firstRecord: number;
  firstLine: number;
  /** Chunks checked already (see chunk.ts: `QuietChecker`). */
  checkedQuiet?: Uint8Array;
}

/**
 * What the reader gives, in file order: tasks, and at a record the reader refuses (unsorted,
 * unreadable) an error — after a task holding that record alone, so that an earlier error of
 * the tasks, or the record's own parse error, is reported first, as in a one-pass reading.
 */
export type CutItem = { task: CutTask } | { error: GenolakeError };

export interface VcfTaskReaderOptions {
  /** Records per task (a task closes at the first chunk boundary past it). */
  taskRecords?: number;
  /**
   * Parallel work: the first task is an eighth the size (the annotating thread waits for it,
   * in code not yet optimised), and so are the tasks of the last tenth of a plain VCF (so
   * that the threads finish together).
   */
  taper?: boolean;
}

/** A task being filled: its record lines as bytes. */
interface TaskDraft {
  buf: Buffer;
  len: number;
  /** Lines not copied yet: bytes [srcBeg, srcEnd) of `src`, extended while lines follow each other there. */
  src: Buffer | null;
  srcBeg: number;
  srcEnd: number;
  chunks: number[];
  records: number;
  firstRecord: number;
  firstLine: number;
}

function newDraft(firstRecord: number, firstLine: number, capacity: number, buf?: Buffer | null): TaskDraft {
  return { buf: buf ?? Buffer.allocUnsafe(capacity), len: 0, src: null, srcBeg: 0, srcEnd: 0, chunks: [], records: 0, firstRecord, firstLine };
}

/** Appends line [s, e) of `b` (lines are joined with '\n'; the task splits on it). Lines that follow each other in `b` are copied at once. */
function appendLine(d: TaskDraft, b: Buffer, s: number, e: number): void {
  if (d.src === b && d.srcEnd + 1 === s) {
    d.srcEnd = e;
    return;
  }
  settle(d);
  d.src = b;
  d.srcBeg = s;
  d.srcEnd = e;
}

/** Copies the pending lines of a draft into its buffer. */
function settle(d: TaskDraft): void {
  if (!d.src) return;
  const need = d.len + 1 + (d.srcEnd - d.srcBeg);
  if (need > d.buf.length) {
    const next = Buffer.allocUnsafe(Math.max(need, d.buf.length * 2));
    d.buf.copy(next, 0, 0, d.len);
    d.buf = next;
  }
  if (d.len) d.buf[d.len++] = 10;
  d.len += d.src.copy(d.buf, d.len, d.srcBeg, d.srcEnd);
  d.src = null;
  d.srcBeg = d.srcEnd = 0;
}

/**
 * The per-record work of the reader, on the bytes: CHROM, POS and the REF length of each record
 * (order checks, chunk cuts), and the lines gathered into task drafts. `scan` runs over many
 * lines per call and stops at a line that completes a task (`ready`) or that this thread
 * refuses (`failErr`); records are parsed and checked in the tasks.
 */
class Cutter {
  draft: TaskDraft | null = null;
  /** A task closes at the first chunk end past `taskRecords` records or this many bytes. */
  taskBytes = TASK_BYTES;
  /** The buffer of a task sent, for the next draft (tasks are copied or done when sent). */
  spare: Buffer | null = null;
  /** A task to send before scanning on. */
  ready: TaskDraft | null = null;
  /** The refused line [failS, failE) of the buffer last scanned, and why. */
  failS = -1;
  failE = -1;
  failErr: GenolakeError | null = null;
  chunkRecords = 0;
  chunkChrom = '';
  chunkReach = -1;
  lastChrom = '';
  lastChromBytes = Buffer.alloc(0);
  lastPos = -1;
  readonly seenChroms = new Set<string>();
  readonly chromOrder: string[] = [];
  lineNo = 0;
  recNo = 0;
  records = 0;
  private reachChrom: string | null = null;
  private reach: (beg: number, end: number) => number = () => -1;

  constructor(
    private readonly reacher: SpanReacher,
    public taskRecords: number,
    private readonly file: string,
  ) {}

  /** Ends the chunk being filled; true when that completes the draft (then in `ready`). */
  closeChunk(): boolean {
    if (!this.chunkRecords) return false;
    const d = this.draft!;
    d.chunks.push(this.chunkRecords);
    this.chunkRecords = 0;
    if (d.records >= this.taskRecords || d.len + d.srcEnd - d.srcBeg >= this.taskBytes) {
      this.draft = null;
      this.ready = d;
      return true;
    }
    return false;
  }

  private fail(s: number, e: number, err: GenolakeError): void {
    this.failS = s;
    this.failE = e;
    this.failErr = err;
  }

  /** Whole lines of `b` from `s`; returns the start of the first line not taken. */
  scan(b: Buffer, s: number): number {
    for (let nl = b.indexOf(10, s); nl >= 0; nl = b.indexOf(10, s)) {
      const e = nl > s && b[nl - 1] === 13 ? nl - 1 : nl;
      const next = nl + 1;
      this.lineNo++;
      if (s === e) {
        // blank lines are skipped but counted (the task numbers lines)
        if (this.draft) appendLine(this.draft, b, s, e);
        s = next;
        continue;
      }
      this.recNo++;
      this.records++;
      // only what chunking needs: CHROM, POS and the REF length (the task checks the rest)
      let t0 = -1, t1 = -1, t2 = -1, t3 = -1;
      for (let i = s, n = 0; i < e; i++) {
        if (b[i] !== 9) continue;
        if (n === 0) t0 = i;
        else if (n === 1) t1 = i;
        else if (n === 2) t2 = i;
        else {
          t3 = i;
          break;
        }
        n++;
      }
      let pos1 = 0;
      for (let i = t0 + 1; i < t1 && pos1 >= 0; i++) {
        const d = b[i] - 48;
        pos1 = d < 0 || d > 9 || i - t0 > 15 ? -1 : pos1 * 10 + d;
      }
      if (pos1 < 1 && t1 > t0) pos1 = Number(b.toString('latin1', t0 + 1, t1)); // other spellings of a number, as the task reads them
      if (t3 < 0 || !Number.isInteger(pos1) || pos1 < 1) {
        this.fail(s, e, new GenolakeError('ANNOTATE_INTERNAL', 'a malformed record was not refused by its task'));
        return next;
      }
      let chrom = this.lastChrom;
      const cb = this.lastChromBytes;
      let same = t0 - s === cb.length;
      for (let i = 0; same && i < cb.length; i++) same = b[s + i] === cb[i];
      if (!same) {
        chrom = b.toString('latin1', s, t0);
        this.lastChromBytes = Buffer.from(b.subarray(s, t0));
      }
      const pos = pos1 - 1;
      if (chrom === this.lastChrom && pos < this.lastPos) {
        this.fail(s, e, new InputError('unsorted_vcf', `records are not sorted: POS ${pos + 1} after ${this.lastPos + 1}`, { file: this.file, record: this.recNo, line: this.lineNo, field: 'POS' }));
        return next;
      }
      if (chrom !== this.lastChrom) {
        if (this.seenChroms.has(chrom)) {
          this.fail(s, e, new InputError('unsorted_vcf', `records of ${chrom} are not contiguous`, { file: this.file, record: this.recNo, line: this.lineNo, field: 'CHROM' }));
          return next;
        }
        this.seenChroms.add(chrom);
        this.chromOrder.push(chrom);
      }
      this.lastChrom = chrom;
      this.lastPos = pos;
      if (this.chunkRecords && (chrom !== this.chunkChrom || pos > this.chunkReach || this.chunkRecords >= CHUNK_MAX)) this.closeChunk();
      if (!this.chunkRecords) {
        this.chunkChrom = chrom;
        this.chunkReach = -1;
      }
      if (!this.draft) {
        this.draft = newDraft(this.recNo, this.lineNo, TASK_BYTES + (1 << 16), this.spare);
        this.spare = null;
      }
      const d = this.draft;
      appendLine(d, b, s, e);
      d.records++;
      this.chunkRecords++;
      const end = pos + (t3 - t2 - 1);
      if (end > this.chunkReach) this.chunkReach = end;
      if (this.reachChrom !== chrom) {
        this.reachChrom = chrom;
        this.reach = this.reacher(chrom);
      }
      const txReach = this.reach(pos, end);
      if (txReach > this.chunkReach) this.chunkReach = txReach;
      s = next;
      if (this.ready) return s;
    }
    return s;
  }
}


/**
 * Reads a VCF and cuts it into tasks: `header()` first, then `next()` until null. The
 * bytes of a task returned are reused at the next call of `next()` (a caller that keeps
 * them copies them).
 */
export class VcfTaskReader implements TaskSource {
  private readonly cut: Cutter;
  private readonly pieces: AsyncGenerator<Buffer>;
  private readonly headerLines: string[] = [];
  private headerDone = false;
  /** Items ready, with the draft of each task (its buffer is reused once the caller is done). */
  private readonly queue: Array<{ item: CutItem; draft: TaskDraft | null }> = [];
  private ended = false;
  private rest: Buffer | null = null;
  /** The draft whose bytes the caller holds (reused at the next call). */
  private handedOut: TaskDraft | null = null;
  private readonly plainSize: number;
  private readBytes = 0;
  private readonly taskRecords: number;
  private readonly taper: boolean;
  /** Tasks are full size now (after the first, before the last tenth). */
  private fullSize = false;

  private smallTasks(): void {
    this.cut.taskRecords = Math.max(1, Math.ceil(this.taskRecords / 8));
    this.cut.taskBytes = TASK_BYTES / 8;
  }

  constructor(
    private readonly file: string,
    reacher: SpanReacher,
    opts: VcfTaskReaderOptions = {},
  ) {
    this.taskRecords = Math.max(1, Math.floor(opts.taskRecords ?? TASK_RECORDS));
    this.cut = new Cutter(reacher, this.taskRecords, file);
    this.taper = !!opts.taper;
    if (this.taper) this.smallTasks();
    this.plainSize = opts.taper && !/\.(gz|bgz)$/i.test(file) ? statSync(file).size : 0;
    this.pieces = byteBatches(file);
  }

  /** Records read so far. */
  get records(): number {
    return this.cut.records;
  }

  /** Chromosomes in the order the records came. */
  get chromOrder(): string[] {
    return this.cut.chromOrder;
  }

  /** The header lines (without line ends), up to and including #CHROM. */
  async header(): Promise<string[]> {
    while (!this.headerDone) {
      if (this.ended) throw new InputError('bad_vcf', 'missing #CHROM header line', { file: this.file });
      await this.pump();
    }
    return this.headerLines;
  }

  async next(): Promise<CutItem | null> {
    if (this.handedOut) {
      this.cut.spare = this.handedOut.buf;
      this.handedOut = null;
    }
    while (!this.queue.length && !this.ended) await this.pump();
    const next = this.queue.shift();
    if (!next) return null;
    this.handedOut = next.draft;
    return next.item;
  }

  /** Stops reading (closes the file). */
  async close(): Promise<void> {
    this.ended = true;
    await this.pieces.return(undefined);
  }

  private push(d: TaskDraft): void {
    settle(d);
    const task: CutTask = { data: d.buf.subarray(0, d.len), chunks: d.chunks, records: d.records, firstRecord: d.firstRecord, firstLine: d.firstLine };
    this.queue.push({ item: { task }, draft: d });
    if (this.taper && !this.fullSize && (!this.plainSize || this.readBytes <= 0.9 * this.plainSize)) {
      // the first task is out: full size from here on
      this.cut.taskRecords = this.taskRecords;
      this.cut.taskBytes = TASK_BYTES;
      this.fullSize = true;
    }
  }

  /** Whatever is gathered goes out as tasks. */
  private flushAll(): void {
    const cut = this.cut;
    if (cut.closeChunk()) this.push(cut.ready!);
    cut.ready = null;
    if (cut.draft?.records) this.push(cut.draft);
    cut.draft = null;
  }

  /** Reads one piece of the file and cuts what it completes. */
  private async pump(): Promise<void> {
    const r = await this.pieces.next();
    if (r.done) {
      this.ended = true;
      // a last line without a line end
      if (this.rest) this.lines(Buffer.concat([this.rest, NEWLINE]), 0);
      this.rest = null;
      if (this.headerDone && !this.failed) this.flushAll();
      return;
    }
    const piece = r.value;
    this.readBytes += piece.length;
    const cut = this.cut;
    if (this.fullSize && this.plainSize && this.readBytes > 0.9 * this.plainSize) {
      this.smallTasks();
      this.fullSize = false;
    }
    let from = 0;
    if (this.rest) {
      // only the line begun in the last piece is joined with this one's first line (not the whole piece)
      const nl = piece.indexOf(10);
      if (nl < 0) {
        this.rest = Buffer.concat([this.rest, piece]);
        return;
      }
      const joined = Buffer.concat([this.rest, piece.subarray(0, nl + 1)]);
      this.rest = null;
      this.lines(joined, 0);
      if (this.failed) return;
      from = nl + 1;
    }
    const s = this.lines(piece, from);
    if (this.failed) return;
    this.rest = s < piece.length ? Buffer.from(piece.subarray(s)) : null;
  }

  private failed = false;

  /** Whole lines of `b` from `s` on; returns where the unfinished last line starts. */
  private lines(b: Buffer, s: number): number {
    const cut = this.cut;
    for (let nl = b.indexOf(10, s); !this.headerDone && nl >= 0; nl = b.indexOf(10, s)) {
      cut.lineNo++;
      const line = b.toString('latin1', s, nl > s && b[nl - 1] === 13 ? nl - 1 : nl);
      if (!line.startsWith('##')) {
        if (!line.startsWith('#CHROM')) throw new InputError('bad_vcf', 'missing #CHROM header line', { file: this.file, line: cut.lineNo });
        this.headerDone = true;
      }
      this.headerLines.push(line);
      s = nl + 1;
    }
    if (!this.headerDone) return s;
    for (;;) {
      s = cut.scan(b, s);
      if (cut.failErr) {
        // what came before goes first, then the refused record alone, then the error
        this.flushAll();
        const one = newDraft(cut.recNo, cut.lineNo, cut.failE - cut.failS + 1);
        appendLine(one, b, cut.failS, cut.failE);
        one.records = 1;
        one.chunks.push(1);
        this.push(one);
        this.queue.push({ item: { error: cut.failErr }, draft: null });
        this.failed = true;
        this.ended = true;
        void this.pieces.return(undefined);
        return s;
      }
      if (!cut.ready) return s;
      const d = cut.ready;
      cut.ready = null;
      this.push(d);
    }
  }
}

const NEWLINE = Buffer.from('\n');

/** Where the annotator takes its tasks from: a `VcfTaskReader` in this thread, or one in a worker. */
export interface TaskSource {
  header(): Promise<string[]>;
  /** The next item; a thrown error is an error at that point of the file. */
  next(): Promise<CutItem | null>;
  close(): Promise<void>;
  /** Records read (all of them once `next` returned null). */
  readonly records: number;
  readonly chromOrder: string[];
}
