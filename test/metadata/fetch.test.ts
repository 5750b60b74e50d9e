import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import {
  fetchPatientMetadata,
  listMissingPatients,
  ProviderClients,
  providerLinkKey,
  readPatientRow,
  retryMissingMetadata,
} from '../../src/metadata/fetch.js';
import { metadataForDrop } from '../../src/metadata/stage.js';
import { FileRegistry } from '../../src/metadata/registry.js';
import { AdapterFactory, defaultAdapterFactory } from '../../src/metadata/adapters/index.js';
import { parquetToPatients } from '../../src/metadata/patients.js';
import {
  API_SECRET,
  BIRTH_DATE,
  captureLogger,
  FakeClock,
  PATIENT_NAME,
  PROVIDER_PATIENT_ID,
  startFhirServer,
  startServer,
  type TestServer,
} from './helpers.js';

let fhir: TestServer;
let hook: TestServer;
let dir: string;
let lake: LocalLake;
let registry: FileRegistry;
let clock: FakeClock;
const ENV = 'GENOLAKE_TEST_FETCH_TOKEN';

beforeAll(async () => {
  fhir = await startFhirServer();
  hook = await startServer(() => ({ status: 204 }));
  process.env[ENV] = API_SECRET;
});
afterAll(async () => {
  await fhir.close();
  await hook.close();
  delete process.env[ENV];
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-meta-'));
  lake = new LocalLake(join(dir, 'lake'));
  registry = new FileRegistry(join(dir, 'providers.json'));
  clock = new FakeClock();
  fhir.routes.length = 0;
  fhir.requests.length = 0;
  hook.requests.length = 0;
  await registry.put({
    id: 'hosp-a',
    kind: 'fhir',
    url: `${fhir.url}/fhir`,
    auth: { type: 'bearer', secret: `env:${ENV}` },
    timeoutMs: 1000, // generous: a loaded CI machine must not turn a 503 into a timeout
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const providerDown = () => fhir.routes.push((req) => (req.path.startsWith('/fhir/') ? { status: 503, text: 'maintenance' } : undefined));
const providerHangs = () => fhir.routes.push((req) => (req.path.startsWith('/fhir/') ? 'hang' : undefined));

describe('fetchPatientMetadata: failures', () => {
  it('a failing provider gives a missing row, an error record, an error-level alarm and a webhook POST; it does not throw', async () => {
    providerDown();
    const cap = captureLogger();
    const r = await fetchPatientMetadata({
      registry,
      providerId: 'hosp-a',
      patientId: 'P1',
      providerPatientId: PROVIDER_PATIENT_ID,
      lake,
      runId: 'R1',
      log: cap.log,
      clock,
      webhook: { url: `${hook.url}/alarm?token=hook-secret` },
    });
    expect(r).toEqual({
      patientId: 'P1',
      providerId: 'hosp-a',
      runId: 'R1',
      status: 'missing',
      key: 'curated/patients/patient_id=P1/part-0.parquet',
      errorCode: 'PROVIDER_HTTP_ERROR',
      errorKey: '_runs/R1/errors/metadata-P1.json',
    });
    const row = await readPatientRow(lake, 'P1');
    expect(row).toMatchObject({ metadata_status: 'missing', error_code: 'PROVIDER_HTTP_ERROR', provider_id: 'hosp-a', run_id: 'R1', sex: null, provider_patient_id: null });
    const rec = JSON.parse((await lake.getBuffer('_runs/R1/errors/metadata-P1.json')).toString()) as Record<string, unknown>;
    expect(rec).toMatchObject({ kind: 'metadata', run_id: 'R1', patient_id: 'P1', provider_id: 'hosp-a', error: { code: 'PROVIDER_HTTP_ERROR', status: 503, attempts: 2 } });

    const alarms = cap.parsed().filter((l) => l.level === 50);
    expect(alarms).toHaveLength(1);
    expect(alarms[0]).toMatchObject({ alarm: 'metadata_missing', patient_id: 'P1', provider_id: 'hosp-a', run_id: 'R1', error_code: 'PROVIDER_HTTP_ERROR' });

    expect(hook.requests).toHaveLength(1);
    expect(hook.requests[0].method).toBe('POST');
    expect(JSON.parse(hook.requests[0].body)).toMatchObject({ event: 'genolake.metadata_missing', patient_id: 'P1', provider_id: 'hosp-a', run_id: 'R1', error_code: 'PROVIDER_HTTP_ERROR' });
    expect(hook.requests[0].body).not.toContain(PROVIDER_PATIENT_ID);
    // The webhook URL may hold a token: it is not logged.
    expect(cap.text()).not.toContain('hook-secret');
  });

  it('an unknown provider or a broken adapter config is recorded as missing, not thrown', async () => {
    const cap = captureLogger();
    const r = await fetchPatientMetadata({ registry, providerId: 'nope', patientId: 'P2', providerPatientId: 'x', lake, runId: 'R1', log: cap.log, clock });
    expect(r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_UNKNOWN' });
    await registry.put({ id: 'weird', kind: 'hl7v2', url: 'mllp://x' });
    const r2 = await fetchPatientMetadata({ registry, providerId: 'weird', patientId: 'P3', providerPatientId: 'x', lake, runId: 'R1', log: cap.log, clock });
    expect(r2).toMatchObject({ status: 'missing', errorCode: 'ADAPTER_UNKNOWN_KIND' });
  });

  it('a failure never replaces metadata already fetched', async () => {
    const log = captureLogger().log;
    const ok = await fetchPatientMetadata({ registry, providerId: 'hosp-a', patientId: 'P4', providerPatientId: PROVIDER_PATIENT_ID, lake, runId: 'R1', log, clock });
    expect(ok.status).toBe('ok');
    providerDown();
    const again = await fetchPatientMetadata({ registry, providerId: 'hosp-a', patientId: 'P4', providerPatientId: PROVIDER_PATIENT_ID, lake, runId: 'R2', log, clock });
    expect(again).toMatchObject({ status: 'missing', keptPrevious: true, errorKey: '_runs/R2/errors/metadata-P4.json' });
    expect(await readPatientRow(lake, 'P4')).toMatchObject({ metadata_status: 'ok', run_id: 'R1', sex: 'female' });
  });
});

describe('privacy', () => {
  it('logs hold no PHI (name, birth date, provider patient id) and no secrets, on success and on failure, at debug level', async () => {
    const cap = captureLogger();
    const base = { registry, providerId: 'hosp-a', providerPatientId: PROVIDER_PATIENT_ID, lake, log: cap.log, clock, webhook: { url: `${hook.url}/a` } };
    expect((await fetchPatientMetadata({ ...base, patientId: 'P1', runId: 'R1' })).status).toBe('ok');
    // The bearer token reached the provider…
    expect(fhir.requests[0].headers.authorization).toBe(`Bearer ${API_SECRET}`);
    fhir.routes.push((req, n) => (req.path.startsWith('/fhir/Patient/') && n % 2 === 0 ? { status: 503, text: `${PATIENT_NAME} ${BIRTH_DATE}` } : undefined));
    await fetchPatientMetadata({ ...base, patientId: 'P2', runId: 'R1' });
    fhir.routes.length = 0;
    providerHangs();
    expect((await fetchPatientMetadata({ ...base, patientId: 'P3', runId: 'R1' })).errorCode).toBe('PROVIDER_TIMEOUT');
    fhir.routes.length = 0;
    await fetchPatientMetadata({ ...base, providerPatientId: 'NOBODY-55', patientId: 'P5', runId: 'R1' });

    const text = cap.text();
    expect(cap.lines.length).toBeGreaterThan(5); // debug lines of every request are in there
    for (const phi of [PROVIDER_PATIENT_ID, 'NOBODY-55', PATIENT_NAME, 'Quimby', BIRTH_DATE, '1960', API_SECRET, '12 Elm St']) expect(text).not.toContain(phi);
    // …and nothing of it reached the lake's error records or the webhook either.
    for await (const o of lake.list('_runs/')) {
      const body = (await lake.getBuffer(o.key)).toString();
      for (const phi of [PROVIDER_PATIENT_ID, PATIENT_NAME, BIRTH_DATE, API_SECRET]) expect(body).not.toContain(phi);
    }
    for (const q of hook.requests) expect(q.body).not.toContain(PROVIDER_PATIENT_ID);
    // The patients table has no provider id, name or birth date (age at diagnosis only).
    for (const p of ['P1', 'P2', 'P3', 'P5']) {
      const bytes = await readFile(join(dir, 'lake', `curated/patients/patient_id=${p}/part-0.parquet`));
      for (const phi of [PROVIDER_PATIENT_ID, 'Quimby', BIRTH_DATE, API_SECRET]) expect(bytes.includes(Buffer.from(phi))).toBe(false);
    }
    // The link to the provider id lives in the raw zone only.
    expect(JSON.parse((await lake.getBuffer(providerLinkKey('P1'))).toString())).toEqual({ provider_id: 'hosp-a', provider_patient_id: PROVIDER_PATIENT_ID });
  });
});

describe('retryMissingMetadata', () => {
  it('re-fetches exactly the patients marked missing, once the provider is back', async () => {
    const log = captureLogger().log;
    const clients = new ProviderClients({ clock });
    const f = (patientId: string) => fetchPatientMetadata({ registry, providerId: 'hosp-a', patientId, providerPatientId: `MRN-${patientId}`, lake, runId: 'R1', log, clock, clients });
    expect((await f('P1')).status).toBe('ok');
    providerDown();
    expect((await f('P2')).status).toBe('missing');
    expect((await f('P3')).status).toBe('missing');
    expect(await listMissingPatients(lake)).toEqual(['P2', 'P3']);

    fhir.routes.length = 0;
    fhir.requests.length = 0;
    const r = await retryMissingMetadata({ registry, lake, log, runId: 'R-retry', clock });
    expect(r.retried.map((x) => [x.patientId, x.status, x.runId])).toEqual([
      ['P2', 'ok', 'R-retry'],
      ['P3', 'ok', 'R-retry'],
    ]);
    expect(r.noLink).toEqual([]);
    // Fetched with the linked provider ids; P1 was not fetched again.
    expect(fhir.requests.filter((q) => q.path.startsWith('/fhir/Patient/')).map((q) => q.path)).toEqual(['/fhir/Patient/MRN-P2', '/fhir/Patient/MRN-P3']);
    expect(await listMissingPatients(lake)).toEqual([]);
    expect(await readPatientRow(lake, 'P3')).toMatchObject({ metadata_status: 'ok', run_id: 'R-retry', race: 'White; Asian' });
  });
});

describe('metadataForDrop (the run stage)', () => {
  const manifest = { patient_id: 'PT-9', provider: { provider_id: 'hosp-a', patient_id: PROVIDER_PATIENT_ID } };

  it('genomic outputs are published while the provider hangs; the patient is marked missing', async () => {
    providerHangs();
    const cap = captureLogger();
    const genomic = (async () => {
      const staging = lake.stagingPrefix('call');
      await lake.put(`${staging}calls.vcf.gz`, Buffer.from('fake-but-irrelevant-bytes'));
      await lake.publish(staging, 'staged/patient_id=PT-9/sample_id=S1/run_id=R9/');
      return 'published';
    })();
    const [meta, g] = await Promise.all([metadataForDrop({ registry, lake, runId: 'R9', manifest, log: cap.log, clock, webhook: { url: `${hook.url}/x` } }), genomic]);
    expect(g).toBe('published');
    expect(await lake.isPublished('staged/patient_id=PT-9/sample_id=S1/run_id=R9/')).toBe(true);
    expect(meta).toEqual({
      patient_id: 'PT-9',
      provider_id: 'hosp-a',
      status: 'missing',
      reason: 'PROVIDER_TIMEOUT',
      key: 'curated/patients/patient_id=PT-9/part-0.parquet',
      error_key: '_runs/R9/errors/metadata-PT-9.json',
    });
    expect(await lake.exists(meta.error_key!)).toBe(true);
    expect(hook.requests).toHaveLength(1);
    expect(cap.text()).not.toContain(PROVIDER_PATIENT_ID);
  });

  it('opens the registry by URI and fetches when the provider is up', async () => {
    const meta = await metadataForDrop({ registryUri: registry.path, lake, runId: 'R9', manifest, log: captureLogger().log, clock });
    expect(meta).toMatchObject({ status: 'ok', key: 'curated/patients/patient_id=PT-9/part-0.parquet' });
    expect(meta.reason).toBeUndefined();
  });

  it('without a registry, or for an unknown provider, writes the row from the manifest with a warning (no alarm)', async () => {
    const saved = process.env.GENOLAKE_REGISTRY;
    delete process.env.GENOLAKE_REGISTRY;
    try {
      const cap = captureLogger();
      const a = await metadataForDrop({ lake, runId: 'R1', manifest, log: cap.log, clock, webhook: { url: `${hook.url}/x` } });
      expect(a).toMatchObject({ status: 'missing', reason: 'NO_REGISTRY', provider_id: 'hosp-a' });
      const rows = parquetToPatients(new Uint8Array(await lake.getBuffer(a.key)));
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ provider_id: 'hosp-a', metadata_status: 'missing', error_code: 'NO_REGISTRY', run_id: 'R1' });
      const b = await metadataForDrop({ registry, lake, runId: 'R2', manifest: { ...manifest, provider: { provider_id: 'other', patient_id: 'X1' } }, log: cap.log, clock });
      expect(b).toMatchObject({ status: 'missing', reason: 'PROVIDER_UNKNOWN' });
      const levels = cap.parsed().map((l) => l.level);
      expect(levels).toContain(40);
      expect(levels).not.toContain(50);
      expect(hook.requests).toHaveLength(0);
      // The link is recorded, so a later `metadata retry` with a registry fetches it.
      const r = await retryMissingMetadata({ registry, lake, log: cap.log, clock });
      expect(r.retried).toHaveLength(1);
      expect(r.retried[0]).toMatchObject({ patientId: 'PT-9', status: 'missing', errorCode: 'PROVIDER_UNKNOWN' });
    } finally {
      if (saved !== undefined) process.env.GENOLAKE_REGISTRY = saved;
    }
  });
});

describe('adapter factory', () => {
  it('a new kind registers without touching the factory; duplicates and unknown kinds are refused', async () => {
    const factory = defaultAdapterFactory();
    expect(factory.kinds()).toEqual(['csv', 'fhir', 'json']);
    factory.register({
      kind: 'static',
      describe: 'test adapter',
      create: () => ({ fetchPatient: async () => ({ ...(await import('../../src/metadata/patients.js')).emptyFacts(), sex: 'other' as const, race: 'stored-only-if-selected' }) }),
    });
    expect(() => factory.register({ kind: 'static', describe: '', create: () => ({ fetchPatient: async () => { throw new Error(); } }) })).toThrow(/already registered/);
    await registry.put({ id: 'st', kind: 'static', url: 'n/a', fields: ['sex'] });
    const r = await fetchPatientMetadata({ registry, factory, providerId: 'st', patientId: 'P7', providerPatientId: 'q', lake, runId: 'R1', log: captureLogger().log, clock });
    expect(r.status).toBe('ok');
    expect(await readPatientRow(lake, 'P7')).toMatchObject({ sex: 'other', race: null });
    expect(() => new AdapterFactory().create({ id: 'x', kind: 'zzz' } as never, {} as never)).toThrow(/no adapter for kind zzz/);
  });
});
