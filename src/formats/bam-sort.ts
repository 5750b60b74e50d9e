/**
 * Coordinate sort with bounded memory, merge of sorted shard BAMs, and the final
 * writer (sorted records → optional duplicate marking → BAM + BAI + qc.json).
 *
 * Order: (refId as unsigned, so unplaced records with refId -1 come last; pos; reverse
 * strand), exactly `samtools sort`'s key; ties keep input order (stable), so the output
 * is a deterministic function of the input order and equals `samtools sort` of the same
 * records. Records are raw BAM buffers; they are collected up to `memoryBytes`, sorted,
 * and spilled as temporary BGZF runs, then k-way merged (runs in creation order break
 * ties, which keeps the merge stable).
 */
import { mkdtemp, rm, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputError } from '../util/errors.js';
import { BaiBuilder } from './bai.js';
import { BamReader, BamWriter, withSortOrder, type BamHeader } from './bam.js';
import type { BgzfWriterOptions } from './bgzf.js';
import { addMateTags, markDuplicates, type MarkdupOptions, type MarkdupStats } from './markdup.js';
import { QcCollector, type QcReport } from './qc.js';

/** Sort key, high part: reference id as unsigned 32-bit (-1 → 2^32-1). */
export function keyHi(r: Buffer): number {
  return r.readUInt32LE(4);
}
/** Sort key, low part: (pos + 1) * 2 + reverse. */
export function keyLo(r: Buffer): number {
  return (r.readInt32LE(8) + 1) * 2 + ((r[18] >> 4) & 1);
}

export interface SortOptions {
  /** Byte budget for records held in memory before a run is spilled (default 512 MiB). */
  memoryBytes?: number;
  /** Directory for spilled runs (default os.tmpdir()). */
  tmpDir?: string;
  /** zlib level of spilled runs (default 1). */
  spillLevel?: number;
  /** Records per yielded batch (default 8192). */
  batchSize?: number;
}

/** Sorts a batch of records in place (stable). */
export function sortRecords(recs: Buffer[]): Buffer[] {
  const n = recs.length;
  // fast path: one number per record, (refId or 2^20-1 for unplaced) * 2^33 + keyLo < 2^53
  let small = true;
  for (let i = 0; i < n && small; i++) {
    const hi = keyHi(recs[i]);
    if (hi >= 0xfffff && hi !== 0xffffffff) small = false;
  }
  if (small) {
    const key = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const hi = keyHi(recs[i]);
      key[i] = (hi === 0xffffffff ? 0xfffff : hi) * 8589934592 + keyLo(recs[i]);
    }
    const idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => key[a] - key[b] || a - b);
    const out = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) out[i] = recs[idx[i]];
    return out;
  }
  const hi = new Float64Array(n);
  const lo = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    hi[i] = keyHi(recs[i]);
    lo[i] = keyLo(recs[i]);
  }
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => hi[a] - hi[b] || lo[a] - lo[b] || a - b);
  const out = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) out[i] = recs[idx[i]];
  return out;
}

interface Cursor {
  it: AsyncIterator<Buffer[]>;
  batch: Buffer[];
  i: number;
  hi: number;
  lo: number;
  order: number;
}

function cursorLess(a: Cursor, b: Cursor): boolean {
  return a.hi < b.hi || (a.hi === b.hi && (a.lo < b.lo || (a.lo === b.lo && a.order < b.order)));
}

/**
 * K-way merge of sorted batch streams; ties go to the earlier source, so merging runs
 * of one input in creation order is stable.
 */
export async function* mergeSorted(sources: AsyncIterable<Buffer[]>[], batchSize = 8192): AsyncGenerator<Buffer[]> {
  const heap: Cursor[] = [];
  const load = async (c: Cursor): Promise<boolean> => {
    while (c.i >= c.batch.length) {
      const n = await c.it.next();
      if (n.done) return false;
      c.batch = n.value;
      c.i = 0;
    }
    c.hi = keyHi(c.batch[c.i]);
    c.lo = keyLo(c.batch[c.i]);
    return true;
  };
  const siftDown = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && cursorLess(heap[l], heap[m])) m = l;
      if (r < heap.length && cursorLess(heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let k = 0; k < sources.length; k++) {
    const c: Cursor = { it: sources[k][Symbol.asyncIterator](), batch: [], i: 0, hi: 0, lo: 0, order: k };
    if (await load(c)) heap.push(c);
  }
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  let out: Buffer[] = [];
  while (heap.length > 0) {
    const c = heap[0];
    out.push(c.batch[c.i++]);
    if (out.length >= batchSize) {
      yield out;
      out = [];
    }
    if (c.i < c.batch.length) {
      c.hi = keyHi(c.batch[c.i]);
      c.lo = keyLo(c.batch[c.i]);
    } else if (!(await load(c))) {
      const last = heap.pop() as Cursor;
      if (heap.length === 0) break;
      heap[0] = last;
    }
    siftDown(0);
  }
  if (out.length) yield out;
}

