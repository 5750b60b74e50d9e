/**
 * One piscina pool per run. Tasks name their worker file (`workers/<name>.ts`, run
 * compiled from dist/); a task whose worker dies (process.exit, an uncaught crash, the
 * thread terminated) is retried on a fresh worker, while an error the task itself
 * threw or rejected with is final (bad input stays bad on a second try) and reaches the
 * caller as InputError / GenolakeError with its code and place (see worker-entry.ts).
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { TransferListItem } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { detachOneBuffer } from '../util/detach.js';
import { GenolakeError } from '../util/errors.js';
import { packageRoot, workerPath } from '../util/paths.js';
import type { EntryTask } from './worker-entry.js';
import { isSerialisedTaskError, reviveTaskError } from './worker.js';

export interface PoolOptions {
  /** Worker threads; default `os.availableParallelism()`. */
  threads?: number;
  /** Attempts per task when its worker dies; default 3. */
  maxAttempts?: number;
  /** Resolves a worker name to its file; default `workerPath` (dist/workers/<name>.js). */
  resolveWorker?: (name: string) => string;
}

export interface RunTaskOptions {
  signal?: AbortSignal;
  /**
   * Buffers moved (not copied) to the worker. A moved buffer is gone from this thread,
   * so a task with a transferList cannot be resent: it is not retried.
   */
  transferList?: TransferListItem[];
  /** Called before each retry (for logs and provenance). */
  onRetry?: (attempt: number, cause: Error) => void;
}

export interface TaskPool {
  readonly threads: number;
  readonly maxAttempts: number;
  /** Retries made so far in this pool (all tasks). */
  readonly retries: number;
  run<P, R>(worker: string, payload: P, opts?: RunTaskOptions): Promise<R>;
  close(): Promise<void>;
}

function isAbort(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: string }).name === 'AbortError';
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** The compiled entry file every pool thread runs (from dist/, also under vitest). */
export function engineEntryPath(): string {
  const file = join(packageRoot(), 'dist', 'src', 'engine', 'worker-entry.js');
  if (!existsSync(file)) throw new GenolakeError('ENGINE_NOT_BUILT', `engine worker entry is not built (${file}); run npm run build`);
  return file;
}

export function createPool(opts: PoolOptions = {}): TaskPool {
  // a thread with a pool moves buffers to it: its typed-array code must not be deoptimised by the first (src/util/detach.ts)
  detachOneBuffer();
  const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
  const maxAttempts = Math.max(1, Math.floor(opts.maxAttempts ?? 3));
  const resolveWorker = opts.resolveWorker ?? workerPath;
  // Workers stay up between tasks (a kernel instantiates its WASM module once per thread).
  // Every thread runs the engine's entry file, which imports the task's worker module
  // (once per thread) and marks errors the task threw (see worker-entry.ts).
  const piscina = new Piscina({ filename: engineEntryPath(), minThreads: threads, maxThreads: threads, idleTimeout: 60_000 });
  // With no task in flight piscina reports a dying worker as an 'error' event; the task
  // path below already handles crashes, so the event must not take the process down.
  piscina.on('error', () => undefined);
  const files = new Map<string, string>();
  let retries = 0;
  let closed = false;

  const fileFor = (name: string): string => {
    let f = files.get(name);
    if (!f) files.set(name, (f = resolveWorker(name)));
    return f;
  };

  async function run<P, R>(worker: string, payload: P, ropts: RunTaskOptions = {}): Promise<R> {
    if (closed) throw new GenolakeError('POOL_CLOSED', `task pool is closed (worker ${worker})`);
    const filename = fileFor(worker);
    for (let attempt = 1; ; attempt++) {
      try {
        return (await piscina.run({ file: filename, payload } satisfies EntryTask, {
          signal: ropts.signal ?? null,
          transferList: ropts.transferList as never,
        })) as R;
      } catch (e) {
        // The task ran and threw: final, with code and place intact.
        if (isSerialisedTaskError(e)) throw reviveTaskError(e);
        if (isAbort(e) || ropts.signal?.aborted) throw asError(e);
        const cause = asError(e);
        if (closed) throw cause;
        // Anything else means the worker went away under the task.
        if (ropts.transferList?.length) {
          throw new GenolakeError(
            'TASK_WORKER_DIED',
            `worker ${worker} died and the task moved buffers to it, so it cannot be resent: ${cause.message}`,
            {},
            { cause },
          );
        }
        if (attempt >= maxAttempts) {
          throw new GenolakeError(
            'TASK_WORKER_DIED',
            `worker ${worker} died ${attempt} time(s) running one task: ${cause.message}`,
            {},
            { cause },
          );
        }
        retries++;
        ropts.onRetry?.(attempt + 1, cause);
      }
    }
  }

  return {
    threads,
    maxAttempts,
    get retries() {
      return retries;
    },
    run,
    async close() {
      if (closed) return;
      closed = true;
      await piscina.close({ force: true });
    },
  };
}
