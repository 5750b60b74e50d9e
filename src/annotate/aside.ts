/**
 * Two threads, BGZF output: one thread annotates and nothing else, the other (a pool worker,
 * workers/annotate-aside.ts) reads and cuts the VCF into tasks (tasks.ts), and compresses
 * and writes the output (writer.ts). On two cores this splits the work about evenly: the
 * annotator is the larger half, and a second annotating thread would cost more in compiling
 * and heap than it wins (see annotate.ts).
 *
 * The two talk over a MessagePort of their own rather than through pool tasks: a pool hands
 * a worker its next task only from the event loop of the thread that owns the pool, which
 * the annotating thread turns only between tasks, so request-and-reply would leave the
 * worker idle. Here the worker reads ahead (up to AHEAD tasks not yet returned), and the
 * annotated text goes back as soon as it is made (moved, not copied).
 *
 * The worker also checks the records no transcript can reach that are alone in their chunk
 * (most of a VCF), with the annotator's record reader (chunk.ts: `QuietChecker`); the
 * annotator copies those through unread.
 *
 * Messages, worker → annotator: `header` (the header lines), `task`, `error` (a record the
 * reader refused, after a task holding that record alone: see tasks.ts), `end`. Annotator →
 * worker: `text` (output header), `out` (a task's output), `close` (all is sent: finish the
 * file), `abort`.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { TaskPool } from '../engine/pool.js';
import { isSerialisedTaskError, reviveTaskError, type SerialisedTaskError, serialiseTaskError } from '../engine/worker.js';
import { QuietChecker } from './chunk.js';
import { spanReacher } from './genemodel.js';
import { type CutItem, type CutTask, type TaskSource, VcfTaskReader } from './tasks.js';
import { openWriter, type TaskOutput, type TextWriter } from './writer.js';

/** The pool's worker entry (workers/annotate-aside.ts). */
export const ASIDE_WORKER = 'annotate-aside';

/**
 * Tasks the worker reads ahead of the annotator (each about 2 MB of VCF): enough to ride out
 * stretches where annotating is slower than compressing, and the other way round.
 */
const AHEAD = 8;

export interface AsideRequest {
  port: MessagePort;
  vcf: string;
  reference: string;
  /** Check quiet records here (chunk.ts: `QuietChecker`); not with known-variant databases, which may give any record an ID. */
  checkQuiet: boolean;
  /** The transcripts' spans (genemodel.ts: `shareSpans`), for cutting. */
  spans: SharedArrayBuffer;
  taskRecords?: number;
  /** The output file (a temporary name: the caller publishes it). */
  out: string;
  level: number;
}

export interface AsideResult {
  records: number;
  chromOrder: string[];
}

type ToAnnotator =
  | { header: string[] }
  | { task: CutTask }
  | { error: SerialisedTaskError }
  | { end: AsideResult };

type ToWorker = { text: Uint8Array } | { out: TaskOutput } | { close: true } | { abort: true };

/** The annotating thread's end: a task source and the output writer in one. */
export class AsideWorker implements TaskSource, TextWriter {
  private readonly inbox: ToAnnotator[] = [];
  private wake: (() => void) | null = null;
  private failed: { err: unknown } | null = null;
  private ended: AsideResult | null = null;
  /**
   * The worker has read the whole VCF (its `end` is here, maybe behind tasks not taken yet):
   * what it has left is compressing, so the annotator compresses the tasks still to come
   * itself rather than leave them queued behind the others at the worker.
   */
  readAll = false;
  records = 0;
  chromOrder: string[] = [];

  private constructor(
    private readonly port: MessagePort,
    private readonly done: Promise<AsideResult | null>,
  ) {
    port.on('message', (m: ToAnnotator) => {
      this.inbox.push(m);
      if ('end' in m) this.readAll = true;
      this.wake?.();
    });
    // the worker's own failure (reading, writing) ends the wait for its next message
    done.then(
      () => this.wake?.(),
      (err: unknown) => {
        this.failed = { err };
        this.wake?.();
      },
    );
  }

  static open(pool: TaskPool, req: Omit<AsideRequest, 'port'>): AsideWorker {
    const { port1, port2 } = new MessageChannel();
    const done = pool.run<AsideRequest, AsideResult | null>(ASIDE_WORKER, { ...req, port: port2 }, { transferList: [port2] });
    done.catch(() => undefined); // surfaces through `receive`
    return new AsideWorker(port1, done);
  }

