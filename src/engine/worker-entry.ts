/**
 * The one file the pool's threads run. A task names its worker module (a file in
 * dist/workers/) and carries its payload; the module is imported once per thread and its
 * default export called. Whatever the task throws is sent back marked as a task error
 * (with code and place), so the pool can tell "the task failed" (final) from "the worker
 * died" (retried), whether or not the module used `defineWorker`.
 *
 * No static imports of our own modules, on purpose: piscina loads this file with require() (Node 20 runs
 * ES modules through require), and a module reached both through require() and through
 * import() can fail to load in Node 20 ("Unexpected status of a module that is imported
 * again after being required"). Everything else is loaded here with import() only.
 */
import { pathToFileURL } from 'node:url';
import type * as WorkerSide from './worker.js';
import type * as Errors from '../util/errors.js';

export interface EntryTask {
  /** Absolute path of the worker module. */
  file: string;
  payload: unknown;
}

// The first detached ArrayBuffer deoptimises a thread's typed-array code (see src/util/detach.ts,
// which this file cannot import statically): detach one before any task runs.
{
  const first = new ArrayBuffer(8);
  structuredClone(first, { transfer: [first] });
}

type TaskFn = (payload: unknown) => unknown;
const modules = new Map<string, Promise<TaskFn>>();
let helpers: Promise<[typeof WorkerSide, typeof Errors]> | undefined;

function loadHelpers(): Promise<[typeof WorkerSide, typeof Errors]> {
  return (helpers ??= Promise.all([import('./worker.js'), import('../util/errors.js')]));
}

function load(file: string): Promise<TaskFn> {
  let p = modules.get(file);
  if (!p) {
    p = Promise.all([import(pathToFileURL(file).href) as Promise<{ default?: unknown }>, loadHelpers()]).then(([m, [, errors]]) => {
      if (typeof m.default !== 'function') {
        throw new errors.GenolakeError('WORKER_BAD_MODULE', `worker module ${file} has no default export function`, { file });
      }
      return m.default as TaskFn;
    });
    p.catch(() => modules.delete(file));
    modules.set(file, p);
  }
  return p;
}

export default async function runEntryTask(task: EntryTask): Promise<unknown> {
  try {
    const fn = await load(task.file);
    return await fn(task.payload);
  } catch (e) {
    const [w] = await loadHelpers();
    throw w.isSerialisedTaskError(e) ? e : w.serialiseTaskError(e);
  }
}
