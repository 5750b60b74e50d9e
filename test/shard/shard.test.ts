import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineStage, runPipeline } from '../../src/engine/graph.js';
import { createPool, type TaskPool } from '../../src/engine/pool.js';
import { openLake } from '../../src/lake/open.js';
import { PUBLISHED_MARKER } from '../../src/lake/types.js';
import {
  DEFAULT_READS_PER_SHARD,
  SHARDS_INDEX,
  shardFileName,
  shardReads,
  type ShardDeps,
  type ShardIndex,
  type ShardInput,
  type ShardMateResult,
  type ShardProgress,
} from '../../src/stages/shard.js';
import { InputError } from '../../src/util/errors.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import {
  bgzip,
  fastqText,
  gunzipKey,
  listKeys,
  makeEnv,
  makeRecords,
  multiMemberGzip,
  poolRunTasks,
  stagingLeft,
  type Env,
  type Rec,
} from './helpers.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** The pairing names of records, each + '\n' (what `namesSha256` hashes). */
function namesText(recs: Rec[]): string {
  return recs.map((r) => `${r.head.slice(1).split(' ')[0].replace(/\/[12]$/, '')}\n`).join('');
}

let env: Env;
beforeAll(() => {
  env = makeEnv(2);
});
afterAll(async () => {
  await env?.close();
});

const R1 = makeRecords(1000, { mate: 1, suffix: true });
const R2 = makeRecords(1000, { mate: 2, seed: 99 });
const T1 = fastqText(R1);
const T2 = fastqText(R2);

async function putPair(prefix: string, a: Buffer | string, b: Buffer | string, ext = '.fastq.gz'): Promise<ShardInput['readGroups'][number]> {
  const r1 = `${prefix}_R1${ext}`;
  const r2 = `${prefix}_R2${ext}`;
  await env.lake.put(r1, a);
  await env.lake.put(r2, b);
  return { id: 'rg1', r1, r2 };
}

/** Gunzipped contents of every shard of one mate, in shard order. */
async function shardTexts(index: ShardIndex, mate: 'r1' | 'r2'): Promise<string[]> {
  const out: string[] = [];
  for (const s of index.shards) out.push(await gunzipKey(env.lake, s[mate]!.key));
  return out;
}

