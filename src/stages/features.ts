/**
 * Feature tables for downstream models: one row per patient, in `curated/features/`
 * (Parquet for training jobs) and `curated/features_csv/` (CSV for people), computed in DuckDB from the variants and
 * patients tables so the definitions read as SQL (see FEATURE_DICTIONARY and the README).
 *
 * Counted variants: this patient's sample rows carrying the allele (alt_count > 0) that
 * passed filters (FILTER PASS or missing). Per gene of the panel: a mutated flag (any
 * HIGH or MODERATE allele) and counts per impact class; per patient: counts per impact
 * class and consequence class, tumour mutational burden per Mb of callable region, and
 * Ti/Tv of SNVs; then the patient's demographics from the patients table.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lake } from '../lake/types.js';
import { openLakeSql } from '../query/sql.js';
import { InputError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export const FEATURES_PREFIX = 'curated/features/';
/** The CSV copy lives beside, not inside, the table: Athena would read any file in the table's location as Parquet. */
export const FEATURES_CSV_PREFIX = 'curated/features_csv/';

export interface FeaturesInput {
  /** Gene symbols of the panel; each gets `<gene>__mutated`, `__high`, `__moderate`, `__low`, `__modifier` columns. */
  panel: string[];
  /** Callable bases per patient (for TMB), or one number for every patient. */
  callableBases: number | Record<string, number>;
  /** Only these patients (default: every patient with variants). */
  patients?: string[];
}

export interface FeaturesResult {
  patients: number;
  columns: string[];
  parquetKey: string;
  csvKey: string;
}

/** Consequence classes counted per patient: column suffix → SO terms (VEP and bcftools csq spellings). */
export const CONSEQUENCE_CLASSES: Record<string, string[]> = {
  missense: ['missense_variant', 'missense'],
  synonymous: ['synonymous_variant', 'synonymous'],
  stop_gained: ['stop_gained'],
  stop_lost: ['stop_lost'],
  start_lost: ['start_lost'],
  frameshift: ['frameshift_variant', 'frameshift'],
  inframe: ['inframe_insertion', 'inframe_deletion', 'inframe_altering'],
  splice: ['splice_acceptor_variant', 'splice_donor_variant', 'splice_region_variant', 'splice_acceptor', 'splice_donor', 'splice_region'],
  utr: ['5_prime_UTR_variant', '3_prime_UTR_variant', '5_prime_utr', '3_prime_utr'],
  intron: ['intron_variant', 'intron'],
  non_coding: ['non_coding_transcript_exon_variant', 'non_coding'],
};

const IMPACTS = ['high', 'moderate', 'low', 'modifier'] as const;

/** Column → meaning; the README's column dictionary. `<G>` stands for each panel gene. */
export const FEATURE_DICTIONARY: [string, string][] = [
  ['patient_id', 'patient id (join key with the patients and variants tables)'],
  ['n_variants', 'alleles carried (alt_count > 0) that passed filters'],
  ['n_snv', 'of which single-nucleotide variants'],
  ['n_indel', 'of which insertions and deletions (REF and ALT lengths differ)'],
  ...IMPACTS.map((i) => [`n_${i}`, `alleles whose most severe consequence has impact ${i.toUpperCase()}`] as [string, string]),
  ...Object.entries(CONSEQUENCE_CLASSES).map(([k, terms]) => [`n_${k}`, `alleles with consequence ${terms[0]}${terms.length > 2 ? ' (and related terms)' : ''}`] as [string, string]),
  ['tmb_per_mb', 'tumour mutational burden: n_variants per Mb of callable region'],
  ['ti_tv', 'transitions / transversions among SNVs (null without transversions)'],
  ['<G>__mutated', '1 if the patient carries a HIGH or MODERATE allele in gene <G>, else 0'],
  ...IMPACTS.map((i) => [`<G>__${i}`, `alleles of impact ${i.toUpperCase()} in gene <G>`] as [string, string]),
  ['sex, age_at_diagnosis, race, ethnicity, vital_status, primary_diagnosis_code, prior_malignancy', 'demographics and history from the patients table (null when metadata is missing)'],
  ['metadata_status', "'ok' or 'missing' (provider unreachable or unknown)"],
];

