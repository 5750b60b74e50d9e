/**
 * Fetching one patient's metadata from its provider into the lake, so that a failing
 * provider never costs the run anything but that patient's metadata:
 *
 * - success: `curated/patients/patient_id=<P>/part-0.parquet` is published atomically
 *   (only the provider's configured fields; its patient id only if configured);
 * - failure (registry, network, timeout, HTTP error, open circuit, bad data): the function
 *   does not throw. It publishes a row with metadata_status='missing' and the error code
 *   (unless an earlier fetch stored good metadata, which is kept), writes an error record
 *   `_runs/<run_id>/errors/metadata-<P>.json`, logs an error-level alarm line and POSTs
 *   the alarm to a webhook when one is configured.
 *
 * The provider's patient id is the link between the lake's patient_id and the provider.
 * It is identifying, so it stays out of curated tables (unless storeProviderPatientId) and
 * out of logs; it is kept in `raw/patient_id=<P>/provider-link.json` — the raw zone, which
 * already holds the drop manifest naming it — so `retryMissingMetadata` can re-fetch.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Lake } from '../lake/types.js';
import { GenolakeError, isGenolakeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { defaultAdapterFactory, type AdapterFactory } from './adapters/index.js';
import { ProviderError, ProviderHttp } from './http.js';
import {
  checkPatientId,
  parquetToPatients,
  PATIENT_PART_FILE,
  patientPartition,
  patientsToParquet,
  selectFields,
  emptyFacts,
  type PatientRow,
} from './patients.js';
import type { ProviderConfig } from './provider.js';
import type { ProviderRegistry } from './registry.js';
import { CircuitBreakers, RateLimiter, systemClock, type CircuitBreaker, type Clock } from './resilience.js';
import { defaultSecretResolver, type SecretResolver } from './secrets.js';

const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A run id for metadata-only runs (`metadata fetch` / `metadata retry`): `meta-20261123T104500Z-ab12cd`. */
export function newMetadataRunId(now: number = Date.now()): string {
  const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `meta-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** Where an alarm is POSTed as JSON (e.g. a chat or paging webhook). The URL is never logged. */
export interface AlarmWebhook {
  url: string;
  headers?: Record<string, string>;
  /** Default 5000 ms. The webhook is tried once: an alarm must not hold up the run. */
  timeoutMs?: number;
}

/**
 * Per-provider state shared by every fetch of a run (or a `metadata retry`): circuit
 * breakers and rate limiters, plus the clock, randomness, fetch and secret resolver.
 */
export class ProviderClients {
  readonly clock: Clock;
  readonly random: () => number;
  readonly secrets: SecretResolver;
  readonly fetch?: typeof globalThis.fetch;
  private readonly breakers: CircuitBreakers;
  private readonly limiters = new Map<string, RateLimiter>();

  constructor(opts: { clock?: Clock; random?: () => number; secrets?: SecretResolver; fetch?: typeof globalThis.fetch } = {}) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.secrets = opts.secrets ?? defaultSecretResolver();
    this.fetch = opts.fetch;
    this.breakers = new CircuitBreakers(this.clock);
  }

  breaker(provider: ProviderConfig): CircuitBreaker {
    return this.breakers.for(provider.id, provider.breaker);
  }

  http(provider: ProviderConfig, log: Logger): ProviderHttp {
    let limiter = this.limiters.get(provider.id);
    if (!limiter) this.limiters.set(provider.id, (limiter = new RateLimiter(provider.rateLimitPerSecond, this.clock)));
    return new ProviderHttp({
      providerId: provider.id,
      policy: { timeoutMs: provider.timeoutMs, ...provider.retry },
      breaker: this.breaker(provider),
      rateLimiter: limiter,
      clock: this.clock,
      random: this.random,
      log,
      fetch: this.fetch,
    });
  }
}

export interface FetchMetadataOptions {
  registry: ProviderRegistry;
  /** Default: the built-in adapters (fhir, csv, json). */
  factory?: AdapterFactory;
  providerId: string;
  /** The lake's patient id (becomes patient_id=<P>). */
  patientId: string;
  /** The provider's own id for the patient: used for the request, kept out of logs. */
  providerPatientId: string;
  lake: Lake;
  /** Default: a new `meta-…` run id. */
  runId?: string;
  log: Logger;
  webhook?: AlarmWebhook;
  clock?: Clock;
  /** Share breakers/rate limits across many fetches; default: fresh ones for this call. */
  clients?: ProviderClients;
  signal?: AbortSignal;
}

export interface FetchMetadataResult {
  patientId: string;
  providerId: string;
  runId: string;
  /** 'ok': metadata stored. 'missing': the provider failed (see errorCode). */
  status: 'ok' | 'missing';
  /** The published patients file. */
  key: string;
  errorCode?: string;
  /** `_runs/<run_id>/errors/metadata-<P>.json` when status is 'missing'. */
  errorKey?: string;
  /** The provider failed but an earlier fetch's metadata was kept in the table. */
  keptPrevious?: boolean;
}

/** Lake key of the link provider patient id ↔ lake patient_id (raw zone, never a table). */
export function providerLinkKey(patientId: string): string {
  return `raw/patient_id=${checkPatientId(patientId)}/provider-link.json`;
}

const LinkSchema = z.object({ provider_id: z.string(), provider_patient_id: z.string() });
export type ProviderLink = z.infer<typeof LinkSchema>;

export async function readProviderLink(lake: Lake, patientId: string): Promise<ProviderLink | undefined> {
  const key = providerLinkKey(patientId);
  if (!(await lake.exists(key))) return undefined;
  const parsed = LinkSchema.safeParse(JSON.parse((await lake.getBuffer(key)).toString('utf8')));
  if (!parsed.success) throw new GenolakeError('METADATA_BAD_LINK', 'provider link is not {provider_id, provider_patient_id}', { file: key });
  return parsed.data;
}

export async function writeProviderLink(lake: Lake, patientId: string, link: ProviderLink): Promise<void> {
  const old = await readProviderLink(lake, patientId).catch(() => undefined);
  if (old && old.provider_id === link.provider_id && old.provider_patient_id === link.provider_patient_id) return;
  await lake.put(providerLinkKey(patientId), `${JSON.stringify({ provider_id: link.provider_id, provider_patient_id: link.provider_patient_id }, null, 2)}\n`);
}

/** The key of a patient's published patients file. */
export function patientFileKey(patientId: string): string {
  return `${patientPartition(patientId)}${PATIENT_PART_FILE}`;
}

/** The patient's current row, if a patients file has been published. */
export async function readPatientRow(lake: Lake, patientId: string): Promise<PatientRow | undefined> {
  const prefix = patientPartition(checkPatientId(patientId));
  if (!(await lake.isPublished(prefix))) return undefined;
  const rows = parquetToPatients(new Uint8Array(await lake.getBuffer(`${prefix}${PATIENT_PART_FILE}`)));
  return rows[0];
}

/** Writes the patient's row under a staging prefix and publishes the partition atomically. */
export async function publishPatientRow(lake: Lake, patientId: string, row: PatientRow): Promise<string> {
  const staging = lake.stagingPrefix(`patients-${patientId}`);
  try {
    await lake.put(`${staging}${PATIENT_PART_FILE}`, patientsToParquet([row]));
    await lake.publish(staging, patientPartition(patientId), { table: 'patients', run_id: row.run_id, metadata_status: row.metadata_status });
  } catch (e) {
    await lake.deletePrefix(staging).catch(() => undefined);
    throw e;
  }
  return patientFileKey(patientId);
}

/** The code and a PHI-free message of any failure. */
export function describeFailure(e: unknown): { code: string; message: string; status?: number; attempts?: number } {
  if (e instanceof ProviderError) return { code: e.code, message: e.describe(), status: e.status, attempts: e.attempts };
  if (isGenolakeError(e)) return { code: e.code, message: e.describe() };
  // Unexpected errors may carry anything in their message: keep only the type.
  return { code: 'METADATA_UNEXPECTED', message: `unexpected ${(e as Error)?.name ?? 'error'} while fetching metadata` };
}

/**
 * Fetches one patient's metadata into the lake. Never throws for provider or registry
 * failures (see the module comment); throws for a bad patient/run id, a cancelled signal,
 * or a lake that cannot be written.
 */
export async function fetchPatientMetadata(opts: FetchMetadataOptions): Promise<FetchMetadataResult> {
  const { lake, log, providerId } = opts;
  const patientId = checkPatientId(opts.patientId);
  const clients = opts.clients ?? new ProviderClients({ clock: opts.clock });
  const clock = opts.clock ?? clients.clock;
  const runId = opts.runId ?? newMetadataRunId(clock.now());
  if (!RUN_ID_RE.test(runId)) throw new GenolakeError('RUN_BAD_ID', `run id must be letters, digits, '.', '_' or '-'`);
  const factory = opts.factory ?? defaultAdapterFactory();
  const ctx = { patient_id: patientId, provider_id: providerId, run_id: runId };

  await writeProviderLink(lake, patientId, { provider_id: providerId, provider_patient_id: opts.providerPatientId });

  let provider: ProviderConfig | undefined;
  let row: PatientRow;
  try {
    provider = await opts.registry.get(providerId);
    if (!provider) throw new GenolakeError('PROVIDER_UNKNOWN', `provider ${providerId} is not in the registry ${opts.registry.describe()}`);
    const http = clients.http(provider, log);
    const adapter = factory.create(provider, { http, secrets: clients.secrets, clock, log });
    const facts = await adapter.fetchPatient({ providerPatientId: opts.providerPatientId, fields: provider.fields, signal: opts.signal });
    row = {
      ...selectFields(facts, provider.fields),
      provider_id: provider.id,
      provider_patient_id: provider.storeProviderPatientId ? opts.providerPatientId : null,
      metadata_status: 'ok',
      error_code: null,
      run_id: runId,
      fetched_at: clock.now(),
    };
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? e;
    return recordMissing({ ...opts, patientId, runId, clock, provider, error: e });
  }
  const key = await publishPatientRow(lake, patientId, row);
  log.info({ ...ctx, fields: provider.fields.length }, 'patient metadata stored');
  return { patientId, providerId, runId, status: 'ok', key };
}

interface MissingInput {
  lake: Lake;
  log: Logger;
  patientId: string;
  providerId: string;
  providerPatientId: string;
  runId: string;
  clock: Clock;
  provider?: ProviderConfig;
  error: unknown;
  webhook?: AlarmWebhook;
}

/** The failure path: missing row (unless good metadata exists), error record, alarm. */
async function recordMissing(inp: MissingInput): Promise<FetchMetadataResult> {
  const { lake, log, patientId, providerId, runId, clock } = inp;
  const failure = describeFailure(inp.error);
  const errorKey = `_runs/${runId}/errors/metadata-${patientId}.json`;
  const at = new Date(clock.now()).toISOString();
  const record = {
    kind: 'metadata',
    run_id: runId,
    patient_id: patientId,
    provider_id: providerId,
    at,
    error: { code: failure.code, message: failure.message, status: failure.status, attempts: failure.attempts },
  };
  await lake.put(errorKey, `${JSON.stringify(record, null, 2)}\n`);

  const previous = await readPatientRow(lake, patientId).catch(() => undefined);
  const keptPrevious = previous?.metadata_status === 'ok';
  if (!keptPrevious) {
    await publishPatientRow(lake, patientId, missingRow({ providerId, runId, fetchedAt: clock.now(), errorCode: failure.code }));
  }

  const alarm = { alarm: 'metadata_missing', patient_id: patientId, provider_id: providerId, run_id: runId, error_code: failure.code, error_key: errorKey, kept_previous: keptPrevious };
  log.error({ ...alarm, status: failure.status, attempts: failure.attempts }, `patient metadata missing: ${failure.message}`);
  if (inp.webhook) await postWebhook(inp.webhook, { event: 'genolake.metadata_missing', ...alarm, message: failure.message, at }, log);
  return { patientId, providerId, runId, status: 'missing', key: patientFileKey(patientId), errorCode: failure.code, errorKey, ...(keptPrevious ? { keptPrevious } : {}) };
}

/** A patients row that says "no metadata": every clinical column null. */
export function missingRow(a: { providerId: string; runId: string; fetchedAt: number; errorCode: string }): PatientRow {
  return {
    ...emptyFacts(),
    provider_id: a.providerId,
    provider_patient_id: null,
    metadata_status: 'missing',
    error_code: a.errorCode,
    run_id: a.runId,
    fetched_at: a.fetchedAt,
  };
}

/** POSTs an alarm; a failing webhook is logged (without its URL) and otherwise ignored. */
export async function postWebhook(hook: AlarmWebhook, payload: Record<string, unknown>, log: Logger): Promise<boolean> {
  try {
    const res = await fetch(hook.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...hook.headers },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(hook.timeoutMs ?? 5000),
      redirect: 'error',
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) {
      log.warn({ alarm_webhook_status: res.status }, 'alarm webhook refused the alarm');
      return false;
    }
    return true;
  } catch (e) {
    log.warn({ alarm_webhook_error: (e as Error).name }, 'alarm webhook unreachable');
    return false;
  }
}

export interface RetryMissingOptions {
  registry: ProviderRegistry;
  factory?: AdapterFactory;
  lake: Lake;
  log: Logger;
  /** Run id of the retry (its errors go to _runs/<run_id>/errors/); default a new `meta-…` id. */
  runId?: string;
  webhook?: AlarmWebhook;
  clock?: Clock;
  clients?: ProviderClients;
  /** Only these patients (default: every patient whose row is missing). */
  patientIds?: string[];
  signal?: AbortSignal;
}

export interface RetryMissingResult {
  runId: string;
  /** Patients whose row was missing and who had a provider link. */
  retried: FetchMetadataResult[];
  /** Missing patients without a provider link (nothing to fetch with). */
  noLink: string[];
}

/** Patients whose published row says metadata_status='missing'. */
export async function listMissingPatients(lake: Lake): Promise<string[]> {
  const out: string[] = [];
  for await (const o of lake.list('curated/patients/')) {
    const m = /^curated\/patients\/patient_id=([^/]+)\/part-0\.parquet$/.exec(o.key);
    if (!m) continue;
    const row = await readPatientRow(lake, m[1]).catch(() => undefined);
    if (row?.metadata_status === 'missing') out.push(m[1]);
  }
  return out;
}

/** Re-fetches every patient marked missing (one at a time, sharing breakers per provider). */
export async function retryMissingMetadata(opts: RetryMissingOptions): Promise<RetryMissingResult> {
  const clients = opts.clients ?? new ProviderClients({ clock: opts.clock });
  const clock = opts.clock ?? clients.clock;
  const runId = opts.runId ?? newMetadataRunId(clock.now());
  const missing = await listMissingPatients(opts.lake);
  const wanted = opts.patientIds ? missing.filter((p) => opts.patientIds!.includes(p)) : missing;
  const result: RetryMissingResult = { runId, retried: [], noLink: [] };
  for (const patientId of wanted) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const link = await readProviderLink(opts.lake, patientId).catch(() => undefined);
    if (!link) {
      opts.log.warn({ patient_id: patientId }, 'metadata missing but no provider link is recorded: cannot retry');
      result.noLink.push(patientId);
      continue;
    }
    result.retried.push(
      await fetchPatientMetadata({
        registry: opts.registry,
        factory: opts.factory,
        providerId: link.provider_id,
        patientId,
        providerPatientId: link.provider_patient_id,
        lake: opts.lake,
        runId,
        log: opts.log,
        webhook: opts.webhook,
        clock,
        clients,
        signal: opts.signal,
      }),
    );
  }
  opts.log.info({ run_id: runId, retried: result.retried.length, recovered: result.retried.filter((r) => r.status === 'ok').length, no_link: result.noLink.length }, 'metadata retry done');
  return result;
}
