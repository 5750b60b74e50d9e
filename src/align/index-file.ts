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
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
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
  /**
   * Where the blob goes: given its size, return the bytes to read it into (e.g. a view of
   * the shared wasm memory), so a large index is never held twice. Default: a new array.
   */
  into?: (blobBytes: number) => Uint8Array;
  /**
   * Check the header, the .fai and the FASTA only; the blob and the file checksum are left
   * for the load that aligns (the blob is then empty). For "is the cached index current?".
   */
  headerOnly?: boolean;
}

/** Bytes read per call while streaming the blob through the checksum. */
const READ_CHUNK = 64 << 20;

function readFully(fd: number, dest: Uint8Array, position: number): number {
  let got = 0;
  while (got < dest.length) {
    const n = readSync(fd, dest, got, Math.min(READ_CHUNK, dest.length - got), position + got);
    if (n <= 0) break;
    got += n;
  }
  return got;
}

/** Loads and checks DIR/genolake.idx. */
export async function loadIndex(dir: string, opts: LoadIndexOptions = {}): Promise<LoadedIndex> {
  const file = join(dir, INDEX_FILE);
  if (!existsSync(file)) throw new InputError('INDEX_MISSING', `no aligner index here (expected ${INDEX_FILE}; build it with \`genolake index <ref.fa> --out ${dir}\`)`, { file: dir });
  // Streamed: the blob is read once, straight into its destination, through the checksum.
  const fd = openSync(file, 'r');
  let header: IndexHeader;
  let blob: Uint8Array;
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(16);
    if (size < 48 || readFully(fd, head, 0) < 16 || !head.subarray(0, 8).equals(MAGIC)) throw bad(dir, 'not a genolake aligner index (bad magic)', 'INDEX_FOREIGN');
    const version = head.readUInt32LE(8);
    if (version !== INDEX_FORMAT_VERSION) {
      throw bad(dir, `index format version ${version}, this genolake reads version ${INDEX_FORMAT_VERSION}: rebuild it with \`genolake index\``, 'INDEX_VERSION');
    }
    const hlen = head.readUInt32LE(12);
    const blobAt = 16 + hlen + ((8 - ((16 + hlen) % 8)) % 8);
    if (blobAt + 32 > size) throw bad(dir, 'index checksum mismatch: the file is corrupt or truncated; rebuild it with `genolake index`');
    const front = Buffer.alloc(blobAt);
    readFully(fd, front, 0);
    try {
      header = JSON.parse(front.toString('utf8', 16, 16 + hlen)) as IndexHeader;
    } catch {
      throw bad(dir, 'index header is not valid JSON');
    }
    if (header.format !== 'genolake-aligner-index') throw bad(dir, 'not a genolake aligner index (header)', 'INDEX_FOREIGN');
    const blobBytes = size - 32 - blobAt;
    if (blobBytes !== header.blobBytes) throw bad(dir, `index blob is ${blobBytes} bytes, header says ${header.blobBytes}`);
    if (opts.headerOnly) {
      // the blob's leading words still have to agree with the header (checked below)
      blob = new Uint8Array(Math.min(20, blobBytes));
      readFully(fd, blob, blobAt);
    } else {
      blob = opts.into ? opts.into(blobBytes) : new Uint8Array(blobBytes);
      const hash = createHash('sha256').update(front);
      for (let off = 0; off < blobBytes; off += READ_CHUNK) {
        const part = blob.subarray(off, Math.min(blobBytes, off + READ_CHUNK));
        if (readFully(fd, part, blobAt + off) < part.length) throw bad(dir, 'index checksum mismatch: the file is corrupt or truncated; rebuild it with `genolake index`');
        hash.update(part);
      }
      const sum = Buffer.alloc(32);
      readFully(fd, sum, size - 32);
      if (!hash.digest().equals(sum)) throw bad(dir, 'index checksum mismatch: the file is corrupt or truncated; rebuild it with `genolake index`');
    }
  } finally {
    closeSync(fd);
  }
  const words = new DataView(blob.buffer, blob.byteOffset, Math.min(20, blob.length));
  const word = (i: number) => (words.byteLength >= 4 * (i + 1) ? words.getUint32(4 * i, true) : -1);
  if (word(0) !== 0x58444c47 || word(1) !== 1 || word(2) !== header.params.k || word(3) !== header.params.w || word(4) !== header.contigs.length) {
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

