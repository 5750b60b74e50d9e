import { AdapterFactory } from './factory.js';
import { csvExportAdapter, jsonExportAdapter } from './export-file.js';
import { fhirAdapter } from './fhir.js';

export { AdapterFactory } from './factory.js';
export type { AdapterDefinition, AdapterDeps, FetchPatientRequest, MetadataAdapter } from './types.js';

/** The adapters genolake ships with. */
export const BUILTIN_ADAPTERS = [fhirAdapter, csvExportAdapter, jsonExportAdapter];

/** A fresh factory with the built-in adapters; callers may `register` more on it. */
export function defaultAdapterFactory(): AdapterFactory {
  const f = new AdapterFactory();
  for (const def of BUILTIN_ADAPTERS) f.register(def);
  return f;
}
