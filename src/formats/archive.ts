/**
 * Streaming reader for drop archives: tar, tar.gz/tgz and zip, as one async iterator of
 * entries whose contents are streamed, never buffered.
 *
 * The reader is also the safety boundary for untrusted archives. It refuses, with an
 * InputError naming the archive and the entry:
 *  - names that could escape a target folder ('..' segments, absolute paths, drive
 *    letters, backslashes, NUL bytes);
 *  - symlinks, hardlinks, devices and fifos (unless `allowSpecial`, see below);
 *  - decompression bombs: bytes are counted while they stream (headers' declared sizes
 *    are only an early hint), against a total cap, a per-entry and total expansion
 *    ratio versus the compressed size, and a maximum entry count.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import { GenolakeError, InputError } from '../util/errors.js';

export type ArchiveFormat = 'tar' | 'tar.gz' | 'zip';
export type ArchiveEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'device' | 'other';

export interface ArchiveEntry {
  /** Normalised '/'-separated relative path ('./' and trailing '/' removed). */
  name: string;
  type: ArchiveEntryType;
  /** Size the archive declares; the stream is checked against limits, not this. */
  size: number;
  /**
   * The entry's bytes (empty for non-files). Read it to the end or leave it untouched
   * (the reader then skips it); destroying it part-way aborts the iteration.
   */
  stream: Readable;
  /** Index of the entry in the archive, 1-based (for error messages). */
  index: number;
}

export interface ArchiveLimits {
  /** Cap on the uncompressed bytes of all entries together. Default 64 GiB. */
  maxTotalBytes: number;
  /**
   * Cap on expansion: an entry may not exceed maxRatio × its compressed size (zip) or
   * × the archive size (tar, tgz), and all entries together may not exceed
   * maxRatio × the archive size. Default 200.
   */
  maxRatio: number;
  /** Ratios are not enforced below this many bytes (tiny files compress absurdly well). Default 1 MiB. */
  ratioFloorBytes: number;
  /** Cap on the number of entries (files, folders, anything). Default 10 000. */
  maxEntries: number;
}

export const DEFAULT_ARCHIVE_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxTotalBytes: 64 * 1024 ** 3,
  maxRatio: 200,
  ratioFloorBytes: 1024 ** 2,
  maxEntries: 10_000,
});

export interface ReadArchiveOptions {
  limits?: Partial<ArchiveLimits>;
  /** How errors name the archive (e.g. the S3 URL it came from). Default: the path. */
  displayName?: string;
  /** Yield symlinks, hardlinks and devices (as empty streams) instead of refusing them. */
  allowSpecial?: boolean;
}

/** True when a file name looks like an archive genolake reads (by extension). */
export function isArchiveName(name: string): boolean {
  return /\.(tar|tar\.gz|tgz|zip)$/i.test(name);
}

/** The archive format by its magic bytes (gzip, zip local/end header, ustar or a valid tar checksum). */
export async function detectArchiveFormat(path: string, displayName = path): Promise<ArchiveFormat> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new InputError('ARCHIVE_NOT_FOUND', `cannot open archive: ${e.code ?? e.message}`, { file: displayName }, { cause: e });
  });
  const head = Buffer.alloc(512);
  let n: number;
  try {
    ({ bytesRead: n } = await fh.read(head, 0, 512, 0));
  } finally {
    await fh.close();
  }
  if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
  if (n >= 4 && head[0] === 0x50 && head[1] === 0x4b && [0x0304, 0x0506, 0x0708].includes(head.readUInt16BE(2))) return 'zip';
  if (n === 512 && (head.toString('latin1', 257, 262) === 'ustar' || tarChecksumOk(head))) return 'tar';
  throw new InputError(
    'ARCHIVE_UNKNOWN_FORMAT',
    `not a tar, tar.gz/tgz or zip archive (unrecognised content${n === 0 ? ': empty file' : ''})`,
    { file: displayName },
  );
}

