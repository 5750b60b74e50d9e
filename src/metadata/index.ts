/** Patient metadata: provider registry, adapter factory and adapters, fetch/retry, the run stage. */
export { AdapterFactory, BUILTIN_ADAPTERS, defaultAdapterFactory } from './adapters/index.js';
export type { AdapterDefinition, AdapterDeps, FetchPatientRequest, MetadataAdapter } from './adapters/index.js';
export {
  fetchPatientMetadata,
  listMissingPatients,
  newMetadataRunId,
  patientFileKey,
  providerLinkKey,
  ProviderClients,
  readPatientRow,
  readProviderLink,
  retryMissingMetadata,
  type AlarmWebhook,
  type FetchMetadataOptions,
  type FetchMetadataResult,
  type RetryMissingOptions,
  type RetryMissingResult,
} from './fetch.js';
export { ProviderError, type ProviderErrorCode } from './http.js';
export { PATIENT_DATA_FIELDS, PATIENTS_SCHEMA, parquetToPatients, patientPartition, type PatientDataField, type PatientFacts, type PatientRow } from './patients.js';
export { ProviderSchema, type ProviderConfig, type ProviderInput } from './provider.js';
export { FileRegistry, openRegistry, parseProvider, type ProviderRegistry } from './registry.js';
export { systemClock, type Clock } from './resilience.js';
export { metadataForDrop, processProviderClients, webhookFromEnv, type DropManifestRef, type DropMetadataOptions, type DropMetadataResult } from './stage.js';
