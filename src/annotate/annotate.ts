/**
 * Streaming VCF annotator: writes INFO/BCSQ (bcftools-style) and INFO/CSQ (VEP-style)
 * for each record, against the transcripts it overlaps (consequence rules: chunk.ts).
 *
 * This module is the driver. The VCF is read once and cut into tasks of whole chunks
 * (tasks.ts: cut only where no transcript spans the cut, and between chromosomes), so that
 * all records a haplotype-aware compound consequence needs are annotated together. With
 * `threads > 1` (or a pool) tasks run on the pool's workers (workers/annotate.ts: each
 * thread takes the gene model once, from shared memory, and opens the reference once), at
 * most a few tasks per thread in flight, and results are written in input order; with two
 * threads of our own and a BGZF output, this thread annotates every task and the other
 * reads, cuts, compresses and writes (aside.ts). The same tasks run in this thread with one
 * thread, so the output is the same bytes whatever the thread count (or task size): a BGZF
 * output is cut into blocks by its text alone (chunk.ts: `endsSegment`; writer.ts). Memory:
 * the gene model plus the tasks in flight, whatever the size of the VCF.
 *
 * Records are parsed and checked in the tasks; the reader looks only at CHROM, POS and the
 * REF length. An error the reader finds is reported after everything before it has been
 * annotated, so the first bad record in the file is the one reported, as in a one-pass
 * reading.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createPool, type TaskPool } from '../engine/pool.js';
import { GenolakeError, InputError } from '../util/errors.js';
import { type AnnotateTask, type AnnotateTaskResult, ChunkAnnotator, type AnnotatorSpec } from './chunk.js';
import { IndexedFasta } from './fasta.js';
import { AsideWorker } from './aside.js';
import { type GeneModel, shareModel, shareSpans } from './genemodel.js';
import { loadGeneModelCached } from './model-cache.js';
// known.ts (and the tabix reader) is loaded only when databases are given
import type { KnownMatcher, KnownDbSpec, KnownDbStats } from './known.js';
import { type CutItem, type CutTask, type TaskSource, VcfTaskReader } from './tasks.js';
import { csqHeader } from './vep.js';
import { openWriter, type TextWriter } from './writer.js';

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
  /** Keep the gene model read from gff/gtf on disk for later runs, and use a copy kept before (model-cache.ts); default true. */
  modelCache?: boolean;
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

/** Tasks in flight per worker thread. */
const IN_FLIGHT_PER_THREAD = 4;

