/**
 * Shard stage: validates the FASTQ files of a run and cuts them into gzip shards of
 * `readsPerShard` records (default 250 000), the unit of work of the align stage.
 *
 * Parallelism is per mate file: one pool task per file (`workers/shard.ts` →
 * `shardMateFile`), so R1 and R2 of a read group decompress, validate and recompress
 * on two threads at once. A task never sees the other mate, so it returns, per shard,
 * the record count and a sha256 of the normalised read names; the coordinator
 * (`shardReads`) compares R1 with R2 shard by shard and only when a digest differs
 * re-reads that one pair of shards to name the first mismatching record.
 *
 * Dependency-injected: `shardReads(input, deps)` needs a lake and a `runTasks` with the
 * engine's contract (`StageContext.runTasks`: one call for all tasks, results in task
 * order, settles only once none of its tasks is still running), so inside a pipeline
 * stage `shardReads(input, ctx)` works as is.
 *
 * All-or-nothing: tasks write into a staging prefix (`input.staging`, default a fresh
 * `lake.stagingPrefix('shard')`); `shards.json` and the shards are published to
 * `outPrefix` only when every check passed, otherwise the staging prefix is deleted and
 * the error is thrown. Task keys contain the staging prefix, so an engine checkpoint of a
 * task is reused only by a run that writes into the same staging prefix (a resumed run
 * passing a staging prefix derived from its run id); the staged files of reused tasks
 * are checked (size) before publishing.
 *
 * Progress: tasks post `{ reads, bytes }` on a `BroadcastChannel` whose name is in the
 * payload (a string, so the payload stays plain data); it reaches `deps.progress`
 * (the engine's `ctx.progress`: units `reads` and `bytes`, as deltas) and
 * `deps.onProgress` (running totals). Completion of a task also reports its totals.
 */
