import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { fetchPatientMetadata, readPatientRow } from '../../src/metadata/fetch.js';
import { FileRegistry } from '../../src/metadata/registry.js';
import { defaultSecretResolver, SECRET_CACHE_MS } from '../../src/metadata/secrets.js';
import { API_SECRET, captureLogger, FakeClock, PROVIDER_PATIENT_ID, startFhirServer, startServer, type Recorded, type TestServer } from './helpers.js';

const ACCOUNT = '123456789012';
const arn = (name: string, region = 'eu-west-2') => `arn:aws:secretsmanager:${region}:${ACCOUNT}:secret:${name}`;

/** Secret strings by ARN, as the Secrets Manager JSON API (X-Amz-Target: secretsmanager.GetSecretValue) serves them. */
const SECRETS = new Map<string, string>([
  [arn('fhir-token'), API_SECRET],
  [arn('bundle'), JSON.stringify({ token: API_SECRET, port: 443 })],
  [arn('not-json'), 'plain text'],
]);

function secretsManager(req: Recorded) {
  if (req.method !== 'POST' || req.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') {
    return { status: 400, text: 'unexpected request' };
  }
  const { SecretId } = JSON.parse(req.body) as { SecretId: string };
  const value = SECRETS.get(SecretId);
  const headers = { 'content-type': 'application/x-amz-json-1.1' };
  if (value === undefined) {
    return { status: 400, headers, text: JSON.stringify({ __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." }) };
  }
  return { status: 200, headers, text: JSON.stringify({ ARN: SecretId, Name: SecretId.split(':').pop(), SecretString: value, VersionId: 'v1' }) };
}

let sm: TestServer;
let fhir: TestServer;
let dir: string;
const ENV_KEYS = ['AWS_ENDPOINT_URL_SECRETS_MANAGER', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE'] as const;
const savedEnv = ENV_KEYS.map((k) => process.env[k]);

beforeAll(async () => {
  sm = await startServer(secretsManager);
  fhir = await startFhirServer();
  dir = await mkdtemp(join(tmpdir(), 'genolake-secrets-'));
  for (const k of ENV_KEYS) delete process.env[k];
  Object.assign(process.env, { AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url, AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'test-secret-key' });
});
afterAll(async () => {
  ENV_KEYS.forEach((k, i) => (savedEnv[i] === undefined ? delete process.env[k] : (process.env[k] = savedEnv[i])));
  await sm.close();
  await fhir.close();
  await rm(dir, { recursive: true, force: true });
});

describe('secret references: AWS Secrets Manager ARNs', () => {
  it('reads the secret string, signed for the region in the ARN; #key picks a field of a JSON secret', async () => {
    const resolve = defaultSecretResolver();
    expect(await resolve(arn('fhir-token'))).toBe(API_SECRET);
    const req = sm.requests.at(-1)!;
    expect(JSON.parse(req.body)).toEqual({ SecretId: arn('fhir-token') });
    expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/eu-west-2\/secretsmanager\/aws4_request/);
    expect(await resolve(`${arn('bundle')}#token`)).toBe(API_SECRET);
  });

  it('a secret is read once and reused until SECRET_CACHE_MS has passed; a failed read is tried again', async () => {
    let t = 0;
    const resolve = defaultSecretResolver(process.env, () => t);
    const reads = () => sm.requests.filter((q) => JSON.parse(q.body).SecretId === arn('bundle')).length;
    const before = reads();
    expect(await resolve(`${arn('bundle')}#token`)).toBe(API_SECRET);
    expect(await resolve(arn('bundle'))).toContain(API_SECRET);
    expect(reads() - before).toBe(1);
    t += SECRET_CACHE_MS + 1;
    await resolve(`${arn('bundle')}#token`);
    expect(reads() - before).toBe(2);
    const missing = () => sm.requests.filter((q) => JSON.parse(q.body).SecretId === arn('late')).length;
    await expect(resolve(arn('late'))).rejects.toMatchObject({ code: 'PROVIDER_CONFIG' });
    SECRETS.set(arn('late'), 'now-set');
    expect(await resolve(arn('late'))).toBe('now-set');
    expect(missing()).toBe(2);
  });

  it('a missing secret, a missing key or a non-JSON secret is a PROVIDER_CONFIG error naming the ARN, never a value', async () => {
    const resolve = defaultSecretResolver();
    const missing = await resolve(arn('nope')).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'ProviderError', code: 'PROVIDER_CONFIG' });
    expect((missing as Error).message).toContain(arn('nope'));
    expect((missing as Error).message).toContain('ResourceNotFoundException');
    const noKey = await resolve(`${arn('bundle')}#password`).catch((e: unknown) => e);
    expect(noKey).toMatchObject({ code: 'PROVIDER_CONFIG', message: `secret ${arn('bundle')} has no string key password` });
    expect((noKey as Error).message).not.toContain(API_SECRET);
    const notJson = await resolve(`${arn('not-json')}#token`).catch((e: unknown) => e);
    expect(notJson).toMatchObject({ code: 'PROVIDER_CONFIG' });
    expect((notJson as Error).message).not.toContain('plain text');
  });

  it('a provider authenticated by an ARN: the token reaches the provider, the patient row is written, the token is never logged', async () => {
    const registry = new FileRegistry(join(dir, 'providers.json'));
    await registry.put({ id: 'hosp-sm', kind: 'fhir', url: `${fhir.url}/fhir`, auth: { type: 'bearer', secret: arn('fhir-token') }, timeoutMs: 2000 });
    const lake = new LocalLake(join(dir, 'lake'));
    const cap = captureLogger();
    const readsBefore = sm.requests.length;
    const r = await fetchPatientMetadata({ registry, providerId: 'hosp-sm', patientId: 'P1', providerPatientId: PROVIDER_PATIENT_ID, lake, runId: 'R1', log: cap.log, clock: new FakeClock() });
    expect(r.status).toBe('ok');
    const calls = fhir.requests.filter((q) => q.path.startsWith('/fhir/'));
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.map((q) => q.headers.authorization)).toEqual(calls.map(() => `Bearer ${API_SECRET}`));
    // the provider asked for its secret on each of its requests; AWS was asked once
    expect(calls.length).toBeGreaterThan(1);
    expect(sm.requests.length - readsBefore).toBe(1);
    expect(await readPatientRow(lake, 'P1')).toMatchObject({ metadata_status: 'ok', provider_id: 'hosp-sm' });
    expect(cap.text()).not.toContain(API_SECRET);
  });
});
