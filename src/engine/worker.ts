/**
 * The worker-thread side of the task pool. Structured clone keeps only an Error's
 * message and stack, so an InputError thrown in a worker would arrive as a plain Error
 * without its code and place (file, record, field), and the pool could not tell "the
 * task refused its input" from "the worker died". Errors therefore cross the thread
 * boundary as a marked plain object: the pool's entry file (worker-entry.ts) does this
 * for every worker module, so a module only needs `export default async function`;
 * `defineWorker` does the same for a module used with another pool.
 *
 * This module imports nothing heavy: workers load it at start-up.
 */
import { GenolakeError, InputError, type ErrorPlace } from '../util/errors.js';

/** Marks a value thrown by `defineWorker`: the task ran and failed (as opposed to the worker dying). */
export const TASK_ERROR_MARK = '__genolakeTaskError';

export interface SerialisedTaskError {
  [TASK_ERROR_MARK]: true;
  name: string;
  message: string;
  stack?: string;
  code?: string;
  place?: ErrorPlace;
}

export function serialiseTaskError(e: unknown): SerialisedTaskError {
  if (e instanceof Error) {
    const out: SerialisedTaskError = { [TASK_ERROR_MARK]: true, name: e.name, message: e.message, stack: e.stack };
    const { code, place } = e as Partial<GenolakeError>;
    if (typeof code === 'string') out.code = code;
    if (place && typeof place === 'object') out.place = { ...place };
    return out;
  }
  return { [TASK_ERROR_MARK]: true, name: 'Error', message: String(e) };
}

export function isSerialisedTaskError(v: unknown): v is SerialisedTaskError {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)[TASK_ERROR_MARK] === true;
}

/** Rebuilds the error on the main thread: InputError and GenolakeError keep code and place. */
export function reviveTaskError(s: SerialisedTaskError): Error {
  let e: Error;
  if (s.name === 'InputError') e = new InputError(s.code ?? 'INPUT', s.message, s.place ?? {});
  else if (s.code !== undefined) {
    e = new GenolakeError(s.code, s.message, s.place ?? {});
    if (s.name !== 'GenolakeError') e.name = s.name;
  } else {
    e = new Error(s.message);
    e.name = s.name;
  }
  if (s.stack) e.stack = s.stack;
  return e;
}

/**
 * Wraps a task function as a piscina worker export:
 * `export default defineWorker(async (payload: MyPayload) => result)`.
 */
export function defineWorker<P, R>(fn: (payload: P) => R | Promise<R>): (payload: P) => Promise<R> {
  return async (payload: P): Promise<R> => {
    try {
      return await fn(payload);
    } catch (e) {
      // Thrown as a plain object: structured clone keeps every field of it.
      throw serialiseTaskError(e);
    }
  };
}