import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Transform, type TransformCallback } from 'node:stream';
import { BroadcastChannel } from 'node:worker_threads';
import { constants as zc, gzipSync, type ZlibOptions } from 'node:zlib';
import {
  batchBases,
  canonicalBytes,
  checkPairedFastq,
  HEAD,
  pairNameEnd,
  readFastq,
  type FastqBatch,
  type FastqOptions,
} from '../formats/fastq.js';
import { openLake } from '../lake/open.js';
import type { Lake, LakeConfig } from '../lake/types.js';
import { GenolakeError, InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { DEFAULT_READS_PER_SHARD } from '../pipeline/defaults.js';

/** Default gzip level of shards: level 1 is ~4x faster than 6 for ~10% larger files. */
export const DEFAULT_SHARD_GZIP_LEVEL = 1;
export { DEFAULT_READS_PER_SHARD };
export const SHARDS_INDEX = 'shards.json';
/** Name of the worker (`workers/shard.ts`). */
export const SHARD_WORKER = 'shard';

export interface ReadGroupInput {
  /** Read-group id; used in shard file names, so [A-Za-z0-9._-]+. */
  id: string;
  /** Lake key of the R1 (or single-end) FASTQ. */
  r1: string;
  /** Lake key of the R2 FASTQ for paired reads. */
  r2?: string;
}

export interface ShardInput {
  readGroups: ReadGroupInput[];
  /** Records per shard and mate file; default `DEFAULT_READS_PER_SHARD`. */
  readsPerShard?: number;
  /** Final lake prefix, e.g. raw/patient_id=P/run_id=R/shards/ */
  outPrefix: string;
  /** zlib level of the shards (0-9), default 1. */
  gzipLevel?: number;
  fastq?: Pick<FastqOptions, 'maxQual' | 'alphabet'>;
  /**
   * Staging prefix to write into (must be a lake staging prefix, e.g. one from
   * `lake.stagingPrefix`); default a fresh one. Pass the same prefix on a resumed run
   * to reuse the engine's checkpoints of finished tasks.
   */
  staging?: string;
}

export interface ShardProgress {
  /** Records read so far (all files). */
  reads: number;
  /** Input bytes read so far, as stored (compressed for .gz). */
  bytes: number;
}

export interface ShardTaskSpec {
  key: string;
  payload: ShardMateTask;
}

export interface ShardDeps {
  lake: Lake;
  /**
   * Runs the tasks on the worker pool; results in task order. Must settle only when none
   * of its tasks is running any more (the engine's `ctx.runTasks` does).
   */
  runTasks?<P, R>(worker: string, tasks: readonly { key: string; payload: P }[]): Promise<R[]>;
  /**
   * Older one-task form, used when `runTasks` is absent: called once per task (all at
   * once); the key to checkpoint under is `shardTaskKey(payload.staging, payload.readGroup,
   * payload.mate)`. Prefer `runTasks`.
   */
  runTask?<P, R>(worker: string, payload: P): Promise<R>;
  log?: Logger;
  /** The engine's stage progress: receives `addUnits('reads' | 'bytes', delta)`. */
  progress?: { addUnits(name: string, n: number): void };
  /** Running totals over all files. */
  onProgress?(p: ShardProgress): void;
}

export interface ShardFileRef {
  key: string;
  bytes: number;
  sha256: string;
}

export interface ShardEntry {
  /** Shard number within its read group (the number in the file name). */
  index: number;
  readGroup: string;
  /** Record number (1-based, within the read group's files) of the shard's first record. */
  firstRecord: number;
  /** Records in this shard (per mate). */
  reads: number;
  /** Bases over both mates. */
  bases: number;
  /**
   * sha256 of the shard's read names (header up to the first blank, without '/1' '/2'),
   * each followed by '\n': equal for R1 and R2 (checked), so mates stay in lockstep.
   */
  namesSha256: string;
  r1: ShardFileRef;
  r2?: ShardFileRef;
}

export interface ReadGroupSummary {
  id: string;
  paired: boolean;
  /** Records per mate file (read pairs when paired). */
  reads: number;
  /** Bases over both mates. */
  bases: number;
  r1: { key: string; bytes: number };
  r2?: { key: string; bytes: number };
  shards: number;
}

export interface ShardIndex {
  readsPerShard: number;
  /** Records per mate summed over read groups (a pair counts once). */
  totalReads: number;
  /** Bases over all files (both mates). */
  totalBases: number;
  gzipLevel: number;
  readGroups: ReadGroupSummary[];
  shards: ShardEntry[];
}

export type Mate = 'R1' | 'R2';

/** One worker task: shard one mate file. Plain data (crosses the thread boundary). */
export interface ShardMateTask {
  lake: LakeConfig;
  /** Lake key of the input FASTQ. */
  key: string;
  readGroup: string;
  mate: Mate;
  readsPerShard: number;
  /** Staging prefix the shards are written into (ends with '/'). */
  staging: string;
  gzipLevel: number;
  fastq?: Pick<FastqOptions, 'maxQual' | 'alphabet'>;
  /** BroadcastChannel name for progress messages, if the caller wants them. */
  progressChannel?: string;
  /** Distinguishes this task's messages on the channel. */
  taskId?: number;
}

export interface MateShard {
  index: number;
  reads: number;
  bases: number;
  /** File name inside the staging / final prefix. */
  name: string;
  bytes: number;
  sha256: string;
  /** sha256 of the shard's normalised read names, each followed by '\n'. */
  namesDigest: string;
}

export interface ShardMateResult {
  key: string;
  reads: number;
  bases: number;
  inputBytes: number;
  shards: MateShard[];
}

interface ProgressMessage {
  taskId: number;
  reads: number;
  bytes: number;
}

export function shardFileName(readGroup: string, index: number, mate: Mate): string {
  return `${readGroup}.shard-${String(index).padStart(5, '0')}.${mate}.fastq.gz`;
}

/** The engine task key of one mate file's task (contains the staging prefix, see above). */
export function shardTaskKey(staging: string, readGroup: string, mate: Mate): string {
  return `${staging}${readGroup}.${mate}`;
}

/** Counts and hashes the bytes that flow through it (the compressed shard). */
class HashingPassThrough extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/**
 * One shard being written: gzip members → hash → lake.put.
 *
 * Deflate runs in this (worker) thread, one gzip member per ~2 MiB of records: a task
 * then costs one core, so N tasks on N cores scale, where a zlib stream would run deflate
 * on libuv's pool beside the task and oversubscribe the cores. A multi-member gzip file is
 * plain gzip to every reader (zcat, htslib, node:zlib).
 */
class ShardWriter {
  private readonly tap = new HashingPassThrough();
  private readonly done: Promise<unknown>;
  private readonly names = createHash('sha256');
  private readonly zopts: ZlibOptions;
  private scratch = Buffer.allocUnsafe(1 << 16);
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  reads = 0;
  bases = 0;

  constructor(
    lake: Lake,
    readonly key: string,
    level: number,
  ) {
    // memLevel 9 (a larger hash) measured ~20% less CPU than the default 8 at level 1 for
    // the same size.
    this.zopts = { level, memLevel: 9, strategy: zc.Z_DEFAULT_STRATEGY };
    // lake.put attaches its listeners only after an await (mkdir, a connection): until
    // then an abort must not surface as an unhandled 'error' event (it would kill the
    // worker). put still sees the failure: it pipes from a destroyed stream.
    this.tap.on('error', () => undefined);
    // Observe the outcome now so a failure while we are still writing is not unhandled.
    this.done = lake.put(key, this.tap).then(
      () => undefined,
      (e: unknown) => e ?? new Error('shard write failed'),
    );
  }

  async write(batch: FastqBatch, from: number, to: number): Promise<void> {
    // Normalised names of these records, gathered into one buffer → one hash update.
    let w = 0;
    const o = batch.offsets;
    for (let i = from; i < to; i++) {
      const s = o[i * 8 + HEAD] + 1;
      const e = pairNameEnd(batch, i);
      const need = w + (e - s) + 1;
      if (need > this.scratch.length) {
        const grown = Buffer.allocUnsafe(Math.max(need, this.scratch.length * 2));
        this.scratch.copy(grown, 0, 0, w);
        this.scratch = grown;
      }
      w += batch.buf.copy(this.scratch, w, s, e);
      this.scratch[w++] = 10;
    }
    this.names.update(this.scratch.subarray(0, w));
    for (let i = from; i < to; i++) this.bases += o[i * 8 + 3] - o[i * 8 + 2];
    this.reads += to - from;
    const bytes = canonicalBytes(batch, from, to);
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= MEMBER_BYTES) await this.flushMember();
  }

  private async flushMember(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const member = gzipSync(this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes), this.zopts);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.tap.write(member)) {
      // If the upload fails, 'drain' never comes: stop waiting when `done` settles.
      await Promise.race([
        once(this.tap, 'drain'),
        this.done.then((e) => {
          throw e ?? new GenolakeError('SHARD_WRITE', `shard ${this.key} ended early`);
        }),
      ]);
    }
  }

  async finish(): Promise<{ bytes: number; sha256: string; namesDigest: string }> {
    await this.flushMember();
    this.tap.end();
    const err = await this.done;
    if (err) throw err;
    return { bytes: this.tap.bytes, sha256: this.tap.hash.digest('hex'), namesDigest: this.names.digest('hex') };
  }

  async abort(): Promise<void> {
    this.pending = [];
    this.tap.destroy(new Error('shard aborted'));
    await this.done;
  }
}

