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
 *
 * A split index (index parts, see wasm/src/gl.h) has one such memory per part, whose
 * slots are larger by SERVE_EXTRA (requests and answers); each thread then also keeps a
 * private driver memory (no index) where the batch logic runs (SplitKernel).
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
const OPTS_FIELDS = 19;
const SEC_INTS = 8;

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
  /**
   * 1: also report every other alignment over the primary's part of the read scoring at
   * least minScore, as secondary alignments (bwa mem -a); 0: none.
   */
  allHits: number;
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
  allHits: 0,
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
  gl_drive_batch(opts: number, n: number, paired: number, seqs: number, offs: number, out: number,
    arena: number, cap: number, st: number, dv: number): number;
  gl_serve(idx: number, opts: number, base: number, firstTid: number, seqs: number, offs: number, reqs: number, nReq: number,
    arena: number, cap: number, pool: number, poolCap: number, poolUsed: number): number;
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
  if (codes.length >= 2 ** 31) throw new GenolakeError('INDEX_TOO_BIG', 'index part over 2 Gbases: use smaller index parts (--max-part-bases)');
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
  /** A split index: its parts (memory above is the first part's). */
  split?: SplitIndexInfo;
}

export interface SplitIndexPart {
  memory: WasmMemory;
  slotBase: number;
  /** Global coordinate of its first base, and its contigs [firstContig, firstContig + nContigs). */
  base: number;
  firstContig: number;
  nContigs: number;
}

export interface SplitIndexInfo {
  parts: SplitIndexPart[];
  k: number;
  w: number;
  /** Contig lengths of the whole reference, in order. */
  lengths: number[];
}

/** Extra bytes of a part's slot: the requests to answer and the answers. */
const SERVE_EXTRA = 16 << 20;
const SERVE_REQ_BYTES = 1 << 20;

/**
 * Shared memories for a split index: one per part, sized for its blob and `slots` thread
 * slots; `blobs[p]` is where part p's bytes go.
 */
