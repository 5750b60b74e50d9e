/**
 * Host of the WebAssembly aligner kernel (wasm/aligner.wasm, sources in wasm/src).
 *
 * Memory map of the one shared WasmMemory (see wasm/src/gl.h):
 *   [0, 1 MiB)                      module static data, the slot counter at SLOT_COUNTER
 *   [INDEX_BASE, +index)            the index blob, read-only while aligning
 *   slot s at slotBase + s*slotSize  one per thread (workers and the main thread):
 *       [0, STACK)                  that instance's C stack
 *       [STACK, +IO)                opts, stats, read sequences, offsets, output records
 *       [.., slotSize)              the kernel's arena (hits, CIGARs, DP matrices)
 * A thread claims its slot once with an atomic increment of the slot counter.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenolakeError } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';

/* TypeScript's lib here has no WebAssembly types (no DOM lib): the few used are declared locally. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
export interface WasmGlobal {
  value: number;
}
/** A compiled WasmModule (opaque; structured-cloneable to workers). */
export type WasmModule = object;
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export const PAGE = 65536;
export const INDEX_BASE = 1 << 20;
const SLOT_COUNTER = INDEX_BASE - 64;
const STACK = 512 << 10;
const IO_BYTES = 6 << 20;
export const DEFAULT_SLOT_BYTES = 32 << 20;
/** Reads per kernel call at most (the IO area holds their sequences and records). */
export const MAX_BATCH_READS = 8192;
export const MAX_READ_LEN = 1024;
const ALN_BYTES = 96;
const ALN_INTS = ALN_BYTES / 4;
const OPTS_FIELDS = 18;

/** Scoring and search parameters (gl_opts_t, in order) plus the index's k and w. */
export interface AlignParams {
  match: number;
  mismatch: number;
  gapOpen: number;
  gapExtend: number;
  clip5: number;
  clip3: number;
  band: number;
  maxOcc: number;
  maxGap: number;
  chainBw: number;
  minChainScore: number;
  maxExt: number;
  minScore: number;
  penUnpaired: number;
  isizeMean: number;
  isizeSd: number;
  maxRescue: number;
  /** 1: SIMD128 extension; 0: the scalar reference implementation (same results, for tests). */
  simd: number;
}

export const DEFAULT_PARAMS: AlignParams = {
  match: 1,
  mismatch: 4,
  gapOpen: 6,
  gapExtend: 1,
  clip5: 5,
  clip3: 5,
  band: 16,
  maxOcc: 500,
  maxGap: 1000,
  chainBw: 4,
  minChainScore: 25,
  maxExt: 10,
  minScore: 30,
  penUnpaired: 17,
  isizeMean: 400,
  isizeSd: 100,
  maxRescue: 2,
  simd: 1,
};

export interface IndexParams {
  k: number;
  w: number;
}
export const DEFAULT_INDEX_PARAMS: IndexParams = { k: 19, w: 10 };

interface KernelExports {
  __stack_pointer: WasmGlobal;
  gl_index_count(idx: number): number;
  gl_index_bound(idx: number, n: number): number;
  gl_index_build(idx: number, scratch: number, n: number): number;
  gl_abi(): number;
  gl_align_batch(idx: number, opts: number, n: number, paired: number, seqs: number, offs: number, out: number,
    arena: number, cap: number, st: number): number;
}

let cachedModule: WasmModule | undefined;

export function kernelPath(): string {
  return join(packageRoot(), 'wasm', 'aligner.wasm');
}

/** The compiled kernel (compiled once per thread; a Module can also be posted to workers). */
export function kernelModule(): WasmModule {
  if (!cachedModule) cachedModule = new WA.Module(readFileSync(kernelPath()));
  return cachedModule;
}

function instantiate(module: WasmModule, memory: WasmMemory): KernelExports {
  const inst = new WA.Instance(module, { env: { memory } });
  const ex = inst.exports as unknown as KernelExports;
  const abi = ex.gl_abi();
  if (abi !== ((OPTS_FIELDS * 4) << 16 | ALN_BYTES)) throw new GenolakeError('KERNEL_ABI', `aligner.wasm ABI ${abi.toString(16)} does not match this host`);
  return ex;
}

