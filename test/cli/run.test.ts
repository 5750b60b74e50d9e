import { execFile } from 'node:child_process';
import { createGzip } from 'node:zlib';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { simulateCohort, type CohortSummary } from '../../src/sim/cohort.js';

const run = promisify(execFile);
const BIN = resolve(__dirname, '../../bin/genolake.js');

async function genolake(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [BIN, ...args], { cwd, maxBuffer: 1 << 24 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

async function keys(root: string, prefix = ''): Promise<string[]> {
  const lake = new LocalLake(root);
  const out: string[] = [];
  for await (const o of lake.list(prefix)) out.push(o.key);
  return out;
}

async function tgz(path: string, members: [string, string | Buffer][]): Promise<void> {
  const p = pack();
  const chunks: Buffer[] = [];
  const gz = p.pipe(createGzip());
  gz.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((res) => gz.on('end', res));
  for (const [name, body] of members) p.entry({ name, mtime: new Date(0) }, body);
  p.finalize();
  await done;
  await writeFile(path, Buffer.concat(chunks));
}

describe('genolake run / runs / resume (CLI, end to end)', () => {
  let dir: string;
  let cohort: CohortSummary;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-cli-'));
    cohort = await simulateCohort({ outDir: join(dir, 'sim'), seed: 5, patients: 1, genomeLength: 50_000, coverage: 4 });
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a drop: reads, shards and patient row published; a second drop of the same content changes nothing', async () => {
    const archive = resolve(join(dir, 'sim'), cohort.patients[0].archive!);
    const p = cohort.patients[0];
    const first = await genolake(['run', archive, '--lake', 'lake', '--threads', '2', '--reads-per-shard', '700'], dir);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const runId = /run (r[0-9a-f]{16}): done/.exec(first.stdout)?.[1];
    expect(runId).toBeDefined();
    expect(first.stdout).toContain(`patient ${p.patient_id}, sample ${p.sample_id}`);
    const lakeRoot = join(dir, 'lake');
    const shardIndex = JSON.parse(
      await readFile(join(lakeRoot, `staged/patient_id=${p.patient_id}/sample_id=${p.sample_id}/run_id=${runId}/shards/shards.json`), 'utf8'),
    ) as { totalReads: number; shards: unknown[] };
    expect(shardIndex.totalReads).toBe(p.pairs);
    expect(shardIndex.shards.length).toBe(p.read_groups.reduce((n, g) => n + Math.ceil(g.pairs / 700), 0));
    const all = await keys(lakeRoot);
    expect(all).toContain(`curated/patients/patient_id=${p.patient_id}/part-0.parquet`);
    expect(all.some((k) => k.startsWith(`raw/patient_id=${p.patient_id}/run_id=${runId}/fastq/`) && k.endsWith('.fastq.gz'))).toBe(true);
    const prov = JSON.parse(await readFile(join(lakeRoot, `_runs/${runId}/provenance.json`), 'utf8')) as Record<string, unknown>;
    expect(prov).toMatchObject({ runId, params: { readsPerShard: 700 } });
    expect(Object.keys(prov.stages as object).sort()).toEqual(['ingest', 'metadata', 'shard']);

    // The same content under another name: recognised, nothing written.
    const copy = join(dir, 'renamed-drop.tar.gz');
    await writeFile(copy, await readFile(archive));
    const second = await genolake(['run', copy, '--lake', 'lake'], dir);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`run ${runId}: already done, nothing to do`);
    expect(await keys(lakeRoot)).toEqual(all);

    const runs = await genolake(['runs', '--lake', 'lake', '--json'], dir);
    expect(JSON.parse(runs.stdout)).toEqual([expect.objectContaining({ runId, status: 'done' })]);
    const resumed = await genolake(['resume', runId!, '--lake', 'lake'], dir);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`run ${runId}: was already done`);
  }, 120_000);

  it('a bad FASTQ record fails the run naming file, record and reason; no shards are published', async () => {
    const manifest = {
      schema_version: 1,
      kind: 'drop',
      patient_id: 'PBAD',
      sample_id: 'PBAD-S1',
      provider: { provider_id: 'x', patient_id: 'x1' },
      reference: 'sim',
      platform: 'ILLUMINA',
      read_length: 30,
      paired: true,
      read_groups: [{ id: 'L1', r1: 'r1.fastq', r2: 'r2.fastq' }],
    };
    const seq = 'ACGT'.repeat(8);
    const q = 'I'.repeat(32);
    const r1 = `@a/1\n${seq}\n+\n${q}\n@b/1\n${seq}\n+\n${q.slice(1)}\n`;
    const r2 = `@a/2\n${seq}\n+\n${q}\n@b/2\n${seq}\n+\n${q}\n`;
    const archive = join(dir, 'bad.tgz');
    await tgz(archive, [
      ['manifest.json', JSON.stringify(manifest)],
      ['r1.fastq', r1],
      ['r2.fastq', r2],
    ]);
    const res = await genolake(['run', archive, '--lake', 'lake-bad', '--threads', '1'], dir);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^genolake: error: raw\/patient_id=PBAD\/run_id=r[0-9a-f]{16}\/fastq\/r1\.fastq: line 8: record 2: field quality: quality length 31 differs from sequence length 32\n$/);
    const all = await keys(join(dir, 'lake-bad'));
    expect(all.some((k) => k.includes('/shards/'))).toBe(false);
    expect(all.some((k) => k.startsWith('_runs/') && k.endsWith('state.json'))).toBe(true);
    const runs = await genolake(['runs', '--lake', 'lake-bad', '--json'], dir);
    expect(JSON.parse(runs.stdout)).toEqual([expect.objectContaining({ status: 'failed' })]);
  }, 120_000);

  it('refuses a bad manifest with every problem listed, exit code 2', async () => {
    const archive = join(dir, 'badmanifest.tgz');
    await tgz(archive, [
      ['manifest.json', JSON.stringify({ schema_version: 1, kind: 'drop', patient_id: '../etc', paired: true, read_groups: [{ id: 'L1', r1: 'a.fastq' }] })],
      ['a.fastq', '@a\nA\n+\nI\n'],
    ]);
    const res = await genolake(['run', archive, '--lake', 'lake-bm'], dir);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('patient_id');
    expect(res.stderr).toContain('read_groups[0].r2');
    expect(await keys(join(dir, 'lake-bm'), 'raw/')).toEqual([]);
  }, 60_000);
});
