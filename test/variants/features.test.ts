import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { emptyFacts, patientPartition, PATIENT_PART_FILE, patientsToParquet, type PatientRow } from '../../src/metadata/patients.js';
import { openLakeSql } from '../../src/query/sql.js';
import { refreshCatalog } from '../../src/query/tables.js';
import { buildFeatures, FEATURES_PREFIX } from '../../src/stages/features.js';
import { vcfToParquet, type ToParquetDeps } from '../../src/stages/to-parquet.js';
import { convertSlice, type SliceTask } from '../../src/variants/slice.js';

const inline: ToParquetDeps['runTask'] = async <P, R>(_w: string, _k: string, p: P) => (await convertSlice(p as unknown as SliceTask)) as unknown as R;

const GENES = ['TP53', 'KRAS', 'EGFR', 'BRAF', 'PIK3CA', 'APC', 'PTEN', 'DRV1'];
const IMPACT_OF: Record<string, string> = { stop_gained: 'HIGH', frameshift_variant: 'HIGH', missense_variant: 'MODERATE', synonymous_variant: 'LOW', intron_variant: 'MODIFIER' };
const CONS = Object.keys(IMPACT_OF);

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

/** An annotated single-sample VCF; label-1 patients carry a HIGH allele in DRV1 with probability 0.8 (label 0: 0.1). */
function patientVcf(sample: string, label: number, r: () => number): string {
  const head = [
    '##fileformat=VCFv4.2',
    '##contig=<ID=chr1,length=5000000>',
    '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. Format: Allele|Consequence|IMPACT|SYMBOL|Gene|Feature|BIOTYPE|HGVSc|HGVSp">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    `#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t${sample}`,
  ];
  const recs: [number, string][] = [];
  const n = 20 + Math.floor(r() * 20);
  for (let i = 0; i < n; i++) {
    const gene = GENES[Math.floor(r() * (GENES.length - 1))]; // background never hits DRV1
    const cons = CONS[Math.floor(r() * CONS.length)];
    recs.push([1000 + Math.floor(r() * 4_000_000), `${gene}|${cons}`]);
  }
  if (r() < (label ? 0.8 : 0.1)) recs.push([4_900_000 + Math.floor(r() * 1000), 'DRV1|stop_gained']);
  recs.sort((a, b) => a[0] - b[0]);
  const body = recs.map(([pos, gc], i) => {
    const [gene, cons] = gc.split('|');
    const [ref, alt] = i % 3 === 0 ? ['A', 'G'] : ['C', 'A'];
    return `chr1\t${pos}\t.\t${ref}\t${alt}\t50\tPASS\tCSQ=${alt}|${cons}|${IMPACT_OF[cons]}|${gene}|ENSG_${gene}|ENST_${gene}|protein_coding||\tGT\t0/1`;
  });
  return `${[...head, ...body].join('\n')}\n`;
}

/** Plain logistic regression by gradient descent (standardised features). */
function fitLogistic(X: number[][], y: number[], steps = 3000, lr = 0.1, l2 = 0.01): number[] {
  const d = X[0].length;
  const w = new Array<number>(d + 1).fill(0);
  for (let s = 0; s < steps; s++) {
    const g = new Array<number>(d + 1).fill(0);
    for (let i = 0; i < X.length; i++) {
      let z = w[d];
      for (let j = 0; j < d; j++) z += w[j] * X[i][j];
      const err = 1 / (1 + Math.exp(-z)) - y[i];
      for (let j = 0; j < d; j++) g[j] += err * X[i][j];
      g[d] += err;
    }
    for (let j = 0; j <= d; j++) w[j] -= lr * (g[j] / X.length + (j < d ? l2 * w[j] : 0));
  }
  return w;
}