/** A pre-POSIX tar header has no magic; its checksum field is the only signature. */
function tarChecksumOk(h: Buffer): boolean {
  const field = h.toString('latin1', 148, 156).replace(/\0.*$/, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum === parseInt(field, 8) && h[0] !== 0;
}

/**
 * Iterates the entries of the archive at `path` (format detected by content). Entries
 * must be handled one at a time, in order. Any refusal throws an InputError whose place
 * names the archive (`file`) and the entry (`record` = index; the name is in the message).
 */
export async function* readArchive(path: string, opts: ReadArchiveOptions = {}): AsyncGenerator<ArchiveEntry, void, undefined> {
  const displayName = opts.displayName ?? path;
  const format = await detectArchiveFormat(path, displayName);
  const archiveBytes = (await stat(path)).size;
  const ctx = new Guard(displayName, archiveBytes, { ...DEFAULT_ARCHIVE_LIMITS, ...opts.limits }, opts.allowSpecial ?? false);
  if (format === 'zip') yield* readZip(path, ctx);
  else yield* readTar(path, format === 'tar.gz', ctx);
}

/** Shared bookkeeping for one archive: names, counts and byte budgets. */
class Guard {
  entries = 0;
  totalBytes = 0;
  /** The first refusal; streams that fail afterwards report this one. */
  failure: InputError | undefined;

  constructor(
    readonly archive: string,
    readonly archiveBytes: number,
    readonly limits: ArchiveLimits,
    readonly allowSpecial: boolean,
  ) {}

  fail(e: InputError): InputError {
    this.failure ??= e;
    return this.failure;
  }

  error(code: string, message: string, entry?: { name: string; index: number }): InputError {
    const where = entry ? `entry ${JSON.stringify(entry.name)}: ` : '';
    return this.fail(new InputError(code, `${where}${message}`, entry ? { file: this.archive, record: entry.index } : { file: this.archive }));
  }

  /** What the whole archive may expand to. */
  totalAllowance(): number {
    const l = this.limits;
    return Math.min(l.maxTotalBytes, Math.max(l.maxRatio * this.archiveBytes, l.ratioFloorBytes));
  }

  /** What one entry compressed into `compressed` bytes may expand to. */
  entryAllowance(compressed: number): number {
    const l = this.limits;
    return Math.min(this.totalAllowance(), Math.max(l.maxRatio * compressed, l.ratioFloorBytes));
  }

  /** Validates one entry's name and type and counts it; returns the normalised name. */
  admit(rawName: string, type: ArchiveEntryType): { name: string; index: number } {
    const index = ++this.entries;
    const shown = { name: rawName, index };
    if (this.entries > this.limits.maxEntries) {
      throw this.error('ARCHIVE_TOO_MANY_ENTRIES', `archive has more than ${this.limits.maxEntries} entries (limit maxEntries)`, shown);
    }
    const name = safeEntryName(rawName, (why) => this.error('ARCHIVE_UNSAFE_PATH', why, shown));
    if (!this.allowSpecial && (type === 'symlink' || type === 'hardlink' || type === 'device')) {
      const what = type === 'device' ? 'a device or fifo' : `a ${type}`;
      throw this.error('ARCHIVE_SPECIAL_ENTRY', `is ${what}; drop archives may hold only regular files and folders`, shown);
    }
    return { name, index };
  }

  /**
   * Wraps an entry's byte source in a stream that counts what actually flows and fails
   * with an InputError as soon as the entry or the archive goes over its budget.
   */
  counted(entry: { name: string; index: number }, allowance: number, source: () => Promise<AsyncIterable<Buffer | Uint8Array>>): Readable {
    const guard = this;
    async function* gen(): AsyncGenerator<Buffer> {
      let bytes = 0;
      try {
        for await (const chunk of await source()) {
          bytes += chunk.length;
          guard.totalBytes += chunk.length;
          if (guard.totalBytes > guard.limits.maxTotalBytes) {
            throw guard.error('ARCHIVE_TOO_LARGE', `archive expands past ${guard.limits.maxTotalBytes} bytes (limit maxTotalBytes)`, entry);
          }
          if (bytes > allowance || guard.totalBytes > guard.totalAllowance()) {
            throw guard.error(
              'ARCHIVE_RATIO',
              `expands more than ${guard.limits.maxRatio}× its compressed size (limit maxRatio; possible decompression bomb)`,
              entry,
            );
          }
          yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        }
      } catch (e) {
        throw guard.failure ?? guard.wrap(e, entry);
      }
    }
    return Readable.from(gen(), { objectMode: false });
  }

  /** Library errors (zlib, tar-stream, yauzl) as an InputError naming the archive. */
  wrap(e: unknown, entry?: { name: string; index: number }): GenolakeError {
    if (e instanceof GenolakeError) return e;
    const msg = e instanceof Error ? e.message : String(e);
    const code = /too many bytes|too few bytes|expected uncompressedSize/i.test(msg) ? 'ARCHIVE_SIZE_MISMATCH' : 'ARCHIVE_CORRUPT';
    const err = this.error(code, `archive is damaged or not what its name says: ${msg}`, entry);
    if (err.cause === undefined) Object.defineProperty(err, 'cause', { value: e });
    return err;
  }
}

/**
 * Normalises an entry name and refuses anything that could land outside a target
 * folder on any platform: '..' segments, absolute or drive paths, backslashes
 * (a separator on Windows), NUL.
 */
export function safeEntryName(raw: string, refuse: (why: string) => Error): string {
  if (raw.length === 0) throw refuse('has an empty name');
  if (raw.includes('\0')) throw refuse('name contains a NUL byte');
  if (raw.includes('\\')) throw refuse('name contains a backslash (not a portable path separator)');
  if (raw.startsWith('/')) throw refuse('is an absolute path');
  if (/^[a-zA-Z]:/.test(raw)) throw refuse('starts with a drive letter');
  const segs = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segs.includes('..')) throw refuse("has a '..' segment (would escape the archive folder)");
  if (segs.length === 0) throw refuse('has no file name');
  return segs.join('/');
}

