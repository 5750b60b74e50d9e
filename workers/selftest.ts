/**
 * A worker for the engine's own tests: what it does is driven entirely by its payload,
 * so a test can make a task transform data, sleep, fail on bad input, or kill its worker
 * thread once, and count how many times each task really ran.
 */
import { appendFileSync, existsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { defineWorker } from '../src/engine/worker.js';
import { GenolakeError, InputError, type ErrorPlace } from '../src/util/errors.js';

export interface SelftestPayload {
  /** Echoed in the result. */
  key: string;
  /** Transformed deterministically: result has its sha256, upper-case form and length. */
  data?: string;
  /** Sleep before answering (ms). */
  sleepMs?: number;
  /** Wait until this file exists before answering (a gate a test opens, or never does). */
  waitForFile?: string;
  /** Appends `start <key>` and `end <key>` lines to this file (counters for tests). */
  countFile?: string;
  /**
   * If this marker file does not exist yet: create it, then end the worker thread in the
   * middle of the task ('exit': process.exit(1) inside the thread; 'throw': an uncaught
   * exception). The retried task finds the marker and succeeds.
   */
  crashOnce?: string;
  crashMode?: 'exit' | 'throw';
  /** End the worker thread every time (process.exit(1)): exhausts the retries. */
  crashAlways?: boolean;
  /** Throw an InputError with this code, message and place. */
  inputError?: { code: string; message: string; place?: ErrorPlace };
  /** Throw a GenolakeError with this code and message. */
  genolakeError?: { code: string; message: string };
}

export interface SelftestResult {
  key: string;
  length: number;
  upper: string;
  sha256: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export default defineWorker(async (p: SelftestPayload): Promise<SelftestResult> => {
  if (p.countFile) appendFileSync(p.countFile, `start ${p.key}\n`);
  if (p.crashAlways) process.exit(1);
  if (p.crashOnce) {
    let first = true;
    try {
      writeFileSync(p.crashOnce, p.key, { flag: 'wx' });
    } catch {
      first = false;
    }
    if (first) {
      await sleep(10);
      if (p.crashMode === 'throw') {
        // Outside the task's promise: the thread's uncaught exception handler ends it.
        setImmediate(() => {
          throw new Error(`selftest: crash in task ${p.key}`);
        });
        await sleep(10_000);
      }
      process.exit(1);
    }
  }
  if (p.sleepMs) await sleep(p.sleepMs);
  while (p.waitForFile && !existsSync(p.waitForFile)) await sleep(20);
  if (p.inputError) throw new InputError(p.inputError.code, p.inputError.message, p.inputError.place ?? {});
  if (p.genolakeError) throw new GenolakeError(p.genolakeError.code, p.genolakeError.message);
  const data = p.data ?? '';
  const result: SelftestResult = {
    key: p.key,
    length: data.length,
    upper: data.toUpperCase(),
    sha256: createHash('sha256').update(data).digest('hex'),
  };
  if (p.countFile) appendFileSync(p.countFile, `end ${p.key}\n`);
  return result;
});
