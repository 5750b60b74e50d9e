import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { openRegistry } from '../../src/metadata/registry.js';
import { parquetToPatients } from '../../src/metadata/patients.js';
import { runDrop, stagedPrefix } from '../../src/pipeline/drop.js';
import { simulateCohort, type CohortSummary } from '../../src/sim/cohort.js';
import { silentLogger } from '../../src/util/log.js';
import { startFhirServer, type TestServer } from '../metadata/helpers.js';

/** The drop pipeline with a real provider behind it: the FHIR test server, up or down. */
describe('drop pipeline and the patient\'s provider', () => {
  let dir: string;
  let cohort: CohortSummary;
  let fhir: TestServer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-drop-'));
    cohort = await simulateCohort({ outDir: join(dir, 'sim'), seed: 9, patients: 2, genomeLength: 50_000, coverage: 3, providerId: 'hosp-a' });
    fhir = await startFhirServer();
  }, 120_000);
  afterAll(async () => {
    await fhir.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function registryWith(timeoutMs: number): Promise<string> {
    const file = join(dir, `providers-${timeoutMs}.json`);
    const reg = await openRegistry(file);
    await reg.put({ id: 'hosp-a', kind: 'fhir', url: `${fhir.url}/fhir`, timeoutMs, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    await reg.close();
    return file;
  }

  it('a provider that is down does not block the genomic outputs: the run completes, the patient is marked missing', async () => {
    // Every FHIR request fails; the reads must still be sharded and published.
    fhir.routes.push((req) => (req.path.startsWith('/fhir/') ? { status: 503, text: 'maintenance' } : undefined));
    const lake = new LocalLake(join(dir, 'lake-down'));
    const p = cohort.patients[0];
    const r = await runDrop(resolve(join(dir, 'sim'), p.archive!), { lake, threads: 2, registry: await registryWith(2000), log: silentLogger(), progress: false });
    fhir.routes.pop();
    expect(r.result.state.status).toBe('done');
    const { ingest, shard, metadata } = r.result.outputs;
    expect(shard.totalReads).toBe(p.pairs);
    expect(await lake.isPublished(`${stagedPrefix(ingest)}shards/`)).toBe(true);
    expect(metadata).toMatchObject({ patient_id: p.patient_id, provider_id: 'hosp-a', status: 'missing', reason: 'PROVIDER_HTTP_ERROR' });
    const err = JSON.parse((await lake.getBuffer(metadata.error_key!)).toString()) as Record<string, unknown>;
    expect(JSON.stringify(err)).not.toContain(p.provider_patient_id);
    const [row] = parquetToPatients(await readFile(lake.localPath(metadata.key)!));
    expect(row).toMatchObject({ metadata_status: 'missing', error_code: 'PROVIDER_HTTP_ERROR', sex: null });
  }, 120_000);

  it('with the provider up, the patient row carries the provider\'s facts', async () => {
    const lake = new LocalLake(join(dir, 'lake-up'));
    const p = cohort.patients[1];
    // The test server knows one patient id; serve this patient's id from it.
    fhir.routes.push((req) => (req.path === `/fhir/Patient/${p.provider_patient_id}` ? { status: 200, json: { resourceType: 'Patient', id: p.provider_patient_id, gender: 'female', birthDate: '1970-02-03' } } : undefined));
    const r = await runDrop(resolve(join(dir, 'sim'), p.archive!), { lake, threads: 2, registry: await registryWith(5000), log: silentLogger(), progress: false });
    fhir.routes.pop();
    expect(r.result.outputs.metadata).toMatchObject({ status: 'ok' });
    const [row] = parquetToPatients(await readFile(lake.localPath(r.result.outputs.metadata.key)!));
    expect(row).toMatchObject({ metadata_status: 'ok', sex: 'female', provider_id: 'hosp-a' });
  }, 120_000);

  it('with a reference, the run aligns: a sorted, indexed, duplicate-marked BAM that samtools accepts, and qc.json agreeing with flagstat', async () => {
    const lake = new LocalLake(join(dir, 'lake-align'));
    const p = cohort.patients[0];
    const fasta = resolve(join(dir, 'sim'), cohort.reference.fasta);
    const r = await runDrop(resolve(join(dir, 'sim'), p.archive!), { lake, threads: 2, reference: fasta, readsPerShard: 1500, log: silentLogger(), progress: false });
    const align = r.result.outputs.align!;
    expect(align.reads).toBe(2 * p.pairs);
    expect(align.mapped / align.reads).toBeGreaterThan(0.99);
    const bam = lake.localPath(align.bam)!;
    execFileSync('samtools', ['quickcheck', bam]);
    const header = execFileSync('samtools', ['view', '-H', bam]).toString();
    expect(header).toMatch(/^@HD\tVN:1\.6\tSO:coordinate/);
    for (const g of p.read_groups) expect(header).toContain(`@RG\tID:${g.id}\tSM:${p.sample_id}\tPL:ILLUMINA`);
    const flagstat = JSON.parse(execFileSync('samtools', ['flagstat', '-O', 'json', bam]).toString()) as { 'QC-passed reads': Record<string, number> };
    const qc = JSON.parse((await lake.getBuffer(align.qc)).toString()) as { flagstat: { 'QC-passed reads': Record<string, number> } };
    expect(qc.flagstat['QC-passed reads']).toEqual(flagstat['QC-passed reads']);
    // Sorted as samtools sorts, and the BAI agrees with the records.
    const ours = execFileSync('samtools', ['view', bam], { maxBuffer: 1 << 28 }).toString();
    const sorted = execFileSync('sh', ['-c', `samtools sort -O SAM ${bam} | samtools view -`], { maxBuffer: 1 << 28 }).toString();
    expect(ours).toBe(sorted);
    const idx = execFileSync('samtools', ['idxstats', bam]).toString().trim().split('\n');
    const mappedByIndex = idx.reduce((n, l) => n + Number(l.split('\t')[2]), 0);
    expect(mappedByIndex).toBe(flagstat['QC-passed reads'].mapped);
    // Run record: every stage of the chain, in provenance.
    expect(Object.keys(r.result.provenance.stages).sort()).toEqual(['align', 'annotate', 'call', 'index', 'ingest', 'metadata', 'parquet', 'shard']);
  }, 180_000);

  it('with a reference and gene models, the run goes on to calls, annotation and the variant lake, which DuckDB reads back exactly', async () => {
    const lake = new LocalLake(join(dir, 'lake-full'));
    const p = cohort.patients[1];
    const sim = join(dir, 'sim');
    const fasta = resolve(sim, cohort.reference.fasta);
    const r = await runDrop(resolve(sim, p.archive!), {
      lake,
      threads: 2,
      reference: fasta,
      genes: resolve(sim, cohort.reference.gff3),
      log: silentLogger(),
      progress: false,
    });
    const { call, annotate, parquet } = r.result.outputs;
    expect(call!.records).toBeGreaterThan(0);
    // bcftools reads both VCFs without complaint, and Debian tabix uses our index.
    for (const key of [call!.vcf, annotate!.vcf]) {
      const path = lake.localPath(key)!;
      const view = execFileSync('bcftools', ['view', '-H', path], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
      expect(view.trim().split('\n').length).toBe(call!.records);
      expect(execFileSync('tabix', ['-l', path]).toString().trim().split('\n').length).toBeGreaterThan(0);
    }
    const annotated = execFileSync('bcftools', ['view', '-H', lake.localPath(annotate!.vcf)!]).toString();
    expect(annotated).toMatch(/BCSQ=/);
    expect(annotated).toMatch(/CSQ=/);
    // The lake holds exactly the VCF's alleles for this sample.
    const alleles = execFileSync('bcftools', ['query', '-f', '[%CHROM:%POS:%REF:%ALT:%GT\\n]', lake.localPath(annotate!.vcf)!])
      .toString()
      .trim()
      .split('\n')
      .flatMap((l) => {
        const [c, pos, ref, alts, gt] = l.split(':');
        return alts.split(',').map((a) => [c, pos, ref, a, gt].join(':'));
      })
      .sort();
    expect(parquet!.rows).toBe(alleles.length);
    const { openLakeSql } = await import('../../src/query/sql.js');
    const db = await openLakeSql(lake);
    try {
      const rows = await db.query(`SELECT chrom, pos, ref, alt, gt, sample_id, run_id FROM variants WHERE patient_id = '${p.patient_id}'`);
      expect(rows.map((x) => [x.chrom, x.pos, x.ref, x.alt, x.gt].join(':')).sort()).toEqual(alleles);
      expect(new Set(rows.map((x) => x.sample_id))).toEqual(new Set([p.sample_id]));
      expect(new Set(rows.map((x) => x.run_id))).toEqual(new Set([r.runId]));
    } finally {
      db.close();
    }
    expect(await lake.exists('_catalog/variants.sql')).toBe(true);
  }, 180_000);
});