/**
 * Stable LSD radix sort of record indices by (hi, lo) where hi < 2^21 and lo < 2^32
 * (four 16-bit passes, passes with a single digit value skipped). Returns the order.
 */
export function radixOrder(hi: Uint32Array, lo: Uint32Array, n: number): Uint32Array {
  let idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  let tmp = new Uint32Array(n);
  const count = new Uint32Array(65537);
  const passes: [Uint32Array, number][] = [
    [lo, 0],
    [lo, 16],
    [hi, 0],
    [hi, 16],
  ];
  for (const [arr, shift] of passes) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[((arr[i] >>> shift) & 0xffff) + 1]++;
    let single = false;
    for (let d = 1; d <= 65536; d++) {
      if (count[d] === n) single = true;
      if (count[d] !== 0) break;
    }
    if (single) continue;
    for (let d = 1; d <= 65536; d++) count[d] += count[d - 1];
    for (let i = 0; i < n; i++) {
      const j = idx[i];
      tmp[count[(arr[j] >>> shift) & 0xffff]++] = j;
    }
    const t = idx;
    idx = tmp;
    tmp = t;
  }
  return idx;
}

const ARENA_CHUNK = 16 * 1024 * 1024;

/**
 * Collects raw records, spilling sorted runs when the byte budget is reached.
 * Records are copied into large arena buffers and addressed by typed arrays (no object
 * per held record, so millions of records cost the garbage collector nothing) and
 * ordered with a stable radix sort on (refId, pos, strand).
 * Use: `for (r of input) if (sorter.add(r)) await sorter.spill();` then iterate
 * `sorter.sorted()` once; `cleanup()` removes the temporary files.
 */
export class CoordinateSorter {
  private chunks: Buffer[] = [];
  private chunkUsed = 0;
  private n = 0;
  private recChunk: Uint32Array = new Uint32Array(1024);
  private recOff: Uint32Array = new Uint32Array(1024);
  private keyHiArr: Uint32Array = new Uint32Array(1024);
  private keyLoArr: Uint32Array = new Uint32Array(1024);
  /** Fallback for inputs whose keys do not fit the radix layout (≥ 2^20 references). */
  private wide = false;
  private heldBytes = 0;
  private runs: string[] = [];
  private dir: string | undefined;
  private readonly memoryBytes: number;
  private readonly batchSize: number;
  records = 0;

  constructor(
    private readonly header: BamHeader,
    private readonly opts: SortOptions = {},
  ) {
    this.memoryBytes = opts.memoryBytes ?? 512 * 1024 * 1024;
    this.batchSize = opts.batchSize ?? 8192;
    this.wide = header.refs.length >= 0xfffff;
  }

  /** Number of runs spilled to disk so far. */
  get spills(): number {
    return this.runs.length;
  }

