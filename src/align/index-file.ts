/**
 * The aligner's index on disk: DIR/genolake.idx plus DIR/<fasta name>.fai, and for a
 * reference too big for one wasm32 memory, index parts DIR/genolake.part<i>.idx.
 *
 * genolake.idx layout:
 *   "GLAKEIDX" (8 bytes) | u32 format version | u32 header length H | header JSON (H bytes)
 *   | zero padding to 8 | index blob (wasm/src/index.c layout) | sha256 of all previous bytes (32)
 * The header names the FASTA (path, size, sha256 of its bytes), the index parameters,
 * the contigs, the blob size and the kernel ABI. Loading checks magic, version,
 * checksum, that the blob agrees with the header, that the .fai agrees with the
 * contigs, and (when the FASTA is still where it was, or is given) that its contents
 * have not changed since the index was built.
 *
 * Split index (format version 2): genolake.idx is then the manifest: the same container
 * with an empty blob and a header listing the parts (file, contig range, global base,
 * blob size, sha256 of the part file's bytes). Each part file is the same container
 * (version 2, format 'genolake-aligner-index-part') holding the blob of its whole
 * contigs. A part that is missing, corrupt, or not the one the manifest lists (another
 * build) fails with INDEX_PART_MISSING / INDEX_CORRUPT / INDEX_PART_FOREIGN.
 * A reference that fits one part is written exactly as before (version 1).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { InputError } from '../util/errors.js';
import { faiText, readFasta, sha256File, type FastaContig } from './fasta.js';
import { buildIndexBlob, DEFAULT_INDEX_PARAMS, type IndexParams } from './kernel.js';

export const INDEX_FILE = 'genolake.idx';
export const INDEX_FORMAT_VERSION = 1;
/** Manifest and parts of a split index. */
export const SPLIT_FORMAT_VERSION = 2;
export const partFile = (i: number): string => `genolake.part${i}.idx`;
/**
 * Bases per index part by default. Building a part takes about 11 bytes per base of one
 * wasm32 memory (sequence 1, minimizer table about 4, the radix sort's scratch about 6),
 * loading it about 4 (plus the workers' slots): 350 Mbases keeps both inside 4 GiB, and
 * the largest human chromosome (249 Mbases) fits one part.
 */
export const DEFAULT_MAX_PART_BASES = 350_000_000;
/** Parts a read is aligned against at most (the kernel merges seeds of up to 64). */
export const MAX_PARTS = 64;
/** Global coordinates of a split index are uint32 in the kernel. */
export const MAX_SPLIT_BASES = 2 ** 32 - 2 ** 20;
const MAGIC = Buffer.from('GLAKEIDX', 'latin1');

export interface IndexHeader {
  format: 'genolake-aligner-index';
  version: number;
  fasta: { path: string; name: string; bytes: number; sha256: string };
  params: IndexParams;
  contigs: { name: string; length: number }[];
  blobBytes: number;
  iupacAsN: number;
  /** Split index: its parts, in order (absent for a single-part index). */
  parts?: IndexPartInfo[];
}

export interface IndexPartInfo {
  file: string;
  /** Its contigs: header.contigs[firstContig, firstContig + nContigs). */
  firstContig: number;
  nContigs: number;
  /** Global coordinate of its first base (bases of the contigs before it). */
  base: number;
  bases: number;
  blobBytes: number;
  /** sha256 of the part file's bytes. */
  sha256: string;
}

interface PartHeader {
  format: 'genolake-aligner-index-part';
  version: number;
  part: number;
  of: number;
  fastaSha256: string;
  params: IndexParams;
  firstContig: number;
  nContigs: number;
  base: number;
  blobBytes: number;
}

export interface LoadedIndex {
  dir: string;
  header: IndexHeader;
  /** The blob of a single-part index (empty for a split index). */
  blob: Uint8Array;
  /** The blobs of a split index's parts, in order. */
  parts?: Uint8Array[];
}

export interface BuildIndexResult {
  header: IndexHeader;
  indexFile: string;
  faiFile: string;
  contigs: FastaContig[];
}

export interface BuildIndexOptions {
  /** Most bases per index part (whole contigs); default DEFAULT_MAX_PART_BASES. */
  maxPartBases?: number;
}

