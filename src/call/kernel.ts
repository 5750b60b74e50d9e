/**
 * Host side of the caller kernel (wasm/caller.wasm, C in wasm/caller/): the base-evidence
 * loop of a region's pileup, run on every aligned base of every read (pileup.c), the local
 * realignment of reads against candidate indel haplotypes (realign.c), and the genotype
 * likelihoods and calls of a batch of sites (genotype.c).
 *
 * One call per region (or batch) and function: a memory sized for its inputs and outputs,
 * laid out above the module's __heap_base (see wasm/caller/caller.h), a fresh instance on
 * it, one kernel call. The outputs are returned as views of that memory (no copy); the memory is
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
  gc_genotype(sites: number, nSites: number, nSamples: number, data: number, out: number, qual: number): number;
  gc_realign(
    recs: number,
    off: number,
    sites: number,
    haps: number,
    hapSeq: number,
    jobs: number,
    nJobs: number,
    gapOpenQ: number,
    gapExtQ: number,
    seg: number,
    scratch: number,
    out: number,
  ): number;
}

let cachedModule: WasmModule | undefined;

/** The module's imports: its memory, and the Math functions genotype.c takes from the host. */
const imports = (memory: WasmMemory): object => ({ env: { memory, log10: Math.log10, pow: Math.pow } });

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
  const heap = heapLayout(module);
  const take = heap.take;
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
  const memory = new WA.Memory({ initial: Math.ceil(heap.end() / PAGE) + 1, maximum: 65536 });
  const ex = new WA.Instance(module, imports(memory)).exports as CallerExports;
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

/**
 * Lays out a call's buffers one after another (8-byte aligned) above the module's static
 * area; `end()` is where the memory must reach.
 */
function heapLayout(module: WasmModule): { take(bytes: number): number; end(): number } {
  let at = align8(probeHeapBase(module));
  return {
    take(bytes: number): number {
      const p = at;
      at = align8(at + bytes);
      return p;
    },
    end: () => at,
  };
}

// The module's static area ends at __heap_base; read it from a throwaway instance on a
// one-page memory (instantiation is cheap next to compiling, which is cached).
let heapBaseCache: number | undefined;
function probeHeapBase(module: WasmModule): number {
  if (heapBaseCache === undefined) {
    const memory = new WA.Memory({ initial: 2, maximum: 65536 });
    const ex = new WA.Instance(module, imports(memory)).exports as CallerExports;
    heapBaseCache = ex.__heap_base.value;
  }
  return heapBaseCache;
}

/** Realignment work of a region (see gc_realign in wasm/caller/caller.h). */
export interface RealignBatch {
  /** BAM records (with their block_size); jobs name them by index. */
  records: readonly Buffer[];
  /**
   * Per site: window start, window end (reference, 0-based half-open), first haplotype,
   * haplotype count, reference position of the haplotypes' first base, band half-width.
   */
  sites: Int32Array;
  /** Per haplotype: offset and length in hapSeq. */
  haps: Int32Array;
  /** Haplotype bases, 0..3 = A, C, G, T, 4 = other. */
  hapSeq: Uint8Array;
  /** Per job: site, record, first output slot (one slot per haplotype of the site). */
  jobs: Int32Array;
  /** Output slots. */
  nOut: number;
  /** Gap open and extension, phred. */
  gapOpenQ: number;
  gapExtQ: number;
}

const SEG_BYTES = 131072;

/** log10 P(read segment | haplotype) for every job and haplotype, in one kernel call. */
export function realignReads(b: RealignBatch, file: string): Float64Array {
  const nRec = b.records.length;
  const nJobs = b.jobs.length / 3;
  let recBytes = 0;
  for (const r of b.records) recBytes += r.length;
  let maxHap = 0;
  for (let h = 1; h < b.haps.length; h += 2) maxHap = Math.max(maxHap, b.haps[h]);
  const module = callerModule();
  const heap = heapLayout(module);
  const take = heap.take;
  const outAt = take(8 * b.nOut);
  const scratchAt = take(8 * 6 * (maxHap + 1));
  const offAt = take(4 * nRec);
  const sitesAt = take(4 * b.sites.length);
  const hapsAt = take(4 * b.haps.length);
  const jobsAt = take(4 * b.jobs.length);
  const segAt = take(SEG_BYTES);
  const hapSeqAt = take(b.hapSeq.length);
  const recAt = take(recBytes);
  const memory = new WA.Memory({ initial: Math.ceil(heap.end() / PAGE) + 1, maximum: 65536 });
  const ex = new WA.Instance(module, imports(memory)).exports as CallerExports;
  if (ex.gc_abi() !== PILEUP_STRUCT_BYTES) throw new GenolakeError('KERNEL_ABI', 'caller.wasm does not match this host (gc_abi)');
  const buf = memory.buffer;
  new Int32Array(buf, sitesAt, b.sites.length).set(b.sites);
  new Int32Array(buf, hapsAt, b.haps.length).set(b.haps);
  new Int32Array(buf, jobsAt, b.jobs.length).set(b.jobs);
  const bytes = new Uint8Array(buf);
  bytes.set(b.hapSeq, hapSeqAt);
  const off = new Int32Array(buf, offAt, nRec);
  let p = recAt;
  for (let j = 0; j < nRec; j++) {
    off[j] = p - recAt;
    bytes.set(b.records[j], p);
    p += b.records[j].length;
  }
  const rc = ex.gc_realign(recAt, offAt, sitesAt, hapsAt, hapSeqAt, jobsAt, nJobs, b.gapOpenQ, b.gapExtQ, segAt, scratchAt, outAt);
  if (rc !== 0) throw new InputError('BAM_CORRUPT', 'a record of the region has a CIGAR or sequence longer than the record', { file });
  return new Float64Array(buf, outAt, b.nOut);
}

