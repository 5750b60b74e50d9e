import type { Logger } from '../../util/log.js';
import type { ProviderHttp } from '../http.js';
import type { PatientDataField, PatientFacts } from '../facts.js';
import type { ProviderConfig } from '../provider.js';
import type { Clock } from '../resilience.js';
import type { SecretResolver } from '../secrets.js';

/** Everything an adapter may use; built per provider by `fetchPatientMetadata`. */
export interface AdapterDeps {
  /** HTTP to this provider with timeout, retries, rate limit and circuit breaker applied. */
  http: ProviderHttp;
  secrets: SecretResolver;
  clock: Clock;
  log: Logger;
}

export interface FetchPatientRequest {
  providerPatientId: string;
  /** The fields the provider is configured to store: adapters skip searches nobody needs. */
  fields: readonly PatientDataField[];
  signal?: AbortSignal;
}

/** Reads one patient's facts from a provider. Throws ProviderError / InputError on failure. */
export interface MetadataAdapter {
  fetchPatient(req: FetchPatientRequest): Promise<PatientFacts>;
}

/** A kind of provider: what a new adapter module exports and registers with the factory. */
export interface AdapterDefinition {
  kind: string;
  describe: string;
  create(provider: ProviderConfig, deps: AdapterDeps): MetadataAdapter;
}
