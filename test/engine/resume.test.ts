/**
 * A toy pipeline runs in a child process that is killed with SIGKILL mid-run; resumeRun
 * then finishes it. Only tasks without a checkpoint run again (the worker counts its runs
 * in a file), and the outputs are byte-identical to an uninterrupted run. Same suite on a
 * local lake and on S3 (s3rver).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRuns, resumeRun, RunStore } from '../../src/engine/index.js';
import { openLake } from '../../src/lake/open.js';
import type { Lake, LakeConfig } from '../../src/lake/types.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { toyStages } from './fixtures/toy-stages.mjs';

const TOY_RUN = fileURLToPath(new URL('./fixtures/toy-run.mjs', import.meta.url));
const PARAMS = { n: 10, seed: 'resume' };

let dir: string;
let s3: S3TestServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-resume-'));
  s3 = await startS3Server({ bucket: 'engine-resume' });
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Child {
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  kill(): void;
  exited(): boolean;
}

function startToy(lake: LakeConfig, runId: string, countFile: string, sleepMs: number, gate?: { file: string; from: number }): Child {
  const child = spawn(process.execPath, [TOY_RUN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      TOY_LAKE: JSON.stringify(lake),
      TOY_RUN_ID: runId,
      TOY_COUNT_FILE: countFile,
      TOY_PARAMS: JSON.stringify(PARAMS),
      TOY_SLEEP_MS: String(sleepMs),
      TOY_THREADS: '2',
      ...(gate ? { TOY_GATE: gate.file, TOY_GATE_FROM: String(gate.from) } : {}),
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }));
  return { done, kill: () => child.kill('SIGKILL'), exited: () => child.exitCode !== null || child.signalCode !== null };
}

function lines(file: string, kind: 'start' | 'end'): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${kind} `))
    .map((l) => l.slice(kind.length + 1));
}

async function keys(lake: Lake, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of lake.list(prefix)) out.push(o.key.slice(prefix.length));
  return out;
}

const ALL_TASKS = Array.from({ length: PARAMS.n }, (_, i) => [`u${i}`, `h${i}`]).flat().sort();

for (const kind of ['local', 's3'] as const) {
  describe(`kill -9 and resume (${kind} lake)`, () => {
    const config = (name: string): LakeConfig => (kind === 'local' ? { kind: 'local', root: join(dir, name) } : s3.config(name));

    it('redoes only unfinished tasks and produces byte-identical outputs', async () => {
      // 1. the uninterrupted run
      const refCfg = config(`${kind}-ref`);
      const ref = await startToy(refCfg, 'toy', join(dir, `${kind}-ref.count`), 0).done;
      expect(ref.code, ref.stderr).toBe(0);
      const refOut = JSON.parse(ref.stdout) as { outputs: Record<string, unknown> };
      const refLake = await openLake(refCfg);
      const refFiles = [await refLake.getBuffer('toy/out/upper.txt'), await refLake.getBuffer('toy/out/hash.txt')];

      // 2. the same run, killed once a few tasks have finished: tasks of items >= 3 wait
      // for a gate that never opens, so the run cannot finish before the kill.
      const cfg = config(`${kind}-killed`);
      const lake = await openLake(cfg);
      const firstCount = join(dir, `${kind}-first.count`);
      const child = startToy(cfg, 'toy', firstCount, 30, { file: join(dir, `${kind}-never`), from: 3 });
      const deadline = Date.now() + 30_000;
      const taskCheckpoints = async () => (await keys(lake, '_runs/toy/checkpoints/')).filter((k) => k.includes('/')).length;
      while ((await taskCheckpoints()) < 4) {
        if (Date.now() > deadline || child.exited()) throw new Error(`toy run made no progress: ${(await child.done).stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill();
      const killed = await child.done;
      expect(killed.signal).toBe('SIGKILL');

      const state = await new RunStore(lake, 'toy').readState();
      expect(state?.status).toBe('running');
      expect(await lake.exists('toy/out/upper.txt')).toBe(false);
      expect((await listRuns(lake)).map((r) => [r.runId, r.status])).toEqual([['toy', 'running']]);
      const cps = await keys(lake, '_runs/toy/checkpoints/');
      // A checkpoint the kill cut short (s3rver keeps a partial PUT body) counts as unfinished.
      const store = new RunStore(lake, 'toy');
      const finishedBefore: string[] = [];
      for (const k of cps.filter((c) => c.includes('/'))) {
        const [stage, file] = k.split('/');
        const key = file.replace(/\.json$/, '');
        if (await store.readTask(stage, key)) finishedBefore.push(key);
      }
      const stagesBefore = cps.filter((k) => !k.includes('/')).map((k) => k.replace(/\.json$/, ''));
      expect(finishedBefore.length).toBeGreaterThanOrEqual(3);
      expect(finishedBefore.length).toBeLessThanOrEqual(6);
      expect(stagesBefore).not.toContain('report');

      // 3. resume in this process
      const resumeCount = join(dir, `${kind}-resume.count`);
      const r = await resumeRun(toyStages({ countFile: resumeCount }), { lake, runId: 'toy', threads: 2, progress: false });

      const rerun = lines(resumeCount, 'start').sort();
      const expected = ALL_TASKS.filter((k) => !finishedBefore.includes(k));
      expect(rerun).toEqual(expected);
      expect(lines(resumeCount, 'end').sort()).toEqual(expected);

      expect(r.outputs).toEqual(refOut.outputs);
      expect(await lake.getBuffer('toy/out/upper.txt')).toEqual(refFiles[0]);
      expect(await lake.getBuffer('toy/out/hash.txt')).toEqual(refFiles[1]);
      expect(await lake.isPublished('toy/out/')).toBe(true);

      const prov = (await new RunStore(lake, 'toy').readProvenance())!;
      expect(prov.invocations.map((i) => [i.resumed, i.status])).toEqual([
        [false, 'running'],
        [true, 'done'],
      ]);
      for (const s of ['upper', 'hash']) {
        const before = finishedBefore.filter((k) => k.startsWith(s[0])).length;
        if (stagesBefore.includes(s)) {
          expect(prov.stages[s].reused).toBe(true);
        } else {
          expect(prov.stages[s]).toMatchObject({ status: 'done', tasksReused: before, tasksRun: PARAMS.n - before });
        }
      }
      expect((await new RunStore(lake, 'toy').readState())?.status).toBe('done');
      const log = (await lake.getBuffer('_runs/toy/log.jsonl')).toString('utf8');
      expect(log).toContain('"msg":"run resumed"');
      if (kind === 'local') expect(log.indexOf('"msg":"run started"')).toBeLessThan(log.indexOf('"msg":"run resumed"'));
      expect(log.trim().split('\n').every((l) => JSON.parse(l).runId === 'toy')).toBe(true);
    });
  });
}
