import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { createPool, type TaskPool } from '../../src/engine/pool.js';
import { LocalLake } from '../../src/lake/local.js';
import type { Lake } from '../../src/lake/types.js';
import type { ShardDeps } from '../../src/stages/shard.js';

export interface Rec {
  head: string;
  seq: string;
  plus: string;
  qual: string;
}

/** Deterministic pseudo-random reads (names `prefix:<n>` + mate suffix). */
export function makeRecords(n: number, opts: { seed?: number; mate?: 1 | 2; len?: number; suffix?: boolean } = {}): Rec[] {
  let s = opts.seed ?? 7;
  const rnd = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const out: Rec[] = [];
  for (let i = 0; i < n; i++) {
    const len = opts.len ?? 20 + Math.floor(rnd() * 30);
    let seq = '';
    let qual = '';
    for (let j = 0; j < len; j++) {
      seq += 'ACGTN'[Math.floor(rnd() * 4.2)];
      qual += String.fromCharCode(35 + Math.floor(rnd() * 40));
    }
    const name = `SIM:1:FC:1:${1101 + i}:${i * 7}`;
    const mateTag = opts.mate ? (opts.suffix ? `/${opts.mate}` : '') + ` ${opts.mate}:N:0:ACGT` : '';
    out.push({ head: `@${name}${mateTag}`, seq, plus: '+', qual });
  }
  return out;
}

export function fastqText(recs: Rec[], eol = '\n'): string {
  return recs.map((r) => `${r.head}${eol}${r.seq}${eol}${r.plus}${eol}${r.qual}${eol}`).join('');
}

/** A gzip file of several members (what BGZF and `cat a.gz b.gz` look like). */
export function multiMemberGzip(text: string, parts: number): Buffer {
  const buf = Buffer.from(text);
  const step = Math.ceil(buf.length / parts);
  const members: Buffer[] = [];
  for (let o = 0; o < buf.length; o += step) members.push(gzipSync(buf.subarray(o, o + step)));
  return Buffer.concat(members);
}

/** BGZF made by htslib's bgzip (Debian tabix package). */
export function bgzip(text: string, dir: string): Buffer {
  const f = join(dir, `bgzip-${Math.random().toString(36).slice(2)}.fq`);
  writeFileSync(f, text);
  const out = execFileSync('bgzip', ['-c', f], { maxBuffer: 1 << 28 });
  rmSync(f);
  return out;
}

export interface Env {
  dir: string;
  lake: LakeLike;
  pool: TaskPool;
  deps: ShardDeps;
  close(): Promise<void>;
}
type LakeLike = Lake & { root: string };

/**
 * `runTasks` over a real pool with the engine's contract: results in task order, and it
 * settles only once every task has settled (nobody still writes into staging).
 */
export function poolRunTasks(pool: TaskPool): ShardDeps['runTasks'] {
  return async <P, R>(worker: string, tasks: readonly { key: string; payload: P }[]): Promise<R[]> => {
    const settled = await Promise.allSettled(tasks.map((t) => pool.run<P, R>(worker, t.payload)));
    const bad = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (bad) throw bad.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
  };
}

/** A local lake in a temp dir and the engine's piscina pool running dist/workers/shard.js. */
export function makeEnv(threads = 2): Env {
  const dir = mkdtempSync(join(tmpdir(), 'genolake-shard-'));
  const lake = new LocalLake(join(dir, 'lake'));
  const pool = createPool({ threads });
  const deps: ShardDeps = { lake, runTasks: poolRunTasks(pool) };
  return {
    dir,
    lake,
    pool,
    deps,
    async close() {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function listKeys(lake: Lake, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of lake.list(prefix)) keys.push(o.key);
  return keys;
}

/** Entries left in the lake's staging area (hidden from list()). */
export function stagingLeft(lake: LakeLike): string[] {
  try {
    return readdirSync(join(lake.root, '_staging')).filter((n) => !n.startsWith('.trash-'));
  } catch {
    return [];
  }
}

export async function gunzipKey(lake: Lake, key: string): Promise<string> {
  return gunzipSync(await lake.getBuffer(key)).toString('latin1');
}
