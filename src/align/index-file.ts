/**
 * The aligner's index on disk: DIR/genolake.idx plus DIR/<fasta name>.fai.
 *
 * genolake.idx layout:
 *   "GLAKEIDX" (8 bytes) | u32 format version | u32 header length H | header JSON (H bytes)
 *   | zero padding to 8 | index blob (wasm/src/index.c layout) | sha256 of all previous bytes (32)
 * The header names the FASTA (path, size, sha256 of its bytes), the index parameters,
 * the contigs, the blob size and the kernel ABI. Loading checks magic, version,
 * checksum, that the blob agrees with the header, that the .fai agrees with the
 * contigs, and (when the FASTA is still where it was, or is given) that its contents
 * have not changed since the index was built.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import { faiText, readFasta, sha256File, type FastaContig } from './fasta.js';
import { buildIndexBlob, DEFAULT_INDEX_PARAMS, type IndexParams } from './kernel.js';

export const INDEX_FILE = 'genolake.idx';
export const INDEX_FORMAT_VERSION = 1;
const MAGIC = Buffer.from('GLAKEIDX', 'latin1');

export interface IndexHeader {
  format: 'genolake-aligner-index';
  version: number;
  fasta: { path: string; name: string; bytes: number; sha256: string };
  params: IndexParams;
  contigs: { name: string; length: number }[];
  blobBytes: number;
  iupacAsN: number;
}

export interface LoadedIndex {
  dir: string;
  header: IndexHeader;
  blob: Uint8Array;
}

export interface BuildIndexResult {
  header: IndexHeader;
  indexFile: string;
  faiFile: string;
  contigs: FastaContig[];
}

/** Validates the FASTA, builds the minimizer index and writes DIR/genolake.idx and DIR/<name>.fai. */
export async function buildIndex(fasta: string, dir: string, params: IndexParams = DEFAULT_INDEX_PARAMS): Promise<BuildIndexResult> {
  const fa = await readFasta(fasta);
  const blob = buildIndexBlob(fa.codes, fa.contigs.map((c) => c.length), params);
  const header: IndexHeader = {
    format: 'genolake-aligner-index',
    version: INDEX_FORMAT_VERSION,
    fasta: { path: resolve(fasta), name: basename(fasta), bytes: fa.bytes, sha256: fa.sha256 },
    params: { k: params.k, w: params.w },
    contigs: fa.contigs.map((c) => ({ name: c.name, length: c.length })),
    blobBytes: blob.length,
    iupacAsN: fa.iupac,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(16);
  MAGIC.copy(pre, 0);
  pre.writeUInt32LE(INDEX_FORMAT_VERSION, 8);
  pre.writeUInt32LE(json.length, 12);
  const pad = Buffer.alloc((8 - ((16 + json.length) % 8)) % 8);
  const h = createHash('sha256');
  for (const part of [pre, json, pad, blob]) h.update(part);
  const sum = h.digest();
  await mkdir(dir, { recursive: true });
  const indexFile = join(dir, INDEX_FILE);
  const faiFile = join(dir, `${basename(fasta)}.fai`);
  // write under temporary names, then rename: never a half-written index
  const tmp = `${indexFile}.tmp-${process.pid}`;
  const tmpFai = `${faiFile}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, Buffer.concat([pre, json, pad, blob, sum]));
    await writeFile(tmpFai, faiText(fa.contigs));
    await rename(tmpFai, faiFile);
    await rename(tmp, indexFile);
  } catch (e) {
    await rm(tmp, { force: true });
    await rm(tmpFai, { force: true });
    throw e;
  }
  return { header, indexFile, faiFile, contigs: fa.contigs };
}

function bad(dir: string, msg: string, code = 'INDEX_CORRUPT'): InputError {
  return new InputError(code, msg, { file: join(dir, INDEX_FILE) });
}

export interface LoadIndexOptions {
  /** The FASTA the index must have been built from (checked by sha256). */
  reference?: string;
  /** Skip the check against the FASTA recorded in the header (it is on another machine). */
  skipFastaCheck?: boolean;
}

/** Loads and checks DIR/genolake.idx. */
export async function loadIndex(dir: string, opts: LoadIndexOptions = {}): Promise<LoadedIndex> {
  const file = join(dir, INDEX_FILE);
  if (!existsSync(file)) throw new InputError('INDEX_MISSING', `no aligner index here (expected ${INDEX_FILE}; build it with \`genolake index <ref.fa> --out ${dir}\`)`, { file: dir });
  const buf = readFileSync(file);
  if (buf.length < 48 || !buf.subarray(0, 8).equals(MAGIC)) throw bad(dir, 'not a genolake aligner index (bad magic)', 'INDEX_FOREIGN');
  const version = buf.readUInt32LE(8);
  if (version !== INDEX_FORMAT_VERSION) {
    throw bad(dir, `index format version ${version}, this genolake reads version ${INDEX_FORMAT_VERSION}: rebuild it with \`genolake index\``, 'INDEX_VERSION');
  }
  const sum = createHash('sha256').update(buf.subarray(0, buf.length - 32)).digest();
  if (!sum.equals(buf.subarray(buf.length - 32))) throw bad(dir, 'index checksum mismatch: the file is corrupt or truncated; rebuild it with `genolake index`');
  const hlen = buf.readUInt32LE(12);
  let header: IndexHeader;
  try {
    header = JSON.parse(buf.toString('utf8', 16, 16 + hlen)) as IndexHeader;
  } catch (e) {
    throw bad(dir, 'index header is not valid JSON');
  }
  if (header.format !== 'genolake-aligner-index') throw bad(dir, 'not a genolake aligner index (header)', 'INDEX_FOREIGN');
  const blobAt = 16 + hlen + ((8 - ((16 + hlen) % 8)) % 8);
  const blob = new Uint8Array(buf.buffer, buf.byteOffset + blobAt, buf.length - 32 - blobAt);
  if (blob.length !== header.blobBytes) throw bad(dir, `index blob is ${blob.length} bytes, header says ${header.blobBytes}`);
  const words = [0, 1, 2, 3, 4].map((i) => buf.readUInt32LE(blobAt + 4 * i));
  if (words[0] !== 0x58444c47 || words[1] !== 1 || words[2] !== header.params.k || words[3] !== header.params.w || words[4] !== header.contigs.length) {
    throw bad(dir, 'index blob does not agree with its header');
  }
  // the .fai next to it must describe the same contigs
  const fai = join(dir, `${header.fasta.name}.fai`);
  if (!existsSync(fai)) throw new InputError('INDEX_FAI_MISSING', `the index's .fai is missing (${fai}); rebuild with \`genolake index\``, { file: fai });
  const faiLines = readFileSync(fai, 'utf8').split('\n').filter((l) => l.length > 0);
  const sameFai = faiLines.length === header.contigs.length && faiLines.every((l, i) => {
    const f = l.split('\t');
    return f[0] === header.contigs[i].name && Number(f[1]) === header.contigs[i].length;
  });
  if (!sameFai) throw new InputError('INDEX_FOREIGN', `${fai} does not describe the contigs the index was built from (index and .fai come from different FASTA files); rebuild with \`genolake index\``, { file: fai });
  const ref = opts.reference ?? (opts.skipFastaCheck ? undefined : header.fasta.path);
  if (ref && (opts.reference || existsSync(ref))) {
    const st = statSync(ref);
    const sha = st.size === header.fasta.bytes ? await sha256File(ref) : '';
    if (sha !== header.fasta.sha256) {
      throw new InputError('INDEX_STALE', `the index was built from a FASTA with different contents (sha256 ${header.fasta.sha256.slice(0, 12)}…) than ${ref}: it is stale or foreign; rebuild with \`genolake index\``, { file });
    }
  }
  return { dir, header, blob };
}

