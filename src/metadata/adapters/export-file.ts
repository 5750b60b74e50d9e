/**
 * Export files: a provider that hands over a CSV or JSON file instead of an API.
 *
 * The provider's `url` is a local path, a `file://` URL, or an `http(s)://` URL (fetched
 * through the provider's resilient HTTP client, with its auth headers). One record per
 * patient, found by its id column `provider_patient_id` (aliases `patient_id`, `id`).
 *
 * Columns / keys (all optional except the id; empty or null = unknown):
 *   sex (male|female|other|unknown, or M/F/U), age_at_diagnosis (whole years), or
 *   birth_date + diagnosis_date (YYYY[-MM[-DD]]) from which it is derived, race, ethnicity,
 *   primary_diagnosis_code, primary_diagnosis_system, primary_diagnosis_display,
 *   prior_malignancy (true/false/yes/no/1/0), vital_status (alive|deceased|unknown),
 *   smoking_status, medication_codes (CSV: separated by ';' or '|'; JSON: an array).
 * Other columns (names, addresses…) are ignored: they are never read into a row.
 *
 * CSV is RFC 4180 (quoted fields, doubled quotes, newlines inside quotes) with a header
 * row. JSON is an array of objects, `{ "patients": [...] }`, or JSON Lines (one object per
 * line; `.jsonl` / `.ndjson`, or any file whose first value is not an array/wrapper).
 * Local files are streamed and the scan stops at the patient's record.
 *
 * Errors name the file, the record number and the field, never the value (it may be PHI).
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StringDecoder } from 'node:string_decoder';
import { InputError } from '../../util/errors.js';
import { ProviderError } from '../http.js';
import { emptyFacts, type PatientFacts, type Sex, type VitalStatus } from '../facts.js';
import type { ProviderConfig } from '../provider.js';
import { AuthHeaders } from '../secrets.js';
import { yearsBetween } from './fhir.js';
import type { AdapterDefinition, AdapterDeps, FetchPatientRequest, MetadataAdapter } from './types.js';

const ID_COLUMNS = ['provider_patient_id', 'patient_id', 'id'];

export const csvExportAdapter: AdapterDefinition = {
  kind: 'csv',
  describe: 'CSV export file (path, file:// or http(s) URL), one row per patient',
  create: (provider, deps) => new ExportFileAdapter(provider, deps, 'csv'),
};

export const jsonExportAdapter: AdapterDefinition = {
  kind: 'json',
  describe: 'JSON export file (array, {"patients": [...]} or JSON Lines), one object per patient',
  create: (provider, deps) => new ExportFileAdapter(provider, deps, 'json'),
};

type Source = { kind: 'file'; path: string } | { kind: 'http'; url: URL };

class ExportFileAdapter implements MetadataAdapter {
  private readonly source: Source;
  /** The file's name for error messages (no directories, no query strings). */
  private readonly name: string;
  private readonly auth: AuthHeaders;

  constructor(
    private readonly provider: ProviderConfig,
    private readonly deps: AdapterDeps,
    private readonly format: 'csv' | 'json',
  ) {
    const url = provider.url;
    if (/^https?:\/\//i.test(url)) {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        throw new ProviderError('PROVIDER_CONFIG', `provider ${provider.id}: url is not a valid URL`);
      }
      this.source = { kind: 'http', url: u };
      this.name = basename(u.pathname) || u.host;
    } else if (/^file:/i.test(url)) {
      this.source = { kind: 'file', path: fileURLToPath(url) };
      this.name = basename(this.source.path);
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
      throw new ProviderError('PROVIDER_CONFIG', `provider ${provider.id}: a ${format} export url must be a path, file:// or http(s)://`);
    } else {
      this.source = { kind: 'file', path: url };
      this.name = basename(url);
    }
    this.auth = new AuthHeaders(provider.auth, deps.secrets, deps.http, deps.clock);
  }

  async fetchPatient(req: FetchPatientRequest): Promise<PatientFacts> {
    const records = this.format === 'csv' ? csvRecords(this.text(req.signal), this.name) : jsonRecords(this.text(req.signal), this.name, this.isJsonLines());
    for await (const { record, index } of records) {
      const id = idOf(record);
      if (id !== undefined && id === req.providerPatientId) return toFacts(record, this.name, index);
    }
    throw new ProviderError('PROVIDER_NOT_FOUND', `export file ${this.name}: no record for the patient`);
  }

  private isJsonLines(): boolean {
    const p = this.source.kind === 'file' ? this.source.path : this.source.url.pathname;
    return /\.(jsonl|ndjson)$/i.test(p);
  }

  /** The file's text, in chunks. */
  private async *text(signal?: AbortSignal): AsyncGenerator<string> {
    if (this.source.kind === 'http') {
      const res = await this.deps.http.request({ url: this.source.url, label: `GET ${this.format} export`, headers: await this.auth.headers(signal) }, signal);
      yield res.body;
      return;
    }
    const stream = createReadStream(this.source.path, { signal });
    const decoder = new StringDecoder('utf8');
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) yield decoder.write(chunk);
      yield decoder.end();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new ProviderError('PROVIDER_UNREACHABLE', `export file ${this.name} of provider ${this.provider.id} does not exist`, { cause: e });
      throw new ProviderError('PROVIDER_UNREACHABLE', `export file ${this.name}: cannot read (${code ?? (e as Error).name})`, { cause: e });
    } finally {
      stream.destroy();
    }
  }
}

