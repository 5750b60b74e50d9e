/**
 * A run's record in the lake, under `_runs/<run_id>/`:
 *
 *   state.json                         run id, created, params, status per stage, error
 *   checkpoints/<stage>/<task>.json    one finished task: its JSON result
 *   checkpoints/<stage>.json           one finished stage: its JSON output
 *   provenance.json                    version, command, params, input checksums, timings
 *   errors/<stage>-<time>.json         the error that failed a stage (and the task that threw it)
 *   log.jsonl                          the run's pino log
 *
 * Every object is written whole by `lake.put` (atomic per object), so a run killed at
 * any instant leaves only complete records behind; a task or stage counts as finished
 * exactly when its checkpoint object exists.
 */
import { randomBytes } from 'node:crypto';
import { GenolakeError, isGenolakeError } from '../util/errors.js';
import type { Lake } from '../lake/types.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export type RunParams = Record<string, unknown>;

export type StageStatus = 'pending' | 'running' | 'done' | 'failed';
export type RunStatus = 'running' | 'done' | 'failed';

/** An error as recorded in the lake (GenolakeError#toJSON, or name/message/stack). */
export interface ErrorRecord {
  name: string;
  message: string;
  code?: string;
  place?: Record<string, unknown>;
  stack?: string;
}

export interface StageState {
  status: StageStatus;
  startedAt?: string;
  endedAt?: string;
  error?: ErrorRecord;
}

export interface RunState {
  runId: string;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  params: RunParams;
  stages: Record<string, StageState>;
  error?: ErrorRecord & { stage?: string };
}

export interface StageTiming {
  status: StageStatus;
  start: string;
  end?: string;
  seconds?: number;
  tasksRun: number;
  tasksReused: number;
  retries: number;
  /** Work counted by the stage, e.g. { reads: 1200000 }. */
  units: Record<string, number>;
  /** True when the stage's output came from its checkpoint, without running. */
  reused?: boolean;
}

export interface Invocation {
  command: string[];
  startedAt: string;
  endedAt?: string;
  resumed: boolean;
  status: RunStatus;
}

export interface Provenance {
  runId: string;
  genolakeVersion: string;
  node: string;
  platform: string;
  createdAt: string;
  /** The first invocation's command line; every invocation (resumes) is in `invocations`. */
  command: string[];
  params: RunParams;
  inputChecksums: Record<string, string>;
  threads: number;
  invocations: Invocation[];
  stages: Record<string, StageTiming>;
  /** Sums over `stages`, written when an invocation ends. */
  totals?: { tasksRun: number; tasksReused: number; retries: number };
}

export interface RunSummary {
  runId: string;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  stages: Record<string, StageStatus>;
  error?: string;
}

export const RUNS_PREFIX = '_runs/';
const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const STAGE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `20261123T091900Z-3f9a1c`: sorts by time, unique enough for one lake. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export function checkRunId(runId: string): string {
  if (!RUN_ID_RE.test(runId)) {
    throw new GenolakeError('RUN_BAD_ID', `run id must be letters, digits, '.', '_' or '-' (got ${JSON.stringify(runId)})`);
  }
  return runId;
}

export function checkStageName(name: string): string {
  if (!STAGE_NAME_RE.test(name)) {
    throw new GenolakeError('GRAPH_BAD_NAME', `stage name must be letters, digits, '.', '_' or '-' (got ${JSON.stringify(name)})`);
  }
  return name;
}

/** Task keys are free text (e.g. `chr1:1-1000000`); encoded so each is one safe key segment. */
export function taskKeySegment(key: string): string {
  if (typeof key !== 'string' || key === '') throw new GenolakeError('TASK_BAD_KEY', 'task key must be a non-empty string');
  return encodeURIComponent(key).replace(/\*/g, '%2A');
}

export function errorRecord(e: unknown): ErrorRecord {
  if (isGenolakeError(e)) {
    const j = (e as { toJSON(): Record<string, unknown> }).toJSON();
    return { ...(j as unknown as ErrorRecord), stack: (e as Error).stack };
  }
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

/** Serialises to JSON or says clearly which checkpoint cannot be stored. */
export function toJsonText(what: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null, null, 1);
  } catch (e) {
    throw new GenolakeError('CHECKPOINT_NOT_JSON', `${what} is not JSON-serialisable: ${(e as Error).message}`, {}, { cause: e });
  }
  return `${text}\n`;
}

interface TaskCheckpoint {
  stage: string;
  key: string;
  finishedAt: string;
  result: unknown;
}

interface StageCheckpoint {
  stage: string;
  finishedAt: string;
  output: unknown;
}

/** Reads and writes one run's objects. One writer per run: state writes are serialised here. */
export class RunStore {
  readonly lake: Lake;
  readonly runId: string;
  readonly prefix: string;
  private readonly chains = new Map<string, Promise<void>>();

  constructor(lake: Lake, runId: string) {
    this.lake = lake;
    this.runId = checkRunId(runId);
    this.prefix = `${RUNS_PREFIX}${runId}/`;
  }

  get stateKey(): string {
    return `${this.prefix}state.json`;
  }
  get provenanceKey(): string {
    return `${this.prefix}provenance.json`;
  }
  get logKey(): string {
    return `${this.prefix}log.jsonl`;
  }
  taskPrefix(stage: string): string {
    return `${this.prefix}checkpoints/${stage}/`;
  }
  taskKey(stage: string, key: string): string {
    return `${this.taskPrefix(stage)}${taskKeySegment(key)}.json`;
  }
  stageKey(stage: string): string {
    return `${this.prefix}checkpoints/${stage}.json`;
  }