  private async receive(): Promise<ToAnnotator | null> {
    for (;;) {
      const m = this.inbox.shift();
      if (m) return m;
      if (this.failed) throw this.failed.err;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  async header(): Promise<string[]> {
    const m = await this.receive();
    if (!m || !('header' in m)) throw new Error('annotate-aside: expected the header first');
    return m.header;
  }

  async next(): Promise<CutItem | null> {
    if (this.ended) return null;
    const m = await this.receive();
    if (!m) return null;
    if ('task' in m) return { task: m.task };
    if ('error' in m) throw isSerialisedTaskError(m.error) ? reviveTaskError(m.error) : m.error;
    if ('end' in m) {
      this.ended = m.end;
      this.records = m.end.records;
      this.chromOrder = m.end.chromOrder;
      return null;
    }
    throw new Error('annotate-aside: unexpected message');
  }

  private send(m: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (this.failed) throw this.failed.err;
    this.port.postMessage(m, transfer);
  }

  async write(s: string | Uint8Array): Promise<void> {
    this.send({ text: typeof s === 'string' ? Buffer.from(s, 'latin1') : s });
  }

  async task(res: TaskOutput): Promise<void> {
    // moved, not copied, when the bytes have a buffer of their own (a small one may be a slice of Node's shared pool)
    const b = res.bytes;
    const own = b.buffer instanceof ArrayBuffer && b.buffer.byteLength >= 1 << 16 ? b : Uint8Array.prototype.slice.call(b);
    this.send({ out: { bytes: own, head: res.head, blocks: res.blocks, cut: res.cut, cuts: res.cuts } }, [own.buffer as ArrayBuffer]);
  }

  /** All output is sent: the worker finishes the file. */
  async close(): Promise<void> {
    this.send({ close: true });
    await this.done;
    this.port.close();
  }

  /** Stops the worker (the output file is left for the caller to remove). */
  async abort(): Promise<void> {
    if (!this.failed) this.port.postMessage({ abort: true } satisfies ToWorker);
    await this.done.catch(() => undefined);
    this.port.close();
  }
}

/** The worker's end: reads ahead, writes what comes back, until `close` or `abort`. */
export async function runAside(req: AsideRequest): Promise<AsideResult | null> {
  const { port } = req;
  const inbox: ToWorker[] = [];
  let wake: (() => void) | null = null;
  port.on('message', (m: ToWorker) => {
    inbox.push(m);
    wake?.();
  });
  const reader = new VcfTaskReader(req.vcf, spanReacher(req.spans), { taskRecords: req.taskRecords, taper: true });
  let writer: TextWriter | null = null;
  let quiet: QuietChecker | null = null;
  try {
    const post = (m: ToAnnotator, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
    post({ header: await reader.header() });
    writer = await openWriter(req.out, true, req.level);
    quiet = req.checkQuiet ? await QuietChecker.open(req.reference, spanReacher(req.spans), req.vcf) : null;
    let sent = 0, back = 0;
    let reading = true;
    for (;;) {
      while (reading && sent - back < AHEAD) {
        let item: CutItem | null;
        try {
          item = await reader.next();
        } catch (e) {
          item = { error: e as Error } as CutItem;
        }
        if (!item) {
          post({ end: { records: reader.records, chromOrder: reader.chromOrder } });
          reading = false;
        } else if ('error' in item) {
          post({ error: serialiseTaskError(item.error) });
          reading = false;
        } else {
          // a copy of its own, moved (the reader reuses its buffer)
          const data = Uint8Array.prototype.slice.call(item.task.data);
          const t = item.task;
          // checking takes this thread's time: not when the annotator is about to run out of tasks
          // (the first one, or this thread fell behind), which then reads those records itself
          let outsWaiting = 0;
          for (const m of inbox) if ('out' in m) outsWaiting++;
          const atAnnotator = sent - back - outsWaiting;
          const checkedQuiet = atAnnotator >= 2 ? quiet?.mark(data, t.chunks, t.firstRecord, t.firstLine) : undefined;
          post({ task: { ...t, data, ...(checkedQuiet ? { checkedQuiet } : {}) } }, [data.buffer]);
          sent++;
        }
      }
      let m = inbox.shift();
      if (!m) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        m = inbox.shift();
        if (!m) continue;
      }
      if ('text' in m) await writer.write(m.text);
      else if ('out' in m) {
        await writer.task(m.out);
        back++;
      } else if ('close' in m) {
        await writer.close();
        return { records: reader.records, chromOrder: reader.chromOrder };
      } else return null;
    }
  } finally {
    port.close();
    await reader.close();
    await writer?.close().catch(() => undefined);
    quiet?.close();
  }
}