  private grow(): void {
    const cap = this.recChunk.length * 2;
    const g = (a: Uint32Array): Uint32Array => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    };
    this.recChunk = g(this.recChunk);
    this.recOff = g(this.recOff);
    this.keyHiArr = g(this.keyHiArr);
    this.keyLoArr = g(this.keyLoArr);
  }

  /** Adds one record (copied); returns true when the budget is reached and `spill()` should be awaited. */
  add(r: Buffer): boolean {
    const len = r.length;
    let chunk = this.chunks[this.chunks.length - 1];
    if (!chunk || this.chunkUsed + len > chunk.length) {
      chunk = Buffer.allocUnsafe(Math.max(ARENA_CHUNK, len));
      this.chunks.push(chunk);
      this.chunkUsed = 0;
    }
    r.copy(chunk, this.chunkUsed);
    if (this.n === this.recChunk.length) this.grow();
    const i = this.n++;
    this.recChunk[i] = this.chunks.length - 1;
    this.recOff[i] = this.chunkUsed;
    this.chunkUsed += len;
    // key: hi = refId' * 2 + top bit of lo, lo = low 32 bits of (pos + 1) * 2 + reverse
    const tid = r.readUInt32LE(4);
    const tidKey = tid === 0xffffffff ? 0xfffff : tid;
    const lo = (r.readInt32LE(8) + 1) * 2 + ((r[18] >> 4) & 1);
    this.keyHiArr[i] = tidKey * 2 + (lo >= 4294967296 ? 1 : 0);
    this.keyLoArr[i] = lo >>> 0;
    this.records++;
    this.heldBytes += len + 16;
    return this.heldBytes >= this.memoryBytes;
  }

  async addBatch(batch: Buffer[]): Promise<void> {
    for (const r of batch) if (this.add(r)) await this.spill();
  }

  private recordAt(i: number): Buffer {
    const c = this.chunks[this.recChunk[i]];
    const off = this.recOff[i];
    return c.subarray(off, off + 4 + c.readInt32LE(off));
  }

  /** The held records in order, and resets the store (the arena stays referenced by the result). */
  private takeSorted(): { order: Uint32Array; at: (k: number) => Buffer } {
    const n = this.n;
    let order: Uint32Array;
    if (this.wide) {
      const recs = Array.from({ length: n }, (_, i) => this.recordAt(i));
      const sorted = sortRecords(recs);
      order = new Uint32Array(n);
      const pos = new Map(recs.map((r, i) => [r, i]));
      sorted.forEach((r, k) => (order[k] = pos.get(r) as number));
    } else order = radixOrder(this.keyHiArr, this.keyLoArr, n);
    const chunks = this.chunks;
    const recChunk = this.recChunk;
    const recOff = this.recOff;
    const at = (k: number): Buffer => {
      const i = order[k];
      const c = chunks[recChunk[i]];
      const off = recOff[i];
      return c.subarray(off, off + 4 + c.readInt32LE(off));
    };
    this.chunks = [];
    this.chunkUsed = 0;
    this.n = 0;
    this.recChunk = new Uint32Array(1024);
    this.recOff = new Uint32Array(1024);
    this.keyHiArr = new Uint32Array(1024);
    this.keyLoArr = new Uint32Array(1024);
    this.heldBytes = 0;
    return { order, at };
  }

  /** Sorts the held records and writes them as a temporary run. */
  async spill(): Promise<void> {
    if (this.n === 0) return;
    if (!this.dir) this.dir = await mkdtemp(join(this.opts.tmpDir ?? tmpdir(), 'genolake-sort-'));
    const path = join(this.dir, `run-${this.runs.length}.bam`);
    const { order, at } = this.takeSorted();
    const w = await BamWriter.toFile(path, this.header, { level: this.opts.spillLevel ?? 1 });
    for (let k = 0; k < order.length; k++) {
      w.writeRaw(at(k));
      if (w.needsDrain) await w.drain();
    }
    await w.close();
    this.runs.push(path);
  }

  /** All records in coordinate order, in batches. */
  async *sorted(): AsyncGenerator<Buffer[]> {
    const { order, at } = this.takeSorted();
    const bs = this.batchSize;
    async function* memory(): AsyncGenerator<Buffer[]> {
      for (let i = 0; i < order.length; i += bs) {
        const end = Math.min(order.length, i + bs);
        const batch = new Array<Buffer>(end - i);
        for (let k = i; k < end; k++) batch[k - i] = at(k);
        yield batch;
      }
    }
    if (this.runs.length === 0) {
      yield* memory();
      return;
    }
    const sources: AsyncIterable<Buffer[]>[] = [];
    for (const path of this.runs) {
      const reader = await BamReader.open(path, { checkCrc: false });
      sources.push(reader.batches());
    }
    sources.push(memory());
    yield* mergeSorted(sources, bs);
  }

  async cleanup(): Promise<void> {
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    this.runs = [];
  }
}

/**
 * Merged header of several shard BAMs: references must be identical (same names and
 * lengths, same order); @HD from the first, other lines (@RG, @PG, @CO) in first-seen
 * order without duplicates.
 */
export function mergeHeaders(headers: BamHeader[], files: string[] = []): BamHeader {
  if (headers.length === 0) throw new InputError('BAM_MERGE', 'nothing to merge');
  const refs = headers[0].refs;
  headers.forEach((h, k) => {
    const same = h.refs.length === refs.length && h.refs.every((r, i) => r.name === refs[i].name && r.length === refs[i].length);
    if (!same) throw new InputError('BAM_MERGE', 'references differ from the first input', { file: files[k] });
  });
  const seen = new Set<string>();
  const lines: string[] = [];
  const hd = headers[0].text.split('\n').find((l) => l.startsWith('@HD\t'));
  if (hd) lines.push(hd);
  for (const h of headers) {
    for (const l of h.text.split('\n')) {
      if (!l || l.startsWith('@HD\t') || seen.has(l)) continue;
      seen.add(l);
      lines.push(l);
    }
  }
  return { text: lines.join('\n') + '\n', refs: refs.map((r) => ({ ...r })) };
}