describe('feature tables', () => {
  let dir: string;
  let lake: LocalLake;
  const labels = new Map<string, number>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-features-'));
    lake = new LocalLake(join(dir, 'lake'));
    const r = rng(42);
    for (let p = 0; p < 60; p++) {
      const id = `P${String(p).padStart(3, '0')}`;
      const label = p % 2;
      labels.set(id, label);
      const vcf = join(dir, `${id}.vcf`);
      await writeFile(vcf, patientVcf(`${id}-T`, label, r));
      await vcfToParquet({ vcfPath: vcf, patientId: id, runId: 'r1' }, { lake, runTask: inline });
      if (p < 50) {
        const row: PatientRow = {
          ...emptyFacts(),
          sex: p % 3 === 0 ? 'female' : 'male',
          age_at_diagnosis: 40 + (p % 30),
          provider_id: 'prov',
          provider_patient_id: null,
          metadata_status: 'ok',
          error_code: null,
          run_id: 'r1',
          fetched_at: 0,
        };
        await lake.put(`${patientPartition(id)}${PATIENT_PART_FILE}`, Buffer.from(patientsToParquet([row])));
      }
    }
  }, 120_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('has one row per patient with panel, impact, consequence, TMB, Ti/Tv and demographic columns', async () => {
    const res = await buildFeatures(lake, { panel: GENES, callableBases: 4_000_000 });
    expect(res.patients).toBe(60);
    for (const c of ['patient_id', 'n_variants', 'n_high', 'n_missense', 'tmb_per_mb', 'ti_tv', 'DRV1__mutated', 'TP53__high', 'sex', 'age_at_diagnosis', 'metadata_status']) {
      expect(res.columns).toContain(c);
    }
    const db = await openLakeSql(lake);
    try {
      // The feature row agrees with a direct count over the variants table.
      const [f] = await db.query(`SELECT * FROM features WHERE patient_id = 'P007'`);
      const [v] = await db.query(
        `SELECT count(*) AS n, count(*) FILTER (WHERE impact = 'HIGH') AS high, count(*) FILTER (WHERE gene = 'KRAS' AND impact = 'MODERATE') AS kras_mod FROM variants WHERE patient_id = 'P007'`,
      );
      expect(f.n_variants).toBe(v.n);
      expect(f.n_high).toBe(v.high);
      expect(f.KRAS__moderate).toBe(v.kras_mod);
      expect(f.tmb_per_mb).toBeCloseTo(Number(v.n) / 4, 6);
      expect(f.sex).toBe('male');
      const [missing] = await db.query(`SELECT metadata_status, sex FROM features WHERE patient_id = 'P055'`);
      expect(missing).toEqual({ metadata_status: 'missing', sex: null });
    } finally {
      db.close();
    }
    expect(await lake.exists(`${FEATURES_PREFIX}part-0.parquet`)).toBe(true);
    const csv = (await lake.getBuffer(res.csvKey)).toString('utf8').split('\n');
    expect(csv[0].split(',')).toEqual(res.columns);
    expect(csv.filter(Boolean)).toHaveLength(61);
  });

  it('a model trained on the table as is recovers the planted driver gene', async () => {
    const res = await buildFeatures(lake, { panel: GENES, callableBases: 4_000_000 });
    const db = await openLakeSql(lake);
    let rows: Record<string, unknown>[];
    try {
      rows = await db.query('SELECT * FROM features ORDER BY patient_id');
    } finally {
      db.close();
    }
    const featureCols = res.columns.filter((c) => c.endsWith('__mutated'));
    const raw = rows.map((r) => featureCols.map((c) => Number(r[c])));
    const mean = featureCols.map((_, j) => raw.reduce((s, x) => s + x[j], 0) / raw.length);
    const sd = featureCols.map((_, j) => Math.sqrt(raw.reduce((s, x) => s + (x[j] - mean[j]) ** 2, 0) / raw.length) || 1);
    const X = raw.map((x) => x.map((v, j) => (v - mean[j]) / sd[j]));
    const y = rows.map((r) => labels.get(String(r.patient_id))!);
    const w = fitLogistic(X, y);
    const ranked = featureCols.map((c, j) => [c, w[j]] as const).sort((a, b) => b[1] - a[1]);
    expect(ranked[0][0]).toBe('DRV1__mutated');
    expect(ranked[0][1]).toBeGreaterThan(1);
    // And it classifies: training accuracy well above chance.
    const acc = X.filter((x, i) => (x.reduce((s, v, j) => s + v * w[j], w[w.length - 1]) > 0 ? 1 : 0) === y[i]).length / X.length;
    expect(acc).toBeGreaterThan(0.75);
  });

  it('_catalog/ holds Athena DDL for variants, patients and features with partition projection', async () => {
    await buildFeatures(lake, { panel: GENES, callableBases: 4_000_000 });
    const keys = await refreshCatalog(lake);
    expect(keys).toEqual(['_catalog/variants.sql', '_catalog/patients.sql', '_catalog/features.sql']);
    const variants = (await lake.getBuffer('_catalog/variants.sql')).toString();
    expect(variants).toContain('CREATE EXTERNAL TABLE IF NOT EXISTS `genolake`.`variants`');
    expect(variants).toContain('PARTITIONED BY (`patient_id` string, `chrom` string)');
    expect(variants).toContain('`pos` bigint');
    expect(variants).not.toMatch(/`chrom` string,\n/);
    expect(variants).toMatch(/'projection.patient_id.values' = 'P000,P001,[^']*P059'/);
    expect(variants).toContain("'storage.location.template' = 's3://${LAKE_BUCKET_AND_PREFIX}/curated/variants/patient_id=${patient_id}/chrom=${chrom}/'");
    const features = (await lake.getBuffer('_catalog/features.sql')).toString();
    expect(features).toContain('`DRV1__mutated` int');
    expect(features).toContain('`tmb_per_mb` double');
    expect(features).not.toContain('PARTITIONED BY');
  });
});