/** Uncompressed bytes per gzip member of a shard. */
const MEMBER_BYTES = 2 << 20;

/** Counts bytes of the source as they are read (progress in stored bytes). */
async function* counted(src: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of src) {
    onBytes(chunk.length);
    yield chunk;
  }
}

/**
 * Worker side: decompress, validate and shard one mate file into `task.staging`.
 * Throws InputError on a bad record (the worker wraps this in `defineWorker`, so the
 * error reaches the coordinator with its code and place). Whatever it had written is
 * left in staging for the coordinator to delete.
 */
export async function shardMateFile(task: ShardMateTask): Promise<ShardMateResult> {
  let channel: BroadcastChannel | undefined;
  try {
    const lake = await openLake(task.lake);
    channel = task.progressChannel ? new BroadcastChannel(task.progressChannel) : undefined;
    const src = (await lake.get(task.key)) as AsyncIterable<Buffer>;
    let inputBytes = 0;
    let reads = 0;
    let bases = 0;
    let lastPost = 0;
    const post = (): void => {
      channel?.postMessage({ taskId: task.taskId ?? 0, reads, bytes: inputBytes } satisfies ProgressMessage);
    };
    const shards: MateShard[] = [];
    let writer: ShardWriter | undefined;
    let shardIndex = 0;
    const N = task.readsPerShard;
    const closeShard = async (): Promise<void> => {
      const w = writer!;
      writer = undefined;
      const r = await w.finish();
      shards.push({
        index: shardIndex,
        reads: w.reads,
        bases: w.bases,
        name: shardFileName(task.readGroup, shardIndex, task.mate),
        ...r,
      });
      shardIndex++;
    };
    try {
      const batches = readFastq(
        counted(src, (n) => (inputBytes += n)),
        task.key,
        task.fastq,
      );
      for await (const batch of batches) {
        let i = 0;
        while (i < batch.count) {
          if (!writer) {
            writer = new ShardWriter(lake, `${task.staging}${shardFileName(task.readGroup, shardIndex, task.mate)}`, task.gzipLevel);
          }
          const take = Math.min(batch.count - i, N - writer.reads);
          await writer.write(batch, i, i + take);
          i += take;
          if (writer.reads === N) await closeShard();
        }
        reads += batch.count;
        bases += batchBases(batch);
        // Post at most every 16 MiB of input: cheap, and fine-grained enough for a bar.
        if (channel && inputBytes - lastPost >= 16 << 20) {
          lastPost = inputBytes;
          post();
        }
      }
      if (writer) await closeShard();
    } catch (e) {
      if (writer) await writer.abort();
      throw e;
    }
    if (reads === 0) {
      throw new InputError('FASTQ_EMPTY', 'file holds no FASTQ records', { file: task.key });
    }
    post();
    return { key: task.key, reads, bases, inputBytes, shards };
  } finally {
    channel?.close();
  }
}