/** Contig ranges [first, end) of the parts: whole contigs, in order, at most max bases each. */
export function planParts(lengths: readonly number[], max: number, fasta = ''): [number, number][] {
  const parts: [number, number][] = [];
  let first = 0, bases = 0;
  lengths.forEach((len, i) => {
    if (len > max) throw new InputError('INDEX_CONTIG_TOO_BIG', `contig ${i + 1} has ${len} bases, more than an index part holds (${max}): contigs are never split`, { file: fasta, record: i + 1 });
    if (bases + len > max && i > first) {
      parts.push([first, i]);
      first = i;
      bases = 0;
    }
    bases += len;
  });
  parts.push([first, lengths.length]);
  return parts;
}

/**
 * Writes one index container to `path`, streamed (the blob is never copied); returns the
 * sha256 of the file's bytes.
 */
async function writeContainer(path: string, version: number, header: object, blob: Uint8Array): Promise<string> {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pre = Buffer.alloc(16);
  MAGIC.copy(pre, 0);
  pre.writeUInt32LE(version, 8);
  pre.writeUInt32LE(json.length, 12);
  const pad = Buffer.alloc((8 - ((16 + json.length) % 8)) % 8);
  const h = createHash('sha256');
  const file = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (const part of [pre, json, pad, blob]) {
      for (let off = 0; off < part.length; off += READ_CHUNK) {
        const chunk = part.subarray(off, Math.min(part.length, off + READ_CHUNK));
        h.update(chunk);
        file.update(chunk);
        await fh.write(chunk);
      }
    }
    const sum = h.digest();
    file.update(sum);
    await fh.write(sum);
  } finally {
    await fh.close();
  }
  return file.digest('hex');
}

/**
 * Validates the FASTA, builds the minimizer index and writes DIR/genolake.idx and
 * DIR/<name>.fai; a reference over maxPartBases is split into parts by whole contigs,
 * built and written one after another (one part's blob in memory at a time).
 */
export async function buildIndex(fasta: string, dir: string, params: IndexParams = DEFAULT_INDEX_PARAMS, opts: BuildIndexOptions = {}): Promise<BuildIndexResult> {
  const fa = await readFasta(fasta);
  const lengths = fa.contigs.map((c) => c.length);
  const max = opts.maxPartBases ?? DEFAULT_MAX_PART_BASES;
  if (!Number.isInteger(max) || max < 1) throw new InputError('INDEX_PARAMS', `max part bases must be a positive integer (got ${max})`, { field: 'maxPartBases' });
  const plan = planParts(lengths, max, fasta);
  if (plan.length > MAX_PARTS) throw new InputError('INDEX_TOO_MANY_PARTS', `${plan.length} index parts of at most ${max} bases: the aligner takes up to ${MAX_PARTS} parts; use larger parts`, { file: fasta, field: 'maxPartBases' });
  const header: IndexHeader = {
    format: 'genolake-aligner-index',
    version: plan.length > 1 ? SPLIT_FORMAT_VERSION : INDEX_FORMAT_VERSION,
    fasta: { path: resolve(fasta), name: basename(fasta), bytes: fa.bytes, sha256: fa.sha256 },
    params: { k: params.k, w: params.w },
    contigs: fa.contigs.map((c) => ({ name: c.name, length: c.length })),
    blobBytes: 0,
    iupacAsN: fa.iupac,
  };
  await mkdir(dir, { recursive: true });
  const indexFile = join(dir, INDEX_FILE);
  const faiFile = join(dir, `${basename(fasta)}.fai`);
  // everything is written under temporary names, then renamed (the manifest last): never a half-written index
  const tmp = (f: string): string => `${f}.tmp-${process.pid}`;
  const written: string[] = [];
  try {
    if (plan.length === 1) {
      const blob = buildIndexBlob(fa.codes, lengths, params);
      header.blobBytes = blob.length;
      written.push(indexFile);
      await writeContainer(tmp(indexFile), INDEX_FORMAT_VERSION, header, blob);
    } else {
      const total = lengths.reduce((a, b) => a + b, 0);
      if (total > MAX_SPLIT_BASES) throw new InputError('INDEX_TOO_BIG', `reference of ${total} bases: the aligner takes up to ${MAX_SPLIT_BASES} bases`, { file: fasta });
      header.parts = [];
      let base = 0;
      for (let p = 0; p < plan.length; p++) {
        const [first, end] = plan[p];
        const lens = lengths.slice(first, end);
        const bases = lens.reduce((a, b) => a + b, 0);
        const blob = buildIndexBlob(fa.codes.subarray(base, base + bases), lens, params);
        const ph: PartHeader = {
          format: 'genolake-aligner-index-part', version: SPLIT_FORMAT_VERSION, part: p + 1, of: plan.length,
          fastaSha256: fa.sha256, params: header.params, firstContig: first, nContigs: end - first, base, blobBytes: blob.length,
        };
        const file = partFile(p + 1);
        written.push(join(dir, file));
        const sha256 = await writeContainer(tmp(join(dir, file)), SPLIT_FORMAT_VERSION, ph, blob);
        header.parts.push({ file, firstContig: first, nContigs: end - first, base, bases, blobBytes: blob.length, sha256 });
        base += bases;
      }
      written.push(indexFile);
      await writeContainer(tmp(indexFile), SPLIT_FORMAT_VERSION, header, new Uint8Array(0));
    }
    await writeFile(tmp(faiFile), faiText(fa.contigs));
    await rename(tmp(faiFile), faiFile);
    for (const f of written) await rename(tmp(f), f);
  } catch (e) {
    for (const f of [...written, faiFile]) await rm(tmp(f), { force: true });
    throw e;
  }
  // parts of an earlier, larger split of this directory are not ours any more
  for (let p = plan.length > 1 ? plan.length + 1 : 1; existsSync(join(dir, partFile(p))); p++) await rm(join(dir, partFile(p)), { force: true });
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
   * the shared wasm memory), so a large index is never held twice; part: the index part
   * (0 for a single-part index). Default: a new array.
   */
  into?: (blobBytes: number, part: number) => Uint8Array;
  /** Called with the (checked) header of a split index before its parts are read. */
  onSplitHeader?: (header: IndexHeader) => void;
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

