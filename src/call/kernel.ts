/**
 * Host side of the caller kernel (wasm/caller.wasm, C in wasm/caller/): the base-evidence
 * loop of a region's pileup, run on every aligned base of every read.
 *
 * One call per region: a memory sized for that region's records and outputs, laid out
 * above the module's __heap_base (see wasm/caller/caller.h), a fresh instance on it, one
 * kernel call. The outputs are returned as views of that memory (no copy); the memory is
 * freed with them. The module is compiled once per thread.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WasmGlobal, WasmMemory, WasmModule } from '../align/kernel.js';
import { GenolakeError, InputError } from '../util/errors.js';
import { packageRoot } from '../util/paths.js';

interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: unknown };
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const PAGE = 65536;
const PILEUP_STRUCT_BYTES = 28;

interface CallerExports {
  __heap_base: WasmGlobal;
  gc_abi(): number;
  gc_pileup(recs: number, off: number, mask: number, n: number, start: number, end: number, minBq: number, lut: number, pu: number): number;
}

let cachedModule: WasmModule | undefined;

export function callerKernelPath(): string {
  return join(packageRoot(), 'wasm', 'caller.wasm');
}

function callerModule(): WasmModule {
  if (!cachedModule) cachedModule = new WA.Module(readFileSync(callerKernelPath()));
  return cachedModule;
}

/** Per-position evidence of a region (see src/call/pileup.ts for each sum). */
export interface BaseEvidence {
  /** Per position × 4 bases (A, C, G, T). */
  count: Uint32Array;
  forward: Uint32Array;
  s1: Float32Array;
  s2: Float32Array;
  s3: Float32Array;
  /** Reads passing the MAPQ filter that cover the position with a base (any quality). */
  depth: Uint32Array;
  /** Σ MAPQ² over those reads (for INFO MQ). */
  mq2: Float64Array;
}

const align8 = (x: number): number => (x + 7) & ~7;

/**
 * Base evidence of [start, end) from the records `records[i]` for i in `reads` (those that
 * passed the read filters), with `masks[2j], masks[2j+1]` the interval whose bases of the
 * j-th of them count. `lut` = L1, L2, L3 (100 floats each). `file` names the BAM in errors.
 */
export function pileupBases(
  records: readonly Buffer[],
  reads: readonly number[],
  masks: Int32Array,
  start: number,
  end: number,
  minBaseQ: number,
  lut: Float32Array,
  file: string,
): BaseEvidence {
  const L = Math.max(0, end - start);
  const n = reads.length;
  let recBytes = 0;
  for (const i of reads) recBytes += records[i].length;
  const module = callerModule();
  // The module's static area ends at __heap_base; read it from a throwaway instance on a
  // one-page memory (instantiation is cheap next to compiling, which is cached).
  const heapBase = probeHeapBase(module);
  let at = align8(heapBase);
  const take = (bytes: number): number => {
    const p = at;
    at = align8(at + bytes);
    return p;
  };
  const lutAt = take(lut.byteLength);
  const puAt = take(PILEUP_STRUCT_BYTES);
  const offAt = take(4 * n);
  const maskAt = take(8 * n);
  const countAt = take(16 * L);
  const forwardAt = take(16 * L);
  const s1At = take(16 * L);
  const s2At = take(16 * L);
  const s3At = take(16 * L);
  const depthAt = take(4 * L);
  const mq2At = take(8 * L);
  const recAt = take(recBytes);
  const memory = new WA.Memory({ initial: Math.ceil(at / PAGE) + 1, maximum: 65536 });
  const ex = new WA.Instance(module, { env: { memory } }).exports as CallerExports;
  if (ex.gc_abi() !== PILEUP_STRUCT_BYTES) throw new GenolakeError('KERNEL_ABI', 'caller.wasm does not match this host (gc_abi)');
  const buf = memory.buffer;
  new Float32Array(buf, lutAt, lut.length).set(lut);
  new Uint32Array(buf, puAt, 7).set([countAt, forwardAt, s1At, s2At, s3At, depthAt, mq2At]);
  const off = new Int32Array(buf, offAt, n);
  const bytes = new Uint8Array(buf);
  let p = recAt;
  for (let j = 0; j < n; j++) {
    const r = records[reads[j]];
    off[j] = p - recAt;
    bytes.set(r, p);
    p += r.length;
  }
  new Int32Array(buf, maskAt, 2 * n).set(masks.subarray(0, 2 * n));
  const rc = ex.gc_pileup(recAt, offAt, maskAt, n, start, end, minBaseQ, lutAt, puAt);
  if (rc !== 0) throw new InputError('BAM_CORRUPT', 'a record of the region has a CIGAR or sequence longer than the record', { file });
  return {
    count: new Uint32Array(buf, countAt, 4 * L),
    forward: new Uint32Array(buf, forwardAt, 4 * L),
    s1: new Float32Array(buf, s1At, 4 * L),
    s2: new Float32Array(buf, s2At, 4 * L),
    s3: new Float32Array(buf, s3At, 4 * L),
    depth: new Uint32Array(buf, depthAt, L),
    mq2: new Float64Array(buf, mq2At, L),
  };
}

let heapBaseCache: number | undefined;
function probeHeapBase(module: WasmModule): number {
  if (heapBaseCache === undefined) {
    const memory = new WA.Memory({ initial: 2, maximum: 65536 });
    const ex = new WA.Instance(module, { env: { memory } }).exports as CallerExports;
    heapBaseCache = ex.__heap_base.value;
  }
  return heapBaseCache;
}
