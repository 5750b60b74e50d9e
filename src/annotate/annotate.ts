/**
 * Streaming VCF annotator: writes INFO/BCSQ (bcftools-style) and INFO/CSQ (VEP-style)
 * for each record, against the transcripts it overlaps (consequence rules: chunk.ts).
 *
 * This module is the driver: it reads the VCF once, checks order, and cuts the records
 * into chunks — only where no transcript spans the cut, and between chromosomes — so
 * that all records a haplotype-aware compound consequence needs are annotated together.
 * Consecutive chunks form tasks; with `threads > 1` (or a pool) tasks run on the pool's
 * workers (workers/annotate.ts: each thread takes the gene model once, from shared memory,
 * and opens the reference once), at most a few tasks per thread in flight, and results
 * are written in input order. The same tasks run in this thread with one thread, so the
 * output is the same bytes whatever the thread count (or task size): a BGZF output is cut
 * into blocks by its text alone (chunk.ts: `endsSegment`), tasks compress the segments they
 * hold whole and this thread only the segments that span tasks. Memory: the gene model plus
 * the tasks in flight, whatever the size of the VCF.
 *
 * This thread reads the VCF as bytes and looks only at CHROM, POS and the REF length
 * (order checks and chunk cuts); records are parsed and checked in the tasks. An error
 * this thread sees is reported after everything before it has been annotated, so the
 * first bad record in the file is the one reported, as in a one-pass reading.
 */
import { once } from 'node:events';
import { createWriteStream, existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createPool, type TaskPool } from '../engine/pool.js';
import { open } from 'node:fs/promises';
import { BGZF_EOF, BGZF_MAX_BLOCK_DATA, bgzfBlockSync } from '../formats/bgzf.js';
import { GenolakeError, InputError } from '../util/errors.js';
import type { BgzfBlocksTask } from '../../workers/bgzf-blocks.js';
import { type AnnotateTask, type AnnotateTaskResult, ChunkAnnotator, type AnnotatorSpec, SEGMENT_CAP, segmentPieces, shareModel } from './chunk.js';
import { IndexedFasta } from './fasta.js';
import { type GeneModel, loadGeneModel } from './genemodel.js';
// known.ts (and the tabix reader) is loaded only when databases are given
import type { KnownMatcher, KnownDbSpec, KnownDbStats } from './known.js';
import { byteBatches } from './vcf.js';
import { csqHeader } from './vep.js';

export interface AnnotateOptions {
  reference: string;
  gff?: string;
  gtf?: string;
  vcf: string;
  out: string;
  /** One record at a time (no compound consequences). */
  local?: boolean;
  /** Also write the VEP-style INFO/CSQ field (default true). */
  vep?: boolean;
  /** Preloaded gene model (else read from gff/gtf). Workers read gff/gtf themselves. */
  model?: GeneModel;
  /** Known-variant databases (IDs and INFO/NAME_FIELD copied on allele match; see known.ts). */
  known?: KnownDbSpec[];
  /** Worker threads (default 1: everything in this thread). Ignored when `pool` is given. */
  threads?: number;
  /** Run tasks on this pool (e.g. the run's pool, StageContext.pool); it is not closed here. */
  pool?: TaskPool;
  /** Records per task (a task closes at the first chunk boundary past it); default 32768. The output does not depend on it. */
  taskRecords?: number;
  /** zlib level (0–9) of a BGZF output (`.gz`); default `ANNOTATE_BGZF_LEVEL`. */
  level?: number;
}

/**
 * Default BGZF level of the annotated VCF. Compression is a large share of the work (the
 * output is 2.5 times the input with INFO/CSQ): on the benchmark's output zlib's level 6
 * took 1.3 times the CPU of level 5 for a file 4% smaller.
 */
export const ANNOTATE_BGZF_LEVEL = 5;

export interface AnnotateStats {
  records: number;
  annotated: number;
  /** Per known-variant database, when any were given. */
  known?: KnownDbStats[];
}

/** Records of one chunk at most (a safety valve for huge genes with dense calls). */
const CHUNK_MAX = 20000;
/** A task closes at the first chunk boundary past this many records or bytes. */
const TASK_RECORDS = 32768;
const TASK_BYTES = 1 << 21;
/** Tasks in flight per worker thread. */
const IN_FLIGHT_PER_THREAD = 4;

/** The pool's worker entry (workers/annotate.ts). */
export const ANNOTATE_WORKER = 'annotate';

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

