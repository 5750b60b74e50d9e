/**
 * The stage graph and its scheduler.
 *
 * A stage is a named async function of its dependencies' outputs. `runPipeline` checks
 * the graph, then runs every stage whose dependencies are done (independent stages run
 * at the same time, sharing one worker pool), checkpoints each finished task and each
 * stage's output in the lake, and on a resumed run skips whatever is already recorded.
 * Outputs are JSON (they are checkpoints), and dependents always receive the JSON round
 * trip of an output, so a resumed run sees exactly what a fresh run would have seen.
 */
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import type { Lake } from '../lake/types.js';
import { GenolakeError, isGenolakeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { genolakeVersion } from '../util/paths.js';
import { createPool, type RunTaskOptions, type TaskPool } from './pool.js';
import { ProgressDisplay, elapsedSeconds, type ProgressStream, type StageCounter, type StageProgress } from './progress.js';
import { openRunLog } from './runlog.js';
import {
  RunStore,
  checkStageName,
  errorRecord,
  newRunId,
  toJsonText,
  type Provenance,
  type RunParams,
  type RunState,
  type StageTiming,
} from './run.js';

/** What a stage's `run` gets besides its inputs. */
export interface StageContext {
  readonly runId: string;
  readonly stage: string;
  readonly lake: Lake;
  /** Child of the run's logger, bound to `{ stage }`. */
  readonly log: Logger;
  readonly params: RunParams;
  /** Worker threads in the run's pool (for choosing a number of shards). */
  readonly threads: number;
  /** Aborted when the run stops (another stage failed, or the caller aborted). */
  readonly signal: AbortSignal;
  /**
   * Runs one task per item on the pool, in parallel; results in the order of `tasks`.
   * Each finished task is checkpointed under its key (unique within the stage): on a
   * resumed run a finished task returns its recorded result without running.
   */
  runTasks<P, R>(worker: string, tasks: readonly TaskSpec<P>[]): Promise<R[]>;
  runTask<P, R>(worker: string, key: string, payload: P): Promise<R>;
  /**
   * The run's pool without checkpoints, for fine-grained tasks whose results are streamed
   * on rather than kept (e.g. alignment batches); the stage checkpoints its own output.
   * Closing it is the run's business: `close()` here does nothing.
   */
  readonly pool: TaskPool;
  readonly progress: StageProgress;
}

export interface TaskSpec<P> {
  key: string;
  payload: P;
}

/**
 * A stage. `I` is the record of its dependencies' outputs (keyed by stage name) and `O`
 * its output. `run` is a method (bivariant), so stages of different types fit one list.
 */
export interface Stage<N extends string = string, I = any, O = any> {
  readonly name: N;
  readonly deps: readonly string[];
  run(ctx: StageContext, inputs: I): Promise<O>;
}

export type AnyStage = Stage<string, any, any>;
/** A dependency: the stage object (typed input) or its name (input typed `unknown`). */
export type DepRef = AnyStage | string;
type DepName<D> = D extends Stage<infer N, any, any> ? N : D extends string ? D : never;
type DepOutput<D> = D extends Stage<string, any, infer O> ? O : unknown;
export type InputsOf<D extends readonly DepRef[]> = { [K in D[number] as DepName<K>]: DepOutput<K> };
export type OutputOf<S> = S extends Stage<string, any, infer O> ? O : never;
export type PipelineOutputs<S extends readonly AnyStage[]> = { [K in S[number] as K['name']]: OutputOf<K> };

export interface StageDefinition<N extends string, D extends readonly DepRef[], O> {
  name: N;
  deps?: D;
  run(ctx: StageContext, inputs: InputsOf<D>): Promise<O>;
}

/**
 * Defines a stage. Name dependencies by stage object to get their outputs typed:
 *
 *     const shard = defineStage({ name: 'shard', deps: [ingest], async run(ctx, { ingest }) { ... } });
 *
 * or by name (`deps: ['ingest']`) where importing the stage would make a cycle; the
 * input is then `unknown` and the stage states its type itself.
 */
export function defineStage<const N extends string, const D extends readonly DepRef[] = [], O = unknown>(
  def: StageDefinition<N, D, O>,
): Stage<N, InputsOf<D>, O> {
  checkStageName(def.name);
  const deps = (def.deps ?? []).map((d) => (typeof d === 'string' ? d : d.name));
  return { name: def.name, deps, run: (ctx, inputs) => def.run(ctx, inputs) };
}

/**
 * Checks names, duplicates, unknown dependencies and cycles; returns the stages in a
 * dependency order (stable with respect to the given order).
 */
export function validateGraph(stages: readonly AnyStage[]): AnyStage[] {
  const byName = new Map<string, AnyStage>();
  for (const s of stages) {
    checkStageName(s.name);
    if (byName.has(s.name)) throw new GenolakeError('GRAPH_DUPLICATE_STAGE', `stage ${s.name} is defined twice`);
    byName.set(s.name, s);
  }
  for (const s of stages) {
    for (const d of s.deps) {
      if (!byName.has(d)) {
        throw new GenolakeError('GRAPH_UNKNOWN_DEP', `stage ${s.name} depends on ${d}, which is not in the pipeline`, {
          field: `${s.name}.deps`,
        });
      }
      if (d === s.name) throw new GenolakeError('GRAPH_CYCLE', `stage ${s.name} depends on itself`, { field: `${s.name}.deps` });
    }
  }
  // Depth-first search; a grey node met again closes a cycle, which the message spells out.
  const colour = new Map<string, 'grey' | 'black'>();
  const order: AnyStage[] = [];
  const path: string[] = [];
  const visit = (name: string): void => {
    const c = colour.get(name);
    if (c === 'black') return;
    if (c === 'grey') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new GenolakeError('GRAPH_CYCLE', `stages form a cycle: ${cycle.join(' -> ')}`);
    }
    colour.set(name, 'grey');
    path.push(name);
    const s = byName.get(name) as AnyStage;
    for (const d of s.deps) visit(d);
    path.pop();
    colour.set(name, 'black');
    order.push(s);
  };
  for (const s of stages) visit(s.name);
  return order;
}