/** Opens coordinate-sorted shard BAMs and merges them (stable: ties go to the earlier file). */
export async function mergeSortedBams(paths: string[], batchSize = 8192): Promise<{ header: BamHeader; batches: AsyncGenerator<Buffer[]> }> {
  const readers = await Promise.all(paths.map((p) => BamReader.open(p)));
  const header = mergeHeaders(
    readers.map((r) => r.header),
    paths,
  );
  return { header, batches: mergeSorted(readers.map((r) => r.batches()), batchSize) };
}

export interface WriteBamOptions extends BgzfWriterOptions {
  /** Write `<out>.bai` (default true). */
  index?: boolean;
  /** Mark duplicates (default false). */
  markDuplicates?: boolean | MarkdupOptions;
  /** Collect qc.json data (default true); written to `qcPath` when given. */
  qc?: boolean;
  qcPath?: string;
  /** Path of the index (default `<out>.bai`). */
  indexPath?: string;
}

export interface WriteBamResult {
  records: number;
  bamBytes: number;
  index?: { refs: { name: string; length: number; mapped: number; unmapped: number }[]; noCoor: number };
  qc?: QcReport;
  markdup?: MarkdupStats;
}

/**
 * Writes coordinate-sorted record batches as the final BAM (header gets
 * SO:coordinate), marking duplicates, indexing and collecting QC on the way.
 * Output files appear under a temporary name and are renamed when complete.
 */
export async function writeSortedBam(header: BamHeader, sorted: AsyncIterable<Buffer[]>, out: string, opts: WriteBamOptions = {}): Promise<WriteBamResult> {
  const h: BamHeader = { text: withSortOrder(header.text, 'coordinate'), refs: header.refs };
  const tmpOut = `${out}.tmp-${process.pid}`;
  const w = await BamWriter.toFile(tmpOut, h, { level: opts.level, threads: opts.threads, batchBlocks: opts.batchBlocks });
  const bai = opts.index === false ? undefined : new BaiBuilder(h.refs.length, out);
  const qc = opts.qc === false ? undefined : new QcCollector(h);
  let mdStats: MarkdupStats | undefined;
  const stream = opts.markDuplicates
    ? markDuplicates(h, sorted, typeof opts.markDuplicates === 'object' ? opts.markDuplicates : {}, (s) => (mdStats = s))
    : sorted;
  try {
    for await (const batch of stream) {
      for (const r of batch) {
        const [b, e] = w.writeRaw(r);
        bai?.addRaw(r, b, e);
        qc?.add(r);
      }
      if (w.needsDrain) await w.drain();
    }
    await w.close();
  } catch (e) {
    await w.close().catch(() => undefined);
    await rm(tmpOut, { force: true });
    throw e;
  }
  const result: WriteBamResult = { records: w.records, bamBytes: w.bgzf.compressedBytes };
  if (bai) {
    const idxPath = opts.indexPath ?? `${out}.bai`;
    await writeFile(`${idxPath}.tmp-${process.pid}`, bai.encode((v) => w.resolve(v)));
    await rename(`${idxPath}.tmp-${process.pid}`, idxPath);
    const s = bai.stats();
    result.index = {
      refs: s.refs.map((r) => ({ name: h.refs[r.refId].name, length: h.refs[r.refId].length, mapped: r.mapped, unmapped: r.unmapped })),
      noCoor: s.noCoor,
    };
  }
  await rename(tmpOut, out);
  if (qc) {
    result.qc = qc.report(mdStats);
    if (opts.qcPath) await writeFile(opts.qcPath, JSON.stringify(result.qc, null, 2) + '\n');
  }
  if (mdStats) result.markdup = mdStats;
  return result;
}

export interface SortToBamOptions extends SortOptions, WriteBamOptions {
  /**
   * Add MC/ms mate tags on the (name-grouped) input before sorting, as `samtools
   * fixmate -m` does; default: true when marking duplicates.
   */
  mateTags?: boolean;
}

/**
 * The whole BAM side of a shard or sample: records (raw buffers, name-grouped when
 * duplicates are marked) → sorted, optionally duplicate-marked, indexed BAM + qc.
 */
export async function sortToBam(
  header: BamHeader,
  input: AsyncIterable<Buffer[]>,
  out: string,
  opts: SortToBamOptions = {},
): Promise<WriteBamResult & { spills: number }> {
  const sorter = new CoordinateSorter(header, opts);
  try {
    const withMate = opts.mateTags ?? Boolean(opts.markDuplicates);
    const src = withMate ? addMateTags(input) : input;
    for await (const batch of src) await sorter.addBatch(batch);
    const res = await writeSortedBam(header, sorter.sorted(), out, opts);
    return { ...res, spills: sorter.spills };
  } finally {
    await sorter.cleanup();
  }
}
