import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GenolakeError } from '../util/errors.js';
import {
  asPrefix,
  checkKey,
  checkObjectKey,
  checkPublishPrefixes,
  compareKeys,
  isHidden,
  markerBody,
  newStagingPrefix,
  STAGING_ROOT,
} from './keys.js';
import { PUBLISHED_MARKER, type Body, type Lake, type LocalLakeConfig, type ObjectInfo } from './types.js';

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** Flushes a directory entry (a rename or create) to disk; some platforms cannot open directories, which is fine. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync().catch(() => undefined);
  } finally {
    await fh.close();
  }
}

/** Files from readdir, sorted so a recursive walk yields full keys in byte order (a directory sorts as `name/`). */
function sortEntryNames(entries: { name: string; dir: boolean }[]): { name: string; dir: boolean }[] {
  return entries
    .map((e) => ({ ...e, sortKey: e.dir ? `${e.name}/` : e.name }))
    .sort((a, b) => compareKeys(a.sortKey, b.sortKey))
    .map(({ name, dir }) => ({ name, dir }));
}

/**
 * A lake in a local directory: the embedded default (`./lake`). Objects are written to a
 * hidden `.tmp-*` file beside the target and renamed into place; publish renames a whole
 * staged directory over the final one. With `fsync` set, data and directory entries are
 * flushed before they become visible (survives power loss; slower).
 */
export class LocalLake implements Lake {
  readonly config: LocalLakeConfig;
  readonly root: string;
  private readonly fsync: boolean;

  constructor(root: string, options: { fsync?: boolean } = {}) {
    this.root = resolve(root);
    this.fsync = options.fsync ?? false;
    this.config = { kind: 'local', root: this.root, ...(this.fsync ? { fsync: true } : {}) };
  }

  describe(): string {
    return this.root;
  }

  private path(key: string): string {
    return join(this.root, checkObjectKey(key));
  }

  private dirPath(prefix: string): string {
    return join(this.root, asPrefix(prefix));
  }

  localPath(key: string): string {
    return this.path(key);
  }

  private notFound(key: string): GenolakeError {
    return new GenolakeError('LAKE_NOT_FOUND', `not in lake ${this.root}: ${key}`);
  }

