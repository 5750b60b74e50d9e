/**
 * Ingest: a lab's drop archive (tar, tar.gz/tgz or zip holding FASTQ files and a
 * manifest) becomes a run in the raw zone of the lake.
 *
 *   raw/_drops/<sha256>/<archive name>      the original archive, byte for byte
 *   raw/_drops/<sha256>/manifest.json       its validated manifest (normalised JSON)
 *   raw/_drops/<sha256>/ingest.json         what ingest made of it (run id, lake keys)
 *   raw/patient_id=<P>/run_id=<R>/fastq/    the FASTQ files (paths as in the manifest)
 *                                           + manifest.json
 *
 * The run id is `r` + the first 16 hex digits of the archive's SHA-256, so the same
 * content always maps to the same run: a second drop of it finds the published drop
 * marker and returns `duplicate: true` without writing anything.
 *
 * Both prefixes are written under staging prefixes and published atomically (the reads
 * first, the drop last: the drop marker is what says "done"). Every refusal (unsafe
 * entry, link, device, decompression bomb, bad or missing manifest, missing or unknown
 * FASTQ) throws an InputError naming the archive and, where there is one, the entry,
 * and deletes the staging prefixes: nothing is left in the lake.
 *
 * What an archive may hold:
 *  - exactly one manifest: `manifest.json`, `manifest.yaml` or `manifest.yml`, at the
 *    top or in a folder; read-group file names are relative to the manifest's folder;
 *  - FASTQ files (`.fastq`, `.fq`, optionally `.gz`): each must be named by a read group;
 *    a FASTQ file no read group names is an error (a lab that forgot a lane should hear it);
 *  - anything else (README, md5 sums, hidden/`__MACOSX` files): ignored, logged and
 *    listed in `IngestResult.ignored`; it stays in the original archive under `raw/_drops/`.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { detectArchiveFormat, readArchive, type ArchiveFormat, type ArchiveLimits } from '../formats/archive.js';
import type { Lake } from '../lake/types.js';
import type { DropManifest } from '../manifest/drop.js';
import { assertSafeId, isFastqName, unsafeArchivePathReason } from '../manifest/ids.js';
import { manifestFormat, MANIFEST_MAX_BYTES, parseDropManifest, parseManifestSyntax } from '../manifest/load.js';
import { GenolakeError, InputError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';

export const DROPS_PREFIX = 'raw/_drops/';
/** Names a manifest may have inside an archive (any folder, any letter case). */
export const MANIFEST_FILE_NAMES = ['manifest.json', 'manifest.yaml', 'manifest.yml'] as const;
/** Objects ingest writes next to the archive and the reads. */
export const DROP_MANIFEST_OBJECT = 'manifest.json';
export const DROP_RECORD_OBJECT = 'ingest.json';
/** Read size for hashing and copying archives: big reads, fewer syscalls and stream turns. */
const READ_CHUNK = 1024 * 1024;

export interface IngestOptions {
  /** Archive limits (decompression-bomb guards); defaults in DEFAULT_ARCHIVE_LIMITS. */
  limits?: Partial<ArchiveLimits>;
  log?: Logger;
  /** How errors and logs name the archive (e.g. its S3 URL). Default: the path. */
  displayName?: string;
  /** File name the original is kept under in raw/_drops/<sha256>/. Default: basename of displayName or path. */
  fileName?: string;
}

export interface IngestedReadGroup {
  id: string;
  /** Lake key of the R1 (or single-end) FASTQ. */
  r1: string;
  /** Lake key of the R2 FASTQ (paired drops). */
  r2?: string;
  lane?: number;
  library?: string;
  platform_unit?: string;
}

export interface IngestResult {
  /** `r` + first 16 hex digits of the archive's SHA-256. */
  runId: string;
  dropSha256: string;
  /** True when this content had been ingested before; nothing was written this time. */
  duplicate: boolean;
  manifest: DropManifest;
  /** Lake key of the original archive: raw/_drops/<sha256>/<file name>. */
  dropKey: string;
  /** raw/patient_id=<P>/run_id=<R>/fastq/ (published; holds the reads and manifest.json). */
  fastqPrefix: string;
  readGroups: IngestedReadGroup[];
  /** Size of the archive in bytes. */
  bytes: number;
  format: ArchiveFormat;
  /** Archive entries that were neither the manifest nor FASTQ (README etc.): not unpacked. */
  ignored: string[];
}