export function allocateSplitIndex(info: Omit<SplitIndexInfo, 'parts'> & { parts: Omit<SplitIndexPart, 'memory' | 'slotBase'>[] },
  blobBytes: readonly number[], slots: number): { handle: SharedIndexHandle; blobs: Uint8Array[] } {
  const slotBytes = DEFAULT_SLOT_BYTES + SERVE_EXTRA;
  const blobs: Uint8Array[] = [];
  const parts: SplitIndexPart[] = info.parts.map((p, i) => {
    const slotBase = Math.ceil((INDEX_BASE + blobBytes[i]) / PAGE) * PAGE;
    const memory = sharedMemory(slotBase + slots * slotBytes);
    new Int32Array(memory.buffer, SLOT_COUNTER, 1)[0] = 0;
    blobs.push(new Uint8Array(memory.buffer, INDEX_BASE, blobBytes[i]));
    return { ...p, memory, slotBase };
  });
  const handle: SharedIndexHandle = {
    id: `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
    memory: parts[0].memory,
    module: kernelModule(),
    slotBase: parts[0].slotBase,
    slotBytes,
    slots,
    split: { k: info.k, w: info.w, lengths: info.lengths, parts },
  };
  return { handle, blobs };
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
  /** Secondary alignments (allHits), in read order: secRead[j] is the read of the j-th. */
  secRead: Int32Array;
  secTid: Int32Array;
  secPos: Int32Array;
  secRev: Uint8Array;
  secAs: Int32Array;
  secNm: Int32Array;
  secMd: string[];
  secCigar: Uint32Array;
  secCigarOff: Int32Array;
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

/** Where contig tid's bases are: a sequence array and the global coordinate of its first byte. */
type RefOf = (tid: number) => { ref: Uint8Array; base: number };

/** IO area of a slot at `base` for a batch of n reads (the layout both kinds of kernel use). */
function ioLayout(base: number, n: number, seqBytes: number, slotBytes: number) {
  const optsAt = base + STACK;
  const statsAt = optsAt + 128;
  const offsAt = statsAt + 64;
  const outAt = align8(offsAt + 4 * (n + 1));
  const seqAt = outAt + ALN_BYTES * n;
  const arenaAt = base + STACK + IO_BYTES;
  if (seqAt + seqBytes > arenaAt) throw new GenolakeError('KERNEL_BATCH', `batch of ${seqBytes} bases is too large for the kernel slot`);
  return { optsAt, statsAt, offsAt, outAt, seqAt, arenaAt, arenaCap: base + slotBytes - arenaAt };
}

function writeBatch(mem: ArrayBuffer, io: ReturnType<typeof ioLayout>, seqs: Uint8Array, offs: Int32Array, p: AlignParams): void {
  const o = new Int32Array(mem, io.optsAt, OPTS_FIELDS);
  o.set([p.match, p.mismatch, p.gapOpen, p.gapExtend, p.clip5, p.clip3, p.band, p.maxOcc, p.maxGap, p.chainBw,
    p.minChainScore, p.maxExt, p.minScore, p.penUnpaired, p.isizeMean, p.isizeSd, p.maxRescue, p.simd, p.allHits]);
  new Int32Array(mem, io.offsAt, offs.length).set(offs);
  new Uint8Array(mem, io.seqAt, seqs.length).set(seqs);
}

/** The kernel's output records (gl_aln_t[n] at outAt) as a KernelResult, with NM and MD. */
function decodeBatch(mem: ArrayBuffer, outAt: number, statsAt: number, n: number, seqs: Uint8Array, offs: Int32Array, refOf: RefOf): KernelResult {
  const rec = new Int32Array(mem, outAt, ALN_INTS * n);
  const u32 = new Uint32Array(mem);
  const st = new Int32Array(mem, statsAt, 6);
  const nSec = st[4], secAt = st[5] >>> 0;
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
    secRead: new Int32Array(nSec), secTid: new Int32Array(nSec), secPos: new Int32Array(nSec), secRev: new Uint8Array(nSec),
    secAs: new Int32Array(nSec), secNm: new Int32Array(nSec), secMd: new Array<string>(nSec), secCigar: new Uint32Array(0), secCigarOff: new Int32Array(nSec + 1),
  };
  if (nSec > 0) {
    const sec = new Int32Array(mem, secAt, SEC_INTS * nSec);
    let total = 0;
    for (let j = 0; j < nSec; j++) total += sec[SEC_INTS * j + 5];
    res.secCigar = new Uint32Array(total);
    let at = 0;
    for (let j = 0; j < nSec; j++) {
      const s = SEC_INTS * j, i = sec[s], nc = sec[s + 5], ptr = sec[s + 6] >>> 0;
      res.secRead[j] = i; res.secTid[j] = sec[s + 1]; res.secPos[j] = sec[s + 2]; res.secRev[j] = sec[s + 3]; res.secAs[j] = sec[s + 4];
      res.secCigarOff[j] = at;
      res.secCigar.set(u32.subarray(ptr >>> 2, (ptr >>> 2) + nc), at);
      [res.secNm[j], res.secMd[j]] = mdnm(refOf(sec[s + 1]), seqs, offs[i], offs[i + 1], sec[s + 3] !== 0, sec[s + 7] >>> 0, res.secCigar, at, at + nc);
      at += nc;
    }
    res.secCigarOff[nSec] = at;
  }
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
      const [snm, smd] = mdnm(refOf(rec[r + 16]), seqs, offs[i], offs[i + 1], rec[r + 18] !== 0, rec[r + 23] >>> 0, res.supCigar, nsc, nsc + ns);
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
      const [nm, md] = mdnm(refOf(res.tid[i]), seqs, offs[i], offs[i + 1], (res.flag[i] & 16) !== 0, rec[r + 14] >>> 0, res.cigar, res.cigarOff[i], nc);
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

/** NM and MD of one alignment at global position gpos (as samtools calmd computes them: N never matches). */
function mdnm(at: { ref: Uint8Array; base: number }, seqs: Uint8Array, qs: number, qe: number, rev: boolean, gpos: number, cig: Uint32Array, c0: number, c1: number): [number, string] {
  const ref = at.ref;
  const L = qe - qs;
  const qAt = (i: number): number => (rev ? COMP[seqs[qe - 1 - i]] : FWD[seqs[qs + i]]);
  let md = '';
  let run = 0, nm = 0, qi = 0, ri = gpos - at.base;
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

/** What a worker thread aligns batches with: a KernelInstance, or a SplitKernel for a split index. */
export interface AlignerKernel {
  alignBatch(seqs: Uint8Array, offs: Int32Array, paired: boolean, p: AlignParams): KernelResult;
}

function failed(rc: number): GenolakeError {
  return new GenolakeError('KERNEL_FAILED', `aligner kernel failed with code ${rc}${rc === -2 ? ' (arena full: use smaller batches)' : ''}`);
}

/** Claims this thread's slot of a memory laid out by allocateSharedIndex / allocateSplitIndex. */
function claimSlot(memory: WasmMemory, slots: number): number {
  const counter = new Int32Array(memory.buffer, SLOT_COUNTER, 1);
  const slot = Atomics.add(counter, 0, 1);
  if (slot >= slots) throw new GenolakeError('KERNEL_SLOTS', `no free kernel slot (${slots} slots)`);
  return slot;
}

/** One thread's kernel instance on its own slot of the shared memory. */
export class KernelInstance implements AlignerKernel {
  private readonly ex: KernelExports;
  private readonly base: number;
  private readonly ref: Uint8Array;
  private readonly refStart: Uint32Array;

  constructor(readonly handle: SharedIndexHandle) {
    const slot = claimSlot(handle.memory, handle.slots);
    this.base = handle.slotBase + slot * handle.slotBytes;
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
    const io = ioLayout(this.base, n, seqs.length, this.handle.slotBytes);
    writeBatch(mem, io, seqs, offs, p);
    const rc = this.ex.gl_align_batch(INDEX_BASE, io.optsAt, n, paired ? 1 : 0, io.seqAt, io.offsAt, io.outAt, io.arenaAt, io.arenaCap, io.statsAt);
    if (rc !== 0) throw failed(rc);
    const whole = { ref: this.ref, base: 0 };
    return decodeBatch(mem, io.outAt, io.statsAt, n, seqs, offs, () => whole);
  }

  /** Contig start (global coordinate) of contig tid. */
  contigStart(tid: number): number {
    return this.refStart[2 * tid];
  }
}

const REQ_BYTES = 72;
const REQ_INTS = REQ_BYTES / 4;
const REQ = { kind: 0, read: 1, rev: 2, tid: 3, part: 10, data: 15 } as const;
const KIND_SEED = 1;
const DRIVE_BYTES = 128;
const DRIVE_WORDS = 18;
const DRIVER_REQS = 1 << 16;
/** Room for the driver's kept read mappings (a full batch of 150 bp pairs takes about 2 MiB). */
const MEMO_BYTES = 16 << 20;

/**
 * A thread's kernel for a split index: an instance on its slot of every part's memory
 * (answering requests, gl_serve) and a driver instance on a private memory running the
 * batch logic (gl_drive_batch). A batch is replayed until the driver has every answer
 * it asks for; the last replay computes exactly what one index would (wasm/src/gl.h).
 */
export class SplitKernel implements AlignerKernel {
  private readonly parts: { ex: KernelExports; base: number; info: SplitIndexPart; ref: Uint8Array }[];
  private readonly driver: KernelExports;
  private readonly dmem: WasmMemory;
  private readonly partOf: Int32Array;
  private readonly info: SplitIndexInfo;
  private readonly dvAt: number;
  private readonly ctgAt: number;
  private readonly reqsAt: number;
  private readonly memoIdxAt: number;
  private readonly memoAt: number;
  private readonly dynAt: number;

  constructor(readonly handle: SharedIndexHandle) {
    const info = handle.split!;
    this.info = info;
    this.parts = info.parts.map((part) => {
      const slot = claimSlot(part.memory, handle.slots);
      const base = part.slotBase + slot * handle.slotBytes;
      const ex = instantiate(handle.module, part.memory);
      ex.__stack_pointer.value = base + STACK;
      const h = new Uint32Array(part.memory.buffer, INDEX_BASE, HEADER_BYTES / 4);
      return { ex, base, info: part, ref: new Uint8Array(part.memory.buffer, INDEX_BASE + h[IX.seqOff], h[IX.seqLen]) };
    });
    this.partOf = new Int32Array(info.lengths.length);
    info.parts.forEach((p, i) => this.partOf.fill(i, p.firstContig, p.firstContig + p.nContigs));
    this.dvAt = INDEX_BASE + DEFAULT_SLOT_BYTES;
    this.ctgAt = this.dvAt + DRIVE_BYTES;
    this.reqsAt = align8(this.ctgAt + 8 * info.lengths.length);
    this.memoIdxAt = this.reqsAt + DRIVER_REQS * REQ_BYTES;
    this.memoAt = align8(this.memoIdxAt + 4 * MAX_BATCH_READS);
    this.dynAt = Math.ceil((this.memoAt + MEMO_BYTES) / 64) * 64;
    this.dmem = sharedMemory(this.dynAt + (8 << 20));
    this.driver = instantiate(handle.module, this.dmem);
    this.driver.__stack_pointer.value = INDEX_BASE + STACK;
    const ctg = new Uint32Array(this.dmem.buffer, this.ctgAt, 2 * info.lengths.length);
    let start = 0;
    info.lengths.forEach((len, i) => {
      ctg[2 * i] = start;
      ctg[2 * i + 1] = len;
      start += len;
    });
  }

  alignBatch(seqs: Uint8Array, offs: Int32Array, paired: boolean, p: AlignParams): KernelResult {
    const n = offs.length - 1;
    if (n > MAX_BATCH_READS) throw new GenolakeError('KERNEL_BATCH', `batch of ${n} reads exceeds ${MAX_BATCH_READS}`);
    // the driver's slot is an ordinary one, so its arena limits are those of a single index
    const dio = ioLayout(INDEX_BASE, n, seqs.length, DEFAULT_SLOT_BYTES);
    writeBatch(this.dmem.buffer, dio, seqs, offs, p);
    const pio = this.parts.map((part) => {
      const io = ioLayout(part.base, n, seqs.length, DEFAULT_SLOT_BYTES);
      writeBatch(part.info.memory.buffer, io, seqs, offs, p);
      return io;
    });
    const cache: Uint8Array[] = [];
    let nCache = 0;
    const pool: Uint8Array[] = [];
    let poolBytes = 0;
    const seqLen = this.info.lengths.reduce((a, b) => a + b, 0);
    new Int32Array(this.dmem.buffer, this.memoIdxAt, n).fill(0);
    let memoUsed = 0;
    for (;;) {
      const cacheAt = this.dynAt;
      const idxAt = cacheAt + REQ_BYTES * nCache;
      const poolAt = align8(idxAt + 4 * (n + 1 + nCache));
      ensure(this.dmem, poolAt + poolBytes + PAGE);
      const mem = this.dmem.buffer;
      const bytes = new Uint8Array(mem);
      let at = cacheAt;
      for (const c of cache) { bytes.set(c, at); at += c.length; }
      at = poolAt;
      for (const c of pool) { bytes.set(c, at); at += c.length; }
      const dv = new Uint32Array(mem, this.dvAt, DRIVE_WORDS);
      dv.set([this.info.k, this.info.w, this.parts.length, this.info.lengths.length, seqLen, this.ctgAt, cacheAt, nCache, poolAt,
        this.reqsAt, DRIVER_REQS, 0, idxAt, this.memoIdxAt, this.memoAt, MEMO_BYTES, memoUsed]);
      const rc = this.driver.gl_drive_batch(dio.optsAt, n, paired ? 1 : 0, dio.seqAt, dio.offsAt, dio.outAt, dio.arenaAt, dio.arenaCap, dio.statsAt, this.dvAt);
      if (rc === 0) {
        return decodeBatch(mem, dio.outAt, dio.statsAt, n, seqs, offs, (tid) => {
          const part = this.parts[this.partOf[tid]];
          return { ref: part.ref, base: part.info.base };
        });
      }
      if (rc !== 1) throw failed(rc);
      const nReq = new Int32Array(mem, this.dvAt, DRIVE_WORDS)[11];
      memoUsed = dv[16];
      const reqs = new Int32Array(mem.slice(this.reqsAt, this.reqsAt + nReq * REQ_BYTES));
      const byPart: number[][] = this.parts.map(() => []);
      for (let r = 0; r < nReq; r++) {
        if (reqs[r * REQ_INTS + REQ.kind] === KIND_SEED) byPart.forEach((l) => l.push(r));
        else byPart[this.partOf[reqs[r * REQ_INTS + REQ.tid]]].push(r);
      }
      byPart.forEach((list, pi) => {
        const part = this.parts[pi];
        const io = pio[pi];
        const reqAt = part.base + DEFAULT_SLOT_BYTES;
        const answersAt = reqAt + SERVE_REQ_BYTES;
        const answersCap = SERVE_EXTRA - SERVE_REQ_BYTES;
        const usedAt = io.statsAt + 32;
        for (let done = 0; done < list.length;) {
          const m = Math.min(list.length - done, Math.floor(SERVE_REQ_BYTES / REQ_BYTES));
          const pmem = part.info.memory.buffer;
          const out = new Int32Array(pmem, reqAt, m * REQ_INTS);
          for (let j = 0; j < m; j++) out.set(reqs.subarray(list[done + j] * REQ_INTS, (list[done + j] + 1) * REQ_INTS), j * REQ_INTS);
          const served = part.ex.gl_serve(INDEX_BASE, io.optsAt, part.info.base, part.info.firstContig, io.seqAt, io.offsAt, reqAt, m,
            io.arenaAt, io.arenaCap, answersAt, answersCap, usedAt);
          if (served <= 0) throw failed(served);
          const used = new Uint32Array(pmem, usedAt, 1)[0];
          const answered = new Int32Array(pmem.slice(reqAt, reqAt + served * REQ_BYTES));
          for (let j = 0; j < served; j++) {
            answered[j * REQ_INTS + REQ.part] = pi;
            answered[j * REQ_INTS + REQ.data] += poolBytes;
          }
          cache.push(new Uint8Array(answered.buffer));
          nCache += served;
          pool.push(new Uint8Array(pmem.slice(answersAt, answersAt + used)));
          poolBytes += used;
          done += served;
        }
      });
    }
  }
}