export interface PipelineOptions {
  lake: Lake;
  /** Default: a fresh id from `newRunId()`. Pass your own to know it even if the run fails. */
  runId?: string;
  /** Worker threads; default `os.availableParallelism()`. */
  threads?: number;
  /** Run parameters (JSON), recorded in state.json and provenance.json. */
  params?: RunParams;
  /**
   * Continue the run `runId` if it exists: stages with a checkpointed output are skipped
   * and finished tasks are reused. Without it, an existing run id is an error.
   */
  resume?: boolean;
  /** Also log here (e.g. stderr at --log-level); the run's log file gets everything regardless. */
  log?: Logger;
  /** Level of the run's log file; default GENOLAKE_LOG_LEVEL or 'info'. */
  logLevel?: string;
  /** Live display: true/undefined = process.stderr when it is a TTY, false = never, or a stream. */
  progress?: boolean | ProgressStream;
  /** Aborting stops the run (e.g. on Ctrl-C); it is recorded as failed and can be resumed. */
  signal?: AbortSignal;
  /** For provenance; default process.argv. */
  command?: string[];
  /** Checksums of the inputs (name → 'sha256:...'), recorded in provenance. */
  inputChecksums?: Record<string, string>;
  /** Attempts per task when its worker dies; default 3. */
  maxAttempts?: number;
  /** Worker name → file; default `workerPath` (dist/workers/<name>.js). */
  resolveWorker?: (name: string) => string;
}

export interface RunResult<O> {
  runId: string;
  outputs: O;
  state: RunState;
  provenance: Provenance;
}

function isAbortLike(e: unknown): boolean {
  const name = (e as { name?: string } | null)?.name;
  return name === 'AbortError' || (isGenolakeError(e) && (e as GenolakeError).code === 'RUN_ABORTED');
}