describe('shardReads', () => {
  it('shards plain, gzip, multi-member gzip and BGZF input into identical, complete gzip shards', async () => {
    const inputs: Record<string, [Buffer, Buffer, string]> = {
      plain: [Buffer.from(T1), Buffer.from(T2), '.fastq'],
      gzip: [gzipSync(T1), gzipSync(T2), '.fastq.gz'],
      multi: [multiMemberGzip(T1, 9), multiMemberGzip(T2, 4), '.fq.gz'],
      bgzf: [bgzip(T1, env.dir), bgzip(T2, env.dir), '.fastq.bgz'],
    };
    // BGZF really is many members with the BC extra field (magic + FEXTRA + 'BC').
    expect(inputs.bgzf[0].subarray(0, 4)).toEqual(Buffer.from([0x1f, 0x8b, 8, 4]));
    expect(inputs.bgzf[0].subarray(12, 14).toString('latin1')).toBe('BC');

    const digests: string[] = [];
    for (const [fmt, [a, b, ext]] of Object.entries(inputs)) {
      const rg = await putPair(`in/${fmt}`, a, b, ext);
      const index = await shardReads({ readGroups: [rg], readsPerShard: 300, outPrefix: `out/${fmt}` }, env.deps);

      expect(index.readsPerShard).toBe(300);
      expect(index.totalReads).toBe(1000);
      const bases = [...R1, ...R2].reduce((n, r) => n + r.seq.length, 0);
      expect(index.totalBases).toBe(bases);
      expect(index.readGroups).toEqual([
        { id: 'rg1', paired: true, reads: 1000, bases, r1: { key: rg.r1, bytes: a.length }, r2: { key: rg.r2, bytes: b.length }, shards: 4 },
      ]);
      expect(index.shards.map((s) => [s.index, s.firstRecord, s.reads])).toEqual([
        [0, 1, 300],
        [1, 301, 300],
        [2, 601, 300],
        [3, 901, 100],
      ]);

      // Concatenated shards are the input, record for record.
      expect((await shardTexts(index, 'r1')).join('')).toBe(T1);
      expect((await shardTexts(index, 'r2')).join('')).toBe(T2);

      for (const s of index.shards) {
        const recs1 = R1.slice(s.firstRecord - 1, s.firstRecord - 1 + s.reads);
        const recs2 = R2.slice(s.firstRecord - 1, s.firstRecord - 1 + s.reads);
        expect(s.r1.key).toBe(`out/${fmt}/${shardFileName('rg1', s.index, 'R1')}`);
        expect(s.r2!.key).toBe(`out/${fmt}/${shardFileName('rg1', s.index, 'R2')}`);
        const f1 = await env.lake.getBuffer(s.r1.key);
        const f2 = await env.lake.getBuffer(s.r2!.key);
        expect([s.r1.bytes, s.r1.sha256]).toEqual([f1.length, sha256(f1)]);
        expect([s.r2!.bytes, s.r2!.sha256]).toEqual([f2.length, sha256(f2)]);
        expect(s.bases).toBe([...recs1, ...recs2].reduce((n, r) => n + r.seq.length, 0));
        // Same names for both mates ('/1' and comments dropped).
        expect(s.namesSha256).toBe(sha256(namesText(recs1)));
        expect(s.namesSha256).toBe(sha256(namesText(recs2)));
      }
      expect(JSON.parse((await env.lake.getBuffer(`out/${fmt}/${SHARDS_INDEX}`)).toString('utf8'))).toEqual(index);
      expect(await env.lake.isPublished(`out/${fmt}/`)).toBe(true);
      expect(await listKeys(env.lake, `out/${fmt}/`)).toEqual(
        [
          `out/${fmt}/${PUBLISHED_MARKER}`,
          `out/${fmt}/rg1.shard-00000.R1.fastq.gz`,
          `out/${fmt}/rg1.shard-00000.R2.fastq.gz`,
          `out/${fmt}/rg1.shard-00001.R1.fastq.gz`,
          `out/${fmt}/rg1.shard-00001.R2.fastq.gz`,
          `out/${fmt}/rg1.shard-00002.R1.fastq.gz`,
          `out/${fmt}/rg1.shard-00002.R2.fastq.gz`,
          `out/${fmt}/rg1.shard-00003.R1.fastq.gz`,
          `out/${fmt}/rg1.shard-00003.R2.fastq.gz`,
          `out/${fmt}/${SHARDS_INDEX}`,
        ].sort(),
      );
      digests.push(index.shards.map((s) => `${s.r1.sha256}/${s.r2!.sha256}`).join(','));
    }
    // The shards depend on the records only, not on how the input was compressed.
    expect(new Set(digests).size).toBe(1);
    expect(stagingLeft(env.lake)).toEqual([]);
  });

  it('is deterministic: two runs, and a run on a 1-thread pool, give the same bytes', async () => {
    const rg = await putPair('in/det', gzipSync(T1), gzipSync(T2));
    const a = await shardReads({ readGroups: [rg], readsPerShard: 128, outPrefix: 'out/det-a' }, env.deps);
    const b = await shardReads({ readGroups: [rg], readsPerShard: 128, outPrefix: 'out/det-b' }, env.deps);
    const pool1 = createPool({ threads: 1 });
    let c: ShardIndex;
    try {
      // Also the older one-call-per-task form of the dependency.
      c = await shardReads(
        { readGroups: [rg], readsPerShard: 128, outPrefix: 'out/det-c' },
        { lake: env.lake, runTask: <P, R>(worker: string, payload: P) => pool1.run<P, R>(worker, payload) },
      );
    } finally {
      await pool1.close();
    }
    expect(a.shards.length).toBe(8);
    const strip = (i: ShardIndex, p: string) => JSON.parse(JSON.stringify(i).replaceAll(p, 'out/X/')) as ShardIndex;
    expect(strip(b, 'out/det-b/')).toEqual(strip(a, 'out/det-a/'));
    expect(strip(c, 'out/det-c/')).toEqual(strip(a, 'out/det-a/'));
    for (let k = 0; k < a.shards.length; k++) {
      for (const m of ['r1', 'r2'] as const) {
        const fa = await env.lake.getBuffer(a.shards[k][m]!.key);
        expect((await env.lake.getBuffer(b.shards[k][m]!.key)).equals(fa)).toBe(true);
        expect((await env.lake.getBuffer(c.shards[k][m]!.key)).equals(fa)).toBe(true);
      }
    }
    expect((await env.lake.getBuffer(`out/det-b/${SHARDS_INDEX}`)).toString().replaceAll('out/det-b/', 'out/X/')).toBe(
      (await env.lake.getBuffer(`out/det-a/${SHARDS_INDEX}`)).toString().replaceAll('out/det-a/', 'out/X/'),
    );
  });

  it('writes multi-MiB shards with the same bytes from plain and multi-member gzip input', async () => {
    const recs = makeRecords(7000, { len: 150 });
    const text = fastqText(recs);
    await env.lake.put('in/members.fastq', text);
    await env.lake.put('in/members.fastq.gz', multiMemberGzip(text, 3));
    const a = await shardReads({ readGroups: [{ id: 'm', r1: 'in/members.fastq' }], readsPerShard: 6000, outPrefix: 'out/members-a' }, env.deps);
    const b = await shardReads({ readGroups: [{ id: 'm', r1: 'in/members.fastq.gz' }], readsPerShard: 6000, outPrefix: 'out/members-b' }, env.deps);
    expect(a.shards.map((s) => s.reads)).toEqual([6000, 1000]);
    expect(b.shards.map((s) => s.r1.sha256)).toEqual(a.shards.map((s) => s.r1.sha256));
    expect((await shardTexts(a, 'r1')).join('')).toBe(text);
  });

  it('publishes CRLF input as LF FASTQ; shards single-end read groups; default shard size', async () => {
    const rg = await putPair('in/crlf', gzipSync(fastqText(R1, '\r\n')), gzipSync(fastqText(R2, '\r\n')));
    const se = 'in/single.fastq.gz';
    await env.lake.put(se, gzipSync(T1));
    const index = await shardReads({ readGroups: [rg, { id: 'se', r1: se }], outPrefix: 'out/crlf' }, env.deps);
    expect(index.readsPerShard).toBe(DEFAULT_READS_PER_SHARD);
    expect(index.totalReads).toBe(2000);
    expect(index.shards.map((s) => [s.readGroup, s.index, s.reads, s.r2 !== undefined])).toEqual([
      ['rg1', 0, 1000, true],
      ['se', 0, 1000, false],
    ]);
    expect(index.readGroups[1]).toMatchObject({ id: 'se', paired: false, reads: 1000, shards: 1 });
    expect(await gunzipKey(env.lake, index.shards[0].r1.key)).toBe(T1);
    expect(await gunzipKey(env.lake, index.shards[0].r2!.key)).toBe(T2);
    expect(await gunzipKey(env.lake, index.shards[1].r1.key)).toBe(T1);
    expect(await env.lake.exists('out/crlf/se.shard-00000.R1.fastq.gz')).toBe(true);
    expect(await env.lake.exists('out/crlf/se.shard-00000.R2.fastq.gz')).toBe(false);
  });

  it('reports progress as running totals and as engine units', async () => {
    const a = gzipSync(T1);
    const b = gzipSync(T2);
    const rg = await putPair('in/progress', a, b);
    const seen: ShardProgress[] = [];
    const units: Record<string, number> = {};
    await shardReads(
      { readGroups: [rg], readsPerShard: 400, outPrefix: 'out/progress' },
      {
        ...env.deps,
        onProgress: (p) => seen.push(p),
        progress: { addUnits: (name, n) => (units[name] = (units[name] ?? 0) + n) },
      },
    );
    expect(seen.at(-1)).toEqual({ reads: 2000, bytes: a.length + b.length });
    for (let i = 1; i < seen.length; i++) expect(seen[i].reads).toBeGreaterThanOrEqual(seen[i - 1].reads);
    expect(units).toEqual({ reads: 2000, bytes: a.length + b.length });
  });
});

