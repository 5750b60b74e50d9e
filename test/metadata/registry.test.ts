import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
// dynalite is CommonJS without types: a function returning an http.Server.
import dynalite from 'dynalite';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../src/metadata/registry-dynamodb.js';
import { FileRegistry, openRegistry, type ProviderRegistry } from '../../src/metadata/registry.js';

const CREDS = { accessKeyId: 'dynalite', secretAccessKey: 'dynalite' };
let server: Server;
let endpoint: string;
let dir: string;

beforeAll(async () => {
  server = (dynalite as unknown as (o: Record<string, unknown>) => Server)({ createTableMs: 20, deleteTableMs: 20 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-registry-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fhirProvider = {
  id: 'hosp-a',
  kind: 'fhir',
  url: 'https://fhir.example.org/r4',
  auth: { type: 'oauth2' as const, tokenUrl: 'https://auth.example.org/token', clientId: 'genolake', clientSecret: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:fhir/hosp-a#client_secret' },
  timeoutMs: 5000,
  fields: ['sex' as const, 'age_at_diagnosis' as const],
};

/** The same behaviour, whatever the backend. */
async function exercise(reg: ProviderRegistry): Promise<void> {
  expect(await reg.list()).toEqual([]);
  expect(await reg.get('hosp-a')).toBeUndefined();
  const stored = await reg.put(fhirProvider);
  // Defaults applied, values kept.
  expect(stored).toMatchObject({ id: 'hosp-a', kind: 'fhir', timeoutMs: 5000, storeProviderPatientId: false, retry: { maxAttempts: 4 }, breaker: { failureThreshold: 5 } });
  await reg.put({ id: 'csv-b', kind: 'csv', url: '/data/export.csv', auth: { type: 'api-key', secret: 'env:CSV_B_KEY' } });
  expect((await reg.list()).map((p) => p.id)).toEqual(['csv-b', 'hosp-a']);
  expect(await reg.get('hosp-a')).toEqual(stored);
  // Replace.
  await reg.put({ ...fhirProvider, timeoutMs: 9000 });
  expect((await reg.get('hosp-a'))?.timeoutMs).toBe(9000);
  // A secret value instead of a reference is refused, naming the field.
  await expect(reg.put({ id: 'bad', kind: 'fhir', url: 'https://x', auth: { type: 'bearer', secret: 'eyJhbGciOiJIUzI1NiJ9.real-token' } })).rejects.toMatchObject({
    code: 'PROVIDER_INVALID',
    place: { field: 'auth.secret' },
  });
  await expect(reg.put({ id: 'bad', kind: 'fhir', url: 'https://x', fields: ['ssn' as never] })).rejects.toMatchObject({ code: 'PROVIDER_INVALID' });
  expect(await reg.remove('csv-b')).toBe(true);
  expect(await reg.remove('csv-b')).toBe(false);
  expect((await reg.list()).map((p) => p.id)).toEqual(['hosp-a']);
}

describe('file registry (embedded default)', () => {
  it('add / get / list / remove, with validation', async () => {
    await exercise(new FileRegistry(join(dir, 'sub', 'providers.json')));
  });

  it('writes atomically: a valid JSON document, no temp files left, only secret references inside', async () => {
    const path = join(dir, 'providers.json');
    const reg = await openRegistry(path);
    await reg.put(fhirProvider);
    await Promise.all([1, 2, 3].map((i) => reg.put({ id: `p${i}`, kind: 'json', url: `/x/${i}.json` })));
    expect(await readdir(dir)).toEqual(['providers.json']);
    const doc = JSON.parse(await readFile(path, 'utf8')) as { version: number; providers: Record<string, { auth: unknown }> };
    expect(doc.version).toBe(1);
    // Concurrent adds are serialised: none is lost.
    expect(Object.keys(doc.providers).sort()).toEqual(['hosp-a', 'p1', 'p2', 'p3']);
    expect(doc.providers['hosp-a'].auth).toMatchObject({ type: 'oauth2', clientSecret: fhirProvider.auth.clientSecret });
  });

  it('a hand-edited bad file is an input error naming the file', async () => {
    const path = join(dir, 'providers.json');
    await writeFile(path, '{"version":1,"providers":{"a":{"id":"b","kind":"fhir","url":"x"}}}');
    await expect(new FileRegistry(path).list()).rejects.toMatchObject({ name: 'InputError', code: 'REGISTRY_BAD_FILE', place: { file: path } });
    await writeFile(path, '{not json');
    await expect(new FileRegistry(path).get('a')).rejects.toMatchObject({ code: 'REGISTRY_BAD_FILE' });
  });

  it('openRegistry refuses unknown schemes', async () => {
    await expect(openRegistry('redis://x')).rejects.toMatchObject({ code: 'REGISTRY_BAD_URI' });
    await expect(openRegistry('dynamodb://')).rejects.toMatchObject({ code: 'REGISTRY_BAD_URI' });
  });
});

describe('DynamoDB registry (dynalite)', () => {
  it('reads of a missing table fail clearly; put creates the table; then the same behaviour as the file', async () => {
    const reg = new DynamoRegistry('providers-t1', { endpoint, region: 'us-east-1', credentials: CREDS });
    try {
      await expect(reg.list()).rejects.toMatchObject({ code: 'REGISTRY_TABLE_MISSING', message: expect.stringContaining('providers add') });
      await expect(reg.get('x')).rejects.toMatchObject({ code: 'REGISTRY_TABLE_MISSING' });
      // put creates the table, then writes.
      await reg.put({ id: 'first', kind: 'json', url: '/x.json' });
      expect((await reg.list()).map((p) => p.id)).toEqual(['first']);
      expect(await reg.remove('first')).toBe(true);
      await exercise(reg);
    } finally {
      await reg.close();
    }
  });

  it('stores the config as validated JSON with the secret reference only; openRegistry reads endpoint/region from env', async () => {
    const saved = { e: process.env.AWS_ENDPOINT_URL_DYNAMODB, r: process.env.AWS_REGION, k: process.env.AWS_ACCESS_KEY_ID, s: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ENDPOINT_URL_DYNAMODB = endpoint;
    process.env.AWS_REGION = 'eu-west-1';
    process.env.AWS_ACCESS_KEY_ID = CREDS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = CREDS.secretAccessKey;
    try {
      const reg = await openRegistry('dynamodb://providers-t2');
      expect(reg.describe()).toBe('dynamodb://providers-t2');
      await reg.put(fhirProvider);
      expect((await reg.get('hosp-a'))?.url).toBe('https://fhir.example.org/r4');
      await reg.close();
      const raw = new DynamoDBClient({ endpoint, region: 'eu-west-1', credentials: CREDS });
      const item = (await raw.send(new GetItemCommand({ TableName: 'providers-t2', Key: { provider_id: { S: 'hosp-a' } } }))).Item!;
      raw.destroy();
      expect(item.kind.S).toBe('fhir');
      expect(JSON.parse(item.config.S!).auth.clientSecret).toBe(fhirProvider.auth.clientSecret);
    } finally {
      for (const [k, v] of [['AWS_ENDPOINT_URL_DYNAMODB', saved.e], ['AWS_REGION', saved.r], ['AWS_ACCESS_KEY_ID', saved.k], ['AWS_SECRET_ACCESS_KEY', saved.s]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