interface Container {
  version: number;
  header: unknown;
  blob: Uint8Array;
  /** sha256 of the file's bytes (when the blob was read). */
  fileSha256?: string;
}

const CORRUPT = 'the file is corrupt or truncated; rebuild it with `genolake index`';

/** Reads one index container file: magic, version, header, blob (streamed into `into`), checksum. */
function readContainer(file: string, versions: readonly number[], into: ((bytes: number) => Uint8Array) | undefined, headerOnly: boolean): Container {
  const fail = (msg: string, code = 'INDEX_CORRUPT'): InputError => new InputError(code, msg, { file });
  // Streamed: the blob is read once, straight into its destination, through the checksum.
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(16);
    if (size < 48 || readFully(fd, head, 0) < 16 || !head.subarray(0, 8).equals(MAGIC)) throw fail('not a genolake aligner index (bad magic)', 'INDEX_FOREIGN');
    const version = head.readUInt32LE(8);
    if (!versions.includes(version)) {
      throw fail(`index format version ${version}, this genolake reads version ${versions.join(' and ')}: rebuild it with \`genolake index\``, 'INDEX_VERSION');
    }
    const hlen = head.readUInt32LE(12);
    const blobAt = 16 + hlen + ((8 - ((16 + hlen) % 8)) % 8);
    if (blobAt + 32 > size) throw fail(`index checksum mismatch: ${CORRUPT}`);
    const front = Buffer.alloc(blobAt);
    readFully(fd, front, 0);
    let header: unknown;
    try {
      header = JSON.parse(front.toString('utf8', 16, 16 + hlen));
    } catch {
      throw fail('index header is not valid JSON');
    }
    const blobBytes = size - 32 - blobAt;
    const declared = (header as { blobBytes?: unknown }).blobBytes;
    if (blobBytes !== declared) throw fail(`index blob is ${blobBytes} bytes, header says ${String(declared)}`);
    if (headerOnly) {
      // the blob's leading words still have to agree with the header (checked by the caller)
      const blob = new Uint8Array(Math.min(20, blobBytes));
      readFully(fd, blob, blobAt);
      return { version, header, blob };
    }
    const blob = into && blobBytes > 0 ? into(blobBytes) : new Uint8Array(blobBytes);
    const hash = createHash('sha256').update(front);
    const fileHash = createHash('sha256').update(front);
    for (let off = 0; off < blobBytes; off += READ_CHUNK) {
      const part = blob.subarray(off, Math.min(blobBytes, off + READ_CHUNK));
      if (readFully(fd, part, blobAt + off) < part.length) throw fail(`index checksum mismatch: ${CORRUPT}`);
      hash.update(part);
      fileHash.update(part);
    }
    const sum = Buffer.alloc(32);
    readFully(fd, sum, size - 32);
    if (!hash.digest().equals(sum)) throw fail(`index checksum mismatch: ${CORRUPT}`);
    return { version, header, blob, fileSha256: fileHash.update(sum).digest('hex') };
  } finally {
    closeSync(fd);
  }
}