describe('shardReads on bad input: error names file, record and reason; nothing is published', () => {
  const N = 10;
  const good1 = makeRecords(N, { mate: 1 });
  const good2 = makeRecords(N, { mate: 2, seed: 3 });
  const edit = (f: (r: Rec[]) => void, mate: 1 | 2 = 1): string => {
    const r = makeRecords(N, mate === 1 ? { mate: 1 } : { mate: 2, seed: 3 });
    f(r);
    return fastqText(r);
  };
  const name5 = good1[4].head.slice(1).split(' ')[0];
  const cases: { name: string; r1: string; r2: string; code: string; text: string }[] = [
    {
      name: 'truncated record',
      r1: `${fastqText(good1).split('\n').slice(0, 38).join('\n')}\n`,
      r2: fastqText(good2),
      code: 'FASTQ_TRUNCATED',
      text: 'in/bad-truncated_R1.fastq.gz: line 39: record 10: field separator: truncated record: the file ends after line 2 of 4',
    },
    {
      name: 'bad separator',
      r1: edit((r) => (r[4].plus = '-')),
      r2: fastqText(good2),
      code: 'FASTQ_BAD_SEPARATOR',
      text: `in/bad-separator_R1.fastq.gz: line 19: record 5: field separator: separator line must start with '+', found "-"`,
    },
    {
      name: 'separator naming another read',
      r1: fastqText(good1),
      r2: edit((r) => (r[6].plus = '+SIM:1:FC:1:9999:1'), 2),
      code: 'FASTQ_BAD_SEPARATOR',
      text: `in/bad-other_R2.fastq.gz: line 27: record 7: field separator: separator line "+SIM:1:FC:1:9999:1" does not repeat the header "@${good2[6].head.slice(1)}"`,
    },
    {
      name: 'bad header',
      r1: edit((r) => (r[2].head = `>${r[2].head.slice(1)}`)),
      r2: fastqText(good2),
      code: 'FASTQ_BAD_HEADER',
      text: `in/bad-header_R1.fastq.gz: line 9: record 3: field header: header line must start with '@', found ">${good1[2].head.slice(1)}"`,
    },
    {
      name: 'length mismatch',
      r1: edit((r) => (r[4].qual = r[4].qual.slice(1))),
      r2: fastqText(good2),
      code: 'FASTQ_LENGTH_MISMATCH',
      text: `in/bad-length_R1.fastq.gz: line 20: record 5: field quality: quality length ${good1[4].seq.length - 1} differs from sequence length ${good1[4].seq.length}`,
    },
    {
      name: 'illegal base',
      r1: fastqText(good1),
      r2: edit((r) => (r[7].seq = `ACGTX${r[7].seq.slice(5)}`), 2),
      code: 'FASTQ_BAD_BASE',
      text: `in/bad-base_R2.fastq.gz: line 30: record 8: field sequence: illegal base 'X' at position 5`,
    },
    {
      name: 'quality out of range',
      r1: edit((r) => (r[4].qual = `${r[4].qual.slice(0, 3)} ${r[4].qual.slice(4)}`)),
      r2: fastqText(good2),
      code: 'FASTQ_BAD_QUAL',
      text: `in/bad-qual_R1.fastq.gz: line 20: record 5: field quality: quality character byte 0x20 at position 4 is outside Phred+33 '!'..'~'`,
    },
    {
      name: 'mismatched pair names',
      r1: fastqText(good1),
      r2: edit((r) => (r[6].head = '@other 2:N:0:ACGT'), 2),
      code: 'FASTQ_PAIR_NAME',
      text: `in/bad-names_R1.fastq.gz, in/bad-names_R2.fastq.gz: record 7: field header: mate names differ: "${good1[6].head.slice(1).split(' ')[0]}" in in/bad-names_R1.fastq.gz vs "other" in in/bad-names_R2.fastq.gz`,
    },
    {
      name: 'different counts',
      r1: fastqText(good1),
      r2: fastqText(good2.slice(0, 8)),
      code: 'FASTQ_PAIR_COUNT',
      text: 'in/bad-count_R1.fastq.gz, in/bad-count_R2.fastq.gz: record 9: paired files differ in record count: in/bad-count_R1.fastq.gz has a record 9 but in/bad-count_R2.fastq.gz ends after 8 records',
    },
    {
      name: 'different counts, R2 longer by whole shards',
      r1: fastqText(good1.slice(0, 3)),
      r2: fastqText(good2),
      code: 'FASTQ_PAIR_COUNT',
      text: 'in/bad-count2_R1.fastq.gz, in/bad-count2_R2.fastq.gz: record 4: paired files differ in record count: in/bad-count2_R2.fastq.gz has a record 4 but in/bad-count2_R1.fastq.gz ends after 3 records',
    },
    {
      name: 'empty file',
      r1: '',
      r2: fastqText(good2),
      code: 'FASTQ_EMPTY',
      text: 'in/bad-empty_R1.fastq.gz: file holds no FASTQ records',
    },
  ];
  const slug = (text: string) => /^in\/(bad-[a-z0-9]+)_/.exec(text)![1];

  it.each(cases)('$name', async ({ r1, r2, code, text }) => {
    const id = slug(text);
    const rg = await putPair(`in/${id}`, gzipSync(r1), gzipSync(r2));
    const before = await listKeys(env.lake, '');
    let err: unknown;
    try {
      await shardReads({ readGroups: [rg], readsPerShard: 3, outPrefix: `out/${id}` }, env.deps);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const ie = err as InputError;
    expect(ie.code).toBe(code);
    expect(ie.describe()).toBe(text);
    // Nothing published, nothing left in staging: the lake holds what it held before.
    expect(await listKeys(env.lake, `out/${id}/`)).toEqual([]);
    expect(await env.lake.isPublished(`out/${id}/`)).toBe(false);
    expect(await listKeys(env.lake, '')).toEqual(before);
    expect(stagingLeft(env.lake)).toEqual([]);
  });

  it('names the first bad record of a 5000-record file read in many batches', async () => {
    const big = makeRecords(5000, { mate: 1, len: 150 });
    big[4321].qual = `${big[4321].qual.slice(0, 99)}\x7f${big[4321].qual.slice(100)}`;
    const rg = await putPair('in/bad-big', gzipSync(fastqText(big)), gzipSync(fastqText(makeRecords(5000, { mate: 2, len: 150 }))));
    const p = shardReads({ readGroups: [rg], readsPerShard: 1000, outPrefix: 'out/bad-big' }, env.deps);
    await expect(p).rejects.toThrow(InputError);
    const e = (await p.catch((x: unknown) => x)) as InputError;
    expect(e.describe()).toBe(
      "in/bad-big_R1.fastq.gz: line 17288: record 4322: field quality: quality character byte 0x7f at position 100 is outside Phred+33 '!'..'~'",
    );
    expect(await listKeys(env.lake, 'out/bad-big/')).toEqual([]);
    expect(stagingLeft(env.lake)).toEqual([]);
  });

  it('maxQual narrows the accepted quality range', async () => {
    const recs = makeRecords(4, { len: 10 });
    recs[2].qual = 'IIIIIIIIIK';
    const key = 'in/bad-maxqual.fastq.gz';
    await env.lake.put(key, gzipSync(fastqText(recs)));
    const ok = await shardReads({ readGroups: [{ id: 'a', r1: key }], outPrefix: 'out/maxqual-ok' }, env.deps);
    expect(ok.totalReads).toBe(4);
    const e = (await shardReads(
      { readGroups: [{ id: 'a', r1: key }], outPrefix: 'out/maxqual-j', fastq: { maxQual: 'J' } },
      { lake: env.lake, runTask: <P, R>(worker: string, payload: P) => env.pool.run<P, R>(worker, payload) },
    ).catch((x: unknown) => x)) as InputError;
    expect(e).toBeInstanceOf(InputError);
    expect(e.describe()).toBe(
      "in/bad-maxqual.fastq.gz: line 12: record 3: field quality: quality character 'K' at position 10 is outside Phred+33 '!'..'J'",
    );
    expect(await listKeys(env.lake, 'out/maxqual-j/')).toEqual([]);
  });

  it('refuses bad parameters and missing files before starting any task', async () => {
    const calls: string[] = [];
    const deps: ShardDeps = {
      lake: env.lake,
      runTasks: async () => {
        calls.push('run');
        return [];
      },
    };
    const rg = { id: 'rg1', r1: 'in/nope_R1.fastq.gz', r2: 'in/nope_R2.fastq.gz' };
    await expect(shardReads({ readGroups: [rg], outPrefix: 'out/x' }, deps)).rejects.toThrow(
      'read group rg1: FASTQ not found in lake',
    );
    await expect(shardReads({ readGroups: [{ ...rg, id: 'a/b' }], outPrefix: 'out/x' }, deps)).rejects.toThrow(
      'read group id must match [A-Za-z0-9._-]+, got "a/b"',
    );
    await expect(shardReads({ readGroups: [rg], readsPerShard: 0, outPrefix: 'out/x' }, deps)).rejects.toThrow(
      'readsPerShard must be a positive integer, got 0',
    );
    expect(calls).toEqual([]);
  });
});

describe('shardReads with checkpointed tasks (engine resume)', () => {
  /** runTasks that records results by key like the engine's checkpoints, and counts real runs. */
  function checkpointing(pool: TaskPool, store: Map<string, unknown>, ran: string[], hangAfter?: string): ShardDeps['runTasks'] {
    const real = poolRunTasks(pool);
    return async <P, R>(worker: string, tasks: readonly { key: string; payload: P }[]): Promise<R[]> => {
      const out: R[] = [];
      for (const t of tasks) {
        if (store.has(t.key)) {
          out.push(store.get(t.key) as R);
          continue;
        }
        if (hangAfter !== undefined && ran.includes(hangAfter)) {
          // The process "dies" here: no result, no cleanup.
          return new Promise<R[]>(() => undefined);
        }
        const [r] = await real<P, R>(worker, [t]);
        ran.push(t.key);
        store.set(t.key, JSON.parse(JSON.stringify(r)));
        out.push(r);
      }
      return out;
    };
  }

  it('a resumed run with the same staging prefix reuses finished tasks and publishes the same bytes', async () => {
    const rg = await putPair('in/resume', gzipSync(T1), gzipSync(T2));
    const fresh = await shardReads({ readGroups: [rg], readsPerShard: 300, outPrefix: 'out/resume-fresh' }, env.deps);

    const staging = env.lake.stagingPrefix('shard-run-r1');
    const store = new Map<string, unknown>();
    const ran: string[] = [];
    const input: ShardInput = { readGroups: [rg], readsPerShard: 300, outPrefix: 'out/resume', staging };
    const r1Key = `${staging}rg1.R1`;
    // First attempt: R1 finishes, then the run dies before R2.
    void shardReads(input, { lake: env.lake, runTasks: checkpointing(env.pool, store, ran, r1Key) });
    await expect.poll(() => ran.length, { timeout: 20_000 }).toBe(1);
    expect(ran).toEqual([r1Key]);
    expect(await listKeys(env.lake, 'out/resume/')).toEqual([]);

    // Resume: only R2 runs.
    const resumed = await shardReads(input, { lake: env.lake, runTasks: checkpointing(env.pool, store, ran) });
    expect(ran).toEqual([r1Key, `${staging}rg1.R2`]);
    expect(JSON.stringify(resumed).replaceAll('out/resume/', 'out/X/')).toBe(JSON.stringify(fresh).replaceAll('out/resume-fresh/', 'out/X/'));
    for (const s of resumed.shards) {
      const f = fresh.shards[s.index];
      expect((await env.lake.getBuffer(s.r1.key)).equals(await env.lake.getBuffer(f.r1.key))).toBe(true);
      expect((await env.lake.getBuffer(s.r2!.key)).equals(await env.lake.getBuffer(f.r2!.key))).toBe(true);
    }

    // Checkpoints whose staged files are gone are redone under fresh keys, not trusted.
    const again = await shardReads({ ...input, outPrefix: 'out/resume-again' }, { lake: env.lake, runTasks: checkpointing(env.pool, store, ran) });
    expect(ran.length).toBe(4);
    expect(ran.slice(2).every((k) => k.includes('#redo-'))).toBe(true);
    expect(again.shards.map((s) => s.r1.sha256)).toEqual(fresh.shards.map((s) => s.r1.sha256));
    expect(stagingLeft(env.lake)).toEqual([]);
    const r = store.get(r1Key) as ShardMateResult;
    expect(r.reads).toBe(1000);
  });
});

describe('shardReads on an S3 lake (s3rver on 127.0.0.1)', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ bucket: 'shard-test' });
  }, 30_000);
  afterAll(async () => {
    await s3?.close();
  });

  /** Every key in the bucket, staging areas included (lake.list hides them). */
  async function bucketKeys(): Promise<string[]> {
    const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    try {
      const r = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
      return (r.Contents ?? []).map((o) => o.Key!).sort();
    } finally {
      client.destroy();
    }
  }

  it('publishes the same shards as a local lake, and nothing on a bad record', async () => {
    const lake = await openLake(s3.config('lake'));
    const deps: ShardDeps = { lake, runTasks: env.deps.runTasks };
    await lake.put('in/s3_R1.fastq.gz', gzipSync(T1));
    await lake.put('in/s3_R2.fastq.gz', gzipSync(T2));
    const rg = { id: 'rg1', r1: 'in/s3_R1.fastq.gz', r2: 'in/s3_R2.fastq.gz' };
    const index = await shardReads({ readGroups: [rg], readsPerShard: 300, outPrefix: 'out/s3' }, deps);
    expect(await lake.isPublished('out/s3/')).toBe(true);
    const local = await shardReads({ readGroups: [await putPair('in/s3-local', gzipSync(T1), gzipSync(T2))], readsPerShard: 300, outPrefix: 'out/s3-local' }, env.deps);
    expect(index.shards.map((s) => [s.r1.sha256, s.r2!.sha256])).toEqual(local.shards.map((s) => [s.r1.sha256, s.r2!.sha256]));
    for (const s of index.shards) expect(sha256(await lake.getBuffer(s.r2!.key))).toBe(s.r2!.sha256);

    const bad = makeRecords(1000, { mate: 2, seed: 99 });
    bad[700].seq = `${bad[700].seq.slice(0, -1)}*`;
    await lake.put('in/s3bad_R1.fastq.gz', gzipSync(T1));
    await lake.put('in/s3bad_R2.fastq.gz', gzipSync(fastqText(bad)));
    const before = await bucketKeys();
    const e = (await shardReads(
      { readGroups: [{ id: 'rg1', r1: 'in/s3bad_R1.fastq.gz', r2: 'in/s3bad_R2.fastq.gz' }], readsPerShard: 300, outPrefix: 'out/s3bad' },
      deps,
    ).catch((x: unknown) => x)) as InputError;
    expect(e).toBeInstanceOf(InputError);
    expect(e.describe()).toBe(
      `in/s3bad_R2.fastq.gz: line 2802: record 701: field sequence: illegal base '*' at position ${bad[700].seq.length}`,
    );
    expect(await bucketKeys()).toEqual(before);
    expect(before.filter((k) => k.includes('_staging') || k.includes('s3bad/'))).toEqual([]);
  }, 60_000);
});

