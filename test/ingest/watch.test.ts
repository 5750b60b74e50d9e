import { createHash } from 'node:crypto';
import { mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { ingestArchive, type IngestResult } from '../../src/stages/ingest.js';
import { isTempName, watchDrops } from '../../src/stages/watch.js';
import { buildTgz, buildZip, dropManifest, goodMembers } from './helpers.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'genolake-watch-test-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Writes `data` to `path` in `parts` chunks with a pause after each, like a slow upload. */
async function writeSlowly(path: string, data: Buffer, parts: number, pauseMs: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const step = Math.ceil(data.length / parts);
    for (let off = 0; off < data.length; off += step) {
      await fh.write(data, off, Math.min(step, data.length - off));
      await fh.sync();
      await sleep(pauseMs);
    }
  } finally {
    await fh.close();
  }
}

async function until(cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('watchDrops', () => {
  it('recognises temporary names', () => {
    for (const n of ['a.tar.gz.part', '.a.tar.gz', 'a.zip.tmp', 'x.crdownload', 'a.tgz~', '~$a.zip', 'A.ZIP.PART']) expect(isTempName(n), n).toBe(true);
    for (const n of ['a.tar.gz', 'drop.zip', 'lab-1.tgz', 'archive']) expect(isTempName(n), n).toBe(false);
  });

  it('ingests each archive once it is completely written, exactly once', async () => {
    const dir = join(work, 'drops');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const lake = new LocalLake(join(work, 'lake'));
    const slow = await buildTgz(goodMembers());
    const renamed = await buildZip(goodMembers(dropManifest({ patient_id: 'P2' })));
    const calls: { path: string; sha: string }[] = [];
    const results: IngestResult[] = [];
    const errors: unknown[] = [];
    const ac = new AbortController();
    const watching = watchDrops(dir, {
      // Far longer than the 40 ms pauses between chunks, even on a loaded machine.
      stableMs: 1500,
      pollMs: 50,
      signal: ac.signal,
      onArchive: async (path) => {
        calls.push({ path, sha: sha256(await readFile(path)) });
        results.push(await ingestArchive(lake, path));
      },
      onError: (e) => {
        errors.push(e);
      },
    });

    // A hidden file and a never-finished .part upload are never taken.
    await writeFile(join(dir, '.hidden.tgz'), slow);
    await writeFile(join(dir, 'stale.zip.part'), renamed.subarray(0, 100));
    // One archive written slowly in place, one written under a temporary name and renamed.
    await Promise.all([
      writeSlowly(join(dir, 'slow.tgz'), slow, 12, 40),
      (async () => {
        await writeSlowly(join(dir, 'renamed.zip.part'), renamed, 6, 40);
        await rename(join(dir, 'renamed.zip.part'), join(dir, 'renamed.zip'));
      })(),
    ]);
    await until(() => calls.length + errors.length >= 2, 'two archives');
    // Give it time to (wrongly) hand anything over again: several stability windows.
    await sleep(3000);
    ac.abort();
    await watching;

    expect(errors).toEqual([]);
    expect(calls.map((c) => c.path).sort()).toEqual([join(dir, 'renamed.zip'), join(dir, 'slow.tgz')]);
    // Each was complete when handed over.
    const bySha = Object.fromEntries(calls.map((c) => [c.path, c.sha]));
    expect(bySha[join(dir, 'slow.tgz')]).toBe(sha256(slow));
    expect(bySha[join(dir, 'renamed.zip')]).toBe(sha256(renamed));
    expect(results.map((r) => r.duplicate)).toEqual([false, false]);
    expect(results.map((r) => r.manifest.patient_id).sort()).toEqual(['P1', 'P2']);
  });

  it('stops promptly when aborted and hands over nothing after that', async () => {
    const dir = await mkdtemp(join(work, 'idle-'));
    const ac = new AbortController();
    const calls: string[] = [];
    const watching = watchDrops(dir, { stableMs: 100, pollMs: 20, signal: ac.signal, onArchive: (p) => void calls.push(p) });
    await sleep(100);
    ac.abort();
    await watching;
    await writeFile(join(dir, 'late.zip'), 'x');
    await sleep(300);
    expect(calls).toEqual([]);
  });
});