function pagesFor(bytes: number): number {
  return Math.ceil(bytes / PAGE);
}

function sharedMemory(bytes: number): WasmMemory {
  return new WA.Memory({ initial: pagesFor(bytes), maximum: 65536, shared: true });
}

function ensure(memory: WasmMemory, bytes: number): void {
  const have = memory.buffer.byteLength;
  if (bytes > have) memory.grow(pagesFor(bytes - have));
}

const align8 = (x: number): number => (x + 7) & ~7;

/** Field offsets of gl_index_t (uint32 words). */
const IX = { magic: 0, version: 1, k: 2, w: 3, nContigs: 4, ctgOff: 5, seqOff: 6, seqLen: 7, totalSize: 16 } as const;
const HEADER_BYTES = 96;

/**
 * Builds the index blob (position independent) from sequence codes and contig lengths,
 * inside a temporary wasm memory.
 */
export function buildIndexBlob(codes: Uint8Array, lengths: readonly number[], p: IndexParams = DEFAULT_INDEX_PARAMS): Uint8Array {
  if (p.k < 5 || p.k > 31 || p.k % 2 === 0) throw new GenolakeError('INDEX_PARAMS', `k must be odd and in 5..31 (got ${p.k})`);
  if (p.w < 1 || p.w > 64) throw new GenolakeError('INDEX_PARAMS', `w must be in 1..64 (got ${p.w})`);
  if (codes.length >= 2 ** 31) throw new GenolakeError('INDEX_TOO_BIG', 'reference over 2 Gbases: index parts are not implemented yet');
  const ctgOff = HEADER_BYTES;
  const seqOff = align8(ctgOff + 8 * lengths.length);
  const memory = sharedMemory(INDEX_BASE + seqOff + codes.length + PAGE);
  const ex = instantiate(kernelModule(), memory);
  let u32 = new Uint32Array(memory.buffer, INDEX_BASE, HEADER_BYTES / 4);
  u32.fill(0);
  u32[IX.magic] = 0x58444c47;
  u32[IX.version] = 1;
  u32[IX.k] = p.k;
  u32[IX.w] = p.w;
  u32[IX.nContigs] = lengths.length;
  u32[IX.ctgOff] = ctgOff;
  u32[IX.seqOff] = seqOff;
  u32[IX.seqLen] = codes.length;
  const ctg = new Uint32Array(memory.buffer, INDEX_BASE + ctgOff, 2 * lengths.length);
  let start = 0;
  lengths.forEach((len, i) => {
    ctg[2 * i] = start;
    ctg[2 * i + 1] = len;
    start += len;
  });
  if (start !== codes.length) throw new GenolakeError('INDEX_INTERNAL', 'contig lengths do not add up to the sequence');
  new Uint8Array(memory.buffer, INDEX_BASE + seqOff, codes.length).set(codes);
  const n = ex.gl_index_count(INDEX_BASE);
  if (n < 0) throw new GenolakeError('INDEX_INTERNAL', `gl_index_count failed (${n})`);
  const bound = ex.gl_index_bound(INDEX_BASE, n) >>> 0;
  const scratch = align8(INDEX_BASE + bound);
  ensure(memory, scratch + 32 * (n + 1) + PAGE);
  ex.__stack_pointer.value = 1 << 19; // the bootstrap stack region below the slot counter
  const total = ex.gl_index_build(INDEX_BASE, scratch, n);
  if (total < 0) throw new GenolakeError('INDEX_INTERNAL', `gl_index_build failed (${total})`);
  u32 = new Uint32Array(memory.buffer, INDEX_BASE, HEADER_BYTES / 4);
  return new Uint8Array(memory.buffer, INDEX_BASE, total).slice();
}

