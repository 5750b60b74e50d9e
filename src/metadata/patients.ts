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

import type { PatientRow } from './facts.js';

export * from './facts.js';

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