/** Key order must not make equal params look different. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

function checkParams(params: RunParams): RunParams {
  return JSON.parse(toJsonText('run params', params)) as RunParams;
}

interface StageStats {
  tasksRun: number;
  tasksReused: number;
  retries: number;
}

/** Runs (or resumes) a pipeline; resolves with every stage's output or throws the first failure. */
export async function runPipeline<const S extends readonly AnyStage[]>(
  stages: S,
  opts: PipelineOptions,
): Promise<RunResult<PipelineOutputs<S>>> {
  const order = validateGraph(stages);
  const { lake } = opts;
  const store = new RunStore(lake, opts.runId ?? newRunId());
  const runId = store.runId;
  const existing = await store.readState();
  if (existing && !opts.resume) {
    throw new GenolakeError('RUN_EXISTS', `run ${runId} already exists in ${lake.describe()}; resume it or choose another run id`);
  }
  let params = checkParams(opts.params ?? existing?.params ?? {});
  if (existing) {
    if (opts.params && !isDeepStrictEqual(canonical(params), canonical(existing.params))) {
      const keys = new Set([...Object.keys(params), ...Object.keys(existing.params)]);
      const differ = [...keys].filter((k) => !isDeepStrictEqual(canonical(params[k]), canonical(existing.params[k])));
      throw new GenolakeError(
        'RUN_PARAMS_MISMATCH',
        `run ${runId} was started with other parameters (${differ.join(', ')}); a resumed run keeps its parameters`,
        { field: differ[0] },
      );
    }
    params = existing.params;
  }

  const startedAt = new Date();
  const command = opts.command ?? process.argv;
  const runLog = await openRunLog(lake, store, { resume: !!existing, level: opts.logLevel, also: opts.log });
  // Everything after this point closes the log, however it ends.
  try {
    const log = runLog.log;
    const display = new ProgressDisplay(
      opts.progress === false ? undefined : opts.progress === true || opts.progress === undefined ? process.stderr : opts.progress,
    );
    const counters = new Map<string, StageCounter>(order.map((s) => [s.name, display.stage(s.name)]));

    // ---- state and provenance, carried over from the previous invocation on resume
    const state: RunState = existing ?? {
      runId,
      createdAt: startedAt.toISOString(),
      updatedAt: startedAt.toISOString(),
      status: 'running',
      params,
      stages: {},
    };
    state.status = 'running';
    delete state.error;
    const prevProv = existing ? await store.readProvenance() : undefined;
    const provenance: Provenance = {
      runId,
      genolakeVersion: genolakeVersion(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      createdAt: state.createdAt,
      command: prevProv?.command ?? command,
      params,
      inputChecksums: { ...prevProv?.inputChecksums, ...opts.inputChecksums },
      threads: 0,
      invocations: [...(prevProv?.invocations ?? []), { command, startedAt: startedAt.toISOString(), resumed: !!existing, status: 'running' }],
      stages: { ...prevProv?.stages },
    };
    const invocation = provenance.invocations[provenance.invocations.length - 1];

    const outputs = new Map<string, unknown>();
    const done = new Set<string>();
    // A stage is reused only if its output checkpoint exists and every dependency was reused
    // too; otherwise a rerun dependency could hand it different inputs.
    for (const s of order) {
      const prev = state.stages[s.name];
      if (prev?.status === 'done' && s.deps.every((d) => done.has(d))) {
        const cp = await store.readStage(s.name);
        if (cp) {
          outputs.set(s.name, cp.output);
          done.add(s.name);
          (counters.get(s.name) as StageCounter).finish('done');
          provenance.stages[s.name] = { ...(provenance.stages[s.name] ?? emptyTiming(startedAt)), status: 'done', reused: true };
          continue;
        }
      }
      state.stages[s.name] = { status: 'pending' };
    }
    await store.writeState(state);
    log.info({ lake: lake.describe(), resumed: !!existing, reusedStages: [...done] }, existing ? 'run resumed' : 'run started');

    const runAbort = new AbortController();
    setMaxListeners(0, runAbort.signal);
    const onOuterAbort = () => runAbort.abort(new GenolakeError('RUN_ABORTED', `run ${runId} aborted`));
    if (opts.signal?.aborted) onOuterAbort();
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

    const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    provenance.threads = threads;
    // Started on first use: a run whose tasks are all checkpointed starts no threads.
    let pool: TaskPool | undefined;
    const getPool = (): TaskPool =>
      (pool ??= createPool({ threads, maxAttempts: opts.maxAttempts, resolveWorker: opts.resolveWorker }));

    let failure: { stage: string; error: unknown } | undefined;
    const running = new Map<string, Promise<void>>();

    const runStage = async (stage: AnyStage): Promise<void> => {
      const counter = counters.get(stage.name) as StageCounter;
      const stats: StageStats = { tasksRun: 0, tasksReused: 0, retries: 0 };
      const stageLog = log.child({ stage: stage.name });
      const start = new Date();
      counter.start(start.getTime());
      state.stages[stage.name] = { status: 'running', startedAt: start.toISOString() };
      const timing: StageTiming = { ...emptyTiming(start), status: 'running' };
      provenance.stages[stage.name] = timing;
      await store.writeState(state);
      stageLog.info({ deps: stage.deps }, `stage ${stage.name} started`);

      const usedKeys = new Set<string>();
      // Which task threw an error, for its record under errors/.
      const failedTasks = new WeakMap<object, { key: string; worker: string }>();
      const runTasks = async <P, R>(worker: string, tasks: readonly TaskSpec<P>[]): Promise<R[]> => {
        for (const t of tasks) {
          if (usedKeys.has(t.key)) {
            throw new GenolakeError('TASK_DUPLICATE_KEY', `stage ${stage.name} uses task key ${JSON.stringify(t.key)} twice`);
          }
          usedKeys.add(t.key);
        }
        counter.setTotal(tasks.length);
        const finished = await store.finishedTaskKeys(stage.name);
        const results = new Array<R>(tasks.length);
        // First failure stops this call's other tasks; the rest of the run is stopped by the scheduler.
        const local = new AbortController();
        setMaxListeners(0, local.signal);
        const onRunAbort = () => local.abort(runAbort.signal.reason);
        if (runAbort.signal.aborted) onRunAbort();
        runAbort.signal.addEventListener('abort', onRunAbort, { once: true });
        let firstError: unknown;
        let next = 0;
        const one = async (i: number): Promise<void> => {
          const t = tasks[i];
          if (finished.has(t.key)) {
            const cp = await store.readTask(stage.name, t.key);
            if (cp) {
              results[i] = cp.result as R;
              stats.tasksReused++;
              counter.taskDone();
              return;
            }
            stageLog.warn({ task: t.key }, `task ${t.key}: its checkpoint does not read back whole; running it again`);
          }
          if (local.signal.aborted) throw local.signal.reason;
          let r: R;
          try {
            r = await getPool().run<P, R>(worker, t.payload, {
              signal: local.signal,
              onRetry: (attempt, cause) => {
                stats.retries++;
                stageLog.warn({ task: t.key, worker, attempt, cause: cause.message }, `task ${t.key}: worker died, retrying`);
              },
            });
          } catch (e) {
            if (e !== null && typeof e === 'object' && !isAbortLike(e)) failedTasks.set(e, { key: t.key, worker });
            throw e;
          }
          results[i] = (await store.writeTask(stage.name, t.key, r)) as R;
          stats.tasksRun++;
          counter.taskDone();
        };
        // A bounded number in flight keeps every thread busy while checkpoints are written,
        // without queueing a million payloads (and abort listeners) at once.
        const lanes = Math.min(tasks.length, Math.max(2, threads * 2));
        const lane = async (): Promise<void> => {
          while (next < tasks.length && firstError === undefined) {
            const i = next++;
            try {
              await one(i);
            } catch (e) {
              if (firstError === undefined || (isAbortLike(firstError) && !isAbortLike(e))) firstError = e;
              local.abort(e);
            }
          }
        };
        try {
          await Promise.all(Array.from({ length: lanes }, lane));
        } finally {
          runAbort.signal.removeEventListener('abort', onRunAbort);
        }
        if (firstError !== undefined) throw firstError;
        return results;
      };

      const ctx: StageContext = {
        runId,
        stage: stage.name,
        lake,
        log: stageLog,
        params,
        threads,
        signal: runAbort.signal,
        runTasks,
        runTask: async <P, R>(worker: string, key: string, payload: P): Promise<R> =>
          (await runTasks<P, R>(worker, [{ key, payload }]))[0],
        pool: {
          threads,
          get maxAttempts() {
            return getPool().maxAttempts;
          },
          get retries() {
            return pool?.retries ?? 0;
          },
          run: <P, R>(worker: string, payload: P, o: RunTaskOptions = {}) =>
            getPool().run<P, R>(worker, payload, {
              ...o,
              signal: o.signal ?? runAbort.signal,
              onRetry: (attempt, cause) => {
                stats.retries++;
                stageLog.warn({ worker, attempt, cause: cause.message }, 'worker died, retrying');
                o.onRetry?.(attempt, cause);
              },
            }),
          close: async () => undefined,
        },
        progress: counter,
      };

      const finishTiming = (status: StageTiming['status']) => {
        const end = new Date();
        Object.assign(timing, {
          status,
          end: end.toISOString(),
          seconds: (end.getTime() - start.getTime()) / 1000,
          ...stats,
          units: { ...counter.snapshot.units },
        });
        counter.finish(status, end.getTime());
        return end;
      };

      try {
        const inputs = Object.fromEntries(stage.deps.map((d) => [d, outputs.get(d)]));
        const out = await stage.run(ctx, inputs);
        const stored = await store.writeStage(stage.name, out);
        outputs.set(stage.name, stored);
        done.add(stage.name);
        const end = finishTiming('done');
        state.stages[stage.name] = { status: 'done', startedAt: start.toISOString(), endedAt: end.toISOString() };
        stageLog.info(summary(timing, counter), `stage ${stage.name} done`);
      } catch (e) {
        if (runAbort.signal.aborted && isAbortLike(e) && failure?.stage !== stage.name) {
          // Stopped because the run stopped: not this stage's fault, it simply did not finish.
          finishTiming('pending');
          state.stages[stage.name] = { status: 'pending', startedAt: start.toISOString() };
          stageLog.warn(summary(timing, counter), `stage ${stage.name} stopped`);
        } else {
          const error = isGenolakeError(e)
            ? e
            : new GenolakeError('STAGE_FAILED', `stage ${stage.name} failed: ${e instanceof Error ? e.message : String(e)}`, {}, { cause: e });
          failure ??= { stage: stage.name, error };
          const end = finishTiming('failed');
          state.stages[stage.name] = {
            status: 'failed',
            startedAt: start.toISOString(),
            endedAt: end.toISOString(),
            error: errorRecord(error),
          };
          stageLog.error({ ...summary(timing, counter), err: errorRecord(error) }, `stage ${stage.name} failed`);
          const task = e !== null && typeof e === 'object' ? failedTasks.get(e) : undefined;
          await store.recordError(stage.name, error, new Date(), task).catch((re) => stageLog.error({ err: errorRecord(re) }, 'could not record error'));
          runAbort.abort(error);
        }
      }
      await store.writeState(state);
      await store.writeProvenance(provenance);
    };

    const launch = (): void => {
      if (runAbort.signal.aborted) return;
      for (const s of order) {
        if (done.has(s.name) || running.has(s.name) || state.stages[s.name]?.status === 'failed') continue;
        if (!s.deps.every((d) => done.has(d))) continue;
        running.set(
          s.name,
          runStage(s)
            .catch((e) => {
              // Only the lake failing under the state writes lands here.
              failure ??= { stage: s.name, error: e };
              runAbort.abort(e);
            })
            .finally(() => running.delete(s.name)),
        );
      }
    };

    display.start();
    try {
      launch();
      while (running.size > 0) {
        await Promise.race(running.values());
        launch();
      }
    } finally {
      opts.signal?.removeEventListener('abort', onOuterAbort);
      display.stop();
      await pool?.close();
    }

    const endedAt = new Date();
    invocation.endedAt = endedAt.toISOString();
    const allDone = order.every((s) => done.has(s.name));
    if (!failure && !allDone) {
      // The caller aborted before anything failed.
      failure = { stage: 'run', error: new GenolakeError('RUN_ABORTED', `run ${runId} aborted; resume it to continue`) };
      await store.recordError('run', failure.error);
    }
    state.status = failure ? 'failed' : 'done';
    invocation.status = state.status;
    provenance.totals = totalsOf(provenance);
    if (failure) state.error = { ...errorRecord(failure.error), stage: failure.stage };
    await store.writeState(state);
    await store.writeProvenance(provenance);
    if (failure) {
      log.error({ failedStage: failure.stage, err: errorRecord(failure.error) }, `run ${runId} failed in stage ${failure.stage}`);
      throw failure.error;
    }
    log.info({ seconds: (endedAt.getTime() - startedAt.getTime()) / 1000 }, `run ${runId} done`);
    return {
      runId,
      outputs: Object.fromEntries(order.map((s) => [s.name, outputs.get(s.name)])) as PipelineOutputs<S>,
      state,
      provenance,
    };
  } finally {
    await runLog.close();
  }
}

/** Tasks run, reused and retried over every stage (as last recorded per stage). */
function totalsOf(p: Provenance): NonNullable<Provenance['totals']> {
  const t = { tasksRun: 0, tasksReused: 0, retries: 0 };
  for (const s of Object.values(p.stages)) {
    t.tasksRun += s.tasksRun;
    t.tasksReused += s.tasksReused;
    t.retries += s.retries;
  }
  return t;
}

function emptyTiming(start: Date): StageTiming {
  return { status: 'pending', start: start.toISOString(), tasksRun: 0, tasksReused: 0, retries: 0, units: {} };
}

function summary(t: StageTiming, counter: StageCounter): Record<string, unknown> {
  const secs = elapsedSeconds(counter.snapshot);
  const rates = Object.fromEntries(Object.entries(t.units).map(([u, n]) => [`${u}PerSecond`, secs > 0 ? n / secs : 0]));
  return { status: t.status, seconds: t.seconds, tasksRun: t.tasksRun, tasksReused: t.tasksReused, retries: t.retries, units: t.units, ...rates };
}

export interface ResumeOptions extends Omit<PipelineOptions, 'resume'> {
  runId: string;
  /** Default: the run's recorded parameters. Anything else is refused (RUN_PARAMS_MISMATCH). */
  params?: RunParams;
}

/**
 * Continues a run from its record: takes its parameters from state.json, skips stages
 * whose output is checkpointed and reuses finished tasks, so only unfinished work runs.
 *
 *     await resumeRun(stages, { lake, runId });
 *
 * (The older form `resumeRun(lake, runId, stages, opts?)` is still accepted.)
 */
export function resumeRun<const S extends readonly AnyStage[]>(stages: S, opts: ResumeOptions): Promise<RunResult<PipelineOutputs<S>>>;
export function resumeRun<const S extends readonly AnyStage[]>(
  lake: Lake,
  runId: string,
  stages: S,
  opts?: Omit<PipelineOptions, 'lake' | 'runId' | 'resume' | 'params'>,
): Promise<RunResult<PipelineOutputs<S>>>;
export async function resumeRun(
  a: readonly AnyStage[] | Lake,
  b: ResumeOptions | string,
  c?: readonly AnyStage[],
  d: Omit<PipelineOptions, 'lake' | 'runId' | 'resume' | 'params'> = {},
): Promise<RunResult<Record<string, unknown>>> {
  const [stages, opts]: [readonly AnyStage[], ResumeOptions] = Array.isArray(a)
    ? [a, b as ResumeOptions]
    : [c as readonly AnyStage[], { ...d, lake: a as Lake, runId: b as string }];
  const state = await new RunStore(opts.lake, opts.runId).readState();
  if (!state) throw new GenolakeError('RUN_NOT_FOUND', `no run ${opts.runId} in ${opts.lake.describe()}`);
  return runPipeline(stages, { ...opts, params: opts.params ?? state.params, resume: true }) as Promise<RunResult<Record<string, unknown>>>;
}
