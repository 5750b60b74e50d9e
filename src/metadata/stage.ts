/**
 * The metadata stage of a drop run: runs beside alignment, keyed by the drop manifest
 * (`patient_id`, `provider: { provider_id, patient_id }`). It never fails the run because
 * of a provider: the worst outcome is a patients row with metadata_status='missing'.
 *
 * Without a registry (offline demo) or for a provider the registry does not know, the row
 * is written from the manifest as 'missing' with a warning (no alarm: nothing is broken),
 * and the provider link is recorded so `genolake metadata retry --registry …` can fetch
 * the metadata later.
 */
import type { Lake } from '../lake/types.js';
import type { Logger } from '../util/log.js';
import type { AdapterFactory } from './adapters/index.js';
import {
  describeFailure,
  fetchPatientMetadata,
  missingRow,
  patientFileKey,
  ProviderClients,
  publishPatientRow,
  readPatientRow,
  writeProviderLink,
  type AlarmWebhook,
} from './fetch.js';
import { checkPatientId } from './facts.js';
import { openRegistry, type ProviderRegistry } from './registry.js';
import type { Clock } from './resilience.js';

/** The part of a drop manifest the stage needs. */
export interface DropManifestRef {
  patient_id: string;
  provider: { provider_id: string; patient_id: string };
}

export interface DropMetadataOptions {
  /** `FILE` or `dynamodb://table`; absent → row from the manifest, status missing. */
  registryUri?: string;
  /** An already opened registry (takes precedence over registryUri). */
  registry?: ProviderRegistry;
  lake: Lake;
  runId: string;
  manifest: DropManifestRef;
  log: Logger;
  signal?: AbortSignal;
  webhook?: AlarmWebhook;
  clock?: Clock;
  factory?: AdapterFactory;
  clients?: ProviderClients;
}

/** JSON-serialisable (it is the stage's checkpointed output). */
export interface DropMetadataResult {
  patient_id: string;
  provider_id: string;
  status: 'ok' | 'missing';
  /** Why the metadata is missing: an error code (PROVIDER_TIMEOUT, NO_REGISTRY, PROVIDER_UNKNOWN, …). */
  reason?: string;
  /** The published patients file. */
  key: string;
  /** The error record, when the provider failed. */
  error_key?: string;
}

let processClients: ProviderClients | undefined;

/**
 * Breakers and rate limits shared by every drop run of this process, so a long-lived
 * `genolake watch` stops calling a provider that is down (until its cooldown) instead of
 * timing out once per drop.
 */
export function processProviderClients(): ProviderClients {
  return (processClients ??= new ProviderClients());
}

/** Webhook from the environment (GENOLAKE_ALARM_WEBHOOK), for the run pipeline and the CLI. */
export function webhookFromEnv(env: NodeJS.ProcessEnv = process.env): AlarmWebhook | undefined {
  const url = env.GENOLAKE_ALARM_WEBHOOK;
  return url ? { url } : undefined;
}

export async function metadataForDrop(opts: DropMetadataOptions): Promise<DropMetadataResult> {
  const { lake, log, runId, manifest } = opts;
  const patientId = checkPatientId(manifest.patient_id);
  const providerId = manifest.provider.provider_id;
  const webhook = opts.webhook ?? webhookFromEnv();

  const fromManifest = async (reason: string, message: string): Promise<DropMetadataResult> => {
    await writeProviderLink(lake, patientId, { provider_id: providerId, provider_patient_id: manifest.provider.patient_id });
    const previous = await readPatientRow(lake, patientId).catch(() => undefined);
    if (previous?.metadata_status !== 'ok') {
      await publishPatientRow(lake, patientId, missingRow({ providerId, runId, fetchedAt: (opts.clock ?? { now: Date.now }).now(), errorCode: reason }));
    }
    log.warn({ patient_id: patientId, provider_id: providerId, run_id: runId, reason }, message);
    return { patient_id: patientId, provider_id: providerId, status: 'missing', reason, key: patientFileKey(patientId) };
  };

  const registryUri = opts.registryUri;
  if (!opts.registry && !registryUri) {
    return fromManifest('NO_REGISTRY', 'no provider registry configured: patient row written from the manifest without metadata');
  }

  let registry = opts.registry;
  const owned = !registry;
  try {
    if (!registry) {
      try {
        registry = await openRegistry(registryUri!);
      } catch (e) {
        return fromManifest(describeFailure(e).code, `provider registry cannot be opened (${describeFailure(e).message}): patient row written without metadata`);
      }
    }
    // A provider the registry does not know is a configuration gap, not an outage.
    let known: boolean;
    try {
      known = (await registry.get(providerId)) !== undefined;
    } catch {
      known = true; // the registry is failing: let fetchPatientMetadata record it as an outage
    }
    if (!known) return fromManifest('PROVIDER_UNKNOWN', `provider is not in the registry ${registry.describe()}: patient row written without metadata`);

    const r = await fetchPatientMetadata({
      registry,
      factory: opts.factory,
      providerId,
      patientId,
      providerPatientId: manifest.provider.patient_id,
      lake,
      runId,
      log,
      webhook,
      clock: opts.clock,
      clients: opts.clients ?? (opts.clock ? undefined : processProviderClients()),
      signal: opts.signal,
    });
    return {
      patient_id: patientId,
      provider_id: providerId,
      status: r.status,
      ...(r.errorCode ? { reason: r.errorCode } : {}),
      key: r.key,
      ...(r.errorKey ? { error_key: r.errorKey } : {}),
    };
  } finally {
    if (owned && registry) await registry.close();
  }
}