/** The pool's worker entry (workers/annotate.ts). */
export const ANNOTATE_WORKER = 'annotate';

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
  // Two threads of our own and a BGZF output: this thread annotates every task, and the other
  // reads the VCF, cuts it into tasks, compresses and writes (aside.ts). Each JS thread that
  // annotates pays for compiling the annotator and for its heap (more than a second of CPU),
  // which two threads sharing the records do not win back on two cores; the other work needs
  // neither.
  const useAside = selfToo && threads === 2 && bgzfOut;
  // a pool of our own starts its threads while the gene model is read
  const pool: TaskPool | null = usePool && !useAside ? (opts.pool ?? createPool({ threads: threads - 1 })) : null;
  const asidePool: TaskPool | null = useAside ? createPool({ threads: 1 }) : null;
  const ownPool = pool !== null && pool !== opts.pool;
  let model: GeneModel;
  let fa: IndexedFasta;
  try {
    model = opts.model ?? (await loadGeneModelCached((opts.gff ?? opts.gtf)!, opts.gtf ? 'gtf' : 'gff3', { cache: opts.modelCache }));
    fa = await IndexedFasta.open(opts.reference);
  } catch (e) {
    if (ownPool) await pool.close();
    await asidePool?.close();
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
    await asidePool?.close();
    throw e;
  }
  // workers take the gene model from shared memory (parsing the GFF again in each would cost more than the reading)
  const sharedGenes = pool ? shareModel(model) : undefined;
  const modelKey = opts.model ? `memory:${run}` : modelFileKey((opts.gff ?? opts.gtf)!);
  const tmp = join(dirname(opts.out), `.tmp-${process.pid}-${Date.now()}-${basename(opts.out)}`);
  let writer: TextWriter;
  /** With two threads of our own: the other one (the task source and the writer). */
  let aside: AsideWorker | null = null;
  try {
    if (asidePool) writer = aside = AsideWorker.open(asidePool, { vcf: opts.vcf, reference: opts.reference, checkQuiet: !known, spans: shareSpans(model), taskRecords: opts.taskRecords, out: tmp, level });
    else writer = await openWriter(tmp, bgzfOut, level);
  } catch (e) {
    inThread?.close();
    known?.close();
    fa.close();
    if (ownPool) await pool!.close();
    await asidePool?.close();
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
  const collect = async (res: AnnotateTaskResult) => {
    stats.annotated += res.annotated;
    // (statistics of tasks annotated in this thread: under -1)
    if (res.known) knownByThread.set(res.thread ?? -1, res.known);
    await writer.task(res);
  };
  /** Sends a task of the reader's on (its bytes are the reader's again once this returns). */
  const submit = async (d: CutTask) => {
    /** Annotated in this thread (no pool, or this thread's turn: the workers have enough queued). */
    const here = !pool || poolInFlight >= maxPoolInFlight;
    const task: AnnotateTask = {
      // for a worker an exact copy (a view would carry its whole backing store, and the reader reuses it)
      spec, run, file: opts.vcf, data: here ? d.data : Uint8Array.prototype.slice.call(d.data), chunks: d.chunks, firstRecord: d.firstRecord, firstLine: d.firstLine, model: sharedGenes, modelKey,
      ...(d.checkedQuiet ? { checkedQuiet: d.checkedQuiet } : {}),
      ...(aside && !aside.readAll ? { cuts: true } : bgzfOut ? { bgzfLevel: level } : {}),
    };
    if (!pool) {
      await collect(await inThread!.runTask(task));
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
    pending.push(p);
    while (pending.length >= maxInFlight) await collect(await pending.shift()!);
    // let the event loop run: a worker that finished gets its next queued task only from there
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (pending.length && isSettled(pending[0])) await collect(await pending.shift()!);
  };
  const drain = async () => {
    while (pending.length) await collect(await pending.shift()!);
  };

  /** A header line: copied, or replaced by ours. */
  const onHeader = async (line: string): Promise<void> => {
    if (!line.startsWith('#CHROM')) {
      if (!/^##(INFO=<ID=(BCSQ|CSQ)|FORMAT=<ID=BCSQ),/.test(line) && !known?.replacesHeaderLine(line)) await writer.write(line + '\n');
      return;
    }
    await writer.write('##INFO=<ID=BCSQ,Number=.,Type=String,Description="Local consequence annotation from genolake annotate. Format: Consequence|gene|transcript|biotype|strand|amino_acid_change|dna_change">\n');
    if (line.split('\t').length > 9) await writer.write('##FORMAT=<ID=BCSQ,Number=.,Type=Integer,Description="Bitmask of indexes to INFO/BCSQ, with interleaved haplotypes (bit 2*i+h: entry i on haplotype h)">\n');
    if (spec.vep) await writer.write(csqHeader() + '\n');
    if (known) await writer.write(known.headerLines().map((l) => l + '\n').join('')); // --- known-variant databases ---
    await writer.write(line + '\n');
  };

  let source: TaskSource | null = null;
  try {
    // With workers, the last tenth of a plain VCF goes in smaller tasks, so that the threads
    // finish together (with a thread aside: so that little is left to compress after the
    // last task); the output does not depend on task sizes
    source = aside ?? new VcfTaskReader(opts.vcf, (c) => model.reacher(c), { taskRecords: opts.taskRecords, taper: !!pool });
    for (const line of await source.header()) await onHeader(line);
    for (;;) {
      let item: CutItem | null;
      try {
        item = await source.next();
      } catch (e) {
        item = { error: e as GenolakeError };
      }
      if (!item) break;
      if ('error' in item) {
        // the records before it are annotated first: an earlier record's error wins, as in a one-pass run
        await drain();
        throw item.error;
      }
      await submit(item.task);
    }
    await drain();
    await writer.close();
    renameSync(tmp, opts.out);
    stats.records = source.records;
  } catch (e) {
    await Promise.allSettled(pending);
    if (aside) await aside.abort();
    else await writer.close().catch(() => undefined);
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    if (source !== aside) await source?.close().catch(() => undefined);
    inThread?.close();
    known?.close();
    if (ownPool) await pool.close();
    await asidePool?.close();
    fa.close();
  }
  if (known) stats.known = pool ? mergeKnownStats([...knownByThread.values()], source!.chromOrder, known.stats()) : known.stats();
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