/** Bytes of gc_gsite_t (caller.h). */
const GSITE_BYTES = 40;

/**
 * A site to genotype: an SNV from the pileup sums of each sample (12 numbers: S1, S2, S3
 * of A, C, G, T) and the base of each allele, or an indel from each sample's reads (their
 * allele log10 likelihoods and caps; see readLogLiks in genotype.ts).
 */
export type GenotypeRequest =
  | { kind: 'snv'; alleles: number[]; theta: number; samples: ArrayLike<number>[] }
  | { kind: 'reads'; nAlleles: number; theta: number; samples: { liks: number[][]; caps: number[] }[] };

export interface KernelSiteCall {
  qual: number;
  calls: { gt: number; gq: number; pl: number[] }[];
}

/** Genotypes a batch of sites (all with the same samples) in one kernel call (gc_genotype). */
export function genotypeSites(reqs: readonly GenotypeRequest[], nSamples: number): KernelSiteCall[] {
  if (reqs.length === 0) return [];
  let nData = 0;
  let nOut = 0;
  const nAll = (r: GenotypeRequest) => (r.kind === 'snv' ? r.alleles.length : r.nAlleles);
  for (const r of reqs) {
    const n = nAll(r);
    nOut += nSamples * (2 + (n * (n + 1)) / 2);
    if (r.kind === 'snv') nData += 12 * nSamples;
    else for (const s of r.samples) nData += 1 + s.liks.length * (n + 1);
  }
  const module = callerModule();
  const heap = heapLayout(module);
  const take = heap.take;
  const sitesAt = take(GSITE_BYTES * reqs.length);
  const dataAt = take(8 * nData);
  const outAt = take(4 * nOut);
  const qualAt = take(8 * reqs.length);
  const memory = new WA.Memory({ initial: Math.ceil(heap.end() / PAGE) + 1, maximum: 65536 });
  const ex = new WA.Instance(module, imports(memory)).exports as CallerExports;
  const buf = memory.buffer;
  const view = new DataView(buf);
  const data = new Float64Array(buf, dataAt, nData);
  let d = 0;
  let o = 0;
  reqs.forEach((r, i) => {
    const n = nAll(r);
    const base = sitesAt + GSITE_BYTES * i;
    view.setInt32(base, r.kind === 'snv' ? 0 : 1, true);
    view.setInt32(base + 4, n, true);
    if (r.kind === 'snv') r.alleles.forEach((a, j) => view.setInt32(base + 8 + 4 * j, a, true));
    view.setInt32(base + 24, d, true);
    view.setInt32(base + 28, o, true);
    view.setFloat64(base + 32, r.theta, true);
    if (r.kind === 'snv') {
      for (const s of r.samples) for (let x = 0; x < 12; x++) data[d++] = s[x];
    } else {
      for (const s of r.samples) {
        data[d++] = s.liks.length;
        s.liks.forEach((l, k) => {
          for (let a = 0; a < n; a++) data[d++] = l[a];
          data[d++] = s.caps[k];
        });
      }
    }
    o += nSamples * (2 + (n * (n + 1)) / 2);
  });
  if (ex.gc_genotype(sitesAt, reqs.length, nSamples, dataAt, outAt, qualAt) !== 0) {
    throw new GenolakeError('KERNEL_GENOTYPE', 'gc_genotype was given a site with an unsupported number of alleles');
  }
  const out = new Int32Array(buf, outAt, nOut);
  const qual = new Float64Array(buf, qualAt, reqs.length);
  o = 0;
  return reqs.map((r, i) => {
    const ng = (nAll(r) * (nAll(r) + 1)) / 2;
    const calls = [];
    for (let s = 0; s < nSamples; s++) {
      calls.push({ gt: out[o], gq: out[o + 1], pl: Array.from(out.subarray(o + 2, o + 2 + ng)) });
      o += 2 + ng;
    }
    return { qual: qual[i], calls };
  });
}