/** The blob's leading words (magic, version, k, w, contigs) agree with what the header says. */
function blobAgrees(blob: Uint8Array, params: IndexParams, nContigs: number): boolean {
  const words = new DataView(blob.buffer, blob.byteOffset, Math.min(20, blob.length));
  const word = (i: number) => (words.byteLength >= 4 * (i + 1) ? words.getUint32(4 * i, true) : -1);
  return word(0) === 0x58444c47 && word(1) === 1 && word(2) === params.k && word(3) === params.w && word(4) === nContigs;
}

/** Loads and checks DIR/genolake.idx (and, for a split index, every part unless headerOnly). */
export async function loadIndex(dir: string, opts: LoadIndexOptions = {}): Promise<LoadedIndex> {
  const file = join(dir, INDEX_FILE);
  if (!existsSync(file)) throw new InputError('INDEX_MISSING', `no aligner index here (expected ${INDEX_FILE}; build it with \`genolake index <ref.fa> --out ${dir}\`)`, { file: dir });
  const intoMain = opts.into ? (n: number) => opts.into!(n, 0) : undefined;
  const main = readContainer(file, [INDEX_FORMAT_VERSION, SPLIT_FORMAT_VERSION], intoMain, !!opts.headerOnly);
  const header = main.header as IndexHeader;
  let blob = main.blob;
  if (header.format !== 'genolake-aligner-index') throw bad(dir, 'not a genolake aligner index (header)', 'INDEX_FOREIGN');
  const split = main.version === SPLIT_FORMAT_VERSION;
  if (split !== !!header.parts || (split && (header.blobBytes !== 0 || header.parts!.length < 2))) throw bad(dir, 'index header and format version disagree');
  let parts: Uint8Array[] | undefined;
  if (!split) {
    if (!blobAgrees(blob, header.params, header.contigs.length)) throw bad(dir, 'index blob does not agree with its header');
  } else {
    // the manifest's parts must tile the contigs in order
    let next = 0, base = 0;
    for (const p of header.parts!) {
      const bases = header.contigs.slice(p.firstContig, p.firstContig + p.nContigs).reduce((a, c) => a + c.length, 0);
      if (p.file !== partFile(header.parts!.indexOf(p) + 1) || p.firstContig !== next || p.nContigs < 1 || p.base !== base || p.bases !== bases) {
        throw bad(dir, 'index parts do not cover the contigs in order');
      }
      next += p.nContigs;
      base += bases;
    }
    if (next !== header.contigs.length || header.parts!.length > MAX_PARTS) throw bad(dir, 'index parts do not cover the contigs in order');
    header.parts!.forEach((p, i) => {
      const pf = join(dir, p.file);
      if (!existsSync(pf)) throw new InputError('INDEX_PART_MISSING', `index part ${i + 1} of ${header.parts!.length} is missing (${p.file}); rebuild the index with \`genolake index\``, { file: pf });
    });
    if (!opts.headerOnly) {
      opts.onSplitHeader?.(header);
      parts = [];
      blob = new Uint8Array(0);
      for (let i = 0; i < header.parts!.length; i++) {
        const p = header.parts![i];
        const pf = join(dir, p.file);
        const c = readContainer(pf, [SPLIT_FORMAT_VERSION], opts.into ? (n) => opts.into!(n, i) : undefined, false);
        const ph = c.header as PartHeader;
        if (c.fileSha256 !== p.sha256 || ph.format !== 'genolake-aligner-index-part' || ph.part !== i + 1 || ph.of !== header.parts!.length ||
          ph.fastaSha256 !== header.fasta.sha256 || ph.firstContig !== p.firstContig || ph.nContigs !== p.nContigs || ph.base !== p.base) {
          throw new InputError('INDEX_PART_FOREIGN', `${p.file} is not part ${i + 1} of this index (another build or reference); rebuild the index with \`genolake index\``, { file: pf });
        }
        if (!blobAgrees(c.blob, header.params, p.nContigs) || c.blob.length !== p.blobBytes) throw new InputError('INDEX_CORRUPT', `index part blob does not agree with its header`, { file: pf });
        parts.push(c.blob);
      }
    }
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
  return { dir, header, blob, ...(parts ? { parts } : {}) };
}

