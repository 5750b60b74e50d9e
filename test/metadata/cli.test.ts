import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import dynalite from 'dynalite';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { register as registerMetadata } from '../../src/cli/commands/metadata.js';
import { register as registerProviders } from '../../src/cli/commands/providers.js';
import { LocalLake } from '../../src/lake/local.js';
import { readPatientRow } from '../../src/metadata/fetch.js';
import { PROVIDER_PATIENT_ID, startFhirServer, type TestServer } from './helpers.js';

let fhir: TestServer;
let dir: string;
let regPath: string;
let lakeDir: string;

beforeAll(async () => {
  fhir = await startFhirServer();
});
afterAll(async () => {
  await fhir.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-cli-'));
  regPath = join(dir, 'providers.json');
  lakeDir = join(dir, 'lake');
  fhir.routes.length = 0;
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

/** Runs `genolake <args>`; returns stdout, or the error thrown. */
async function cli(...args: string[]): Promise<{ stdout: string; error?: unknown }> {
  const program = new Command('genolake').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerProviders(program);
  registerMetadata(program);
  let stdout = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  });
  try {
    await program.parseAsync(['node', 'genolake', ...args]);
    return { stdout };
  } catch (error) {
    return { stdout, error };
  } finally {
    vi.restoreAllMocks();
  }
}

describe('genolake providers / metadata', () => {
  it('providers add / list / remove on a JSON file registry; auth stored as a reference', async () => {
    const add = await cli('providers', 'add', '--registry', regPath, '--id', 'hosp-a', '--kind', 'fhir', '--url', `${fhir.url}/fhir`, '--auth-env', 'HOSP_A_TOKEN', '--timeout-ms', '3000', '--fields', 'sex,race,vital_status');
    expect(add.error).toBeUndefined();
    expect(add.stdout).toContain('added hosp-a  fhir');
    const doc = JSON.parse(await readFile(regPath, 'utf8')) as { providers: Record<string, Record<string, unknown>> };
    expect(doc.providers['hosp-a']).toMatchObject({ auth: { type: 'bearer', secret: 'env:HOSP_A_TOKEN' }, timeoutMs: 3000, fields: ['sex', 'race', 'vital_status'] });

    await cli('providers', 'add', '--registry', regPath, '--id', 'exp-b', '--kind', 'csv', '--url', '/data/b.csv', '--auth-secret-arn', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:b', '--auth-type', 'api-key');
    const list = await cli('providers', 'list', '--registry', regPath);
    expect(list.stdout.trim().split('\n').map((l) => l.split('  ')[0])).toEqual(['exp-b', 'hosp-a']);
    expect(list.stdout).toContain('auth=api-key X-API-Key=arn:aws:secretsmanager:us-east-1:123456789012:secret:b');
    const json = JSON.parse((await cli('providers', 'list', '--registry', regPath, '--json')).stdout) as unknown[];
    expect(json).toHaveLength(2);

    expect((await cli('providers', 'remove', '--registry', regPath, '--id', 'exp-b')).stdout).toContain('removed exp-b');
    expect((await cli('providers', 'remove', '--registry', regPath, '--id', 'exp-b')).error).toMatchObject({ name: 'InputError', code: 'PROVIDER_UNKNOWN' });
  });

  it('providers add creates a missing DynamoDB table; list and remove work on it', async () => {
    const server = (dynalite as unknown as (o: Record<string, unknown>) => Server)({ createTableMs: 20 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const keys = ['AWS_ENDPOINT_URL_DYNAMODB', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;
    const saved = keys.map((k) => process.env[k]);
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'x',
      AWS_SECRET_ACCESS_KEY: 'x',
    });
    try {
      const reg = ['--registry', 'dynamodb://genolake-providers'];
      expect((await cli('providers', 'list', ...reg)).error).toMatchObject({ code: 'REGISTRY_TABLE_MISSING' });
      const add = await cli('providers', 'add', ...reg, '--id', 'hosp-d', '--kind', 'fhir', '--url', 'https://fhir.example.org', '--auth-env', 'HOSP_D_KEY', '--auth-type', 'api-key');
      expect(add.error).toBeUndefined();
      expect((await cli('providers', 'list', ...reg)).stdout).toContain('hosp-d  fhir  https://fhir.example.org  auth=api-key X-API-Key=env:HOSP_D_KEY');
      expect((await cli('providers', 'remove', ...reg, '--id', 'hosp-d')).stdout).toContain('removed hosp-d');
      expect((await cli('providers', 'list', ...reg)).stdout).toBe('');
    } finally {
      keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('refuses a secret value where a reference belongs, bad fields and unknown kinds', async () => {
    const r = await cli('providers', 'add', '--registry', regPath, '--id', 'x', '--kind', 'fhir', '--url', 'https://x', '--auth-env', 'sk-live-123=abc');
    expect(r.error).toMatchObject({ code: 'PROVIDER_INVALID', place: { field: 'auth.secret' } });
    expect((await cli('providers', 'add', '--registry', regPath, '--id', 'x', '--kind', 'fhir', '--url', 'https://x', '--fields', 'sex,ssn')).error).toMatchObject({ code: 'commander.invalidArgument' });
    expect((await cli('providers', 'add', '--registry', regPath, '--id', 'x', '--kind', 'hl7', '--url', 'https://x')).error).toMatchObject({ code: 'commander.invalidArgument' });
    await expect(readFile(regPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('metadata fetch writes the patient; a failing provider exits with METADATA_MISSING; metadata retry recovers it', async () => {
    await cli('providers', 'add', '--registry', regPath, '--id', 'hosp-a', '--kind', 'fhir', '--url', `${fhir.url}/fhir`, '--max-attempts', '1');
    const base = ['--registry', regPath, '--lake', lakeDir, '--log-level', 'silent'];
    const ok = await cli('metadata', 'fetch', ...base, '--provider', 'hosp-a', '--patient', 'P1', '--provider-patient-id', PROVIDER_PATIENT_ID);
    expect(ok.error).toBeUndefined();
    expect(ok.stdout).toContain('P1  ok  → curated/patients/patient_id=P1/part-0.parquet');
    expect(ok.stdout).not.toContain(PROVIDER_PATIENT_ID);

    fhir.routes.push((req) => (req.path.startsWith('/fhir/') ? { status: 500, text: 'down' } : undefined));
    const bad = await cli('metadata', 'fetch', ...base, '--provider', 'hosp-a', '--patient', 'P2', '--provider-patient-id', 'MRN-2', '--run-id', 'R7');
    expect(bad.error).toMatchObject({ code: 'METADATA_MISSING' });
    expect(bad.stdout).toContain('P2  missing (PROVIDER_HTTP_ERROR)');
    const lake = new LocalLake(lakeDir);
    expect(await lake.exists('_runs/R7/errors/metadata-P2.json')).toBe(true);

    expect((await cli('metadata', 'fetch', ...base, '--provider', 'nope', '--patient', 'P3', '--provider-patient-id', 'x')).error).toMatchObject({ name: 'InputError', code: 'PROVIDER_UNKNOWN' });

    expect((await cli('metadata', 'retry', ...base)).error).toMatchObject({ code: 'METADATA_MISSING' });
    fhir.routes.length = 0;
    const retry = await cli('metadata', 'retry', ...base);
    expect(retry.error).toBeUndefined();
    expect(retry.stdout).toContain('P2  ok');
    expect(retry.stdout).toContain('retried 1, recovered 1, still missing 0');
    expect((await readPatientRow(lake, 'P2'))?.metadata_status).toBe('ok');
  });
});
