/** Options and helpers shared by the commands that work on a lake. */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { openLake } from '../../lake/open.js';
import type { Lake } from '../../lake/types.js';
import { createLogger, type Logger } from '../../util/log.js';

export const DEFAULT_LAKE = './lake';

export function lakeOption(cmd: Command): Command {
  return cmd.option('--lake <dir|s3://bucket/prefix>', 'the lake (env GENOLAKE_LAKE)', process.env.GENOLAKE_LAKE ?? DEFAULT_LAKE);
}

export function threadsOption(cmd: Command): Command {
  return cmd.option('--threads <n>', 'worker threads', positiveInt, availableParallelism());
}

export function logOption(cmd: Command): Command {
  // Quiet by default: results go to stdout, one error line to stderr; the full JSON log is
  // always in the lake (_runs/<run_id>/log.jsonl), and --log-level mirrors it on stderr.
  return cmd.option('--log-level <level>', 'mirror the run log (JSON) on stderr from this level: trace|debug|info|warn|error', 'silent');
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export async function openLakeOption(uri: string): Promise<Lake> {
  return openLake(uri);
}

export function stderrLogger(level: string): Logger {
  return createLogger({ level, destination: 2 });
}

/** Writes a line to stdout (results), keeping stderr for progress and logs. */
export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Ctrl-C stops the run cleanly (recorded as failed, resumable); a second Ctrl-C exits at once. */
export function interruptSignal(): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  let count = 0;
  const onSig = () => {
    count++;
    if (count === 1) {
      process.stderr.write('\ngenolake: stopping (Ctrl-C again to exit at once); the run can be resumed\n');
      ac.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSig);
  process.on('SIGTERM', onSig);
  return {
    signal: ac.signal,
    dispose() {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    },
  };
}