/** Everything a thread needs to attach to the shared index (structured-cloneable). */
export interface SharedIndexHandle {
  id: string;
  memory: WasmMemory;
  module: WasmModule;
  slotBase: number;
  slotBytes: number;
  slots: number;
}

/**
 * Creates the shared memory for an index blob of `blobBytes` and `slots` thread slots;
 * `blob` is where the index bytes go (fill it before the first alignment).
 */
export function allocateSharedIndex(blobBytes: number, slots: number, slotBytes = DEFAULT_SLOT_BYTES): { handle: SharedIndexHandle; blob: Uint8Array } {
  const slotBase = Math.ceil((INDEX_BASE + blobBytes) / PAGE) * PAGE;
  const memory = sharedMemory(slotBase + slots * slotBytes);
  new Int32Array(memory.buffer, SLOT_COUNTER, 1)[0] = 0;
  const handle = {
    id: `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    memory,
    module: kernelModule(),
    slotBase,
    slotBytes,
    slots,
  };
  return { handle, blob: new Uint8Array(memory.buffer, INDEX_BASE, blobBytes) };
}

/** Alignments of one batch, column-wise (one entry per read, in input order). */
export interface KernelResult {
  n: number;
  flag: Int32Array;
  tid: Int32Array;
  pos: Int32Array;
  mapq: Int32Array;
  mtid: Int32Array;
  mpos: Int32Array;
  tlen: Int32Array;
  as: Int32Array;
  xs: Int32Array;
  nm: Int32Array;
  /** CIGAR ops of read i: cigar[cigarOff[i] .. cigarOff[i+1]) (BAM encoding len<<4|op). */
  cigar: Uint32Array;
  cigarOff: Int32Array;
  mateCigar: Uint32Array;
  mateCigarOff: Int32Array;
  md: string[];
  /** Supplementary alignment of read i (chimeric reads); supTid[i] = -1 when there is none. */
  supTid: Int32Array;
  supPos: Int32Array;
  supRev: Uint8Array;
  supMapq: Int32Array;
  supAs: Int32Array;
  supNm: Int32Array;
  supMd: string[];
  supCigar: Uint32Array;
  supCigarOff: Int32Array;
  isizeMean: number;
  isizeSd: number;
  isizeN: number;
  rescued: number;
}

const COMP = new Uint8Array(256);
for (let i = 0; i < 256; i++) COMP[i] = 4;
COMP[65] = COMP[97] = 3;
COMP[67] = COMP[99] = 2;
COMP[71] = COMP[103] = 1;
COMP[84] = COMP[116] = 0;
const FWD = new Uint8Array(256).fill(4);
FWD[65] = FWD[97] = 0;
FWD[67] = FWD[99] = 1;
FWD[71] = FWD[103] = 2;
FWD[84] = FWD[116] = 3;
const BASES = 'ACGTN';

/** One thread's kernel instance on its own slot of the shared memory. */
export class KernelInstance {
  private readonly ex: KernelExports;
  private readonly slot: number;
  private readonly base: number;
  private readonly ref: Uint8Array;
  private readonly refStart: Uint32Array;

  constructor(readonly handle: SharedIndexHandle) {
    const counter = new Int32Array(handle.memory.buffer, SLOT_COUNTER, 1);
    this.slot = Atomics.add(counter, 0, 1);
    if (this.slot >= handle.slots) throw new GenolakeError('KERNEL_SLOTS', `no free kernel slot (${handle.slots} slots)`);
    this.base = handle.slotBase + this.slot * handle.slotBytes;
    this.ex = instantiate(handle.module, handle.memory);
    this.ex.__stack_pointer.value = this.base + STACK;
    const h = new Uint32Array(handle.memory.buffer, INDEX_BASE, HEADER_BYTES / 4);
    this.ref = new Uint8Array(handle.memory.buffer, INDEX_BASE + h[IX.seqOff], h[IX.seqLen]);
    this.refStart = new Uint32Array(handle.memory.buffer, INDEX_BASE + h[IX.ctgOff], 2 * h[IX.nContigs]);
  }

  /**
   * Aligns n reads whose ASCII sequences are seqs[offs[i], offs[i+1]). Paired: reads
   * 2i and 2i+1 are mates. Reads longer than MAX_READ_LEN come back unmapped.
   */
  alignBatch(seqs: Uint8Array, offs: Int32Array, paired: boolean, p: AlignParams): KernelResult {
    const n = offs.length - 1;
    if (n > MAX_BATCH_READS) throw new GenolakeError('KERNEL_BATCH', `batch of ${n} reads exceeds ${MAX_BATCH_READS}`);
    const mem = this.handle.memory.buffer;
    const optsAt = this.base + STACK;
    const statsAt = optsAt + 128;
    const offsAt = statsAt + 64;
    const outAt = align8(offsAt + 4 * (n + 1));
    const seqAt = outAt + ALN_BYTES * n;
    const arenaAt = this.base + STACK + IO_BYTES;
    if (seqAt + seqs.length > arenaAt) throw new GenolakeError('KERNEL_BATCH', `batch of ${seqs.length} bases is too large for the kernel slot`);
    const o = new Int32Array(mem, optsAt, OPTS_FIELDS);
    o.set([p.match, p.mismatch, p.gapOpen, p.gapExtend, p.clip5, p.clip3, p.band, p.maxOcc, p.maxGap, p.chainBw,
      p.minChainScore, p.maxExt, p.minScore, p.penUnpaired, p.isizeMean, p.isizeSd, p.maxRescue, p.simd]);
    new Int32Array(mem, offsAt, n + 1).set(offs);
    new Uint8Array(mem, seqAt, seqs.length).set(seqs);
    const rc = this.ex.gl_align_batch(INDEX_BASE, optsAt, n, paired ? 1 : 0, seqAt, offsAt, outAt, arenaAt,
      this.base + this.handle.slotBytes - arenaAt, statsAt);
    if (rc !== 0) throw new GenolakeError('KERNEL_FAILED', `aligner kernel failed with code ${rc}${rc === -2 ? ' (arena full: use smaller batches)' : ''}`);
    const rec = new Int32Array(mem, outAt, ALN_INTS * n);
    const u32 = new Uint32Array(mem);
    const st = new Int32Array(mem, statsAt, 4);
    const res: KernelResult = {
      n,
      flag: new Int32Array(n), tid: new Int32Array(n), pos: new Int32Array(n), mapq: new Int32Array(n),
      mtid: new Int32Array(n), mpos: new Int32Array(n), tlen: new Int32Array(n), as: new Int32Array(n),
      xs: new Int32Array(n), nm: new Int32Array(n),
      cigar: new Uint32Array(0), cigarOff: new Int32Array(n + 1), mateCigar: new Uint32Array(0), mateCigarOff: new Int32Array(n + 1),
      md: new Array<string>(n),
      supTid: new Int32Array(n), supPos: new Int32Array(n), supRev: new Uint8Array(n), supMapq: new Int32Array(n),
      supAs: new Int32Array(n), supNm: new Int32Array(n), supMd: new Array<string>(n), supCigar: new Uint32Array(0), supCigarOff: new Int32Array(n + 1),
      isizeMean: st[0], isizeSd: st[1], isizeN: st[2], rescued: st[3],
    };
    let nc = 0, nmc = 0, nsc = 0;
    for (let i = 0; i < n; i++) {
      nc += rec[ALN_INTS * i + 10];
      nmc += rec[ALN_INTS * i + 12];
      if (rec[ALN_INTS * i + 16] >= 0) nsc += rec[ALN_INTS * i + 21];
    }
    res.cigar = new Uint32Array(nc);
    res.mateCigar = new Uint32Array(nmc);
    res.supCigar = new Uint32Array(nsc);
    nc = 0; nmc = 0; nsc = 0;
    for (let i = 0; i < n; i++) {
      const r = ALN_INTS * i;
      res.supCigarOff[i] = nsc;
      res.supTid[i] = rec[r + 16];
      res.supMd[i] = '';
      if (rec[r + 16] >= 0 && !(rec[r] & 4)) {
        const ns = rec[r + 21], sptr = rec[r + 22] >>> 0;
        res.supPos[i] = rec[r + 17]; res.supRev[i] = rec[r + 18]; res.supMapq[i] = rec[r + 19]; res.supAs[i] = rec[r + 20];
        res.supCigar.set(u32.subarray(sptr >>> 2, (sptr >>> 2) + ns), nsc);
        const [snm, smd] = this.mdnm(seqs, offs[i], offs[i + 1], rec[r + 18] !== 0, rec[r + 23] >>> 0, res.supCigar, nsc, nsc + ns);
        res.supNm[i] = snm;
        res.supMd[i] = smd;
        nsc += ns;
      } else {
        res.supTid[i] = -1;
      }
      res.flag[i] = rec[r]; res.tid[i] = rec[r + 1]; res.pos[i] = rec[r + 2]; res.mapq[i] = rec[r + 3];
      res.mtid[i] = rec[r + 4]; res.mpos[i] = rec[r + 5]; res.tlen[i] = rec[r + 6];
      res.as[i] = rec[r + 8]; res.xs[i] = rec[r + 9];
      const ncig = rec[r + 10], cptr = rec[r + 11] >>> 0, nmcig = rec[r + 12], mptr = rec[r + 13] >>> 0;
      res.cigarOff[i] = nc;
      if (ncig > 0) res.cigar.set(u32.subarray(cptr >>> 2, (cptr >>> 2) + ncig), nc);
      nc += ncig;
      res.mateCigarOff[i] = nmc;
      if (nmcig > 0) res.mateCigar.set(u32.subarray(mptr >>> 2, (mptr >>> 2) + nmcig), nmc);
      nmc += nmcig;
      if (ncig > 0 && !(res.flag[i] & 4)) {
        const [nm, md] = this.mdnm(seqs, offs[i], offs[i + 1], (res.flag[i] & 16) !== 0, rec[r + 14] >>> 0, res.cigar, res.cigarOff[i], nc);
        res.nm[i] = nm;
        res.md[i] = md;
      } else {
        res.nm[i] = -1;
        res.md[i] = '';
      }
    }
    res.cigarOff[n] = nc;
    res.mateCigarOff[n] = nmc;
    res.supCigarOff[n] = nsc;
    return res;
  }

  /** NM and MD of one alignment (as samtools calmd computes them: N never matches). */
  private mdnm(seqs: Uint8Array, qs: number, qe: number, rev: boolean, gpos: number, cig: Uint32Array, c0: number, c1: number): [number, string] {
    const ref = this.ref;
    const L = qe - qs;
    const qAt = (i: number): number => (rev ? COMP[seqs[qe - 1 - i]] : FWD[seqs[qs + i]]);
    let md = '';
    let run = 0, nm = 0, qi = 0, ri = gpos;
    for (let c = c0; c < c1; c++) {
      const op = cig[c] & 15, len = cig[c] >>> 4;
      if (op === 0) {
        for (let k = 0; k < len; k++) {
          const rb = ref[ri + k], qb = qAt(qi + k);
          if (rb === qb && rb < 4) run++;
          else {
            md += `${run}${BASES[rb]}`;
            run = 0;
            nm++;
          }
        }
        qi += len; ri += len;
      } else if (op === 1) {
        qi += len; nm += len;
      } else if (op === 2) {
        md += `${run}^`;
        for (let k = 0; k < len; k++) md += BASES[ref[ri + k]];
        run = 0;
        ri += len; nm += len;
      } else if (op === 4) {
        qi += len;
      }
    }
    md += `${run}`;
    if (qi !== L) throw new GenolakeError('KERNEL_CIGAR', `CIGAR consumes ${qi} bases of a ${L} bp read`);
    return [nm, md];
  }

  /** Contig start (global coordinate) of contig tid. */
  contigStart(tid: number): number {
    return this.refStart[2 * tid];
  }
}