export async function annotateVcf(opts: AnnotateOptions): Promise<AnnotateStats> {
  if (!!opts.gff === !!opts.gtf && !opts.model) throw new InputError('bad_usage', 'give exactly one of --gff or --gtf');
  if (!existsSync(opts.vcf)) throw new InputError('missing_file', 'VCF not found', { file: opts.vcf });
  const spec: AnnotatorSpec = {
    reference: opts.reference,
    ...(opts.gff ? { gff: opts.gff } : {}),
    ...(opts.gtf ? { gtf: opts.gtf } : {}),
    local: !!opts.local,
    vep: opts.vep !== false,
    ...(opts.known?.length ? { known: opts.known } : {}),
  };
  const level = opts.level ?? ANNOTATE_BGZF_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new InputError('bad_usage', `compression level must be an integer from 0 to 9, not ${level}`);
  const bgzfOut = /\.(gz|bgz)$/i.test(opts.out);
  const threads = opts.pool ? opts.pool.threads : Math.max(1, Math.floor(opts.threads ?? 1));
  const usePool = threads > 1;
  // With a pool of our own this thread is one of the `threads`: it reads and writes, and
  // annotates a task itself whenever the workers have enough queued (one JS heap and
  // compiler fewer than `threads` workers beside an idle reader).
  const selfToo = usePool && !opts.pool;
  // Two threads of our own and a BGZF output: this thread annotates every task and the other
  // compresses. Each JS thread that annotates pays for compiling the annotator and for its
  // heap (more than a second of CPU), which two threads sharing the records do not win back
  // on two cores; compression needs neither.
  const compressAside = selfToo && threads === 2 && bgzfOut;
  // a pool of our own starts its threads while the gene model is read
  const pool: TaskPool | null = usePool && !compressAside ? (opts.pool ?? createPool({ threads: threads - 1 })) : null;
  const zpool: TaskPool | null = compressAside ? createPool({ threads: 1 }) : null;
  const ownPool = pool !== null && pool !== opts.pool;
  let model: GeneModel;
  let fa: IndexedFasta;
  try {
    model = opts.model ?? (await loadGeneModel((opts.gff ?? opts.gtf)!, opts.gtf ? 'gtf' : 'gff3'));
    fa = await IndexedFasta.open(opts.reference);
  } catch (e) {
    if (ownPool) await pool.close();
    await zpool?.close();
    throw e;
  }
  // --- known-variant databases (src/annotate/known.ts): opened here first, so a bad database fails before any work ---
  let known: KnownMatcher | null = null;
  let inThread: ChunkAnnotator | null = null;
  const run = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    known = opts.known?.length ? await (await import('./known.js')).KnownMatcher.open({ databases: opts.known, reference: opts.reference }, { fasta: fa }) : null;
    if (!pool || selfToo) inThread = await ChunkAnnotator.open(spec, model, { fasta: fa, known: known ? { run, matcher: known } : undefined });
  } catch (e) {
    fa.close();
    if (ownPool) await pool!.close();
    await zpool?.close();
    throw e;
  }
  // workers take the gene model from shared memory (parsing the GFF again in each would cost more than the reading)
  const sharedGenes = pool ? shareModel(model) : undefined;
  const modelKey = opts.model ? `memory:${run}` : modelFileKey((opts.gff ?? opts.gtf)!);
  const tmp = join(dirname(opts.out), `.tmp-${process.pid}-${Date.now()}-${basename(opts.out)}`);
  let writer: TextWriter;
  try {
    writer = await openWriter(tmp, bgzfOut, level, zpool);
  } catch (e) {
    inThread?.close();
    known?.close();
    fa.close();
    if (ownPool) await pool!.close();
    await zpool?.close();
    throw e;
  }
  const stats: AnnotateStats = { records: 0, annotated: 0 };
  /** Latest cumulative known-db statistics per worker thread. */
  const knownByThread = new Map<number, KnownDbStats[]>();

  const pending: Array<Promise<AnnotateTaskResult>> = [];
  const maxInFlight = threads * IN_FLIGHT_PER_THREAD;
  /** Tasks at the workers; with this thread annotating too, few are queued there (the last of them would make this thread wait at the end). */
  let poolInFlight = 0;
  const maxPoolInFlight = selfToo ? 2 * (threads - 1) : Infinity;
  const taskRecords = Math.max(1, Math.floor(opts.taskRecords ?? TASK_RECORDS));
  const collect = async (res: AnnotateTaskResult) => {
    stats.annotated += res.annotated;
    // (statistics of tasks annotated in this thread: under -1)
    if (res.known) knownByThread.set(res.thread ?? -1, res.known);
    await writer.task(res);
  };
  const submit = async (d: TaskDraft) => {
    settle(d);
    /** Annotated in this thread (no pool, or this thread's turn: the workers have enough queued). */
    const here = !pool || poolInFlight >= maxPoolInFlight;
    const task: AnnotateTask = {
      // for a worker an exact copy (Buffer's own slice() is a view, which would carry its whole backing store, and the draft's buffer is reused)
      spec, run, file: opts.vcf, data: here ? d.buf.subarray(0, d.len) : Buffer.from(d.buf.subarray(0, d.len)), chunks: d.chunks, firstRecord: d.firstRecord, firstLine: d.firstLine, model: sharedGenes, modelKey,
      ...(compressAside ? { cuts: true } : bgzfOut ? { bgzfLevel: level } : {}),
    };
    if (!pool) {
      await collect(await inThread!.runTask(task));
      cut.spare = d.buf;
      return;
    }
    let p: Promise<AnnotateTaskResult>;
    if (here) {
      // a failure waits in order, like a worker's
      p = inThread!.runTask(task);
      p.then(() => settled.add(p), () => settled.add(p));
      await p.catch(() => undefined);
    } else {
      poolInFlight++;
      p = pool.run<AnnotateTask, AnnotateTaskResult>(ANNOTATE_WORKER, task);
      const done = () => {
        poolInFlight--;
        settled.add(p);
      };
      p.then(done, done); // awaited in order below; an early failure must not go unhandled meanwhile
    }
    cut.spare = d.buf;
    pending.push(p);
    while (pending.length >= maxInFlight) await collect(await pending.shift()!);
    // let the event loop run: a worker that finished gets its next queued task only from there
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (pending.length && isSettled(pending[0])) await collect(await pending.shift()!);
  };
  const drain = async () => {
    while (pending.length) await collect(await pending.shift()!);
  };

  const cut = new Cutter(model, taskRecords, opts.vcf);
  let headerDone = false;

  const flushAll = async () => {
    if (cut.closeChunk()) await submit(cut.ready!);
    cut.ready = null;
    if (cut.draft?.records) await submit(cut.draft);
    cut.draft = null;
    await drain();
  };
  /**
   * An error seen by this thread at record `cut.recNo`: what came before is annotated first (an
   * earlier record's error, or this record's own parse error, wins, as in a one-pass run).
   */
  const failAt = async (b: Buffer, s: number, e: number, err: GenolakeError): Promise<never> => {
    await flushAll();
    const one = newDraft(cut.recNo, cut.lineNo, e - s + 1);
    appendLine(one, b, s, e);
    one.records = 1;
    one.chunks.push(1);
    await submit(one);
    await drain();
    throw err;
  };

  /** A header line: copied, or replaced by ours. */
  const onHeader = async (line: string): Promise<void> => {
    if (line.startsWith('##')) {
      if (!/^##(INFO=<ID=(BCSQ|CSQ)|FORMAT=<ID=BCSQ),/.test(line) && !known?.replacesHeaderLine(line)) await writer.write(line + '\n');
      return;
    }
    if (line.startsWith('#CHROM')) {
      await writer.write('##INFO=<ID=BCSQ,Number=.,Type=String,Description="Local consequence annotation from genolake annotate. Format: Consequence|gene|transcript|biotype|strand|amino_acid_change|dna_change">\n');
      if (line.split('\t').length > 9) await writer.write('##FORMAT=<ID=BCSQ,Number=.,Type=Integer,Description="Bitmask of indexes to INFO/BCSQ, with interleaved haplotypes (bit 2*i+h: entry i on haplotype h)">\n');
      if (spec.vep) await writer.write(csqHeader() + '\n');
      if (known) await writer.write(known.headerLines().map((l) => l + '\n').join('')); // --- known-variant databases ---
      await writer.write(line + '\n');
      headerDone = true;
      return;
    }
    throw new InputError('bad_vcf', 'missing #CHROM header line', { file: opts.vcf, line: cut.lineNo });
  };

  /** Whole lines of `b` from `s` on; returns where the unfinished last line starts. */
  const lines = async (b: Buffer, s: number): Promise<number> => {
    for (let nl = b.indexOf(10, s); !headerDone && nl >= 0; nl = b.indexOf(10, s)) {
      cut.lineNo++;
      await onHeader(b.toString('latin1', s, nl > s && b[nl - 1] === 13 ? nl - 1 : nl));
      s = nl + 1;
    }
    if (!headerDone) return s;
    for (;;) {
      s = cut.scan(b, s);
      if (cut.failErr) await failAt(b, cut.failS, cut.failE, cut.failErr);
      if (!cut.ready) return s;
      const d = cut.ready;
      cut.ready = null;
      await submit(d);
    }
  };

  try {
    let rest: Buffer | null = null;
    // With workers, the last tenth of a plain VCF goes in smaller tasks, so that the threads
    // finish together (with a compressing thread: so that little is left to compress after
    // the last task); the output does not depend on task sizes
    const plainSize = (pool || zpool) && !/\.(gz|bgz)$/i.test(opts.vcf) ? statSync(opts.vcf).size : 0;
    let readBytes = 0;
    for await (const piece of byteBatches(opts.vcf)) {
      readBytes += piece.length;
      if (plainSize && readBytes > 0.9 * plainSize && cut.taskBytes === TASK_BYTES) {
        cut.taskRecords = Math.max(1, Math.ceil(taskRecords / 8));
        cut.taskBytes = TASK_BYTES / 8;
      }
      let from = 0;
      if (rest) {
        // only the line begun in the last piece is joined with this one's first line (not the whole piece)
        const nl = piece.indexOf(10);
        if (nl < 0) {
          rest = Buffer.concat([rest, piece]);
          continue;
        }
        await lines(Buffer.concat([rest, piece.subarray(0, nl + 1)]), 0);
        rest = null;
        from = nl + 1;
      }
      const s = await lines(piece, from);
      rest = s < piece.length ? Buffer.from(piece.subarray(s)) : null;
    }
    // a last line without a line end
    if (rest) await lines(Buffer.concat([rest, NEWLINE]), 0);
    if (!headerDone) throw new InputError('bad_vcf', 'missing #CHROM header line', { file: opts.vcf });
    await flushAll();
    await writer.close();
    renameSync(tmp, opts.out);
    stats.records = cut.records;
  } catch (e) {
    await Promise.allSettled(pending);
    await writer.close().catch(() => undefined);
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    inThread?.close();
    known?.close();
    if (ownPool) await pool.close();
    await zpool?.close();
    fa.close();
  }
  if (known) stats.known = pool ? mergeKnownStats([...knownByThread.values()], cut.chromOrder, known.stats()) : known.stats();
  return stats;
}

