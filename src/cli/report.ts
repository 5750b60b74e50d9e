/** How the CLI reports a failure: one precise line, and an exit code by kind. */
import { isGenolakeError, type GenolakeError } from '../util/errors.js';

/** 2 for bad input (a file, record or manifest the user can fix), 1 for everything else. */
export function exitCodeFor(e: unknown): number {
  if (isGenolakeError(e)) return (e as GenolakeError).name === 'InputError' || (e as GenolakeError).code.startsWith('MANIFEST') ? 2 : 1;
  return 1;
}

export function describeError(e: unknown): string {
  if (isGenolakeError(e)) return (e as GenolakeError).describe();
  if (e instanceof Error) return process.env.GENOLAKE_DEBUG ? (e.stack ?? e.message) : e.message;
  return String(e);
}