// ---------------------------------------------------------------- tar, tar.gz

function tarType(t: tar.Header['type'] | null | undefined): ArchiveEntryType {
  switch (t) {
    case 'file':
    case 'contiguous-file':
    case null:
    case undefined:
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    case 'character-device':
    case 'block-device':
    case 'fifo':
      return 'device';
    default:
      return 'other';
  }
}

/** Counts the bytes of the whole (decompressed) tar stream: the bound on what gunzip may produce. */
function streamLimiter(ctx: Guard): Transform {
  // Headers and padding take up to 1 KiB per entry on top of the contents.
  const cap = ctx.totalAllowance() + 1024 * (ctx.limits.maxEntries + 2);
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      seen += chunk.length;
      if (seen > cap) {
        const tooBig = seen > ctx.limits.maxTotalBytes;
        cb(
          ctx.error(
            tooBig ? 'ARCHIVE_TOO_LARGE' : 'ARCHIVE_RATIO',
            tooBig
              ? `archive expands past ${ctx.limits.maxTotalBytes} bytes (limit maxTotalBytes)`
              : `archive expands more than ${ctx.limits.maxRatio}× its size (limit maxRatio; possible decompression bomb)`,
          ),
        );
      } else cb(null, chunk);
    },
  });
}

async function* readTar(path: string, gz: boolean, ctx: Guard): AsyncGenerator<ArchiveEntry, void, undefined> {
  // Old v7 tars have no 'ustar' magic; detectArchiveFormat has checked their checksum.
  const extract = tar.extract({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]);
  const stages: NodeJS.ReadWriteStream[] = gz ? [createGunzip(), streamLimiter(ctx)] : [];
  let pipeErr: unknown;
  const piping = pipeline([createReadStream(path, { highWaterMark: 1024 * 1024 }), ...stages, extract as unknown as NodeJS.WritableStream]).catch((e: unknown) => {
    pipeErr = e;
  });
  let completed = false;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      const type = tarType(h.type);
      const e = ctx.admit(h.name, type);
      // Every entry's body goes through the counter, so skipped bytes count too.
      const stream = ctx.counted(e, ctx.entryAllowance(ctx.archiveBytes), async () => entry as AsyncIterable<Buffer>);
      yield { name: e.name, type, size: h.size ?? 0, stream, index: e.index };
      // tar is sequential: whatever the consumer did not read is drained here.
      await settle(stream, false);
    }
    await piping;
    if (pipeErr) throw pipeErr;
    completed = true;
  } catch (e) {
    throw ctx.failure ?? ctx.wrap(pipeErr ?? e);
  } finally {
    if (!completed) {
      extract.destroy();
      await piping;
    }
  }
}