const NEWLINE = Buffer.from('\n');

/**
 * This thread's per-record work, on the bytes: CHROM, POS and the REF length of each record
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
    private readonly model: GeneModel,
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
        this.reach = this.model.reacher(chrom);
      }
      const txReach = this.reach(pos, end);
      if (txReach > this.chunkReach) this.chunkReach = txReach;
      s = next;
      if (this.ready) return s;
    }
    return s;
  }
}

/** Settled promises of the pool's tasks (results are written as soon as they are next in order). */
const settled = new WeakSet<Promise<unknown>>();
const isSettled = (p: Promise<unknown>) => settled.has(p);

/** The gene model file as it is now (a worker keeps a model while this stays the same). */
function modelFileKey(path: string): string {
  try {
    const s = statSync(path);
    return `${path}:${s.size}:${s.mtimeMs}`;
  } catch {
    return `${path}:${Date.now()}`;
  }
}

/** Known-db statistics of several threads as one: counts add up, chromosome lists in input order. */
function mergeKnownStats(perThread: KnownDbStats[][], chromOrder: string[], empty: KnownDbStats[]): KnownDbStats[] {
  const rank = new Map(chromOrder.map((c, i) => [c, i]));
  return empty.map((base, d) => {
    const out: KnownDbStats = { name: base.name, matchedRecords: 0, refMismatches: 0, aliases: {}, missingChroms: [] };
    const missing = new Set<string>();
    for (const st of perThread) {
      const s = st[d];
      if (!s) continue;
      out.matchedRecords += s.matchedRecords;
      out.refMismatches += s.refMismatches;
      Object.assign(out.aliases, s.aliases);
      for (const c of s.missingChroms) missing.add(c);
    }
    out.missingChroms = [...missing].sort((a, b) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0));
    const aliases = Object.entries(out.aliases).sort(([a], [b]) => (rank.get(a) ?? 0) - (rank.get(b) ?? 0));
    out.aliases = Object.fromEntries(aliases);
    return out;
  });
}

