/** The aligner's task function, run in worker threads (workers/align.ts) or inline. */
import { KernelInstance, SplitKernel, type AlignerKernel, type AlignParams, type KernelResult, type SharedIndexHandle } from './kernel.js';

export interface AlignTaskPayload {
  handle: SharedIndexHandle;
  params: AlignParams;
  paired: boolean;
  /** ASCII bases of all reads, read i at seqs[offs[i], offs[i+1]). */
  seqs: Uint8Array;
  offs: Int32Array;
}

const instances = new Map<string, AlignerKernel>();

export function kernelFor(handle: SharedIndexHandle): AlignerKernel {
  let k = instances.get(handle.id);
  if (!k) {
    k = handle.split ? new SplitKernel(handle) : new KernelInstance(handle);
    // a thread keeps instances of the few most recent indexes only
    if (instances.size >= 4) instances.delete(instances.keys().next().value as string);
    instances.set(handle.id, k);
  }
  return k;
}

export function alignTask(p: AlignTaskPayload): KernelResult {
  return kernelFor(p.handle).alignBatch(p.seqs, p.offs, p.paired, p.params);
}
