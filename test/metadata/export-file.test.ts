import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalLake } from '../../src/lake/local.js';
import { csvRecords } from '../../src/metadata/adapters/export-file.js';
import { fetchPatientMetadata, readPatientRow } from '../../src/metadata/fetch.js';
import { FileRegistry } from '../../src/metadata/registry.js';
import { captureLogger, FakeClock, startServer, type TestServer } from './helpers.js';

let dir: string;
let lake: LocalLake;
let registry: FileRegistry;
let web: TestServer;
let served = '';

const CSV = [
  'provider_patient_id,full_name,birth_date,diagnosis_date,sex,race,ethnicity,primary_diagnosis_code,primary_diagnosis_display,prior_malignancy,vital_status,medication_codes',
  'A-1,"Doe, Jane",1970-03-02,2020-03-01,F,White,Not Hispanic or Latino,C34.1,"Malignant neoplasm of upper lobe, ""bronchus"" or lung",no,alive,84857;10324',
  '',
  'A-2,"Roe, Richard",1950-01-01,2001-07-07,male,"Black or African American",,C61,"Malignant neoplasm of prostate\nsecond line",yes,deceased,',
].join('\r\n');

beforeAll(async () => {
  web = await startServer((req) => (req.path === '/export.json' ? { status: 200, text: served } : { status: 404, text: 'no' }));
});
afterAll(async () => {
  await web.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-export-'));
  lake = new LocalLake(join(dir, 'lake'));
  registry = new FileRegistry(join(dir, 'providers.json'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fetchFrom(kind: 'csv' | 'json', url: string, pid: string, patientId = 'P1') {
  await registry.put({ id: 'exp', kind, url, retry: { maxAttempts: 1 } });
  const cap = captureLogger();
  const r = await fetchPatientMetadata({ registry, providerId: 'exp', patientId, providerPatientId: pid, lake, runId: 'R1', log: cap.log, clock: new FakeClock() });
  return { r, cap };
}

describe('CSV/JSON export-file adapters', () => {
  it('CSV: quoted fields (commas, doubled quotes, newlines), CRLF, blank lines; derived age; unknown columns ignored', async () => {
    const file = join(dir, 'export.csv');
    await writeFile(file, CSV);
    const { r } = await fetchFrom('csv', file, 'A-2');
    expect(r.status).toBe('ok');
    expect(await readPatientRow(lake, 'P1')).toMatchObject({
      sex: 'male',
      race: 'Black or African American',
      ethnicity: null,
      primary_diagnosis_code: 'C61',
      primary_diagnosis_display: 'Malignant neoplasm of prostate\nsecond line',
      age_at_diagnosis: 51,
      prior_malignancy: true,
      vital_status: 'deceased',
      medication_codes: null,
    });
    const { r: r1 } = await fetchFrom('csv', pathToFileURL(file).href, 'A-1', 'P2');
    expect(r1.status).toBe('ok');
    expect(await readPatientRow(lake, 'P2')).toMatchObject({
      sex: 'female',
      age_at_diagnosis: 49, // the day before the 50th birthday
      primary_diagnosis_display: 'Malignant neoplasm of upper lobe, "bronchus" or lung',
      prior_malignancy: false,
      medication_codes: ['10324', '84857'],
    });
  });

  it('CSV parser is correct across chunk boundaries', async () => {
    const chunks = async function* () {
      for (let i = 0; i < CSV.length; i += 3) yield CSV.slice(i, i + 3);
    };
    const recs = [];
    for await (const r of csvRecords(chunks(), 'x.csv')) recs.push(r);
    expect(recs.map((r) => [r.index, r.record.full_name])).toEqual([
      [1, 'Doe, Jane'],
      [2, 'Roe, Richard'],
    ]);
  });

  it('JSON array, {patients: [...]} and JSON Lines; over http(s) too', async () => {
    const a = join(dir, 'a.json');
    await writeFile(a, JSON.stringify([{ id: 'J-1', sex: 'female', age_at_diagnosis: 44, medication_codes: ['7', '3', '7'], prior_malignancy: false }]));
    expect((await fetchFrom('json', a, 'J-1')).r.status).toBe('ok');
    expect(await readPatientRow(lake, 'P1')).toMatchObject({ sex: 'female', age_at_diagnosis: 44, medication_codes: ['3', '7'], prior_malignancy: false });

    const l = join(dir, 'b.jsonl');
    await writeFile(l, '{"patient_id":"L-1","sex":"M"}\n\n{"patient_id":"L-2","vital_status":"alive"}\n');
    expect((await fetchFrom('json', l, 'L-2', 'P3')).r.status).toBe('ok');
    expect(await readPatientRow(lake, 'P3')).toMatchObject({ vital_status: 'alive', sex: null });

    served = JSON.stringify({ patients: [{ provider_patient_id: 'H-1', smoking_status: 'Former smoker' }] });
    expect((await fetchFrom('json', `${web.url}/export.json`, 'H-1', 'P4')).r.status).toBe('ok');
    expect((await readPatientRow(lake, 'P4'))?.smoking_status).toBe('Former smoker');
  });

  it('a patient absent from the file is missing (PROVIDER_NOT_FOUND); a bad value names file, record and field but not the value', async () => {
    const file = join(dir, 'export.csv');
    await writeFile(file, CSV);
    expect((await fetchFrom('csv', file, 'A-999')).r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_NOT_FOUND' });

    const bad = join(dir, 'bad.csv');
    await writeFile(bad, 'id,sex,birth_date\nB-1,female,1970-01-01\nB-2,SECRETVALUE,1970-01-01\n');
    const { r, cap } = await fetchFrom('csv', bad, 'B-2', 'P2');
    expect(r).toMatchObject({ status: 'missing', errorCode: 'EXPORT_BAD_VALUE' });
    const rec = JSON.parse((await lake.getBuffer(r.errorKey!)).toString()) as { error: { message: string } };
    expect(rec.error.message).toMatch(/^bad\.csv: record 2: field sex: /);
    expect(rec.error.message).not.toContain('SECRETVALUE');
    expect(cap.text()).not.toContain('SECRETVALUE');

    const ragged = join(dir, 'ragged.csv');
    await writeFile(ragged, 'id,sex\nR-1,female,extra\n');
    expect((await fetchFrom('csv', ragged, 'R-1', 'P3')).r).toMatchObject({ status: 'missing', errorCode: 'EXPORT_BAD_RECORD' });

    expect((await fetchFrom('csv', join(dir, 'absent.csv'), 'R-1', 'P5')).r).toMatchObject({ status: 'missing', errorCode: 'PROVIDER_UNREACHABLE' });
  });
});
