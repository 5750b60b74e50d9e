/**
 * Progress of a run: counters per stage, a live display on a terminal, and one summary
 * per stage for the log. The display redraws at most five times a second (a tick, not
 * per event, so a stage finishing 10 000 small tasks costs nothing) and writes nothing
 * at all when stderr is not a terminal (CI, pipes, log files).
 */
import type { StageStatus } from './run.js';

/** What a stage reports through `ctx.progress`. */
export interface StageProgress {
  /** Adds to the number of tasks the stage expects (runTasks does this itself). */
  setTotal(tasks: number): void;
  taskDone(): void;
  /** Work done in units the reader cares about, e.g. `addUnits('reads', 5000)`. */
  addUnits(name: string, n: number): void;
}

export interface StageSnapshot {
  name: string;
  status: StageStatus;
  tasksDone: number;
  tasksTotal: number;
  units: Record<string, number>;
  startedAt?: number;
  endedAt?: number;
}

export class StageCounter implements StageProgress {
  readonly snapshot: StageSnapshot;
  private readonly changed: () => void;

  constructor(name: string, changed: () => void = () => undefined) {
    this.snapshot = { name, status: 'pending', tasksDone: 0, tasksTotal: 0, units: {} };
    this.changed = changed;
  }
  setTotal(tasks: number): void {
    this.snapshot.tasksTotal += Math.max(0, tasks);
    this.changed();
  }
  taskDone(): void {
    this.snapshot.tasksDone++;
    this.changed();
  }
  addUnits(name: string, n: number): void {
    this.snapshot.units[name] = (this.snapshot.units[name] ?? 0) + n;
    this.changed();
  }
  start(now = Date.now()): void {
    this.snapshot.status = 'running';
    this.snapshot.startedAt = now;
    this.changed();
  }
  finish(status: StageStatus, now = Date.now()): void {
    this.snapshot.status = status;
    this.snapshot.endedAt = now;
    this.changed();
  }
}

function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function fmtRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n >= 100 ? n.toFixed(0) : n.toFixed(1);
}

export function elapsedSeconds(s: StageSnapshot, now = Date.now()): number {
  if (s.startedAt === undefined) return 0;
  return Math.max(0, ((s.endedAt ?? now) - s.startedAt) / 1000);
}

/** One display line: `align      running   12/40 tasks  48.2k reads/s  1m05s`. */
export function formatStageLine(s: StageSnapshot, now = Date.now(), nameWidth = 12): string {
  const parts = [s.name.padEnd(nameWidth), s.status.padEnd(7)];
  if (s.tasksTotal > 0 || s.tasksDone > 0) parts.push(`${s.tasksDone}/${s.tasksTotal} tasks`);
  const secs = elapsedSeconds(s, now);
  for (const [unit, n] of Object.entries(s.units)) {
    parts.push(secs > 0 ? `${fmtRate(n / secs)} ${unit}/s` : `${n} ${unit}`);
  }
  if (s.startedAt !== undefined) parts.push(fmtSeconds(secs));
  return parts.join('  ');
}

/** Minimal view of a terminal stream (process.stderr). */
export interface ProgressStream {
  isTTY?: boolean;
  write(chunk: string): boolean;
}

/**
 * The live display. `stream` is where to draw (default process.stderr); nothing is drawn
 * unless it is a TTY.
 */
export class ProgressDisplay {
  private readonly stream: ProgressStream | undefined;
  private readonly counters: StageCounter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private drawnLines = 0;
  private dirty = false;

  constructor(stream: ProgressStream | undefined) {
    this.stream = stream?.isTTY ? stream : undefined;
  }

  get live(): boolean {
    return this.stream !== undefined;
  }

  /** A counter for one stage, shown in the order stages are added. */
  stage(name: string): StageCounter {
    const c = new StageCounter(name, () => {
      this.dirty = true;
    });
    this.counters.push(c);
    return c;
  }

  start(): void {
    if (!this.stream || this.timer) return;
    // Running stages' elapsed time and rates change every tick even without events.
    this.timer = setInterval(() => this.draw(this.counters.some((c) => c.snapshot.status === 'running')), 200);
    this.timer.unref();
  }

  /** Redraws the block of stage lines in place if anything changed. */
  draw(force = false): void {
    if (!this.stream || (!this.dirty && !force)) return;
    this.dirty = false;
    const width = Math.max(8, ...this.counters.map((c) => c.snapshot.name.length));
    const now = Date.now();
    const lines = this.counters.map((c) => formatStageLine(c.snapshot, now, width));
    // Cursor up over the previous block, then rewrite each line and clear its tail.
    let out = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    for (const line of lines) out += `\r\x1b[2K${line}\n`;
    this.stream.write(out);
    this.drawnLines = lines.length;
  }

  /** Final redraw and stop; the block stays on screen. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.draw(true);
  }
}
