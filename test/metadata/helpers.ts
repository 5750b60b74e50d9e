/**
 * Test servers and fixtures for the metadata suites: a scriptable FHIR R4 server, a webhook
 * receiver, a fake clock, and a logger whose output is captured for PHI checks.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { Clock } from '../../src/metadata/resilience.js';

export interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: string;
}

/** What a route answers: a response, or 'hang' (headers never sent until the server closes). */
export type Reply = { status: number; headers?: Record<string, string>; json?: unknown; text?: string } | 'hang';
export type Route = (req: Recorded, count: number) => Reply | undefined;

export interface TestServer {
  url: string;
  requests: Recorded[];
  /** Routes tried first (in order) before the default FHIR data; a route returning undefined passes. */
  routes: Route[];
  count(pathPrefix: string): number;
  close(): Promise<void>;
}

export async function startServer(fallback: (req: Recorded) => Reply): Promise<TestServer> {
  const requests: Recorded[] = [];
  const routes: Route[] = [];
  const hung: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const rec: Recorded = { method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(rec);
      const n = requests.filter((r) => r.path === rec.path).length;
      let reply: Reply | undefined;
      for (const r of routes) if ((reply = r(rec, n)) !== undefined) break;
      reply ??= fallback(rec);
      if (reply === 'hang') {
        hung.push(res);
        return;
      }
      const body = reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? '');
      res.writeHead(reply.status, { 'content-type': reply.json !== undefined ? 'application/fhir+json' : 'text/plain', ...reply.headers });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    routes,
    count: (p) => requests.filter((r) => r.path.startsWith(p)).length,
    close: async () => {
      for (const r of hung) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A clock whose sleeps return at once and advance time; every sleep is recorded. */
export class FakeClock implements Clock {
  t = Date.UTC(2026, 0, 15, 12, 0, 0);
  readonly sleeps: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.sleeps.push(ms);
    this.t += ms;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

/** A debug-level pino logger writing JSON lines into `lines` (so tests can grep every byte logged). */
export function captureLogger(): { log: Logger; lines: string[]; text(): string; parsed(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(l);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, stream);
  return { log, lines, text: () => lines.join('\n'), parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

// ---- FHIR R4 fixtures ------------------------------------------------------------------

export const PROVIDER_PATIENT_ID = 'MRN-7731-XYZ';
export const PATIENT_NAME = 'Rosalind Quimby';
export const BIRTH_DATE = '1960-04-15';
export const API_SECRET = 'sk_live_9f8e7d6c5b4a-secret';

export function fhirPatient(id = PROVIDER_PATIENT_ID): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    id,
    meta: { profile: ['http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient'] },
    identifier: [{ system: 'urn:oid:1.2.36.146.595.217.0.1', value: id }],
    name: [{ use: 'official', family: 'Quimby', given: ['Rosalind'], text: PATIENT_NAME }],
    telecom: [{ system: 'phone', value: '555-0100' }],
    gender: 'female',
    birthDate: BIRTH_DATE,
    deceasedBoolean: false,
    address: [{ line: ['12 Elm St'], city: 'Springfield', postalCode: '01101' }],
    extension: [
      {
        url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race',
        extension: [
          { url: 'ombCategory', valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2106-3', display: 'White' } },
          { url: 'ombCategory', valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2028-9', display: 'Asian' } },
        ],
      },
      {
        url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity',
        extension: [
          { url: 'ombCategory', valueCoding: { system: 'urn:oid:2.16.840.1.113883.6.238', code: '2186-5', display: 'Not Hispanic or Latino' } },
          { url: 'text', valueString: 'Not Hispanic or Latino' },
        ],
      },
      { url: 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex', valueCode: 'F' },
    ],
  };
}

function condition(id: string, code: string, display: string, onset: string): Record<string, unknown> {
  return {
    resourceType: 'Condition',
    id,
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: 'confirmed' }] },
    code: { coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code, display }], text: display },
    subject: { reference: `Patient/${PROVIDER_PATIENT_ID}` },
    onsetDateTime: onset,
  };
}

export function bundle(base: string, type: string, resources: unknown[], next?: string): Record<string, unknown> {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total: resources.length,
    link: [{ relation: 'self', url: `${base}/fhir/${type}` }, ...(next ? [{ relation: 'next', url: next }] : [])],
    entry: resources.map((r) => ({ fullUrl: `${base}/fhir/${type}/${(r as { id: string }).id}`, resource: r, search: { mode: 'match' } })),
  };
}

export function operationOutcome(code: string, diagnostics: string): Record<string, unknown> {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, diagnostics }] };
}

/**
 * The default FHIR data of the test server: patients PROVIDER_PATIENT_ID and any id starting
 * with 'MRN-'; Condition search in two pages (next link), one Observation page, and
 * MedicationStatement in two pages. Unknown patients → 404 OperationOutcome.
 */
export function fhirData(base: () => string): (req: Recorded) => Reply {
  return (req) => {
    const m = /^\/fhir\/Patient\/([^/]+)$/.exec(req.path);
    if (m) {
      const id = decodeURIComponent(m[1]);
      if (!id.startsWith('MRN-')) return { status: 404, json: operationOutcome('not-found', `Resource Patient/${id} is not known`) };
      return { status: 200, json: fhirPatient(id) };
    }
    if (req.path === '/fhir/Condition') {
      if (req.query.get('page') === '2') {
        return { status: 200, json: bundle(base(), 'Condition', [condition('c2', 'C18.9', 'Malignant neoplasm of colon, unspecified', '2010-02-01')]) };
      }
      return {
        status: 200,
        json: bundle(
          base(),
          'Condition',
          [condition('c1', 'C50.911', 'Malignant neoplasm of unspecified site of right female breast', '2019-06-01'), condition('c3', 'I10', 'Essential hypertension', '2015-01-01')],
          `${base()}/fhir/Condition?patient=${encodeURIComponent(req.query.get('patient') ?? '')}&page=2`,
        ),
      };
    }
    if (req.path === '/fhir/Observation') {
      return {
        status: 200,
        json: bundle(base(), 'Observation', [
          {
            resourceType: 'Observation',
            id: 'o1',
            status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '72166-2' }] },
            effectiveDateTime: '2019-05-20',
            valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '266919005', display: 'Never smoker' }] },
          },
        ]),
      };
    }
    if (req.path === '/fhir/MedicationStatement') {
      const med = (id: string, code: string) => ({
        resourceType: 'MedicationStatement',
        id,
        status: 'active',
        medicationCodeableConcept: { coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code }] },
        subject: { reference: `Patient/${PROVIDER_PATIENT_ID}` },
      });
      if (req.query.get('page') === '2') return { status: 200, json: bundle(base(), 'MedicationStatement', [med('m2', '10324')]) };
      return { status: 200, json: bundle(base(), 'MedicationStatement', [med('m1', '84857')], `${base()}/fhir/MedicationStatement?page=2&patient=x`) };
    }
    return { status: 404, json: operationOutcome('not-found', 'no such endpoint') };
  };
}

export async function startFhirServer(): Promise<TestServer> {
  let url = '';
  const s = await startServer(fhirData(() => url));
  url = s.url;
  return s;
}