// ---------------------------------------------------------------- zip

const S_IFMT = 0o170000;

function zipType(entry: yauzl.Entry, name: string): ArchiveEntryType {
  const mode = entry.externalFileAttributes >>> 16;
  const fmt = mode & S_IFMT;
  // Unix hosts keep st_mode in the high 16 bits; other hosts leave them 0.
  if (fmt === 0o120000) return 'symlink';
  if (fmt === 0o020000 || fmt === 0o060000 || fmt === 0o010000 || fmt === 0o140000) return 'device';
  if (fmt === 0o040000 || name.endsWith('/')) return 'directory';
  return 'file';
}

async function* readZip(path: string, ctx: Guard): AsyncGenerator<ArchiveEntry, void, undefined> {
  let zip: yauzl.ZipFile;
  try {
    // decodeStrings off: yauzl would reject unsafe names with a bare Error; we decode
    // (strictly: backslashes kept) and refuse them ourselves with the entry named.
    zip = await yauzl.openPromise(path, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (e) {
    throw ctx.wrap(e);
  }
  try {
    if (zip.entryCount > ctx.limits.maxEntries) {
      throw ctx.error('ARCHIVE_TOO_MANY_ENTRIES', `archive declares ${zip.entryCount} entries, more than ${ctx.limits.maxEntries} (limit maxEntries)`);
    }
    let declaredTotal = 0;
    for await (const raw of zip.eachEntry()) {
      const rawName = yauzl.getFileNameLowLevel(raw.generalPurposeBitFlag, raw.fileNameRaw, raw.extraFields, true);
      const type = zipType(raw, rawName);
      const e = ctx.admit(rawName, type);
      if (type === 'file') {
        if (raw.isEncrypted()) throw ctx.error('ARCHIVE_UNSUPPORTED', 'is encrypted', e);
        if (!raw.canDecodeFileData()) throw ctx.error('ARCHIVE_UNSUPPORTED', `uses unsupported compression method ${raw.compressionMethod}`, e);
        const allowance = ctx.entryAllowance(raw.compressedSize);
        declaredTotal += raw.uncompressedSize;
        // Declared sizes: an early, cheap refusal. The counted stream is what we rely on.
        if (raw.uncompressedSize > ctx.limits.maxTotalBytes || declaredTotal > ctx.limits.maxTotalBytes) {
          throw ctx.error('ARCHIVE_TOO_LARGE', `declares ${raw.uncompressedSize} bytes; archive would expand past ${ctx.limits.maxTotalBytes} bytes (limit maxTotalBytes)`, e);
        }
        if (raw.uncompressedSize > allowance || declaredTotal > ctx.totalAllowance()) {
          throw ctx.error(
            'ARCHIVE_RATIO',
            `declares ${raw.uncompressedSize} bytes from ${raw.compressedSize} compressed, more than ${ctx.limits.maxRatio}× (limit maxRatio; possible decompression bomb)`,
            e,
          );
        }
      }
      // Opened lazily: an entry nobody reads costs nothing. yauzl checks actual vs
      // declared size (validateEntrySizes) and we count on top of that.
      const stream = ctx.counted(e, ctx.entryAllowance(raw.compressedSize), () => zip.openReadStreamPromise(raw));
      yield { name: e.name, type, size: raw.uncompressedSize, stream, index: e.index };
      await settle(stream, true);
    }
  } catch (e) {
    throw ctx.failure ?? ctx.wrap(e);
  } finally {
    zip.close();
  }
}

/**
 * After the consumer is done with an entry: surface its stream's error, or skip the
 * bytes it did not read (`discard`: just drop the stream, the source is seekable).
 */
async function settle(stream: Readable, discard: boolean): Promise<void> {
  if (stream.errored) throw stream.errored;
  if (stream.readableEnded) return;
  if (stream.destroyed) throw new Error('entry stream was abandoned part-way');
  if (discard && stream.readableLength === 0 && !stream.readableDidRead) {
    stream.destroy();
    return;
  }
  stream.resume();
  await finished(stream);
}
