/**
 * What is known about a patient, as adapters report it and providers select it: plain
 * values with no Arrow or Parquet behind them, so the metadata adapters, the provider
 * registry and the CLI load without the table libraries (see patients.ts for the table).
 */
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

/** Lake patient ids become a path segment: keep them to a safe alphabet. */
export function checkPatientId(patientId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(patientId)) {
    throw new InputError('BAD_PATIENT_ID', `patient_id must be letters, digits, . _ - (max 128): ${JSON.stringify(patientId)}`, {
      field: 'patient_id',
    });
  }
  return patientId;
}