const GENE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function q(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Column-name-safe gene symbol (DuckDB identifiers are quoted anyway; models prefer plain names). */
function geneColumn(g: string): string {
  return g.replace(/[^A-Za-z0-9_]/g, '_');
}

/** The SQL that computes the feature table (exported for tests and for Athena users). */
export function featuresSql(input: FeaturesInput): string {
  for (const g of input.panel) {
    if (!GENE_RE.test(g)) throw new InputError('FEATURES_BAD_GENE', `gene symbol ${JSON.stringify(g)} is not a plain symbol`, { field: 'panel' });
  }
  const callable =
    typeof input.callableBases === 'number'
      ? `${input.callableBases}`
      : `CASE v.patient_id ${Object.entries(input.callableBases).map(([p, n]) => `WHEN ${q(p)} THEN ${n}`).join(' ')} ELSE NULL END`;
  const cons = Object.entries(CONSEQUENCE_CLASSES)
    .map(([k, terms]) => `count(*) FILTER (WHERE list_has_any(string_split(v.consequence, '&'), [${terms.map(q).join(', ')}])) AS n_${k}`)
    .join(',\n    ');
  const genes = input.panel
    .map((g) => {
      const c = geneColumn(g);
      return [
        `CAST(count(*) FILTER (WHERE v.gene = ${q(g)} AND v.impact IN ('HIGH', 'MODERATE')) > 0 AS INTEGER) AS "${c}__mutated"`,
        ...IMPACTS.map((i) => `count(*) FILTER (WHERE v.gene = ${q(g)} AND v.impact = '${i.toUpperCase()}') AS "${c}__${i}"`),
      ].join(',\n    ');
    })
    .join(',\n    ');
  const wherePatients = input.patients?.length ? `AND v.patient_id IN (${input.patients.map(q).join(', ')})` : '';
  return `
WITH v AS (
  SELECT * FROM variants
  WHERE alt_count > 0 AND (filter IS NULL OR filter = 'PASS') ${wherePatients.replace(/v\./g, '')}
),
agg AS (
  SELECT
    v.patient_id,
    count(*) AS n_variants,
    count(*) FILTER (WHERE length(v.ref) = 1 AND length(v.alt) = 1) AS n_snv,
    count(*) FILTER (WHERE length(v.ref) <> length(v.alt)) AS n_indel,
    ${IMPACTS.map((i) => `count(*) FILTER (WHERE v.impact = '${i.toUpperCase()}') AS n_${i}`).join(',\n    ')},
    ${cons},
    count(*) / (any_value(${callable}) / 1e6) AS tmb_per_mb,
    count(*) FILTER (WHERE length(v.ref) = 1 AND length(v.alt) = 1 AND (v.ref || v.alt) IN ('AG', 'GA', 'CT', 'TC'))::DOUBLE
      / nullif(count(*) FILTER (WHERE length(v.ref) = 1 AND length(v.alt) = 1 AND (v.ref || v.alt) NOT IN ('AG', 'GA', 'CT', 'TC')), 0) AS ti_tv${genes ? `,\n    ${genes}` : ''}
  FROM v
  GROUP BY v.patient_id
),
p AS (
  SELECT patient_id, any_value(sex) AS sex, any_value(age_at_diagnosis) AS age_at_diagnosis, any_value(race) AS race,
         any_value(ethnicity) AS ethnicity, any_value(vital_status) AS vital_status,
         any_value(primary_diagnosis_code) AS primary_diagnosis_code, any_value(prior_malignancy) AS prior_malignancy,
         any_value(metadata_status) AS metadata_status
  FROM patients GROUP BY patient_id
)
SELECT agg.*, p.sex, p.age_at_diagnosis, p.race, p.ethnicity, p.vital_status, p.primary_diagnosis_code, p.prior_malignancy,
       coalesce(p.metadata_status, 'missing') AS metadata_status
FROM agg LEFT JOIN p USING (patient_id)
ORDER BY patient_id`;
}

/**
 * Computes the feature table and publishes `curated/features/part-0.parquet` and
 * `curated/features_csv/features.csv` (each prefix atomically).
 */
export async function buildFeatures(lake: Lake, input: FeaturesInput, log?: Logger): Promise<FeaturesResult> {
  const db = await openLakeSql(lake);
  const dir = await mkdtemp(join(tmpdir(), 'genolake-features-'));
  try {
    const sql = featuresSql(input);
    const parquet = join(dir, 'part-0.parquet');
    const csv = join(dir, 'features.csv');
    await db.query(`COPY (${sql}) TO ${q(parquet)} (FORMAT parquet, COMPRESSION zstd)`);
    await db.query(`COPY (SELECT * FROM read_parquet(${q(parquet)})) TO ${q(csv)} (FORMAT csv, HEADER true)`);
    const cols = await db.query(`DESCRIBE SELECT * FROM read_parquet(${q(parquet)})`);
    const [{ n }] = await db.query(`SELECT count(*) AS n FROM read_parquet(${q(parquet)})`);
    const meta = { stage: 'features', patients: Number(n), panel: input.panel };
    const staging = lake.stagingPrefix('features');
    await lake.put(`${staging}part-0.parquet`, await readFile(parquet));
    await lake.publish(staging, FEATURES_PREFIX, meta);
    const stagingCsv = lake.stagingPrefix('features-csv');
    await lake.put(`${stagingCsv}features.csv`, await readFile(csv));
    await lake.publish(stagingCsv, FEATURES_CSV_PREFIX, meta);
    log?.info({ patients: Number(n), genes: input.panel.length }, 'features: published');
    return {
      patients: Number(n),
      columns: cols.map((c) => String(c.column_name)),
      parquetKey: `${FEATURES_PREFIX}part-0.parquet`,
      csvKey: `${FEATURES_CSV_PREFIX}features.csv`,
    };
  } finally {
    db.close();
    await rm(dir, { recursive: true, force: true });
  }
}