type RawRecord = Record<string, unknown>;

function idOf(r: RawRecord): string | undefined {
  for (const c of ID_COLUMNS) {
    const v = r[c];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

/**
 * RFC 4180 CSV → records keyed by the header row, streaming over text chunks.
 * `index` is the 1-based data record number (the header is not counted).
 */
export async function* csvRecords(chunks: AsyncIterable<string>, file: string): AsyncGenerator<{ record: RawRecord; index: number }> {
  let header: string[] | undefined;
  let index = 0;
  let field = '';
  let row: string[] = [];
  let inQuotes = false;
  let quotePending = false; // saw a quote inside a quoted field: either "" or the closing quote
  let fieldWasQuoted = false;
  let line = 1;

  const endRow = (): { record: RawRecord; index: number } | undefined => {
    row.push(field);
    field = '';
    fieldWasQuoted = false;
    const cells = row;
    row = [];
    if (cells.length === 1 && cells[0] === '') return undefined; // blank line
    if (!header) {
      header = cells.map((h, i) => (i === 0 ? h.replace(/^\uFEFF/, '') : h).trim());
      if (!header.some((h) => ID_COLUMNS.includes(h))) {
        throw new InputError('EXPORT_NO_ID_COLUMN', `the header has no id column (${ID_COLUMNS.join(', ')})`, { file, line: 1 });
      }
      return undefined;
    }
    index++;
    if (cells.length !== header.length) {
      throw new InputError('EXPORT_BAD_RECORD', `${cells.length} fields where the header has ${header.length}`, { file, record: index, line });
    }
    const record: RawRecord = {};
    header.forEach((h, i) => (record[h] = cells[i]));
    return { record, index };
  };

  for await (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i];
      if (inQuotes) {
        if (quotePending) {
          quotePending = false;
          if (ch === '"') {
            field += '"';
            continue;
          }
          inQuotes = false; // that quote closed the field; fall through to handle ch
        } else if (ch === '"') {
          quotePending = true;
          continue;
        } else {
          if (ch === '\n') line++;
          field += ch;
          continue;
        }
      }
      if (ch === '"') {
        if (field !== '' || fieldWasQuoted) throw new InputError('EXPORT_BAD_CSV', 'a quote inside an unquoted field', { file, record: index + 1, line });
        inQuotes = true;
        fieldWasQuoted = true;
      } else if (ch === ',') {
        row.push(field);
        field = '';
        fieldWasQuoted = false;
      } else if (ch === '\n') {
        const out = endRow();
        line++;
        if (out) yield out;
      } else if (ch === '\r') {
        // CRLF: the \n ends the row
      } else {
        if (fieldWasQuoted) throw new InputError('EXPORT_BAD_CSV', 'text after a closing quote', { file, record: index + 1, line });
        field += ch;
      }
    }
  }
  if (inQuotes && !quotePending) throw new InputError('EXPORT_BAD_CSV', 'a quoted field is not closed at the end of the file', { file, record: index + 1, line });
  if (field !== '' || row.length > 0 || fieldWasQuoted) {
    const out = endRow();
    if (out) yield out;
  }
  if (!header) throw new InputError('EXPORT_BAD_CSV', 'the file is empty (no header row)', { file });
}

/**
 * JSON export → records. Arrays and `{patients: [...]}` are parsed whole (patient exports
 * are small); JSON Lines is streamed line by line.
 */