/** The record stored as raw/_drops/<sha256>/ingest.json. */
interface DropRecord {
  run_id: string;
  drop_sha256: string;
  drop_key: string;
  fastq_prefix: string;
  bytes: number;
  format: ArchiveFormat;
  read_groups: IngestedReadGroup[];
  ignored: string[];
  ingested_at: string;
}

export function runIdFor(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TypeError(`not a sha256 hex digest: ${sha256}`);
  return `r${sha256.slice(0, 16)}`;
}

export function dropPrefixFor(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TypeError(`not a sha256 hex digest: ${sha256}`);
  return `${DROPS_PREFIX}${sha256}/`;
}

/** raw/patient_id=<P>/run_id=<R>/ (both checked against the safe-id pattern). */
export function runPrefixFor(patientId: string, runId: string): string {
  return `raw/patient_id=${assertSafeId(patientId, 'patient_id')}/run_id=${assertSafeId(runId, 'run_id')}/`;
}

export function fastqPrefixFor(patientId: string, runId: string): string {
  return `${runPrefixFor(patientId, runId)}fastq/`;
}

/** The read groups of a drop manifest with their files as lake keys under `fastqPrefix`. */
function ingestedReadGroups(manifest: DropManifest, fastqPrefix: string): IngestedReadGroup[] {
  return manifest.read_groups.map((rg) => ({
    id: rg.id,
    r1: `${fastqPrefix}${rg.r1}`,
    ...(rg.r2 !== undefined ? { r2: `${fastqPrefix}${rg.r2}` } : {}),
    ...(rg.lane !== undefined ? { lane: rg.lane } : {}),
    ...(rg.library !== undefined ? { library: rg.library } : {}),
    ...(rg.platform_unit !== undefined ? { platform_unit: rg.platform_unit } : {}),
  }));
}

const RESERVED_DROP_NAMES = new Set([DROP_MANIFEST_OBJECT, DROP_RECORD_OBJECT, '_success.json']);

/** A file name safe to keep the original archive under: one segment, no hidden or reserved name. */
export function safeDropFileName(name: string): string {
  // '+' too: s3rver (tests) mis-decodes it in CopyObject sources; a plain name is safest everywhere.
  let n = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '');
  if (n.length > 200) {
    const ext = /\.(tar\.gz|tgz|tar|zip)$/i.exec(n)?.[0] ?? '';
    n = n.slice(0, 200 - ext.length) + ext;
  }
  if (n === '') n = 'drop';
  if (RESERVED_DROP_NAMES.has(n.toLowerCase())) n = `drop-${n}`;
  return n;
}

function isManifestName(name: string): boolean {
  return (MANIFEST_FILE_NAMES as readonly string[]).includes(posix.basename(name).toLowerCase());
}

