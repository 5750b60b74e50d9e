/**
 * `genolake watch <dir>`: hands each archive that appears in a folder to `onArchive`
 * once it is completely written, and each exactly once.
 *
 * "Completely written" cannot be known for sure from outside the writer, so a file is
 * taken when (a) its name is not a temporary one (`.part`, `.tmp`, dotfiles, ... : the
 * convention of browsers, rsync, scp and most upload tools, which rename when done),
 * and (b) its size and modification time have not changed for `stableMs`, observed by
 * polling every `pollMs`. The observed stability is what counts, not the mtime's age:
 * `cp -p` and `rsync -t` set old mtimes on files still being written.
 *
 * Exactly once: a file is identified by (name, device, inode, size, mtime); once handed
 * over (successfully or not) the same identity is never handed over again. A file
 * replaced by new content is a new identity and is handed over again (ingest recognises
 * content it has already seen, so that is harmless). Archives are handled one at a
 * time, in order of name.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger, type Logger } from '../util/log.js';

export interface WatchOptions {
  /** Called with the absolute path of each complete archive; awaited before the next. */
  onArchive(path: string): unknown;
  /** Called when onArchive throws; default: the error is logged and watching goes on. */
  onError?(error: unknown, path: string): unknown;
  /** Stops watching; watchDrops resolves once the archive in hand (if any) is done. */
  signal?: AbortSignal;
  /** How long size and mtime must stay unchanged. Default 5000 ms. */
  stableMs?: number;
  /** Poll interval. Default 1000 ms. */
  pollMs?: number;
  /** Which names to consider, after temporary names are excluded. Default: every name. */
  filter?(name: string): boolean;
  log?: Logger;
}

export const DEFAULT_STABLE_MS = 5000;
export const DEFAULT_POLL_MS = 1000;

const TEMP_SUFFIXES = ['.part', '.partial', '.tmp', '.temp', '.crdownload', '.download', '.filepart', '.swp', '.lock', '.uploading', '~'];

/** Names writers use while a file is incomplete (or hidden files): never taken. */
export function isTempName(name: string): boolean {
  const n = name.toLowerCase();
  return n.startsWith('.') || n.startsWith('~$') || n.startsWith('_tmp') || TEMP_SUFFIXES.some((s) => n.endsWith(s));
}

interface Seen {
  /** size/mtime/inode fingerprint at the last poll. */
  print: string;
  /** When this fingerprint was first observed (monotonic ms). */
  since: number;
}

/**
 * Watches `dir` (not recursively) until `signal` aborts. Files already present when
 * watching starts are handled too (they are new to this watcher).
 */
export async function watchDrops(dir: string, opts: WatchOptions): Promise<void> {
  const stableMs = opts.stableMs ?? DEFAULT_STABLE_MS;
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  const log = (opts.log ?? silentLogger()).child({ stage: 'watch', dir });
  const seen = new Map<string, Seen>();
  const done = new Set<string>();
  const signal = opts.signal;
  log.info({ stableMs, pollMs }, 'watching for drops');

  while (!signal?.aborted) {
    const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
      log.warn({ err: e.code ?? e.message }, 'cannot list the watched folder');
      return [] as string[];
    });
    const now = performance.now();
    const present = new Set<string>();
    for (const name of names.sort()) {
      if (signal?.aborted) break;
      if (isTempName(name) || (opts.filter && !opts.filter(name))) continue;
      const path = join(dir, name);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      const print = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
      present.add(name);
      if (done.has(`${name}\0${print}`)) continue;
      const prev = seen.get(name);
      if (!prev || prev.print !== print) {
        seen.set(name, { print, since: now });
        continue;
      }
      if (now - prev.since < stableMs) continue;
      // Stable: hand it over, once.
      done.add(`${name}\0${print}`);
      seen.delete(name);
      log.info({ path, bytes: info.size }, 'archive complete; handing over');
      try {
        await opts.onArchive(path);
      } catch (e) {
        if (opts.onError) await opts.onError(e, path);
        else log.error({ err: e, path }, 'could not handle archive');
      }
    }
    // Forget files that went away, so memory stays bounded by the folder's contents.
    for (const name of seen.keys()) if (!present.has(name)) seen.delete(name);
    for (const key of done) if (!present.has(key.slice(0, key.indexOf('\0')))) done.delete(key);
    await sleep(pollMs, undefined, { signal }).catch(() => undefined);
  }
  log.info('stopped watching');
}