function checkInput(input: ShardInput): void {
  const n = input.readsPerShard ?? DEFAULT_READS_PER_SHARD;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new InputError('SHARD_BAD_INPUT', `readsPerShard must be a positive integer, got ${n}`, { field: 'readsPerShard' });
  }
  const level = input.gzipLevel ?? DEFAULT_SHARD_GZIP_LEVEL;
  if (!Number.isInteger(level) || level < 0 || level > 9) {
    throw new InputError('SHARD_BAD_INPUT', `gzipLevel must be 0..9, got ${level}`, { field: 'gzipLevel' });
  }
  if (input.readGroups.length === 0) {
    throw new InputError('SHARD_BAD_INPUT', 'no read groups to shard', { field: 'readGroups' });
  }
  const seen = new Set<string>();
  for (const rg of input.readGroups) {
    if (!/^[A-Za-z0-9._-]+$/.test(rg.id)) {
      throw new InputError('SHARD_BAD_INPUT', `read group id must match [A-Za-z0-9._-]+, got ${JSON.stringify(rg.id)}`, { field: 'readGroups.id' });
    }
    if (seen.has(rg.id)) throw new InputError('SHARD_BAD_INPUT', `duplicate read group id ${rg.id}`, { field: 'readGroups.id' });
    seen.add(rg.id);
    if (rg.r2 !== undefined && rg.r2 === rg.r1) {
      throw new InputError('SHARD_BAD_INPUT', `read group ${rg.id} names the same file as R1 and R2`, { file: rg.r1 });
    }
  }
}

/** Re-reads one pair of staged shards in lockstep to find the first bad record. */
async function explainPairMismatch(
  lake: Lake,
  staging: string,
  rg: ReadGroupInput,
  s1: MateShard | undefined,
  s2: MateShard | undefined,
  recordOffset: number,
): Promise<never> {
  const empty = async function* (): AsyncGenerator<Buffer> {};
  const open = async (s: MateShard | undefined): Promise<AsyncIterable<Buffer>> =>
    s ? ((await lake.get(`${staging}${s.name}`)) as AsyncIterable<Buffer>) : empty();
  await checkPairedFastq(await open(s1), rg.r1, await open(s2), rg.r2!, { recordOffset });
  // Digests differ but the names compare equal: cannot happen unless the staged files changed.
  throw new GenolakeError('SHARD_INTERNAL', `shard ${s1?.index ?? s2?.index} of read group ${rg.id}: digests differ but records match`);
}