  private async readJson<T>(key: string): Promise<T | undefined> {
    let buf: Buffer;
    try {
      buf = await this.lake.getBuffer(key);
    } catch (e) {
      if (isGenolakeError(e) && (e as GenolakeError).code === 'LAKE_NOT_FOUND') return undefined;
      throw e;
    }
    try {
      return JSON.parse(buf.toString('utf8')) as T;
    } catch (e) {
      throw new GenolakeError('RUN_CORRUPT', `run record is not valid JSON: ${e instanceof Error ? e.message : e}`, {
        file: `${this.lake.describe()}/${key}`,
      });
    }
  }

  readState(): Promise<RunState | undefined> {
    return this.readJson<RunState>(this.stateKey);
  }

  /**
   * Writes of one key are queued in call order, so concurrent stages never overwrite a
   * newer state with an older one (the text is taken at call time).
   */
  private putQueued(key: string, text: string): Promise<void> {
    const next = (this.chains.get(key) ?? Promise.resolve()).then(() => this.lake.put(key, text));
    this.chains.set(key, next.catch(() => undefined));
    return next;
  }

  writeState(state: RunState): Promise<void> {
    state.updatedAt = new Date().toISOString();
    return this.putQueued(this.stateKey, toJsonText('run state', state));
  }

  readProvenance(): Promise<Provenance | undefined> {
    return this.readJson<Provenance>(this.provenanceKey);
  }

  writeProvenance(p: Provenance): Promise<void> {
    return this.putQueued(this.provenanceKey, toJsonText('provenance', p));
  }

  /** Keys of the stage's finished tasks (decoded), from one listing. */
  async finishedTaskKeys(stage: string): Promise<Set<string>> {
    const prefix = this.taskPrefix(stage);
    const out = new Set<string>();
    for await (const o of this.lake.list(prefix)) {
      const seg = o.key.slice(prefix.length);
      if (seg.includes('/') || !seg.endsWith('.json')) continue;
      out.add(decodeURIComponent(seg.slice(0, -'.json'.length)));
    }
    return out;
  }

  /**
   * A checkpoint is only a shortcut: the work it records can always be redone. One that
   * does not read back whole (a writer killed mid-put on a store without atomic puts, as
   * s3rver is) therefore counts as not written, and the task or stage runs again.
   */
  private async readCheckpoint<T extends { stage: string }>(key: string, stage: string, field: keyof T): Promise<T | undefined> {
    let cp: T | undefined;
    try {
      cp = await this.readJson<T>(key);
    } catch (e) {
      if (isGenolakeError(e) && (e as GenolakeError).code === 'RUN_CORRUPT') return undefined;
      throw e;
    }
    if (!cp || typeof cp !== 'object' || cp.stage !== stage || !(field in cp)) return undefined;
    return cp;
  }

  async readTask(stage: string, key: string): Promise<{ result: unknown } | undefined> {
    const cp = await this.readCheckpoint<TaskCheckpoint>(this.taskKey(stage, key), stage, 'result');
    return cp && cp.key === key ? { result: cp.result } : undefined;
  }

  /** Stores the result and returns it as it will read back (the JSON round trip). */
  async writeTask(stage: string, key: string, result: unknown): Promise<unknown> {
    const cp: TaskCheckpoint = { stage, key, finishedAt: new Date().toISOString(), result };
    const text = toJsonText(`result of task ${JSON.stringify(key)} in stage ${stage}`, cp);
    await this.lake.put(this.taskKey(stage, key), text);
    return (JSON.parse(text) as TaskCheckpoint).result;
  }

  async readStage(stage: string): Promise<{ output: unknown } | undefined> {
    const cp = await this.readCheckpoint<StageCheckpoint>(this.stageKey(stage), stage, 'output');
    return cp ? { output: cp.output } : undefined;
  }

  async writeStage(stage: string, output: unknown): Promise<unknown> {
    const cp: StageCheckpoint = { stage, finishedAt: new Date().toISOString(), output };
    const text = toJsonText(`output of stage ${stage}`, cp);
    await this.lake.put(this.stageKey(stage), text);
    return (JSON.parse(text) as StageCheckpoint).output;
  }

  /** Records the error that failed a stage; returns the object's key. */
  async recordError(stage: string, e: unknown, at = new Date(), task?: { key: string; worker: string }): Promise<string> {
    const stamp = at.toISOString().replace(/[:]/g, '').replace(/\./, '-');
    const key = `${this.prefix}errors/${stage}-${stamp}.json`;
    const rec = { runId: this.runId, stage, ...(task ? { task } : {}), time: at.toISOString(), error: errorRecord(e) };
    await this.lake.put(key, toJsonText('error record', rec));
    return key;
  }
}

/** Every run in the lake, oldest first (for `genolake runs`). */
export async function listRuns(lake: Lake): Promise<RunSummary[]> {
  const out: RunSummary[] = [];
  for await (const o of lake.list(RUNS_PREFIX)) {
    const m = /^_runs\/([^/]+)\/state\.json$/.exec(o.key);
    if (!m || !RUN_ID_RE.test(m[1])) continue;
    const state = await new RunStore(lake, m[1]).readState().catch(() => undefined);
    if (!state) continue;
    const stages: Record<string, StageStatus> = {};
    for (const [name, s] of Object.entries(state.stages)) stages[name] = s.status;
    out.push({
      runId: state.runId,
      createdAt: state.createdAt,
      updatedAt: state.updatedAt,
      status: state.status,
      stages,
      ...(state.error ? { error: state.error.message } : {}),
    });
  }
  out.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.runId < b.runId ? -1 : 1));
  return out;
}
