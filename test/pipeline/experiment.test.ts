import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { parseExperimentManifest } from '../../src/manifest/load.js';
import type { ExperimentManifestInput } from '../../src/manifest/experiment.js';
import { runDrop } from '../../src/pipeline/drop.js';
import { runExperiment, type ExperimentResult } from '../../src/pipeline/experiment.js';
import { openLakeSql, withExperimentTables } from '../../src/query/sql.js';
import { simulateCohort, type CohortSummary } from '../../src/sim/cohort.js';
import { silentLogger } from '../../src/util/log.js';

const CLI = resolve(__dirname, '../../bin/genolake.js');

/** Every object under the production zones, with its size: what an experiment must leave alone. */
async function production(lake: LocalLake): Promise<string[]> {
  const out: string[] = [];
  for (const zone of ['staged/', 'curated/', '_catalog/']) for await (const o of lake.list(zone)) out.push(`${o.key} ${o.size}`);
  return out.sort();
}

describe('experiment manifests: other parameters over lake data, outputs under experimental/<id>/', () => {
  let dir: string;
  let sim: string;
  let cohort: CohortSummary;
  let lake: LocalLake;
  let rawRun: string;
  let before: string[];
  let exp: ExperimentResult;
  const manifest = (over: Partial<ExperimentManifestInput> = {}) =>
    parseExperimentManifest(
      {
        schema_version: 1,
        kind: 'experiment',
        experiment_id: 'seed21-strict',
        inputs: [{ lake_path: rawRun }, { archive: cohort.patients[1].archive! }],
        reference: 'sim-demo',
        stages: {
          shard: { reads_per_shard: 1000 },
          align: { params: { seed_length: 21, band_width: 24, min_score: 40, split_as_secondary: true, all_hits: true } },
          call: { engine: 'default', params: { min_base_quality: 20, min_depth: 2, ploidy: 2 } },
        },
        ...over,
      },
      'test manifest',
    );

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-exp-'));
    sim = join(dir, 'sim');
    cohort = await simulateCohort({ outDir: sim, seed: 21, patients: 2, genomeLength: 50_000, coverage: 4 });
    lake = new LocalLake(join(dir, 'lake'));
    // Production: patient 1 dropped and run through the whole chain.
    const p = cohort.patients[0];
    const r = await runDrop(resolve(sim, p.archive!), {
      lake,
      threads: 2,
      reference: resolve(sim, cohort.reference.fasta),
      genes: resolve(sim, cohort.reference.gff3),
      readsPerShard: 1000,
      log: silentLogger(),
      progress: false,
    });
    rawRun = `raw/patient_id=${p.patient_id}/run_id=${r.runId}/`;
    before = await production(lake);
    exp = await runExperiment(manifest(), { lake, threads: 2, manifestDir: sim, references: join(sim, 'references.json'), log: silentLogger(), progress: false });
  }, 240_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs every input through align, call, annotate and the variant table under experimental/<id>/, and production is untouched', async () => {
    expect(exp.prefix).toBe('experimental/seed21-strict/');
    expect(exp.inputs).toHaveLength(2);
    for (const [i, inp] of exp.inputs.entries()) {
      const p = cohort.patients[i];
      expect(inp.patientId).toBe(p.patient_id);
      expect(inp.runId).toMatch(/^x[0-9a-f]{16}$/);
      const { align, call, annotate, parquet } = inp.result.outputs;
      expect(align!.bam.startsWith(`experimental/seed21-strict/staged/patient_id=${p.patient_id}/sample_id=${p.sample_id}/`)).toBe(true);
      expect(call!.vcf.startsWith('experimental/seed21-strict/staged/')).toBe(true);
      expect(annotate!.vcf.startsWith('experimental/seed21-strict/staged/')).toBe(true);
      expect(parquet!.rows).toBeGreaterThan(0);
      expect(inp.result.outputs).not.toHaveProperty('metadata');
      const bam = lake.localPath(align!.bam)!;
      execFileSync('samtools', ['quickcheck', bam]);
      // The aligner ran with the experiment's parameters and its own seed length.
      const pg = execFileSync('samtools', ['view', '-H', bam]).toString().split('\n').find((l) => l.startsWith('@PG'))!;
      expect(pg).toMatch(/k=21 /);
      expect(pg).toMatch(/ band=24 /);
      expect(pg).toMatch(/ minScore=40 /);
      expect(pg).toMatch(/ splitAsSecondary=1/);
      expect(pg).toMatch(/ allHits=1/);
      expect(align!.mapped / align!.reads).toBeGreaterThan(0.97);
      // all_hits: reads of the repeats get secondary records (MAPQ 0, as bwa mem -a), counted as flagstat counts them
      const secondaries = execFileSync('samtools', ['view', '-f', '0x100', bam]).toString().trim().split('\n').filter(Boolean);
      expect(secondaries.length).toBeGreaterThan(0);
      expect(new Set(secondaries.map((l) => l.split('\t')[4]))).toEqual(new Set(['0']));
      const flagstat = execFileSync('samtools', ['flagstat', bam]).toString();
      expect(flagstat).toContain(`${secondaries.length} + 0 secondary`);
      // The caller's header records the options it ran with.
      const header = execFileSync('bcftools', ['view', '-h', lake.localPath(call!.vcf)!]).toString();
      expect(header).toContain('##contig=');
    }
    expect(existsSync(`${resolve(sim, cohort.reference.fasta)}.genolake-k21/`)).toBe(true);
    // The archive input was ingested as raw data (shared), and nothing else of production changed.
    expect(await lake.isPublished(`raw/patient_id=${cohort.patients[1].patient_id}/run_id=${exp.inputs[1].lakePath.split('run_id=')[1].replace('/', '')}/fastq/`)).toBe(true);
    expect(await production(lake)).toEqual(before);
    const record = JSON.parse((await lake.getBuffer(exp.recordKey)).toString()) as { runs: { run_id: string }[] };
    expect(record.runs.map((r) => r.run_id)).toEqual(exp.inputs.map((i) => i.runId));
  });

  it('puts its variants next to production for SQL: experiment_variants beside variants', async () => {
    const db = await openLakeSql(lake, { tables: withExperimentTables('seed21-strict') });
    try {
      const [prod] = await db.query('SELECT count(*) AS n, count(DISTINCT patient_id) AS patients FROM variants');
      const [ex] = await db.query('SELECT count(*) AS n, count(DISTINCT patient_id) AS patients FROM experiment_variants');
      expect(prod).toMatchObject({ patients: 1 });
      expect(ex).toMatchObject({ patients: 2 });
      expect(Number(ex.n)).toBeGreaterThan(0);
      // Same patient, same reads: most production calls are found by the experiment too.
      const [both] = await db.query(
        `SELECT count(*) AS n FROM variants v JOIN experiment_variants e USING (patient_id, chrom, pos, ref, alt)`,
      );
      expect(Number(both.n)).toBeGreaterThan(0.8 * Number(prod.n));
    } finally {
      db.close();
    }
  });

  it('the same manifest again is answered from its finished runs; the CLI reports it', async () => {
    const again = await runExperiment(manifest(), { lake, threads: 2, manifestDir: sim, references: join(sim, 'references.json'), log: silentLogger(), progress: false });
    expect(again.inputs.map((i) => [i.runId, i.alreadyDone])).toEqual(exp.inputs.map((i) => [i.runId, true]));
    const file = join(sim, 'experiment.json');
    await writeFile(file, JSON.stringify({ ...manifestJson(), inputs: [{ lake_path: rawRun }, { archive: cohort.patients[1].archive! }] }));
    const r = spawnSync(process.execPath, [CLI, 'run', file, '--lake', lake.root, '--references', join(sim, 'references.json'), '--threads', '2'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('experiment seed21-strict: 2 input(s)');
    expect(r.stdout.match(/already done, nothing to do/g)).toHaveLength(2);
    expect(r.stdout).toContain(`experimental/seed21-strict/curated/variants/patient_id=${cohort.patients[0].patient_id}/`);
  });

  function manifestJson(): Record<string, unknown> {
    return {
      schema_version: 1,
      kind: 'experiment',
      experiment_id: 'seed21-strict',
      reference: 'sim-demo',
      stages: {
        shard: { reads_per_shard: 1000 },
        align: { params: { seed_length: 21, band_width: 24, min_score: 40, split_as_secondary: true, all_hits: true } },
        call: { engine: 'default', params: { min_base_quality: 20, min_depth: 2, ploidy: 2 } },
      },
    };
  }

  it("a drop aligns to its manifest's reference through the registry, annotated with the registry's genes", async () => {
    const lake2 = new LocalLake(join(dir, 'lake-registry'));
    const p = cohort.patients[1];
    const r = await runDrop(resolve(sim, p.archive!), { lake: lake2, threads: 2, references: join(sim, 'references.json'), readsPerShard: 1000, log: silentLogger(), progress: false });
    expect(r.result.state.status).toBe('done');
    const { align, annotate, parquet } = r.result.outputs;
    expect(align!.mapped / align!.reads).toBeGreaterThan(0.97);
    expect(annotate!.annotated).toBeGreaterThan(0);
    expect(parquet!.rows).toBeGreaterThan(0);
    expect(r.ignoredParams).toEqual([]);
    // The same drop again with other parameters is the same (finished) run: they are reported, not used.
    const again = await runDrop(resolve(sim, p.archive!), { lake: lake2, threads: 2, references: join(sim, 'references.json'), readsPerShard: 500, log: silentLogger(), progress: false });
    expect(again).toMatchObject({ alreadyDone: true, ignoredParams: ['readsPerShard'] });
    // A registry that does not know the manifest's reference stops the run at the index stage, naming it.
    const other = join(dir, 'other-refs.json');
    await writeFile(other, JSON.stringify({ references: { GRCh38: { fasta: resolve(sim, cohort.reference.fasta) } } }));
    await expect(
      runDrop(resolve(sim, cohort.patients[0].archive!), { lake: new LocalLake(join(dir, 'lake-registry-bad')), threads: 1, references: other, log: silentLogger(), progress: false }),
    ).rejects.toMatchObject({ code: 'REFERENCE_UNKNOWN', message: expect.stringContaining(`reference "${cohort.reference.name}" is not in the registry (known: GRCh38)`) });
  });

  it('refuses what it cannot honour, naming the field, before any run starts', async () => {
    const opts = { lake, threads: 1, manifestDir: sim, references: join(sim, 'references.json'), log: silentLogger(), progress: false };
    const runsBefore: string[] = [];
    for await (const o of lake.list('_runs/')) runsBefore.push(o.key);
    await expect(runExperiment(manifest({ stages: { call: { params: { min_coverage: 3 } } } }), opts)).rejects.toMatchObject({
      code: 'EXPERIMENT_BAD_PARAM',
      place: { field: 'stages.call.params.min_coverage' },
    });
    await expect(runExperiment(manifest({ stages: { call: { params: { ploidy: 1 } } } }), opts)).rejects.toMatchObject({ place: { field: 'stages.call.params.ploidy' } });
    await expect(runExperiment(manifest({ stages: { align: { engine: 'bwa-mem2' } } }), opts)).rejects.toMatchObject({
      code: 'EXPERIMENT_UNKNOWN_ENGINE',
      place: { field: 'stages.align.engine' },
    });
    await expect(runExperiment(manifest({ stages: { align: { params: { seed_length: 20 } } } }), opts)).rejects.toMatchObject({
      place: { field: 'stages.align.params.seed_length' },
    });
    await expect(runExperiment(manifest({ reference: 'GRCh38' }), opts)).rejects.toMatchObject({ code: 'REFERENCE_UNKNOWN', message: expect.stringContaining('known: sim-demo') });
    await expect(runExperiment(manifest(), { ...opts, references: undefined })).rejects.toMatchObject({ code: 'REFERENCE_NO_REGISTRY' });
    await expect(runExperiment(manifest({ inputs: [{ lake_path: 'raw/patient_id=P0001/run_id=r0000000000000000/' }] }), opts)).rejects.toMatchObject({
      code: 'LAKE_INPUT_MISSING',
      place: { field: 'inputs[0]' },
    });
    const runsAfter: string[] = [];
    for await (const o of lake.list('_runs/')) runsAfter.push(o.key);
    expect(runsAfter).toEqual(runsBefore);
  });
});
