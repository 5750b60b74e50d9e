/**
 * Worker entry for the annotator: one task = consecutive chunks of a VCF (see
 * src/annotate/chunk.ts). The gene model (shared by the driver) and the reference are
 * taken once per thread and kept for later tasks with the same files (same paths, sizes
 * and modification times).
 */
import { statSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import { type AnnotateTask, type AnnotateTaskResult, ChunkAnnotator } from '../src/annotate/chunk.js';
import { sharedModel } from '../src/annotate/genemodel.js';

const cache = new Map<string, Promise<ChunkAnnotator>>();

function fileKey(path: string): string {
  try {
    const s = statSync(path);
    return `${path}:${s.size}:${s.mtimeMs}`;
  } catch {
    return path;
  }
}

export default async function annotate(task: AnnotateTask): Promise<AnnotateTaskResult> {
  const s = task.spec;
  const key = JSON.stringify([fileKey(s.reference), fileKey(`${s.reference}.fai`), task.modelKey, s.local, s.vep, s.known ?? null]);
  let p = cache.get(key);
  if (!p) {
    p = ChunkAnnotator.open(s, task.model ? sharedModel(task.model) : undefined);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
    // a thread keeps the two most recent gene models
    while (cache.size > 2) {
      const [oldKey, old] = cache.entries().next().value as [string, Promise<ChunkAnnotator>];
      cache.delete(oldKey);
      old.then((a) => a.close(), () => undefined);
    }
  }
  const res = await (await p).runTask(task);
  if (res.known) res.thread = threadId;
  // a view is cloned with its whole backing store: send just the bytes (Buffer's own slice() would be a view)
  res.bytes = Uint8Array.prototype.slice.call(res.bytes);
  return res;
}