describe('shardReads inside an engine pipeline (runPipeline, ctx as deps)', () => {
  const stage = (id: string, rg: ShardInput['readGroups'][number]) =>
    defineStage({
      name: 'shard',
      async run(ctx): Promise<ShardIndex> {
        return shardReads({ readGroups: [rg], readsPerShard: 250, outPrefix: `out/${id}` }, ctx);
      },
    });

  it('runs one task per mate on the run pool and checkpoints them', async () => {
    const rg = await putPair('in/engine', gzipSync(T1), gzipSync(T2));
    const r = await runPipeline([stage('engine', rg)], { lake: env.lake, threads: 2, progress: false });
    const index = r.outputs.shard as ShardIndex;
    expect(index.shards.length).toBe(4);
    expect((await shardTexts(index, 'r2')).join('')).toBe(T2);
    expect(r.provenance.stages.shard).toMatchObject({ status: 'done', tasksRun: 2, tasksReused: 0 });
  });

  it('fails the run with the InputError and publishes nothing', async () => {
    const bad = makeRecords(1000, { mate: 1, suffix: true });
    bad[600].plus = '';
    const rg = await putPair('in/engine-bad', gzipSync(fastqText(bad)), gzipSync(T2));
    const e = (await runPipeline([stage('engine-bad', rg)], { lake: env.lake, threads: 2, progress: false }).catch((x: unknown) => x)) as InputError;
    expect(e).toBeInstanceOf(InputError);
    expect(e.describe()).toBe(`in/engine-bad_R1.fastq.gz: line 2403: record 601: field separator: separator line must start with '+', found ""`);
    expect(await listKeys(env.lake, 'out/engine-bad/')).toEqual([]);
    expect(stagingLeft(env.lake)).toEqual([]);
  });
});