export async function* jsonRecords(chunks: AsyncIterable<string>, file: string, jsonLines: boolean): AsyncGenerator<{ record: RawRecord; index: number }> {
  if (jsonLines) {
    let buf = '';
    let lineNo = 0;
    let index = 0;
    const parseLine = (text: string): { record: RawRecord; index: number } | undefined => {
      lineNo++;
      if (text.trim() === '') return undefined;
      index++;
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        throw new InputError('EXPORT_BAD_JSON', 'not a JSON value', { file, record: index, line: lineNo });
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('EXPORT_BAD_JSON', 'each line must be a JSON object', { file, record: index, line: lineNo });
      return { record: v as RawRecord, index };
    };
    for await (const chunk of chunks) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const out = parseLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (out) yield out;
      }
    }
    const last = parseLine(buf);
    if (last) yield last;
    return;
  }
  let text = '';
  for await (const chunk of chunks) text += chunk;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // Not one JSON document: maybe JSON Lines without the extension.
    if (text.trimStart().startsWith('{')) {
      yield* jsonRecords(
        (async function* () {
          yield text;
        })(),
        file,
        true,
      );
      return;
    }
    throw new InputError('EXPORT_BAD_JSON', 'not valid JSON', { file });
  }
  const list = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null && Array.isArray((doc as { patients?: unknown }).patients) ? (doc as { patients: unknown[] }).patients : undefined;
  if (!list) {
    if (typeof doc === 'object' && doc !== null) {
      yield { record: doc as RawRecord, index: 1 };
      return;
    }
    throw new InputError('EXPORT_BAD_JSON', 'expected an array of patient objects or {"patients": [...]}', { file });
  }
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('EXPORT_BAD_JSON', 'each patient must be a JSON object', { file, record: i + 1 });
    yield { record: v as RawRecord, index: i + 1 };
  }
}

/** One export record → facts. Strings from CSV and typed values from JSON are both accepted. */
export function toFacts(r: RawRecord, file: string, record: number): PatientFacts {
  const bad = (field: string, reason: string): InputError => new InputError('EXPORT_BAD_VALUE', reason, { file, record, field });
  const str = (k: string): string | null => {
    const v = r[k];
    if (v === undefined || v === null) return null;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (typeof v !== 'string') throw bad(k, 'must be a string');
    const t = v.trim();
    return t === '' ? null : t;
  };
  const f = emptyFacts();

  const sex = str('sex');
  if (sex !== null) {
    const s = SEXES[sex.toLowerCase()];
    if (!s) throw bad('sex', 'must be male, female, other or unknown (or M/F/U)');
    f.sex = s;
  }

  const age = str('age_at_diagnosis');
  if (age !== null) {
    if (!/^\d{1,3}$/.test(age)) throw bad('age_at_diagnosis', 'must be a whole number of years');
    f.age_at_diagnosis = Number(age);
  } else {
    const birth = str('birth_date');
    const dx = str('diagnosis_date');
    for (const [k, v] of [['birth_date', birth], ['diagnosis_date', dx]] as const) {
      if (v !== null && !/^\d{4}(-\d{2}(-\d{2})?)?/.test(v)) throw bad(k, 'must be a date YYYY[-MM[-DD]]');
    }
    if (birth !== null && dx !== null) {
      const years = yearsBetween(birth, dx);
      if (years === null) throw bad('diagnosis_date', 'is before birth_date');
      f.age_at_diagnosis = years;
    }
  }

  f.race = str('race');
  f.ethnicity = str('ethnicity');
  f.primary_diagnosis_code = str('primary_diagnosis_code');
  f.primary_diagnosis_system = str('primary_diagnosis_system');
  f.primary_diagnosis_display = str('primary_diagnosis_display');
  f.smoking_status = str('smoking_status');

  const prior = str('prior_malignancy');
  if (prior !== null) {
    const b = BOOLS[prior.toLowerCase()];
    if (b === undefined) throw bad('prior_malignancy', 'must be true/false, yes/no or 1/0');
    f.prior_malignancy = b;
  }

  const vital = str('vital_status');
  if (vital !== null) {
    const v = vital.toLowerCase();
    if (v !== 'alive' && v !== 'deceased' && v !== 'unknown') throw bad('vital_status', 'must be alive, deceased or unknown');
    f.vital_status = v as VitalStatus;
  }

  const meds = r.medication_codes;
  if (Array.isArray(meds)) {
    if (!meds.every((m) => typeof m === 'string' || typeof m === 'number')) throw bad('medication_codes', 'must be an array of codes');
    f.medication_codes = [...new Set(meds.map(String).filter((m) => m !== ''))].sort();
  } else {
    const m = str('medication_codes');
    if (m !== null) f.medication_codes = [...new Set(m.split(/[;|]/).map((x) => x.trim()).filter(Boolean))].sort();
  }
  return f;
}

const SEXES: Record<string, Sex> = { male: 'male', m: 'male', female: 'female', f: 'female', other: 'other', o: 'other', unknown: 'unknown', u: 'unknown', unk: 'unknown' };
const BOOLS: Record<string, boolean> = { true: true, false: false, yes: true, no: false, y: true, n: false, '1': true, '0': false };
