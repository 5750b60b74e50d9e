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
 * output is the same bytes whatever the thread count (or task size). Memory: the gene
 * model plus the tasks in flight, whatever the size of the VCF.
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
import { BgzfWriter, fileSink } from '../formats/bgzf.js';
import { GenolakeError, InputError } from '../util/errors.js';
import { type AnnotateTask, type AnnotateTaskResult, ChunkAnnotator, type AnnotatorSpec, shareModel } from './chunk.js';
import { IndexedFasta } from './fasta.js';
import { type GeneModel, loadGeneModel } from './genemodel.js';
import { KnownMatcher, type KnownDbSpec, type KnownDbStats } from './known.js';
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
}

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

function newDraft(firstRecord: number, firstLine: number, capacity: number): TaskDraft {
  return { buf: Buffer.allocUnsafe(capacity), len: 0, src: null, srcBeg: 0, srcEnd: 0, chunks: [], records: 0, firstRecord, firstLine };
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
  const threads = opts.pool ? opts.pool.threads : Math.max(1, Math.floor(opts.threads ?? 1));
  const usePool = threads > 1;
  // a pool of our own starts its threads while the gene model is read
  const pool: TaskPool | null = usePool ? (opts.pool ?? createPool({ threads })) : null;
  const ownPool = pool !== null && pool !== opts.pool;
  let model: GeneModel;
  let fa: IndexedFasta;
  try {
    model = opts.model ?? (await loadGeneModel((opts.gff ?? opts.gtf)!, opts.gtf ? 'gtf' : 'gff3'));
    fa = await IndexedFasta.open(opts.reference);
  } catch (e) {
    if (ownPool) await pool.close();
    throw e;
  }
  // --- known-variant databases (src/annotate/known.ts): opened here first, so a bad database fails before any work ---
  let known: KnownMatcher | null = null;
  let inThread: ChunkAnnotator | null = null;
  const run = `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    known = opts.known?.length ? await KnownMatcher.open({ databases: opts.known, reference: opts.reference }, { fasta: fa }) : null;
    if (!pool) inThread = await ChunkAnnotator.open(spec, model, { fasta: fa, known: known ? { run, matcher: known } : undefined });
  } catch (e) {
    fa.close();
    if (ownPool) await pool!.close();
    throw e;
  }
  // workers take the gene model from shared memory (parsing the GFF again in each would cost more than the reading)
  const sharedGenes = pool ? shareModel(model) : undefined;
  const modelKey = opts.model ? `memory:${run}` : modelFileKey((opts.gff ?? opts.gtf)!);
  const tmp = join(dirname(opts.out), `.tmp-${process.pid}-${Date.now()}-${basename(opts.out)}`);
  let writer: TextWriter;
  try {
    writer = await openWriter(tmp, /\.(gz|bgz)$/i.test(opts.out));
  } catch (e) {
    inThread?.close();
    known?.close();
    fa.close();
    if (ownPool) await pool!.close();
    throw e;
  }
  const stats: AnnotateStats = { records: 0, annotated: 0 };
  /** Latest cumulative known-db statistics per worker thread. */
  const knownByThread = new Map<number, KnownDbStats[]>();
  const chromOrder: string[] = [];

  const pending: Array<Promise<AnnotateTaskResult>> = [];
  const maxInFlight = threads * IN_FLIGHT_PER_THREAD;
  const taskRecords = Math.max(1, Math.floor(opts.taskRecords ?? TASK_RECORDS));
  const collect = async (res: AnnotateTaskResult) => {
    stats.annotated += res.annotated;
    if (res.known && res.thread !== undefined) knownByThread.set(res.thread, res.known);
    await writer.write(res.bytes);
  };
  const submit = async (d: TaskDraft) => {
    settle(d);
    const task: AnnotateTask = {
      // an exact copy: a view would carry its whole backing store to the worker
      spec, run, file: opts.vcf, data: pool ? d.buf.subarray(0, d.len).slice() : d.buf.subarray(0, d.len), chunks: d.chunks, firstRecord: d.firstRecord, firstLine: d.firstLine, model: sharedGenes, modelKey,
    };
    if (!pool) {
      await collect(await inThread!.runTask(task));
      return;
    }
    const p = pool.run<AnnotateTask, AnnotateTaskResult>(ANNOTATE_WORKER, task);
    p.then(() => settled.add(p), () => settled.add(p)); // awaited in order below; an early failure must not go unhandled meanwhile
    pending.push(p);
    while (pending.length >= maxInFlight) await collect(await pending.shift()!);
    // let the event loop run: a worker that finished gets its next queued task only from there
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (pending.length && isSettled(pending[0])) await collect(await pending.shift()!);
  };
  const drain = async () => {
    while (pending.length) await collect(await pending.shift()!);
  };

  let draft: TaskDraft | null = null;
  let chunkRecords = 0;
  let chunkChrom = '';
  let chunkReach = -1;
  let lastChrom = '';
  let lastChromBytes = Buffer.alloc(0);
  let lastPos = -1;
  const seenChroms = new Set<string>();
  let lineNo = 0;
  let recNo = 0;
  let headerDone = false;

  /** Ends the chunk being filled; a promise only when that sends a task (lines are read without a promise each). */
  const closeChunk = (): Promise<void> | undefined => {
    if (!chunkRecords) return undefined;
    draft!.chunks.push(chunkRecords);
    chunkRecords = 0;
    if (draft!.records >= taskRecords || draft!.len + draft!.srcEnd - draft!.srcBeg >= TASK_BYTES) {
      const d = draft!;
      draft = null;
      return submit(d);
    }
    return undefined;
  };
  const flushAll = async () => {
    await closeChunk();
    if (draft?.records) await submit(draft);
    draft = null;
    await drain();
  };
  /**
   * An error seen by this thread at record `recNo`: what came before is annotated first (an
   * earlier record's error, or this record's own parse error, wins, as in a one-pass run).
   */
  const failAt = async (b: Buffer, s: number, e: number, err: GenolakeError): Promise<never> => {
    await flushAll();
    const one = newDraft(recNo, lineNo, e - s + 1);
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
    throw new InputError('bad_vcf', 'missing #CHROM header line', { file: opts.vcf, line: lineNo });
  };

  /** One line, bytes [s, e) of `b` (no line end); a promise only when there is something to wait for. */
  const onLine = (b: Buffer, s: number, e: number): Promise<void> | undefined => {
    lineNo++;
    if (!headerDone) return onHeader(b.toString('latin1', s, e));
    if (s === e) {
      // blank lines are skipped but counted (the task numbers lines)
      if (draft) appendLine(draft, b, s, e);
      return;
    }
    recNo++;
    stats.records++;
    // only what chunking needs, read from the bytes: CHROM, POS and the REF length (the task checks the rest)
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
    if (t3 < 0 || !Number.isInteger(pos1) || pos1 < 1) return failAt(b, s, e, new GenolakeError('ANNOTATE_INTERNAL', 'a malformed record was not refused by its task'));
    let chrom = lastChrom;
    let same = t0 - s === lastChromBytes.length;
    for (let i = 0; same && i < lastChromBytes.length; i++) same = b[s + i] === lastChromBytes[i];
    if (!same) {
      chrom = b.toString('latin1', s, t0);
      lastChromBytes = Buffer.from(b.subarray(s, t0));
    }
    const pos = pos1 - 1;
    if (chrom === lastChrom && pos < lastPos) {
      return failAt(b, s, e, new InputError('unsorted_vcf', `records are not sorted: POS ${pos + 1} after ${lastPos + 1}`, { file: opts.vcf, record: recNo, line: lineNo, field: 'POS' }));
    }
    if (chrom !== lastChrom) {
      if (seenChroms.has(chrom)) return failAt(b, s, e, new InputError('unsorted_vcf', `records of ${chrom} are not contiguous`, { file: opts.vcf, record: recNo, line: lineNo, field: 'CHROM' }));
      seenChroms.add(chrom);
      chromOrder.push(chrom);
    }
    lastChrom = chrom;
    lastPos = pos;
    const sent = chunkRecords && (chrom !== chunkChrom || pos > chunkReach || chunkRecords >= CHUNK_MAX) ? closeChunk() : undefined;
    if (!chunkRecords) {
      chunkChrom = chrom;
      chunkReach = -1;
    }
    if (!draft) draft = newDraft(recNo, lineNo, 1 << 18);
    appendLine(draft, b, s, e);
    draft.records++;
    chunkRecords++;
    const end = pos + (t3 - t2 - 1);
    if (end > chunkReach) chunkReach = end;
    const txReach = model.reach(chrom, pos, end);
    if (txReach > chunkReach) chunkReach = txReach;
    return sent;
  };

  try {
    let rest: Buffer | null = null;
    for await (const piece of byteBatches(opts.vcf)) {
      const b: Buffer = rest ? Buffer.concat([rest, piece]) : piece;
      let s = 0;
      for (let nl = b.indexOf(10); nl >= 0; nl = b.indexOf(10, s)) {
        const wait = onLine(b, s, nl > s && b[nl - 1] === 13 ? nl - 1 : nl);
        if (wait) await wait;
        s = nl + 1;
      }
      rest = s < b.length ? Buffer.from(b.subarray(s)) : null;
    }
    if (rest) await onLine(rest, 0, rest[rest.length - 1] === 13 ? rest.length - 1 : rest.length);
    if (!headerDone) throw new InputError('bad_vcf', 'missing #CHROM header line', { file: opts.vcf });
    await flushAll();
    await writer.close();
    renameSync(tmp, opts.out);
  } catch (e) {
    await Promise.allSettled(pending);
    await writer.close().catch(() => undefined);
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    inThread?.close();
    known?.close();
    if (ownPool) await pool.close();
    fa.close();
  }
  if (known) stats.known = pool ? mergeKnownStats([...knownByThread.values()], chromOrder, known.stats()) : known.stats();
  return stats;
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
  close(): Promise<void>;
}

async function openWriter(path: string, bgzf: boolean): Promise<TextWriter> {
  if (bgzf) {
    const w = new BgzfWriter(await fileSink(path));
    // blocks are compressed (on libuv's threads) while the next text is produced; one drain at a time keeps them in order
    let draining: Promise<void> | null = null;
    let failed: unknown = null;
    let sinceDrain = 0;
    return {
      async write(s) {
        if (failed) throw failed;
        w.write(typeof s === 'string' ? Buffer.from(s, 'latin1') : s);
        sinceDrain += s.length;
        if (!w.needsDrain) return;
        if (draining && sinceDrain > 1 << 23) await draining;
        if (failed) throw failed;
        if (!draining) {
          sinceDrain = 0;
          draining = w.drain().then(
            () => void (draining = null),
            (e: unknown) => void ((failed = e), (draining = null)),
          );
        }
      },
      async close() {
        await draining;
        if (failed) throw failed;
        await w.close();
      },
    };
  }
  const ws = createWriteStream(path);
  await once(ws, 'open'); // a path that cannot be written fails here, not as an unhandled stream error
  let failed: unknown = null;
  ws.on('error', (e) => (failed = e));
  let closed = false;
  return {
    async write(s) {
      if (failed) throw failed;
      if (!(typeof s === 'string' ? ws.write(s, 'latin1') : ws.write(s))) await once(ws, 'drain');
    },
    async close() {
      if (closed) return;
      closed = true;
      ws.end();
      await once(ws, 'finish');
    },
  };
}
