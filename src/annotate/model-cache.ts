/**
 * Gene models kept on disk after their first reading, next to the file they come from
 * (`<gff>.genolake-model`, as the aligner keeps its index next to the FASTA). A GFF3 or GTF
 * is read line by line and checked once; later runs load the transcripts as they were made
 * (genemodel.ts: `shareModel`'s layout), in a fraction of the time — for a whole-genome
 * Ensembl GFF3, seconds instead of most of a minute.
 *
 * The copy is used only while the gene model file has the size and modification time the
 * copy records, and the layout version is this one; otherwise the file is read again and the
 * copy replaced. It is written under a temporary name and renamed; a directory that cannot
 * be written goes without.
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { type GeneModel, loadGeneModel, shareModel, sharedModel } from './genemodel.js';

/** Layout version of the copy (a change to `shareModel`'s layout must change it). */
const CACHE_VERSION = 1;
const MAGIC = 'genolake gene model';

/** Where the copy of `file`'s gene model is kept. */
export function modelCachePath(file: string): string {
  return `${file}.genolake-model`;
}

interface CacheKey {
  magic: string;
  version: number;
  format: 'gff3' | 'gtf';
  size: number;
  mtimeMs: number;
}

/**
 * `loadGeneModel`, through the copy on disk (`cache: false`: read the file, and leave any
 * copy as it is). Errors are those of reading the file itself.
 */
export async function loadGeneModelCached(file: string, format: 'gff3' | 'gtf', opts: { cache?: boolean } = {}): Promise<GeneModel> {
  if (opts.cache === false) return loadGeneModel(file, format);
  const st = await stat(file).catch(() => null);
  // (a missing file is reported by the reader)
  if (!st) return loadGeneModel(file, format);
  const key: CacheKey = { magic: MAGIC, version: CACHE_VERSION, format, size: st.size, mtimeMs: st.mtimeMs };
  const path = modelCachePath(file);
  const kept = await readCopy(path, key);
  if (kept) return kept;
  const model = await loadGeneModel(file, format);
  await writeCopy(path, key, model).catch(() => undefined);
  return model;
}

/** The model of the copy at `path` when it was made from the file as `key` describes it; else null. */
async function readCopy(path: string, key: CacheKey): Promise<GeneModel | null> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    return null;
  }
  try {
    const nl = bytes.indexOf(10);
    if (nl < 0) return null;
    const head = JSON.parse(bytes.toString('utf8', 0, nl)) as Partial<CacheKey> & { bytes?: number };
    if (head.magic !== key.magic || head.version !== key.version || head.format !== key.format || head.size !== key.size || head.mtimeMs !== key.mtimeMs) return null;
    if (head.bytes !== bytes.length - nl - 1) return null;
    // a buffer of its own: the layout's numbers are read as float64, 8-byte aligned from its start
    const body = new Uint8Array(bytes.length - nl - 1);
    body.set(bytes.subarray(nl + 1));
    return sharedModel(body.buffer);
  } catch {
    return null;
  }
}

async function writeCopy(path: string, key: CacheKey, model: GeneModel): Promise<void> {
  const body = new Uint8Array(shareModel(model));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, Buffer.concat([Buffer.from(JSON.stringify({ ...key, bytes: body.length }) + '\n', 'utf8'), body]));
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}