  async put(key: string, body: Body): Promise<void> {
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    // Same directory as the target so the rename is atomic on one filesystem; the
    // `.tmp-` name keeps it out of listings while it is being written.
    const tmp = join(dirname(target), `.tmp-${randomUUID()}`);
    try {
      const source = body instanceof Readable ? body : Readable.from([typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
      const out = createWriteStream(tmp, { flags: 'wx' });
      await pipeline(source, out);
      if (this.fsync) {
        const fh = await open(tmp, 'r+');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      await rename(tmp, target);
      if (this.fsync) await fsyncDir(dirname(target));
    } catch (e) {
      await rm(tmp, { force: true });
      if (errno(e) === 'EISDIR' || errno(e) === 'ENOTDIR' || errno(e) === 'ENOTEMPTY') {
        throw new GenolakeError('LAKE_BAD_KEY', `cannot write ${key} in lake ${this.root}: a prefix and an object would share a name`, {}, { cause: e });
      }
      throw e;
    }
  }

  async move(from: string, to: string): Promise<void> {
    const src = this.path(from);
    const dst = this.path(to);
    await mkdir(dirname(dst), { recursive: true });
    try {
      await rename(src, dst);
    } catch (e) {
      if (errno(e) === 'ENOENT' && !(await this.exists(from))) throw this.notFound(from);
      throw e;
    }
    if (this.fsync) await fsyncDir(dirname(dst));
  }

  async get(key: string): Promise<Readable> {
    const p = this.path(key);
    // Open first so a missing file is reported here, not as a stream error later.
    const fh = await open(p, 'r').catch((e: unknown) => {
      if (errno(e) === 'ENOENT' || errno(e) === 'ENOTDIR') throw this.notFound(key);
      throw e;
    });
    const info = await fh.stat();
    if (!info.isFile()) {
      await fh.close();
      throw this.notFound(key);
    }
    return createReadStream('', { fd: fh, autoClose: true });
  }

  async getBuffer(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      if (errno(e) === 'ENOENT' || errno(e) === 'EISDIR' || errno(e) === 'ENOTDIR') throw this.notFound(key);
      throw e;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const k = checkObjectKey(key);
    const info = await stat(join(this.root, k)).catch(() => undefined);
    return info?.isFile() ? { key: k, size: info.size } : undefined;
  }

  /**
   * Walks the directory the prefix names in sorted order, so keys stream out already in
   * byte order (the order S3 lists in) without collecting the whole listing first.
   */
  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const p = asPrefix(prefix);
    if (isHidden(p)) return;
    yield* this.walk(p);
  }

  private async *walk(rel: string): AsyncGenerator<ObjectInfo> {
    const dirents = await readdir(join(this.root, rel), { withFileTypes: true }).catch(() => []);
    const entries = sortEntryNames(
      dirents.filter((d) => d.isDirectory() || d.isFile()).map((d) => ({ name: d.name, dir: d.isDirectory() })),
    );
    for (const entry of entries) {
      const key = `${rel}${entry.name}`;
      if (entry.dir) {
        if (!isHidden(`${key}/`)) yield* this.walk(`${key}/`);
      } else if (!isHidden(key)) {
        // A file may vanish between readdir and stat (a concurrent delete or publish).
        const info = await stat(join(this.root, key)).catch(() => undefined);
        if (info?.isFile()) yield { key, size: info.size };
      }
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.path(key);
    await rm(p, { force: true }).catch((e: unknown) => {
      // A prefix is not an object: deleting it as a key is a no-op, as on S3.
      if (errno(e) === 'ERR_FS_EISDIR' || errno(e) === 'EISDIR') return;
      throw e;
    });
  }

  async deletePrefix(prefix: string): Promise<void> {
    const p = asPrefix(prefix);
    if (p === '') throw new GenolakeError('LAKE_BAD_KEY', 'refusing to delete the whole lake');
    const dir = join(this.root, p);
    // Rename aside first so a reader never lists a half-deleted tree, then remove at leisure.
    const trash = join(this.root, STAGING_ROOT, `.trash-${randomUUID()}`);
    await mkdir(dirname(trash), { recursive: true });
    try {
      await rename(dir, trash);
    } catch (e) {
      if (errno(e) === 'ENOENT') return;
      if (errno(e) === 'ENOTDIR') return; // a file, not a prefix
      // Cross-device or other oddities: fall back to removing in place.
      await rm(dir, { recursive: true, force: true });
      return;
    }
    await rm(trash, { recursive: true, force: true });
  }

  stagingPrefix(label: string): string {
    return newStagingPrefix(label, randomUUID());
  }

  /**
   * Writes the marker into the staged tree, then swaps directories: the old `final` is
   * renamed into the trash and the staged one renamed to `final`. Each rename is atomic,
   * so readers see the old tree (with its marker), no tree, or the new tree (with its
   * marker), never a mix. If the second rename fails the old tree is put back.
   */
  async publish(staging: string, final: string, meta: Record<string, unknown> = {}): Promise<void> {
    const { staging: s, final: f } = checkPublishPrefixes(staging, final);
    const from = this.dirPath(s);
    const to = this.dirPath(f);
    await mkdir(from, { recursive: true });
    let objects = 0;
    for await (const file of this.listFiles(from)) if (file !== PUBLISHED_MARKER) objects++;
    await this.put(`${s}${PUBLISHED_MARKER}`, markerBody(objects, meta));
    await mkdir(dirname(to), { recursive: true });
    if (this.fsync) await fsyncDir(from);

    // Two publishers of the same final can interleave; retry the swap a few times.
    for (let attempt = 0; ; attempt++) {
      const trash = join(this.root, STAGING_ROOT, `.trash-${randomUUID()}`);
      await mkdir(dirname(trash), { recursive: true });
      const hadOld = await rename(to, trash).then(
        () => true,
        (e: unknown) => {
          if (errno(e) === 'ENOENT') return false;
          throw e;
        },
      );
      try {
        await rename(from, to);
      } catch (e) {
        if (hadOld) await rename(trash, to).catch(() => undefined);
        if ((errno(e) === 'ENOTEMPTY' || errno(e) === 'EEXIST') && attempt < 5) continue;
        throw e;
      }
      if (this.fsync) await fsyncDir(dirname(to));
      if (hadOld) await rm(trash, { recursive: true, force: true });
      return;
    }
  }

  async isPublished(final: string): Promise<boolean> {
    return this.exists(`${asPrefix(final)}${PUBLISHED_MARKER}`);
  }

  /** Files under an absolute directory as '/'-joined relative paths, in-flight `.tmp-` files excluded. */
  private async *listFiles(dir: string, rel = ''): AsyncGenerator<string> {
    const dirents = await readdir(join(dir, rel), { withFileTypes: true }).catch(() => []);
    for (const d of dirents) {
      if (d.name.startsWith('.tmp-')) continue;
      if (d.isDirectory()) yield* this.listFiles(dir, `${rel}${d.name}/`);
      else if (d.isFile()) yield `${rel}${d.name}`;
    }
  }
}