/** Compares R1 and R2 shard lists: counts and name digests, shard by shard. */
async function checkPair(lake: Lake, staging: string, rg: ReadGroupInput, a: ShardMateResult, b: ShardMateResult, N: number): Promise<void> {
  const n = Math.max(a.shards.length, b.shards.length);
  for (let k = 0; k < n; k++) {
    const s1 = a.shards[k];
    const s2 = b.shards[k];
    if (s1 && s2 && s1.reads === s2.reads && s1.namesDigest === s2.namesDigest) continue;
    await explainPairMismatch(lake, staging, rg, s1, s2, k * N);
  }
}

/** Whether every staged shard a (possibly checkpointed) result names is there with its size. */
async function stagedIntact(lake: Lake, staging: string, r: ShardMateResult): Promise<boolean> {
  for (const s of r.shards) {
    const info = await lake.stat(`${staging}${s.name}`);
    if (!info || info.size !== s.bytes) return false;
  }
  return true;
}

/** `deps.runTasks`, or one built on the older `deps.runTask` (settles once every task has). */
function taskRunner(deps: ShardDeps): NonNullable<ShardDeps['runTasks']> {
  if (deps.runTasks) return deps.runTasks.bind(deps);
  const one = deps.runTask?.bind(deps);
  if (!one) throw new GenolakeError('SHARD_NO_POOL', 'shardReads needs deps.runTasks (or deps.runTask)');
  return async <P, R>(worker: string, tasks: readonly { key: string; payload: P }[]): Promise<R[]> => {
    const settled = await Promise.allSettled(tasks.map((t) => one<P, R>(worker, t.payload)));
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
  };
}

/**
 * Coordinator: shards every read group (one pool task per mate file), checks mates
 * against each other, and publishes shards plus `shards.json` under `input.outPrefix`
 * only if everything passed. Throws InputError (file, record, field) for bad input;
 * then nothing is published and the staging prefix is deleted.
 */
