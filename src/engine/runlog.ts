/**
 * The run's JSON log: `_runs/<run_id>/log.jsonl` in the lake, one pino line per event,
 * appended to when the run is resumed.
 *
 * - A lake with a local path (the directory lake) appends each line to the file with a
 *   synchronous write, so a run killed with SIGKILL keeps every line it logged.
 * - Any other lake (S3) cannot append: the log is kept in memory (what an earlier
 *   invocation wrote, then the new lines) and the whole object is put again every
 *   `flushIntervalMs` while lines arrive, and on close. A killed run loses at most the
 *   last interval of its log.
 *
 * `also` is a second logger (e.g. stderr at --log-level) that receives the same events at
 * its own level, with its own format and bindings.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino } from 'pino';
import type { Lake } from '../lake/types.js';
import { isGenolakeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { RunStore } from './run.js';

export interface RunLogOptions {
  /** Keep what an earlier invocation logged (local: always appends; S3: reads it back first). */
  resume?: boolean;
  /** Level of the log file; default GENOLAKE_LOG_LEVEL or 'info'. */
  level?: string;
  /** Also send every event (at its own level) to this logger. */
  also?: Logger;
  /** S3 and other non-local lakes: how often buffered lines are put; default 5000 ms. */
  flushIntervalMs?: number;
}

export interface RunLog {
  /** The run's logger (bound to `{ runId }`). */
  readonly log: Logger;
  /** Where the log lives, e.g. `_runs/<id>/log.jsonl`. */
  readonly key: string;
  /** Writes what is buffered (S3); a no-op for a local lake. Never throws. */
  flush(): Promise<void>;
  /** Flushes and closes; later log calls are dropped. Never throws. */
  close(): Promise<void>;
}

/** A pino destination: `write` is called once per line, synchronously. */
interface Sink {
  write(line: string): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

class FileSink implements Sink {
  private fd: number | undefined;
  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }
  write(line: string): void {
    if (this.fd === undefined) return;
    const buf = Buffer.from(line, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }
}

class BufferedObjectSink implements Sink {
  private readonly chunks: Buffer[] = [];
  private dirty = false;
  private closed = false;
  private chain: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly lake: Lake,
    private readonly key: string,
    previous: Buffer | undefined,
    intervalMs: number,
    private readonly onError: (e: unknown) => void,
  ) {
    if (previous?.length) this.chunks.push(previous);
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  write(line: string): void {
    if (this.closed) return;
    this.chunks.push(Buffer.from(line, 'utf8'));
    this.dirty = true;
  }

  /** Puts the whole log if anything changed; puts run one at a time, in order. */
  flush(): Promise<void> {
    this.chain = this.chain.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      // Keep one buffer: later puts resend it anyway.
      const body = Buffer.concat(this.chunks);
      this.chunks.length = 0;
      this.chunks.push(body);
      try {
        await this.lake.put(this.key, body);
      } catch (e) {
        this.dirty = true;
        this.onError(e);
      }
    });
    return this.chain;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    this.closed = true;
  }
}

/** Forwards pino lines to another logger at their level, keeping its format and bindings. */
function forwarder(also: Logger): { write(line: string): void } {
  const DROP = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'app']);
  return {
    write(line: string) {
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      const label = pino.levels.labels[obj.level as number] as pino.Level | undefined;
      if (!label || !also.isLevelEnabled(label)) return;
      const fields: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(obj)) if (!DROP.has(k)) fields[k] = v;
      also[label](fields, typeof obj.msg === 'string' ? obj.msg : '');
    },
  };
}

function levelValue(label: string): number {
  const v = pino.levels.values[label];
  if (v === undefined) return label === 'silent' ? Infinity : pino.levels.values.info;
  return v;
}

/** Opens the run's log in the lake. */
export async function openRunLog(lake: Lake, store: RunStore, opts: RunLogOptions = {}): Promise<RunLog> {
  const key = store.logKey;
  const level = opts.level ?? process.env.GENOLAKE_LOG_LEVEL ?? 'info';
  const reportError = (e: unknown): void => {
    const message = e instanceof Error ? e.message : String(e);
    try {
      opts.also?.warn({ key, err: message }, `could not write the run log to ${lake.describe()}`);
    } catch {
      // a broken second logger must not break the run
    }
  };

  let sink: Sink;
  const path = lake.localPath(key);
  if (level === 'silent') {
    sink = { write: () => undefined, flush: async () => undefined, close: async () => undefined };
  } else if (path !== undefined) {
    sink = new FileSink(path);
  } else {
    let previous: Buffer | undefined;
    if (opts.resume) {
      previous = await lake.getBuffer(key).catch((e: unknown) => {
        if (isGenolakeError(e) && e.code === 'LAKE_NOT_FOUND') return undefined;
        throw e;
      });
      // A put cut short never happens (puts are whole), but a line cut by an old crash
      // would glue to the next one: make sure the old log ends with a newline.
      if (previous?.length && previous[previous.length - 1] !== 0x0a) previous = Buffer.concat([previous, Buffer.from('\n')]);
    }
    sink = new BufferedObjectSink(lake, key, previous, opts.flushIntervalMs ?? 5000, reportError);
  }

  const streams: pino.StreamEntry[] = [];
  let min = Infinity;
  if (level !== 'silent') {
    streams.push({ level: level as pino.Level, stream: sink });
    min = Math.min(min, levelValue(level));
  }
  if (opts.also && opts.also.level !== 'silent') {
    streams.push({ level: opts.also.level as pino.Level, stream: forwarder(opts.also) });
    min = Math.min(min, levelValue(opts.also.level));
  }
  const loggerLevel = min === Infinity ? 'silent' : (pino.levels.labels[min] ?? 'info');
  const log = pino(
    { level: loggerLevel, base: { app: 'genolake', runId: store.runId }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );

  let closed: Promise<void> | undefined;
  return {
    log,
    key,
    flush: () => sink.flush().catch(reportError),
    close: () =>
      (closed ??= (async () => {
        log.level = 'silent';
        await sink.close().catch(reportError);
      })()),
  };
}
