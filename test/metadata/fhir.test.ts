import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { fetchPatientMetadata, ProviderClients, readPatientRow } from '../../src/metadata/fetch.js';
import { mapFhir } from '../../src/metadata/adapters/fhir.js';
import { parseRetryAfter } from '../../src/metadata/resilience.js';
import { FileRegistry } from '../../src/metadata/registry.js';
import type { ProviderInput } from '../../src/metadata/provider.js';
import { API_SECRET, captureLogger, FakeClock, fhirPatient, operationOutcome, PROVIDER_PATIENT_ID, startFhirServer, type TestServer } from './helpers.js';

let server: TestServer;
let dir: string;
let lake: LocalLake;
let registry: FileRegistry;
let clock: FakeClock;
const ENV = 'GENOLAKE_TEST_FHIR_KEY';

beforeAll(async () => {
  server = await startFhirServer();
  process.env[ENV] = API_SECRET;
});
afterAll(async () => {
  await server.close();
  delete process.env[ENV];
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-fhir-'));
  lake = new LocalLake(join(dir, 'lake'));
  registry = new FileRegistry(join(dir, 'providers.json'));
  clock = new FakeClock();
  server.routes.length = 0;
  server.requests.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function addProvider(extra: Partial<ProviderInput> = {}): Promise<void> {
  await registry.put({
    id: 'hosp-a',
    kind: 'fhir',
    url: `${server.url}/fhir`,
    auth: { type: 'api-key', secret: `env:${ENV}` },
    timeoutMs: 2000,
    retry: { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000 },
    ...extra,
  });
}

function fetchOne(patientId: string, opts: { providerPatientId?: string; clients?: ProviderClients; log?: ReturnType<typeof captureLogger>['log'] } = {}) {
  return fetchPatientMetadata({
    registry,
    providerId: 'hosp-a',
    patientId,
    providerPatientId: opts.providerPatientId ?? PROVIDER_PATIENT_ID,
    lake,
    runId: 'run-1',
    log: opts.log ?? captureLogger().log,
    clock,
    clients: opts.clients ?? new ProviderClients({ clock, random: () => 0.5 }),
  });
}

describe('FHIR R4 adapter', () => {
  it('maps Patient (US Core race/ethnicity/birth sex), paged Condition, Observation and MedicationStatement searches', async () => {
    await addProvider();
    const r = await fetchOne('P1');
    expect(r.status).toBe('ok');
    expect(r.key).toBe('curated/patients/patient_id=P1/part-0.parquet');
    expect(await lake.isPublished('curated/patients/patient_id=P1/')).toBe(true);
    const row = await readPatientRow(lake, 'P1');
    expect(row).toMatchObject({
      provider_id: 'hosp-a',
      provider_patient_id: null,
      metadata_status: 'ok',
      error_code: null,
      sex: 'female',
      race: 'White; Asian',
      ethnicity: 'Not Hispanic or Latino',
      primary_diagnosis_code: 'C50.911',
      primary_diagnosis_system: 'http://hl7.org/fhir/sid/icd-10-cm',
      age_at_diagnosis: 59, // 1960-04-15 → 2019-06-01
      prior_malignancy: true, // C18.9 in 2010, found on page 2 of the Condition search
      vital_status: 'alive',
      smoking_status: 'Never smoker',
      medication_codes: ['10324', '84857'], // across two pages
      run_id: 'run-1',
    });
    // Paging followed the next links; the API key reached the server on every request.
    expect(server.count('/fhir/Condition')).toBe(2);
    expect(server.count('/fhir/MedicationStatement')).toBe(2);
    for (const req of server.requests) expect(req.headers['x-api-key']).toBe(API_SECRET);
    expect(server.requests.find((q) => q.path === '/fhir/Condition')?.query.get('patient')).toBe(PROVIDER_PATIENT_ID);
  });

  it('stores only the configured fields and skips searches nobody needs', async () => {
    await addProvider({ fields: ['sex', 'vital_status'] });
    const r = await fetchOne('P2');
    expect(r.status).toBe('ok');
    const row = await readPatientRow(lake, 'P2');
    expect(row?.sex).toBe('female');
    expect(row?.vital_status).toBe('alive');
    expect(row?.race).toBeNull();
    expect(row?.age_at_diagnosis).toBeNull();
    expect(row?.medication_codes).toBeNull();
    expect(server.requests.map((q) => q.path)).toEqual([`/fhir/Patient/${PROVIDER_PATIENT_ID}`]);
    const bytes = await readFile(join(dir, 'lake', 'curated/patients/patient_id=P2/part-0.parquet'));
    expect(bytes.includes(Buffer.from('White'))).toBe(false);
  });

  it('stores the provider patient id only when configured to', async () => {
    await addProvider({ storeProviderPatientId: true, fields: ['sex'] });
    await fetchOne('P3');
    expect((await readPatientRow(lake, 'P3'))?.provider_patient_id).toBe(PROVIDER_PATIENT_ID);
  });

  it('an OperationOutcome 404 marks the patient missing at once, without retries', async () => {
    await addProvider();
    const cap = captureLogger();
    const r = await fetchOne('P4', { providerPatientId: 'UNKNOWN-1', log: cap.log });
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_NOT_FOUND', errorKey: '_runs/run-1/errors/metadata-P4.json' });
    expect(server.count('/fhir/Patient/')).toBe(1);
    expect(clock.sleeps).toEqual([]);
    const rec = JSON.parse((await lake.getBuffer(r.errorKey!)).toString()) as { error: { code: string; message: string; status: number } };
    expect(rec.error).toMatchObject({ code: 'PROVIDER_NOT_FOUND', status: 404 });
    expect(rec.error.message).toContain('OperationOutcome: not-found');
    // The OperationOutcome's diagnostics echo the id: they are not copied anywhere.
    expect(rec.error.message).not.toContain('UNKNOWN-1');
    expect(cap.text()).not.toContain('UNKNOWN-1');
    expect((await readPatientRow(lake, 'P4'))?.metadata_status).toBe('missing');
  });

  it('a 429 is retried after exactly the Retry-After delay', async () => {
    await addProvider();
    server.routes.push((req, n) => (req.path.startsWith('/fhir/Patient/') && n === 1 ? { status: 429, headers: { 'retry-after': '7' }, json: operationOutcome('throttled', 'slow down') } : undefined));
    const r = await fetchOne('P5');
    expect(r.status).toBe('ok');
    expect(server.count('/fhir/Patient/')).toBe(2);
    expect(clock.sleeps).toEqual([7000]);
  });

  it('a Retry-After longer than the limit fails the request instead of blocking the run', async () => {
    await addProvider({ retry: { maxAttempts: 4, maxRetryAfterMs: 5000 } });
    server.routes.push((req) => (req.path.startsWith('/fhir/Patient/') ? { status: 429, headers: { 'retry-after': '3600' } } : undefined));
    const r = await fetchOne('P5b');
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_RATE_LIMITED' });
    expect(clock.sleeps).toEqual([]);
    expect(parseRetryAfter(new Date(clock.now() + 30_000).toUTCString(), clock.now())).toBe(30_000);
  });

  it("spaces requests by the provider's rate limit", async () => {
    await addProvider({ rateLimitPerSecond: 2 });
    expect((await fetchOne('P13')).status).toBe('ok');
    expect(server.requests).toHaveLength(6); // Patient, Condition ×2, Observation, MedicationStatement ×2
    expect(clock.sleeps).toEqual([500, 500, 500, 500, 500]);
  });

  it('a 503 burst is retried with exponential backoff and full jitter until it passes', async () => {
    await addProvider({ retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 250 } });
    server.routes.push((req, n) => (req.path.startsWith('/fhir/Patient/') && n <= 3 ? { status: 503, text: 'busy' } : undefined));
    const r = await fetchOne('P6');
    expect(r.status).toBe('ok');
    expect(server.count('/fhir/Patient/')).toBe(4);
    // random() = 0.5 → half of min(cap, base·2^(attempt-1)): 50, 100, then capped 125.
    expect(clock.sleeps).toEqual([50, 100, 125]);
  });

  it('a 503 burst longer than the retries marks the patient missing with the HTTP error', async () => {
    await addProvider({ retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10 } });
    server.routes.push((req) => (req.path.startsWith('/fhir/Patient/') ? { status: 503, text: 'busy' } : undefined));
    const r = await fetchOne('P7');
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_HTTP_ERROR' });
    expect(server.count('/fhir/Patient/')).toBe(3);
    const rec = JSON.parse((await lake.getBuffer(r.errorKey!)).toString()) as { error: { attempts: number; status: number } };
    expect(rec.error).toMatchObject({ attempts: 3, status: 503 });
  });

  it('a server that hangs past the timeout is abandoned and retried, then marked missing', async () => {
    await addProvider({ timeoutMs: 150, retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 10 } });
    server.routes.push((req) => (req.path.startsWith('/fhir/Patient/') ? 'hang' : undefined));
    const r = await fetchOne('P8');
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_TIMEOUT' });
    expect(server.count('/fhir/Patient/')).toBe(2);
  });

  it('a network error (nothing listening) is retried, then marked missing', async () => {
    await registry.put({ id: 'hosp-a', kind: 'fhir', url: 'http://127.0.0.1:1/fhir', retry: { maxAttempts: 2, baseDelayMs: 10 } });
    const r = await fetchOne('P9');
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_UNREACHABLE' });
    expect(clock.sleeps.length).toBe(1);
  });

  it('the circuit opens after repeated failures, refuses requests while open, and closes after a successful trial', async () => {
    await addProvider({ retry: { maxAttempts: 1 }, breaker: { failureThreshold: 3, cooldownMs: 60_000 } });
    let down = true;
    server.routes.push((req) => (down && req.path.startsWith('/fhir/Patient/') ? { status: 503, text: 'down' } : undefined));
    const clients = new ProviderClients({ clock, random: () => 0 });
    for (const p of ['C1', 'C2', 'C3']) expect((await fetchOne(p, { clients })).errorCode).toBe('PROVIDER_HTTP_ERROR');
    expect(server.count('/fhir/Patient/')).toBe(3);
    // Open: refused without touching the provider.
    const refused = await fetchOne('C4', { clients });
    expect(refused).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_CIRCUIT_OPEN' });
    expect(server.count('/fhir/Patient/')).toBe(3);
    // After the cooldown one trial goes through; it succeeds and the circuit closes.
    down = false;
    clock.advance(60_000);
    expect((await fetchOne('C4', { clients })).status).toBe('ok');
    expect((await fetchOne('C5', { clients })).status).toBe('ok');
    expect(server.count('/fhir/Patient/')).toBe(5);
  });

  it('refuses next links to another origin (credentials go nowhere else)', async () => {
    await addProvider();
    server.routes.push((req) =>
      req.path === '/fhir/Condition'
        ? { status: 200, json: { resourceType: 'Bundle', type: 'searchset', link: [{ relation: 'next', url: 'http://198.51.100.7/fhir/Condition?page=2' }], entry: [] } }
        : undefined,
    );
    const r = await fetchOne('P10');
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_BAD_RESPONSE' });
  });

  it('OAuth2 client credentials: one token for many requests, a fresh one after a 401; the client secret is sent only to the token endpoint', async () => {
    await addProvider({ auth: { type: 'oauth2', tokenUrl: `${server.url}/oauth/token`, clientId: 'genolake', clientSecret: `env:${ENV}`, scope: 'system/Patient.read' } });
    let tokens = 0;
    server.routes.push((req) => (req.path === '/oauth/token' ? { status: 200, json: { access_token: `tok-${++tokens}`, token_type: 'bearer', expires_in: 3600 } } : undefined));
    // The first token gets revoked after the Patient read.
    server.routes.push((req) => (req.path === '/fhir/Condition' && req.headers.authorization === 'Bearer tok-1' ? { status: 401, json: operationOutcome('login', 'expired') } : undefined));
    const cap = captureLogger();
    const r = await fetchOne('P11', { log: cap.log });
    expect(r.status).toBe('ok');
    const tokenReqs = server.requests.filter((q) => q.path === '/oauth/token');
    expect(tokenReqs).toHaveLength(2);
    const form = new URLSearchParams(tokenReqs[0].body);
    expect(Object.fromEntries(form)).toEqual({ grant_type: 'client_credentials', client_id: 'genolake', client_secret: API_SECRET, scope: 'system/Patient.read' });
    const fhirReqs = server.requests.filter((q) => q.path.startsWith('/fhir/'));
    expect(fhirReqs[0].headers.authorization).toBe('Bearer tok-1');
    expect(fhirReqs.at(-1)?.headers.authorization).toBe('Bearer tok-2');
    for (const q of fhirReqs) expect(q.body).not.toContain(API_SECRET);
    expect(cap.text()).not.toContain(API_SECRET);
    expect(cap.text()).not.toContain('tok-');
  });

  it('a missing secret is a configuration error recorded as missing metadata (the name of the variable, not a value)', async () => {
    await addProvider({ auth: { type: 'bearer', secret: 'env:GENOLAKE_TEST_UNSET_VAR' } });
    const r = await fetchOne('P12');
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_CONFIG' });
    expect(server.requests).toHaveLength(0);
  });

  it('the patients partitions read as one Hive-partitioned table (DuckDB)', async () => {
    await addProvider({ fields: ['sex', 'race', 'age_at_diagnosis', 'medication_codes'] });
    await fetchOne('PA');
    server.routes.push((req) => (req.path.startsWith('/fhir/') ? { status: 404, json: operationOutcome('not-found', 'gone') } : undefined));
    await fetchOne('PB');
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const db = await DuckDBInstance.create(':memory:');
    const con = await db.connect();
    const glob = join(dir, 'lake', 'curated', 'patients', '*', '*.parquet');
    const rows = (
      await con.runAndReadAll(
        `SELECT patient_id, metadata_status, error_code, sex, race, age_at_diagnosis, len(medication_codes) AS meds, provider_patient_id FROM read_parquet('${glob}', hive_partitioning = true) ORDER BY patient_id`,
      )
    ).getRowObjectsJson();
    con.closeSync();
    db.closeSync();
    expect(rows).toEqual([
      { patient_id: 'PA', metadata_status: 'ok', error_code: null, sex: 'female', race: 'White; Asian', age_at_diagnosis: 59, meds: '2', provider_patient_id: null },
      { patient_id: 'PB', metadata_status: 'missing', error_code: 'PROVIDER_NOT_FOUND', sex: null, race: null, age_at_diagnosis: null, meds: null, provider_patient_id: null },
    ]);
  });

  it('mapFhir: birth sex over gender, deceased, unknowns stay null', () => {
    const p = fhirPatient() as Parameters<typeof mapFhir>[0]['patient'];
    const f = mapFhir({ patient: { ...p, deceasedDateTime: '2022-01-01', deceasedBoolean: undefined, extension: [] }, conditions: [], observations: [], medicationStatements: [], fetched: { conditions: true, observations: false, medications: false } });
    expect(f).toMatchObject({ sex: 'female', vital_status: 'deceased', race: null, prior_malignancy: null, primary_diagnosis_code: null, smoking_status: null, medication_codes: null });
  });
});
