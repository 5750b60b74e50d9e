import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineStage, listRuns, resumeRun, runPipeline, RunStore } from '../../src/engine/index.js';
import { createPool } from '../../src/engine/pool.js';
import { ProgressDisplay, formatStageLine } from '../../src/engine/progress.js';
import { LocalLake } from '../../src/lake/local.js';
import type { Lake } from '../../src/lake/types.js';
import { GenolakeError, InputError } from '../../src/util/errors.js';
import { toyStages } from './fixtures/toy-stages.mjs';

let dir: string;
let n = 0;
const newLake = (): LocalLake => new LocalLake(join(dir, `lake${++n}`));
const tmpFile = (name: string): string => join(dir, `${++n}-${name}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-engine-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function toyFiles(lake: Lake): Promise<Record<string, string>> {
  expect(await lake.isPublished('toy/out/')).toBe(true);
  return {
    upper: (await lake.getBuffer('toy/out/upper.txt')).toString('utf8'),
    hash: (await lake.getBuffer('toy/out/hash.txt')).toString('utf8'),
  };
}

async function countLines(file: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  if (!existsSync(file)) return m;
  for (const line of (await readFile(file, 'utf8')).split('\n')) if (line) m.set(line, (m.get(line) ?? 0) + 1);
  return m;
}

async function jsonObject<T>(lake: Lake, key: string): Promise<T> {
  return JSON.parse((await lake.getBuffer(key)).toString('utf8')) as T;
}

const PARAMS = { n: 5, seed: 'engine-test' };
interface Reference {
  files: Record<string, string>;
  outputs: Record<string, unknown>;
}
let referenceRun: Promise<Reference> | undefined;
/** An uninterrupted run of the toy pipeline with PARAMS (made once, by whichever test needs it first). */
function reference(): Promise<Reference> {
  referenceRun ??= (async () => {
    const lake = newLake();
    const r = await runPipeline(toyStages(), { lake, runId: 'plain', params: PARAMS, threads: 2, progress: false });
    return { files: await toyFiles(lake), outputs: r.outputs };
  })();
  return referenceRun;
}

describe('runPipeline on the worker pool', () => {
  it('runs a toy pipeline and records state, checkpoints, provenance and the log', async () => {
    const lake = newLake();
    const count = tmpFile('count');
    const r = await runPipeline(toyStages({ countFile: count }), { lake, runId: 'ref', params: PARAMS, threads: 2, progress: false });
    const files = await toyFiles(lake);
    expect(r.outputs).toEqual((await reference()).outputs);
    expect(files).toEqual((await reference()).files);
    expect((r.outputs as { upper: string[] }).upper[1]).toBe('ENGINE-TEST-1-ACGTACGT');
    expect(files.hash.split('\n')).toHaveLength(6);

    const state = await jsonObject<{ status: string; params: unknown; stages: Record<string, { status: string }> }>(lake, '_runs/ref/state.json');
    expect(state.status).toBe('done');
    expect(state.params).toEqual(PARAMS);
    expect(Object.values(state.stages).map((s) => s.status)).toEqual(['done', 'done', 'done', 'done']);

    const prov = await jsonObject<Record<string, any>>(lake, '_runs/ref/provenance.json');
    expect(prov.genolakeVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(prov.node).toBe(process.version);
    expect(prov.params).toEqual(PARAMS);
    expect(prov.threads).toBe(2);
    expect(prov.stages.upper).toMatchObject({ status: 'done', tasksRun: 5, tasksReused: 0, retries: 0, units: { reads: 5 } });
    expect(typeof prov.stages.hash.seconds).toBe('number');
    expect(prov.totals).toEqual({ tasksRun: 10, tasksReused: 0, retries: 0 });

    const cps = [];
    for await (const o of lake.list('_runs/ref/checkpoints/')) cps.push(o.key.slice('_runs/ref/checkpoints/'.length));
    expect(cps).toEqual(expect.arrayContaining(['plan.json', 'upper.json', 'hash.json', 'report.json', 'upper/u0.json', 'hash/h4.json']));
    expect(cps).toHaveLength(14);

    const log = (await lake.getBuffer('_runs/ref/log.jsonl')).toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(log[0]).toMatchObject({ runId: 'ref', msg: 'run started' });
    expect(log.some((l) => l.stage === 'upper' && l.msg === 'stage upper done' && l.tasksRun === 5)).toBe(true);
    expect(log[log.length - 1].msg).toBe('run ref done');

    // every task ran exactly once
    const counts = await countLines(count);
    expect(counts.size).toBe(20);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);

    expect((await listRuns(lake)).map((s) => [s.runId, s.status])).toEqual([['ref', 'done']]);
  });

  it('runs independent stages at the same time', async () => {
    const started = new Set<string>();
    const waiters: (() => void)[] = [];
    const meet = async (name: string): Promise<string> => {
      started.add(name);
      waiters.splice(0).forEach((w) => w());
      // Each of the two stages finishes only once the other has started.
      const deadline = Date.now() + 20_000;
      while (started.size < 3) {
        if (Date.now() > deadline) throw new Error(`${name}: the other stage never started`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
      return name;
    };
    const root = defineStage({ name: 'root', run: async () => 1 });
    const a = defineStage({ name: 'a', deps: [root], run: () => meet('a') });
    const b = defineStage({ name: 'b', deps: [root], run: () => meet('b') });
    const c = defineStage({ name: 'c', deps: ['root'], run: () => meet('c') });
    const join_ = defineStage({ name: 'join', deps: [a, b, c], run: async (_ctx, i) => `${i.a}${i.b}${i.c}` });
    const r = await runPipeline([join_, c, b, a, root], { lake: newLake(), progress: false });
    expect(r.outputs.join).toBe('abc');
    expect(r.provenance.threads).toBe(availableParallelism());
    expect(r.runId).toMatch(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
  });

  for (const mode of ['exit', 'throw'] as const) {
    it(`retries a task whose worker dies mid-task (${mode}) and produces identical outputs`, async () => {
      const lake = newLake();
      const count = tmpFile('count');
      const marker = tmpFile('marker');
      const r = await runPipeline(toyStages({ countFile: count, crashOnce: { key: 'u2', marker, mode } }), {
        lake,
        runId: 'crash',
        params: PARAMS,
        threads: 2,
        progress: false,
      });
      expect(existsSync(marker)).toBe(true);
      expect(r.outputs).toEqual((await reference()).outputs);
      expect(await toyFiles(lake)).toEqual((await reference()).files);
      const counts = await countLines(count);
      expect(counts.get('start u2')).toBe(2);
      expect(counts.get('end u2')).toBe(1);
      const prov = await jsonObject<Record<string, any>>(lake, '_runs/crash/provenance.json');
      expect(prov.stages.upper.retries).toBe(1);
      expect(prov.stages.hash.retries).toBe(0);
      expect(prov.totals.retries).toBe(1);
      const log = (await lake.getBuffer('_runs/crash/log.jsonl')).toString('utf8');
      expect(log).toContain('task u2: worker died, retrying');
    });
  }

  it('does not retry an InputError from a worker: it reaches the caller intact and is recorded under errors/', async () => {
    const lake = newLake();
    const count = tmpFile('count');
    const err = await runPipeline(toyStages({ countFile: count, badKey: 'h1' }), {
      lake,
      runId: 'bad',
      params: PARAMS,
      threads: 2,
      progress: false,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect(err).toMatchObject({ code: 'TOY_BAD_RECORD', message: 'bad item h1', place: { file: 'toy.txt', record: 7, field: 'data' } });
    expect((await countLines(count)).get('start h1')).toBe(1);

    const errors = [];
    for await (const o of lake.list('_runs/bad/errors/')) errors.push(o.key);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^_runs\/bad\/errors\/hash-.*\.json$/);
    const rec = await jsonObject<Record<string, any>>(lake, errors[0]);
    expect(rec).toMatchObject({
      runId: 'bad',
      stage: 'hash',
      task: { key: 'h1', worker: 'selftest' },
      error: { name: 'InputError', code: 'TOY_BAD_RECORD', place: { file: 'toy.txt', record: 7, field: 'data' } },
    });
    const state = await new RunStore(lake, 'bad').readState();
    expect(state?.status).toBe('failed');
    expect(state?.stages.hash.status).toBe('failed');
    expect(state?.stages.report.status).toBe('pending');
    expect(state?.error).toMatchObject({ stage: 'hash', code: 'TOY_BAD_RECORD' });
    expect(await lake.exists('toy/out/upper.txt')).toBe(false);
    expect((await listRuns(lake))[0]).toMatchObject({ runId: 'bad', status: 'failed', error: 'bad item h1' });
  });

  it('stops on abort (Ctrl-C), records it, and resumes to the same outputs', async () => {
    const lake = newLake();
    const count = tmpFile('count');
    const ac = new AbortController();
    // Tasks of items >= 1 wait for a gate that never opens: the run is stopped mid-stage.
    const run = runPipeline(toyStages({ countFile: count, gate: { file: tmpFile('never'), from: 1 } }), {
      lake,
      runId: 'ab',
      params: PARAMS,
      threads: 2,
      progress: false,
      signal: ac.signal,
    });
    let settled: unknown;
    run.then(
      () => (settled = 'finished before the abort'),
      (e: unknown) => (settled = e),
    );
    const deadline = Date.now() + 30_000;
    while (!((await countLines(count)).size > 3)) {
      if (settled !== undefined) throw new Error(`run ended before the abort: ${String(settled)}`);
      if (Date.now() > deadline) throw new Error('no task started');
      await new Promise((r) => setTimeout(r, 10));
    }
    ac.abort();
    await expect(run).rejects.toMatchObject({ code: 'RUN_ABORTED' });
    const state = await new RunStore(lake, 'ab').readState();
    expect(state?.status).toBe('failed');
    expect(Object.values(state!.stages).some((s) => s.status === 'pending')).toBe(true);
    const errors = [];
    for await (const o of lake.list('_runs/ab/errors/')) errors.push(o.key);
    expect(errors.some((k) => /errors\/run-/.test(k))).toBe(true);

    const r = await resumeRun(toyStages(), { lake, runId: 'ab', progress: false });
    expect(r.outputs).toEqual((await reference()).outputs);
    expect(await toyFiles(lake)).toEqual((await reference()).files);
    expect(r.state.status).toBe('done');
  });

  it('treats a checkpoint cut short by a kill as unfinished: resume runs that task again', async () => {
    const lake = newLake();
    const count = tmpFile('count');
    const ac = new AbortController();
    const run = runPipeline(toyStages({ countFile: count, gate: { file: tmpFile('never'), from: 2 } }), {
      lake,
      runId: 'cut',
      params: PARAMS,
      threads: 2,
      progress: false,
      signal: ac.signal,
    });
    run.catch(() => undefined);
    const store = new RunStore(lake, 'cut');
    const deadline = Date.now() + 30_000;
    while (!(await lake.exists(store.taskKey('upper', 'u1')))) {
      if (Date.now() > deadline) throw new Error('task u1 never finished');
      await new Promise((r) => setTimeout(r, 10));
    }
    ac.abort();
    await expect(run).rejects.toMatchObject({ code: 'RUN_ABORTED' });
    // What a writer killed mid-put leaves on a store without atomic puts.
    const whole = (await lake.getBuffer(store.taskKey('upper', 'u1'))).toString('utf8');
    await lake.put(store.taskKey('upper', 'u1'), whole.slice(0, 20));
    expect(await store.readTask('upper', 'u1')).toBeUndefined();
    const before = (await countLines(count)).get('end u1') ?? 0;

    const r = await resumeRun(toyStages({ countFile: count }), { lake, runId: 'cut', progress: false });
    expect((await countLines(count)).get('end u1')).toBe(before + 1);
    expect((await countLines(count)).get('end u0')).toBe(1);
    expect(r.outputs).toEqual((await reference()).outputs);
    expect(await toyFiles(lake)).toEqual((await reference()).files);
  });

  it('gives up on a task whose worker keeps dying after maxAttempts', async () => {
    const pool = createPool({ threads: 1, maxAttempts: 2 });
    const retries: number[] = [];
    try {
      const e = await pool.run('selftest', { key: 'x', crashAlways: true }, { onRetry: (a) => retries.push(a) }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(GenolakeError);
      expect((e as GenolakeError).code).toBe('TASK_WORKER_DIED');
      expect(retries).toEqual([2]);
      // the pool still works afterwards
      expect(await pool.run('selftest', { key: 'y', data: 'ac' })).toMatchObject({ key: 'y', upper: 'AC' });
    } finally {
      await pool.close();
    }
  });

  it('refuses to reuse a run id, to resume with other parameters, or to resume an unknown run', async () => {
    const lake = newLake();
    await runPipeline(toyStages(), { lake, runId: 'p', params: { n: 2 }, threads: 1, progress: false });
    await expect(runPipeline(toyStages(), { lake, runId: 'p', params: { n: 2 }, progress: false })).rejects.toMatchObject({
      code: 'RUN_EXISTS',
    });
    await expect(resumeRun(toyStages(), { lake, runId: 'p', params: { n: 3 }, progress: false })).rejects.toMatchObject({
      code: 'RUN_PARAMS_MISMATCH',
      place: { field: 'n' },
    });
    await expect(resumeRun(toyStages(), { lake, runId: 'nope', progress: false })).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' });
    // same parameters (any key order): a finished run resumes to the same outputs without running anything
    const r = await resumeRun(toyStages(), { lake, runId: 'p', params: { n: 2 }, progress: false });
    expect(r.outputs.upper).toEqual(['TOY-0-ACGT', 'TOY-1-ACGTACGT']);
    expect(r.provenance.invocations.map((i) => i.resumed)).toEqual([false, true]);
    expect(Object.values(r.provenance.stages).every((s) => s.reused)).toBe(true);
    // the older positional form (lake, runId, stages, opts) still works
    const again = await resumeRun(lake, 'p', toyStages(), { progress: false });
    expect(again.outputs).toEqual(r.outputs);
    expect(again.provenance.invocations).toHaveLength(3);
  });
});

describe('progress and logs', () => {
  it('draws per-stage progress on a TTY and nothing otherwise', async () => {
    const fake = (isTTY: boolean) => {
      const chunks: string[] = [];
      return { isTTY, chunks, write: (c: string) => (chunks.push(c), true) };
    };
    const tty = fake(true);
    await runPipeline(toyStages(), { lake: newLake(), params: { n: 3 }, threads: 1, progress: tty });
    const screen = tty.chunks.join('');
    expect(screen).toMatch(/upper\s+done\s+3\/3 tasks\s+[\d.]+k? reads(\/s)?/);
    expect(screen).toMatch(/hash\s+done\s+3\/3 tasks/);
    expect(screen).toMatch(/report\s+done/);

    const pipe = fake(false);
    await runPipeline(toyStages(), { lake: newLake(), params: { n: 3 }, threads: 1, progress: pipe });
    expect(pipe.chunks).toEqual([]);
    expect(new ProgressDisplay(pipe).live).toBe(false);
  });

  it('formats a stage line with tasks and units per second', () => {
    const line = formatStageLine(
      { name: 'align', status: 'running', tasksDone: 12, tasksTotal: 40, units: { reads: 50_000 }, startedAt: 1_000 },
      3_000,
    );
    expect(line).toBe('align         running  12/40 tasks  25.0k reads/s  2.0s');
  });

  it('sends the run log to an extra logger at its own level', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)));
        cb();
      },
    });
    const also = pino({ level: 'warn' }, sink).child({ cli: true });
    const marker = tmpFile('marker');
    const lake = newLake();
    await runPipeline(toyStages({ crashOnce: { key: 'h0', marker } }), { lake, runId: 'lg', params: { n: 2 }, threads: 1, progress: false, log: also });
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => (l.level as number) >= 40)).toBe(true);
    expect(lines.find((l) => l.task === 'h0')).toMatchObject({ cli: true, runId: 'lg', stage: 'hash', msg: 'task h0: worker died, retrying' });
    // the run's own log has everything at info
    const file = (await lake.getBuffer('_runs/lg/log.jsonl')).toString('utf8');
    expect(file).toContain('"msg":"run lg done"');
  });
});