interface TextWriter {
  /** Text (latin1) or bytes. */
  write(s: string | Uint8Array): Promise<void>;
  /** A task's output. */
  task(res: AnnotateTaskResult): Promise<void>;
  close(): Promise<void>;
}

/**
 * Bytes waiting at the compression thread (about 0.15 s of its work) before this thread
 * compresses the next run itself (see `flush`).
 */
const COMPRESS_BACKLOG = 16 << 20;

/** Pieces of output waiting for compression or writing before this thread waits. */
const MAX_UNWRITTEN_JOBS = 64;

/** Bytes of BGZF output that may wait to be written while this thread goes on. */
const WRITE_AHEAD = 32 << 20;

/** The compression pool's worker entry (workers/bgzf-blocks.ts). */
const BGZF_BLOCKS_WORKER = 'bgzf-blocks';

/**
 * `zpool`: compress there (blocks of a task at a time, written in order) instead of in this
 * thread. Either way the blocks are those the text alone gives (chunk.ts: `endsSegment`).
 */
async function openWriter(path: string, bgzf: boolean, level: number, zpool: TaskPool | null = null): Promise<TextWriter> {
  if (bgzf) {
    // tasks compress the BGZF segments they hold whole (chunk.ts: bgzfSegments), or return
    // where their segments end; this thread cuts the rest (segments that span tasks, the
    // header) into block contents, compresses them (or has `zpool` do it) and writes in order
    const fh = await open(path, 'w');
    let carry: Buffer[] = [];
    let carryLen = 0;
    /** The segment being gathered is longer than SEGMENT_CAP: its blocks are whole BGZF_MAX_BLOCK_DATA pieces, cut as they fill. */
    let long = false;
    /** Output in order: compressed blocks, or block contents still to compress. */
    let out: Array<{ blocks: Uint8Array } | { piece: Uint8Array }> = [];
    /** Compressed output not written yet, in output order: blocks made (`value`), or a compression at `zpool` (`job`). */
    const jobs: Array<{ value: Uint8Array | null; job: Promise<Uint8Array> | null }> = [];
    /** Bytes of block contents at `zpool` not compressed yet. */
    let atWorker = 0;
    /** A compression that failed (reported at the next flush, not when its turn to be written comes). */
    let failed: { err: unknown } | null = null;
    const text = (b: Uint8Array) => {
      if (!b.length) return;
      carry.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      carryLen += b.length;
      if (carryLen > SEGMENT_CAP) long = true;
      if (long && carryLen >= BGZF_MAX_BLOCK_DATA) {
        const all = Buffer.concat(carry, carryLen);
        let i = 0;
        for (; i + BGZF_MAX_BLOCK_DATA <= all.length; i += BGZF_MAX_BLOCK_DATA) out.push({ piece: all.subarray(i, i + BGZF_MAX_BLOCK_DATA) });
        carry = i < all.length ? [all.subarray(i)] : [];
        carryLen = all.length - i;
      }
    };
    const pieces = (seg: Uint8Array) => {
      const v: Uint8Array[] = [];
      segmentPieces(seg, v);
      for (const piece of v) out.push({ piece });
    };
    const endSegment = () => {
      if (carryLen) pieces(carry.length === 1 ? carry[0] : Buffer.concat(carry, carryLen));
      carry = [];
      carryLen = 0;
      long = false;
    };
    const writeAll = async (data: Uint8Array) => {
      let off = 0;
      while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
    };
    /**
     * Writes run one after another behind this thread's work (a write can wait for the disk
     * for a while); this thread waits only when more than WRITE_AHEAD bytes are not written yet.
     */
    let writing: Promise<void> = Promise.resolve();
    let unwritten = 0;
    const write = async (data: Uint8Array) => {
      unwritten += data.length;
      writing = writing.then(async () => {
        await writeAll(data);
        unwritten -= data.length;
      });
      writing.catch(() => undefined); // a failure surfaces at the next wait
      if (unwritten > WRITE_AHEAD) await writing;
    };
    /**
     * Compresses what is ready and writes what is compressed. With `zpool`: `keep` bytes may
     * wait there to be compressed; past that this thread compresses the next run itself rather
     * than wait (its output comes in bursts: stretches no transcript reaches go through fast
     * and compress as slowly as any). `keep` 0: everything, then wait for the writes.
     */
    const flush = async (keep: number) => {
      if (zpool && jobs.length) {
        // let the event loop run: the pool hands the compressing thread its next job, and this
        // thread learns of finished ones, only from there (annotating in this thread never yields)
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (failed) throw failed.err;
      const ready = out;
      out = [];
      if (zpool) {
        // runs of block contents go to the pool as one task each; compressed blocks already made go as they are
        let run: Uint8Array[] = [];
        const send = () => {
          if (!run.length) return;
          if (keep && atWorker >= keep) {
            // the compressing thread is behind by more than `keep` bytes: this thread compresses the run
            const blocks = run.map((x) => bgzfBlockSync(x, level));
            jobs.push({ value: blocks.length === 1 ? blocks[0] : Buffer.concat(blocks), job: null });
            run = [];
            return;
          }
          // moved to the worker, not copied: a buffer of its own (Buffer.concat may give a slice of Node's shared pool)
          let n = 0;
          for (const x of run) n += x.length;
          const data = Buffer.allocUnsafeSlow(n);
          n = 0;
          for (const x of run) {
            data.set(x, n);
            n += x.length;
          }
          const entry: (typeof jobs)[number] = { value: null, job: null };
          const bytes = n;
          atWorker += bytes;
          entry.job = zpool.run<BgzfBlocksTask, Uint8Array>(BGZF_BLOCKS_WORKER, { data, sizes: run.map((x) => x.length), level }, { transferList: [data.buffer] });
          entry.job.then(
            (v) => {
              atWorker -= bytes;
              entry.value = v;
            },
            (err: unknown) => {
              atWorker -= bytes;
              failed ??= { err };
            },
          );
          jobs.push(entry);
          run = [];
        };
        for (const x of ready) {
          if ('piece' in x) run.push(x.piece);
          else {
            send();
            jobs.push({ value: x.blocks, job: null });
          }
        }
        send();
        // write what is done, in order (and everything, or past a bound on memory, waiting)
        while (jobs.length && (jobs[0].value || !keep || jobs.length > MAX_UNWRITTEN_JOBS)) {
          const j = jobs.shift()!;
          await write(j.value ?? (await j.job!));
        }
        if (!keep) await writing;
        return;
      }
      const blocks: Uint8Array[] = ready.map((x) => ('piece' in x ? bgzfBlockSync(x.piece, level) : x.blocks));
      if (blocks.length) await write(blocks.length === 1 ? blocks[0] : Buffer.concat(blocks));
      if (!keep) await writing;
    };
    let closed = false;
    return {
      async write(s) {
        text(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
        await flush(COMPRESS_BACKLOG);
      },
      async task(res) {
        const b = res.bytes;
        if (res.cuts) {
          // the text and where its segments end
          const cuts = res.cuts;
          if (!cuts.length) text(b);
          else {
            text(b.subarray(0, cuts[0]));
            endSegment();
            for (let i = 0; i + 1 < cuts.length; i++) pieces(b.subarray(cuts[i], cuts[i + 1]));
            text(b.subarray(cuts[cuts.length - 1]));
          }
        } else if (!res.cut) text(b);
        else {
          const h = res.head!, k = h + res.blocks!;
          text(b.subarray(0, h));
          endSegment();
          out.push({ blocks: b.subarray(h, k) });
          text(b.subarray(k));
        }
        await flush(COMPRESS_BACKLOG);
      },
      async close() {
        if (closed) return;
        closed = true;
        try {
          endSegment();
          out.push({ blocks: BGZF_EOF });
          await flush(0);
        } finally {
          await writing.catch(() => undefined);
          await fh.close();
        }
      },
    };
  }
  const ws = createWriteStream(path);
  await once(ws, 'open'); // a path that cannot be written fails here, not as an unhandled stream error
  let failed: unknown = null;
  ws.on('error', (e) => (failed = e));
  let closed = false;
  const write = async (s: string | Uint8Array) => {
    if (failed) throw failed;
    if (!(typeof s === 'string' ? ws.write(s, 'latin1') : ws.write(s))) await once(ws, 'drain');
  };
  return {
    write,
    task: (res) => write(res.bytes),
    async close() {
      if (closed) return;
      closed = true;
      ws.end();
      await once(ws, 'finish');
    },
  };
}