/** Hidden files, macOS resource forks and the like: never data. */
function isJunkName(name: string): boolean {
  const segs = name.split('/');
  return segs[0] === '__MACOSX' || segs.some((s) => s.startsWith('.'));
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Passes bytes through while hashing them; `digest()` once the stream has ended. */
class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

async function readDropRecord(lake: Lake, sha: string): Promise<DropRecord | undefined> {
  try {
    return JSON.parse((await lake.getBuffer(`${dropPrefixFor(sha)}${DROP_RECORD_OBJECT}`)).toString('utf8')) as DropRecord;
  } catch (e) {
    if (e instanceof GenolakeError && e.code === 'LAKE_NOT_FOUND') return undefined;
    throw e;
  }
}

/** The result of an earlier ingest of the same content, if it is complete in the lake. */
async function findIngested(lake: Lake, sha: string): Promise<IngestResult | undefined> {
  const prefix = dropPrefixFor(sha);
  if (!(await lake.isPublished(prefix))) return undefined;
  const record = await readDropRecord(lake, sha);
  if (!record || !(await lake.isPublished(record.fastq_prefix))) return undefined;
  const manifestText = (await lake.getBuffer(`${prefix}${DROP_MANIFEST_OBJECT}`)).toString('utf8');
  const manifest = parseDropManifest(JSON.parse(manifestText), `${lake.describe()}/${prefix}${DROP_MANIFEST_OBJECT}`);
  return {
    runId: record.run_id,
    dropSha256: sha,
    duplicate: true,
    manifest,
    dropKey: record.drop_key,
    fastqPrefix: record.fastq_prefix,
    readGroups: record.read_groups,
    bytes: record.bytes,
    format: record.format,
    ignored: record.ignored,
  };
}

interface StagedEntry {
  name: string;
  index: number;
  bytes: number;
}

/**
 * Ingests the archive at `archivePath` into `lake`. See the module comment for layout,
 * accepted content and refusals.
 */
export async function ingestArchive(lake: Lake, archivePath: string, opts: IngestOptions = {}): Promise<IngestResult> {
  const displayName = opts.displayName ?? archivePath;
  const log = (opts.log ?? silentLogger()).child({ stage: 'ingest', archive: displayName });
  const info = await stat(archivePath).catch((e: NodeJS.ErrnoException) => {
    throw new InputError('ARCHIVE_NOT_FOUND', `cannot read archive: ${e.code ?? e.message}`, { file: displayName }, { cause: e });
  });
  if (!info.isFile()) throw new InputError('ARCHIVE_NOT_FOUND', 'archive is not a regular file', { file: displayName });
  const format = await detectArchiveFormat(archivePath, displayName);
  const sha = await sha256File(archivePath);
  const runId = runIdFor(sha);

  const earlier = await findIngested(lake, sha);
  if (earlier) {
    log.info({ runId, sha256: sha }, 'drop already ingested; nothing to do');
    return earlier;
  }

  const fileName = safeDropFileName(opts.fileName ?? basename(displayName) ?? basename(archivePath));
  const readsStaging = lake.stagingPrefix(`ingest-${runId}`);
  const dropStaging = lake.stagingPrefix(`drop-${runId}`);
  try {
    // 1. Unpack FASTQ files into staging, find and validate the manifest.
    const staged = new Map<string, StagedEntry>();
    const seen = new Set<string>();
    const ignored: string[] = [];
    let manifestEntry: { name: string; text: string } | undefined;

    for await (const entry of readArchive(archivePath, { limits: opts.limits, displayName })) {
      const where = { file: displayName, record: entry.index };
      if (entry.type === 'directory') continue;
      if (seen.has(entry.name)) {
        throw new InputError('DROP_DUPLICATE_ENTRY', `entry ${JSON.stringify(entry.name)}: appears more than once in the archive`, where);
      }
      seen.add(entry.name);
      if (entry.type !== 'file') {
        // Only reachable with allowSpecial, which ingest never sets; kept as a last guard.
        throw new InputError('ARCHIVE_SPECIAL_ENTRY', `entry ${JSON.stringify(entry.name)}: is not a regular file`, where);
      }
      if (isJunkName(entry.name)) {
        ignored.push(entry.name);
        continue;
      }
      if (isManifestName(entry.name)) {
        if (manifestEntry) {
          throw new InputError(
            'DROP_MANIFEST_AMBIGUOUS',
            `archive holds more than one manifest: ${JSON.stringify(manifestEntry.name)} and ${JSON.stringify(entry.name)}`,
            where,
          );
        }
        manifestEntry = { name: entry.name, text: await readSmall(entry.stream, MANIFEST_MAX_BYTES, displayName, entry) };
        continue;
      }
      if (!isFastqName(entry.name)) {
        ignored.push(entry.name);
        continue;
      }
      const bad = unsafeArchivePathReason(entry.name);
      if (bad) throw new InputError('ARCHIVE_UNSAFE_PATH', `entry ${JSON.stringify(entry.name)}: FASTQ file name ${bad}`, where);
      try {
        let bytes = 0;
        // Lazy: nothing flows (and no error can fire unheard) until the lake reads it.
        const source = entry.stream;
        const counted = Readable.from(
          (async function* () {
            for await (const chunk of source as AsyncIterable<Buffer>) {
              bytes += chunk.length;
              yield chunk;
            }
          })(),
          { objectMode: false },
        );
        await lake.put(`${readsStaging}files/${entry.name}`, counted);
        staged.set(entry.name, { name: entry.name, index: entry.index, bytes });
      } catch (e) {
        // The archive guard's refusal (bomb, corrupt data) is the real cause, whatever the lake made of it.
        const cause = entry.stream.errored;
        throw cause instanceof GenolakeError ? cause : e;
      }
    }
    if (ignored.length) log.info({ ignored }, 'ignored archive entries that are neither FASTQ nor the manifest');

    if (!manifestEntry) {
      throw new InputError('DROP_NO_MANIFEST', `archive holds no manifest (${MANIFEST_FILE_NAMES.join(', ')})`, { file: displayName });
    }
    const manifestSource = `${displayName}/${manifestEntry.name}`;
    const fmt = manifestFormat(manifestEntry.name, manifestEntry.text);
    const data = parseManifestSyntax(manifestEntry.text, manifestSource, fmt);
    if (typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === 'experiment') {
      throw new InputError('DROP_NOT_A_DROP', 'the archive holds an experiment manifest; a drop archive needs a drop manifest', {
        file: manifestSource,
      });
    }
    const manifest = parseDropManifest(data, manifestSource, fmt);

    // 2. The files the manifest names must be exactly the FASTQ files in the archive.
    const dir = posix.dirname(manifestEntry.name);
    const base = dir === '.' ? '' : `${dir}/`;
    const expected = new Map<string, string>();
    manifest.read_groups.forEach((rg, i) => {
      expected.set(`${base}${rg.r1}`, `read_groups[${i}].r1`);
      if (rg.r2 !== undefined) expected.set(`${base}${rg.r2}`, `read_groups[${i}].r2`);
    });
    const missing = [...expected].filter(([name]) => !staged.has(name)).map(([name, field]) => `${field} ${JSON.stringify(name)}`);
    const unknown = [...staged.keys()].filter((name) => !expected.has(name));
    if (missing.length || unknown.length) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing from the archive: ${missing.join(', ')}`);
      if (unknown.length) parts.push(`FASTQ files no read group names: ${unknown.map((n) => JSON.stringify(n)).join(', ')}`);
      throw new InputError(missing.length ? 'DROP_MISSING_FILES' : 'DROP_UNKNOWN_FILES', `manifest and archive disagree: ${parts.join('; ')}`, {
        file: manifestSource,
      });
    }
    for (const [name, entry] of staged) {
      if (entry.bytes === 0) {
        throw new InputError('DROP_EMPTY_FILE', `entry ${JSON.stringify(name)}: FASTQ file is empty`, { file: displayName, record: entry.index });
      }
    }

    // 3. Keep the original archive; its bytes must still be the ones we hashed.
    const fastqPrefix = fastqPrefixFor(manifest.patient_id, runId);
    const dropPrefix = dropPrefixFor(sha);
    const dropKey = `${dropPrefix}${fileName}`;
    const hashing = new HashingStream();
    const copying = lake.put(`${dropStaging}${fileName}`, hashing);
    await Promise.all([pipeline(createReadStream(archivePath, { highWaterMark: READ_CHUNK }), hashing), copying]);
    const after = await stat(archivePath);
    if (hashing.digest() !== sha || after.size !== info.size || after.mtimeMs !== info.mtimeMs) {
      throw new InputError('ARCHIVE_CHANGED', 'the archive changed while it was being ingested; drop it again once it is completely written', {
        file: displayName,
      });
    }

    const readGroups = ingestedReadGroups(manifest, fastqPrefix);
    const manifestJson = `${JSON.stringify(manifest, null, 2)}\n`;
    const record: DropRecord = {
      run_id: runId,
      drop_sha256: sha,
      drop_key: dropKey,
      fastq_prefix: fastqPrefix,
      bytes: info.size,
      format,
      read_groups: readGroups,
      ignored,
      ingested_at: new Date().toISOString(),
    };
    await lake.put(`${readsStaging}files/${base}${DROP_MANIFEST_OBJECT}`, manifestJson);
    await lake.put(`${dropStaging}${DROP_MANIFEST_OBJECT}`, manifestJson);
    await lake.put(`${dropStaging}${DROP_RECORD_OBJECT}`, `${JSON.stringify(record, null, 2)}\n`);

    // 4. Publish: reads first, the drop (the "already ingested" marker) last.
    const meta = { stage: 'ingest', run_id: runId, drop_sha256: sha, patient_id: manifest.patient_id, sample_id: manifest.sample_id };
    await lake.publish(`${readsStaging}files/${base}`, fastqPrefix, meta);
    await lake.publish(dropStaging, dropPrefix, meta);
    log.info({ runId, sha256: sha, fastqPrefix, readGroups: readGroups.length, bytes: info.size }, 'drop ingested');
    return {
      runId,
      dropSha256: sha,
      duplicate: false,
      manifest,
      dropKey,
      fastqPrefix,
      readGroups,
      bytes: info.size,
      format,
      ignored,
    };
  } finally {
    await Promise.all([lake.deletePrefix(readsStaging), lake.deletePrefix(dropStaging)]).catch((e: unknown) => {
      log.warn({ err: e }, 'could not delete ingest staging prefixes');
    });
  }
}

async function readSmall(
  stream: NodeJS.ReadableStream,
  max: number,
  archive: string,
  entry: { name: string; index: number },
): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) {
      throw new InputError('MANIFEST_TOO_LARGE', `entry ${JSON.stringify(entry.name)}: manifest is larger than ${max} bytes`, {
        file: archive,
        record: entry.index,
      });
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Ingests an archive that is already in the lake (e.g. uploaded to `incoming/` of an S3
 * lake). A local lake's file is read in place; otherwise it is downloaded to a temporary
 * file first (archives need random access for zip and two reads for hashing).
 */
export async function ingestFromLake(lake: Lake, key: string, opts: IngestOptions = {}): Promise<IngestResult> {
  const displayName = opts.displayName ?? `${lake.describe().replace(/\/$/, '')}/${key}`;
  const fileName = opts.fileName ?? posix.basename(key);
  const info = await lake.stat(key);
  if (!info) throw new InputError('ARCHIVE_NOT_FOUND', 'no such object in the lake', { file: displayName });
  const local = lake.localPath(key);
  if (local !== undefined) return ingestArchive(lake, local, { ...opts, displayName, fileName });
  const dir = await mkdtemp(join(tmpdir(), 'genolake-ingest-'));
  try {
    const path = join(dir, 'archive');
    await pipeline(await lake.get(key), createWriteStream(path));
    return await ingestArchive(lake, path, { ...opts, displayName, fileName });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the stages after ingest need of a run's reads: an ingest result, or a raw run read back from the lake. */
export type RawRun = Pick<IngestResult, 'runId' | 'manifest' | 'fastqPrefix' | 'readGroups'>;

/**
 * A run already ingested, read back from its raw prefix (`raw/patient_id=<P>/run_id=<R>/`,
 * with or without the trailing `fastq/`): the manifest kept beside the reads says which
 * files form which read group. For experiments over lake data.
 */
export async function readRawRun(lake: Lake, lakePath: string): Promise<RawRun> {
  const m = /^raw\/patient_id=([^/]+)\/run_id=([^/]+)\/(?:fastq\/?)?$/.exec(lakePath.endsWith('/') ? lakePath : `${lakePath}/`);
  if (!m) {
    throw new InputError('LAKE_INPUT_NOT_RAW_RUN', `lake_path ${JSON.stringify(lakePath)} is not a raw run: expected raw/patient_id=<P>/run_id=<R>/`, { field: 'lake_path' });
  }
  const fastqPrefix = fastqPrefixFor(m[1], m[2]);
  const where = `${lake.describe()}/${fastqPrefix}`;
  if (!(await lake.isPublished(fastqPrefix))) {
    throw new InputError('LAKE_INPUT_MISSING', `no ingested reads at ${where} (ingest the drop first, or check the run id)`, { file: where, field: 'lake_path' });
  }
  const manifestKey = `${fastqPrefix}${DROP_MANIFEST_OBJECT}`;
  let manifest: DropManifest;
  try {
    manifest = parseDropManifest(JSON.parse((await lake.getBuffer(manifestKey)).toString('utf8')), `${lake.describe()}/${manifestKey}`);
  } catch (e) {
    if (e instanceof GenolakeError && e.code === 'LAKE_NOT_FOUND') {
      throw new InputError('LAKE_INPUT_NO_MANIFEST', `the raw run has no ${DROP_MANIFEST_OBJECT}`, { file: where, field: 'lake_path' });
    }
    throw e;
  }
  if (manifest.patient_id !== m[1]) {
    throw new InputError('LAKE_INPUT_MISMATCH', `the manifest at ${manifestKey} is for patient ${manifest.patient_id}, not ${m[1]}`, { file: where, field: 'lake_path' });
  }
  const readGroups = ingestedReadGroups(manifest, fastqPrefix);
  for (const rg of readGroups) {
    for (const key of [rg.r1, rg.r2]) {
      if (key !== undefined && !(await lake.exists(key))) {
        throw new InputError('LAKE_INPUT_MISSING', `read group ${rg.id}: ${key} is not in the lake`, { file: where, field: 'lake_path' });
      }
    }
  }
  return { runId: m[2], manifest, fastqPrefix, readGroups };
}
