/**
 * The patients table: one row per patient, partitioned as
 * `curated/patients/patient_id=<P>/part-0.parquet` (the partition column is in the path,
 * not in the file, as Hive/Athena/DuckDB expect).
 *
 * The schema is fixed whatever a provider's field selection is — unselected columns are
 * null — so every partition reads as one table.
 */
import { Bool, Field, Int32, List, Schema, TimestampMillisecond, Utf8, type Table } from 'apache-arrow';
import { parquetToTable, rowsToTable, tableToParquet } from '../formats/parquet.js';
import { InputError } from '../util/errors.js';

/** Clinical columns a provider may be configured to store (its `fields`). */
export const PATIENT_DATA_FIELDS = [
  'sex',
  'age_at_diagnosis',
  'race',
  'ethnicity',
  'primary_diagnosis_code',
  'primary_diagnosis_system',
  'primary_diagnosis_display',
  'prior_malignancy',
  'vital_status',
  'smoking_status',
  'medication_codes',
] as const;
export type PatientDataField = (typeof PATIENT_DATA_FIELDS)[number];

export type Sex = 'male' | 'female' | 'other' | 'unknown';
export type VitalStatus = 'alive' | 'deceased' | 'unknown';
export type MetadataStatus = 'ok' | 'missing';

/** What an adapter learns about a patient; every value may be unknown (null). */
export interface PatientFacts {
  sex: Sex | null;
  age_at_diagnosis: number | null;
  race: string | null;
  ethnicity: string | null;
  primary_diagnosis_code: string | null;
  primary_diagnosis_system: string | null;
  primary_diagnosis_display: string | null;
  prior_malignancy: boolean | null;
  vital_status: VitalStatus | null;
  smoking_status: string | null;
  medication_codes: string[] | null;
}

export interface PatientRow extends PatientFacts {
  provider_id: string;
  /** Null unless the provider is configured with storeProviderPatientId. */
  provider_patient_id: string | null;
  metadata_status: MetadataStatus;
  /** For metadata_status='missing': the error code (e.g. PROVIDER_TIMEOUT). */
  error_code: string | null;
  run_id: string;
  /** Epoch milliseconds. */
  fetched_at: number;
}

export function emptyFacts(): PatientFacts {
  return {
    sex: null,
    age_at_diagnosis: null,
    race: null,
    ethnicity: null,
    primary_diagnosis_code: null,
    primary_diagnosis_system: null,
    primary_diagnosis_display: null,
    prior_malignancy: null,
    vital_status: null,
    smoking_status: null,
    medication_codes: null,
  };
}

/** Keeps only the configured fields: the privacy filter every adapter's output goes through. */
export function selectFields(facts: PatientFacts, fields: readonly PatientDataField[]): PatientFacts {
  const keep = new Set<string>(fields);
  const out = emptyFacts() as unknown as Record<string, unknown>;
  for (const f of PATIENT_DATA_FIELDS) if (keep.has(f)) out[f] = facts[f];
  return out as unknown as PatientFacts;
}

const utf8 = (name: string, nullable = true) => new Field(name, new Utf8(), nullable);

export const PATIENTS_SCHEMA = new Schema([
  utf8('provider_id', false),
  utf8('provider_patient_id'),
  utf8('metadata_status', false),
  utf8('error_code'),
  utf8('sex'),
  new Field('age_at_diagnosis', new Int32(), true),
  utf8('race'),
  utf8('ethnicity'),
  utf8('primary_diagnosis_code'),
  utf8('primary_diagnosis_system'),
  utf8('primary_diagnosis_display'),
  new Field('prior_malignancy', new Bool(), true),
  utf8('vital_status'),
  utf8('smoking_status'),
  new Field('medication_codes', new List(new Field('item', new Utf8(), true)), true),
  utf8('run_id', false),
  new Field('fetched_at', new TimestampMillisecond('UTC'), false),
]);

/** `curated/patients/patient_id=<P>/` — the prefix published atomically per patient. */
export function patientPartition(patientId: string): string {
  return `curated/patients/patient_id=${patientId}/`;
}

export const PATIENT_PART_FILE = 'part-0.parquet';

export function patientsToParquet(rows: readonly PatientRow[]): Uint8Array {
  return tableToParquet(rowsToTable(PATIENTS_SCHEMA, rows as unknown as Record<string, unknown>[]), {
    compression: 'zstd',
    createdBy: 'genolake metadata',
  });
}

/** Reads a patients Parquet file back into rows (for retry bookkeeping and tests). */
export function parquetToPatients(bytes: Uint8Array): PatientRow[] {
  const table: Table = parquetToTable(bytes);
  return table.toArray().map((r) => {
    const o = r.toJSON() as Record<string, unknown>;
    const meds = o.medication_codes as { toArray(): unknown[] } | null;
    return {
      ...(o as unknown as PatientRow),
      fetched_at: Number(o.fetched_at),
      medication_codes: meds ? (Array.from(meds.toArray()) as string[]) : null,
    };
  });
}

/** Lake patient ids become a path segment: keep them to a safe alphabet. */
export function checkPatientId(patientId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(patientId)) {
    throw new InputError('BAD_PATIENT_ID', `patient_id must be letters, digits, . _ - (max 128): ${JSON.stringify(patientId)}`, {
      field: 'patient_id',
    });
  }
  return patientId;
}