export async function shardReads(input: ShardInput, deps: ShardDeps): Promise<ShardIndex> {
  checkInput(input);
  const { lake, log } = deps;
  const level = input.gzipLevel ?? DEFAULT_SHARD_GZIP_LEVEL;
  const readsPerShard = input.readsPerShard ?? DEFAULT_READS_PER_SHARD;
  const outPrefix = input.outPrefix.endsWith('/') ? input.outPrefix : `${input.outPrefix}/`;
  for (const rg of input.readGroups) {
    for (const key of [rg.r1, rg.r2]) {
      if (key !== undefined && !(await lake.exists(key))) {
        throw new InputError('FASTQ_MISSING', `read group ${rg.id}: FASTQ not found in lake ${lake.describe()}`, { file: key });
      }
    }
  }

  let staging = input.staging ?? lake.stagingPrefix('shard');
  if (!staging.endsWith('/')) staging += '/';
  const wantProgress = deps.onProgress !== undefined || deps.progress !== undefined;
  const channelName = `genolake-shard-progress-${randomUUID()}`;
  const perTask = new Map<number, ShardProgress>();
  const sent = { reads: 0, bytes: 0 };
  const report = (): void => {
    let reads = 0;
    let bytes = 0;
    for (const p of perTask.values()) {
      reads += p.reads;
      bytes += p.bytes;
    }
    if (deps.progress) {
      if (reads > sent.reads) deps.progress.addUnits('reads', reads - sent.reads);
      if (bytes > sent.bytes) deps.progress.addUnits('bytes', bytes - sent.bytes);
    }
    sent.reads = Math.max(sent.reads, reads);
    sent.bytes = Math.max(sent.bytes, bytes);
    deps.onProgress?.({ reads, bytes });
  };
  const update = (id: number, p: ShardProgress): void => {
    const prev = perTask.get(id);
    // Messages may arrive after the task's result; never let progress go backwards.
    if (!prev || p.bytes >= prev.bytes) perTask.set(id, p);
    report();
  };
  let channel: BroadcastChannel | undefined;
  if (wantProgress) {
    channel = new BroadcastChannel(channelName);
    channel.onmessage = (ev: unknown) => {
      const m = (ev as { data: ProgressMessage }).data;
      update(m.taskId, { reads: m.reads, bytes: m.bytes });
    };
  }

  try {
    // One task per mate file, all in one call; the pool decides how many run at once.
    const tasks: { rg: ReadGroupInput; mate: Mate; spec: ShardTaskSpec }[] = [];
    for (const rg of input.readGroups) {
      for (const [mate, key] of [['R1', rg.r1], ['R2', rg.r2]] as const) {
        if (key === undefined) continue;
        const payload: ShardMateTask = {
          lake: lake.config,
          key,
          readGroup: rg.id,
          mate,
          readsPerShard,
          staging,
          gzipLevel: level,
          ...(input.fastq ? { fastq: input.fastq } : {}),
          ...(wantProgress ? { progressChannel: channelName } : {}),
          taskId: tasks.length,
        };
        tasks.push({ rg, mate, spec: { key: shardTaskKey(staging, rg.id, mate), payload } });
      }
    }
    const runTasks = taskRunner(deps);
    const out = await runTasks<ShardMateTask, ShardMateResult>(
      SHARD_WORKER,
      tasks.map((t) => t.spec),
    );
    // A result reused from a checkpoint whose staged files are gone (an earlier attempt
    // failed and cleaned up): redo those tasks under fresh keys.
    const lost: number[] = [];
    for (let i = 0; i < out.length; i++) if (!(await stagedIntact(lake, staging, out[i]))) lost.push(i);
    if (lost.length) {
      log?.warn({ staging, tasks: lost.map((i) => tasks[i].spec.key) }, 'shard: staged files of finished tasks are missing; redoing them');
      const redo = await runTasks<ShardMateTask, ShardMateResult>(
        SHARD_WORKER,
        lost.map((i) => ({ key: `${tasks[i].spec.key}#redo-${randomUUID()}`, payload: tasks[i].spec.payload })),
      );
      lost.forEach((i, k) => (out[i] = redo[k]));
      for (const i of lost) {
        if (!(await stagedIntact(lake, staging, out[i]))) {
          throw new GenolakeError('SHARD_STAGING_LOST', `staged shards of ${tasks[i].spec.key} are missing after redoing the task`, { file: out[i].key });
        }
      }
    }
    const results = new Map<string, ShardMateResult>();
    tasks.forEach((t, i) => {
      results.set(`${t.rg.id}/${t.mate}`, out[i]);
      update(i, { reads: out[i].reads, bytes: out[i].inputBytes });
    });

    const index: ShardIndex = {
      readsPerShard,
      totalReads: 0,
      totalBases: 0,
      gzipLevel: level,
      readGroups: [],
      shards: [],
    };
    for (const rg of input.readGroups) {
      const a = results.get(`${rg.id}/R1`)!;
      const b = rg.r2 !== undefined ? results.get(`${rg.id}/R2`)! : undefined;
      if (b) await checkPair(lake, staging, rg, a, b, readsPerShard);
      index.readGroups.push({
        id: rg.id,
        paired: b !== undefined,
        reads: a.reads,
        bases: a.bases + (b?.bases ?? 0),
        r1: { key: rg.r1, bytes: a.inputBytes },
        ...(b ? { r2: { key: rg.r2!, bytes: b.inputBytes } } : {}),
        shards: a.shards.length,
      });
      index.totalReads += a.reads;
      index.totalBases += a.bases + (b?.bases ?? 0);
      a.shards.forEach((s1, k) => {
        const s2 = b?.shards[k];
        index.shards.push({
          index: s1.index,
          readGroup: rg.id,
          firstRecord: k * readsPerShard + 1,
          reads: s1.reads,
          bases: s1.bases + (s2?.bases ?? 0),
          namesSha256: s1.namesDigest,
          r1: { key: `${outPrefix}${s1.name}`, bytes: s1.bytes, sha256: s1.sha256 },
          ...(s2 ? { r2: { key: `${outPrefix}${s2.name}`, bytes: s2.bytes, sha256: s2.sha256 } } : {}),
        });
      });
    }
    await lake.put(`${staging}${SHARDS_INDEX}`, `${JSON.stringify(index, null, 2)}\n`);
    await lake.publish(staging, outPrefix, { stage: 'shard', totalReads: index.totalReads, shards: index.shards.length });
    log?.info({ outPrefix, reads: index.totalReads, shards: index.shards.length }, 'shard: published');
    return index;
  } catch (e) {
    await lake.deletePrefix(staging).catch((de: unknown) => log?.warn({ err: de, staging }, 'shard: could not delete staging'));
    throw e;
  } finally {
    channel?.close();
  }
}
