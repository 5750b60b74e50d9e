/**
 * FHIR R4 over REST: reads Patient/<id>, and searches Condition, Observation (smoking
 * status) and MedicationStatement by patient, following Bundle `link[relation=next]`.
 * Only the searches the configured fields need are made.
 *
 * Mapping to the patients table (see README):
 * - sex: US Core birth sex extension (M/F/UNK), else Patient.gender.
 * - race / ethnicity: US Core race/ethnicity extensions (`text`, else the OMB categories).
 * - primary diagnosis: the malignant Condition (ICD-10 C00–C96) with the latest onset;
 *   age_at_diagnosis is whole years from birthDate to that onset.
 * - prior_malignancy: another malignancy (different 3-character category) with an earlier
 *   onset, or a personal-history code Z85.*.
 * - vital_status: deceased[x] → deceased; deceasedBoolean=false → alive; absent → unknown.
 */
import { ProviderError, type ProviderHttp } from '../http.js';
import { emptyFacts, type PatientDataField, type PatientFacts, type Sex, type VitalStatus } from '../facts.js';
import type { ProviderConfig } from '../provider.js';
import { AuthHeaders } from '../secrets.js';
import type { AdapterDefinition, AdapterDeps, FetchPatientRequest, MetadataAdapter } from './types.js';

// Minimal shapes of the FHIR R4 resources we read (everything optional: real data is ragged).
export interface Coding {
  system?: string;
  code?: string;
  display?: string;
}
export interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}
export interface Extension {
  url: string;
  valueString?: string;
  valueCode?: string;
  valueCoding?: Coding;
  extension?: Extension[];
}
export interface FhirResource {
  resourceType: string;
  id?: string;
  [k: string]: unknown;
}
export interface FhirPatient extends FhirResource {
  gender?: string;
  birthDate?: string;
  deceasedBoolean?: boolean;
  deceasedDateTime?: string;
  extension?: Extension[];
}
export interface FhirCondition extends FhirResource {
  code?: CodeableConcept;
  onsetDateTime?: string;
  onsetPeriod?: { start?: string };
  recordedDate?: string;
  verificationStatus?: CodeableConcept;
}
export interface FhirObservation extends FhirResource {
  status?: string;
  effectiveDateTime?: string;
  issued?: string;
  valueCodeableConcept?: CodeableConcept;
}
export interface FhirMedicationStatement extends FhirResource {
  status?: string;
  medicationCodeableConcept?: CodeableConcept;
}
interface Bundle extends FhirResource {
  link?: Array<{ relation?: string; url?: string }>;
  entry?: Array<{ resource?: FhirResource }>;
}

const US_CORE = 'http://hl7.org/fhir/us/core/StructureDefinition/';
const ICD10 = /^http:\/\/hl7\.org\/fhir\/sid\/icd-10(-cm)?$/;
const RXNORM = 'http://www.nlm.nih.gov/research/umls/rxnorm';
export const SMOKING_STATUS_LOINC = '72166-2';
/** Pages per search: a guard against a server whose next links loop. */
const MAX_PAGES = 100;

const CONDITION_FIELDS: PatientDataField[] = ['age_at_diagnosis', 'primary_diagnosis_code', 'primary_diagnosis_system', 'primary_diagnosis_display', 'prior_malignancy'];

export const fhirAdapter: AdapterDefinition = {
  kind: 'fhir',
  describe: 'FHIR R4 REST server (Patient, Condition, Observation, MedicationStatement)',
  create: (provider, deps) => new FhirAdapter(provider, deps),
};

class FhirAdapter implements MetadataAdapter {
  private readonly base: URL;
  private readonly auth: AuthHeaders;
  private readonly http: ProviderHttp;

  constructor(provider: ProviderConfig, deps: AdapterDeps) {
    let base: URL;
    try {
      base = new URL(provider.url.endsWith('/') ? provider.url : `${provider.url}/`);
    } catch {
      throw new ProviderError('PROVIDER_CONFIG', `provider ${provider.id}: url is not a valid URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new ProviderError('PROVIDER_CONFIG', `provider ${provider.id}: a fhir url must be http(s)`);
    }
    this.base = base;
    this.http = deps.http;
    this.auth = new AuthHeaders(provider.auth, deps.secrets, deps.http, deps.clock);
  }

  async fetchPatient(req: FetchPatientRequest): Promise<PatientFacts> {
    const { providerPatientId: pid, fields, signal } = req;
    const want = (fs: PatientDataField[]): boolean => fs.some((f) => fields.includes(f));
    const patient = await this.get(`Patient/${encodeURIComponent(pid)}`, 'GET Patient', signal);
    if (patient.resourceType !== 'Patient') throw new ProviderError('PROVIDER_BAD_RESPONSE', `GET Patient: got a ${patient.resourceType}, not a Patient`);
    const q = (extra: Record<string, string>): string => new URLSearchParams({ patient: pid, _count: '100', ...extra }).toString();
    const conditions = want(CONDITION_FIELDS) ? await this.search<FhirCondition>('Condition', q({}), signal) : [];
    const observations = want(['smoking_status'])
      ? await this.search<FhirObservation>('Observation', q({ code: `http://loinc.org|${SMOKING_STATUS_LOINC}` }), signal)
      : [];
    const meds = want(['medication_codes']) ? await this.search<FhirMedicationStatement>('MedicationStatement', q({}), signal) : [];
    return mapFhir({ patient: patient as FhirPatient, conditions, observations, medicationStatements: meds, fetched: { conditions: want(CONDITION_FIELDS), observations: want(['smoking_status']), medications: want(['medication_codes']) } });
  }

  /** All resources of a search, across pages. */
  private async search<T extends FhirResource>(type: string, query: string, signal?: AbortSignal): Promise<T[]> {
    const out: T[] = [];
    let next: URL | undefined = new URL(`${type}?${query}`, this.base);
    for (let page = 1; next; page++) {
      if (page > MAX_PAGES) throw new ProviderError('PROVIDER_BAD_RESPONSE', `search ${type}: more than ${MAX_PAGES} pages`);
      const bundle = (await this.getUrl(next, `search ${type} page ${page}`, signal)) as Bundle;
      if (bundle.resourceType !== 'Bundle') throw new ProviderError('PROVIDER_BAD_RESPONSE', `search ${type}: got a ${bundle.resourceType}, not a Bundle`);
      for (const e of bundle.entry ?? []) {
        // Searches may include other resources (OperationOutcome, _include): keep the type asked for.
        if (e.resource?.resourceType === type) out.push(e.resource as T);
      }
      const href = bundle.link?.find((l) => l.relation === 'next')?.url;
      next = href ? this.sameOrigin(href, type) : undefined;
    }
    return out;
  }

  /** Next links are followed only on the provider's own origin: our credentials go nowhere else. */
  private sameOrigin(href: string, type: string): URL {
    const u = new URL(href, this.base);
    if (u.origin !== this.base.origin) throw new ProviderError('PROVIDER_BAD_RESPONSE', `search ${type}: next link points to another origin`);
    return u;
  }

  private get(path: string, label: string, signal?: AbortSignal): Promise<FhirResource> {
    return this.getUrl(new URL(path, this.base), label, signal);
  }

  private async getUrl(url: URL, label: string, signal?: AbortSignal): Promise<FhirResource> {
    const once = async (): Promise<FhirResource> => {
      const body = await this.http.json({ url, label, headers: await this.auth.headers(signal) }, signal);
      if (typeof body !== 'object' || body === null || typeof (body as FhirResource).resourceType !== 'string') {
        throw new ProviderError('PROVIDER_BAD_RESPONSE', `${label}: not a FHIR resource`);
      }
      return body as FhirResource;
    };
    try {
      return await once();
    } catch (e) {
      // An OAuth2 token may be revoked before its expiry: fetch a new one once.
      if (e instanceof ProviderError && e.code === 'PROVIDER_AUTH_FAILED' && e.status === 401) {
        this.auth.invalidate();
        return once();
      }
      throw e;
    }
  }
}

export interface FhirInputs {
  patient: FhirPatient;
  conditions: FhirCondition[];
  observations: FhirObservation[];
  medicationStatements: FhirMedicationStatement[];
  /** Which searches were made (an unsearched resource type gives null, not "none"). */
  fetched: { conditions: boolean; observations: boolean; medications: boolean };
}

/** FHIR resources → patients-table facts. Pure, so the mapping is testable on its own. */
export function mapFhir(inp: FhirInputs): PatientFacts {
  const f = emptyFacts();
  const p = inp.patient;
  f.sex = mapSex(p);
  f.race = usCoreCategory(p, 'us-core-race');
  f.ethnicity = usCoreCategory(p, 'us-core-ethnicity');
  f.vital_status = mapVital(p);

  if (inp.fetched.conditions) {
    const valid = inp.conditions.filter((c) => !['entered-in-error', 'refuted'].includes(c.verificationStatus?.coding?.[0]?.code ?? ''));
    const malignant = valid
      .map((c) => ({ c, coding: c.code?.coding?.find((x) => ICD10.test(x.system ?? '') && /^C\d/.test(x.code ?? '')), onset: onsetOf(c) }))
      .filter((m) => m.coding)
      .sort((a, b) => (a.onset ?? '').localeCompare(b.onset ?? ''));
    const primary = malignant.at(-1);
    if (primary?.coding) {
      f.primary_diagnosis_code = primary.coding.code ?? null;
      f.primary_diagnosis_system = primary.coding.system ?? null;
      f.primary_diagnosis_display = primary.coding.display ?? primary.c.code?.text ?? null;
      f.age_at_diagnosis = p.birthDate && primary.onset ? yearsBetween(p.birthDate, primary.onset) : null;
    }
    const history = valid.some((c) => c.code?.coding?.some((x) => ICD10.test(x.system ?? '') && /^Z85/.test(x.code ?? '')));
    const earlierOther =
      primary !== undefined &&
      malignant.some((m) => m !== primary && category(m.coding?.code) !== category(primary.coding?.code) && (m.onset ?? '') < (primary.onset ?? ''));
    f.prior_malignancy = valid.length === 0 ? null : history || earlierOther;
  }

  if (inp.fetched.observations) {
    const latest = inp.observations
      .filter((o) => ['final', 'amended', 'corrected'].includes(o.status ?? 'final'))
      .sort((a, b) => (a.effectiveDateTime ?? a.issued ?? '').localeCompare(b.effectiveDateTime ?? b.issued ?? ''))
      .at(-1);
    const v = latest?.valueCodeableConcept;
    f.smoking_status = v ? (v.coding?.[0]?.display ?? v.text ?? v.coding?.[0]?.code ?? null) : null;
  }

  if (inp.fetched.medications) {
    const codes = new Set<string>();
    for (const m of inp.medicationStatements) {
      if (m.status === 'entered-in-error') continue;
      const codings = m.medicationCodeableConcept?.coding ?? [];
      const c = codings.find((x) => x.system === RXNORM) ?? codings[0];
      if (c?.code) codes.add(c.code);
    }
    f.medication_codes = [...codes].sort();
  }
  return f;
}

function mapSex(p: FhirPatient): Sex | null {
  const birthSex = p.extension?.find((e) => e.url === `${US_CORE}us-core-birthsex`)?.valueCode;
  if (birthSex === 'M') return 'male';
  if (birthSex === 'F') return 'female';
  if (birthSex === 'UNK') return 'unknown';
  const g = p.gender;
  return g === 'male' || g === 'female' || g === 'other' || g === 'unknown' ? g : null;
}

function mapVital(p: FhirPatient): VitalStatus {
  if (p.deceasedBoolean === true || p.deceasedDateTime) return 'deceased';
  if (p.deceasedBoolean === false) return 'alive';
  return 'unknown';
}

/** US Core race/ethnicity: the `text` sub-extension, else the OMB category displays. */
function usCoreCategory(p: FhirPatient, name: string): string | null {
  const ext = p.extension?.find((e) => e.url === `${US_CORE}${name}`);
  if (!ext) return null;
  const text = ext.extension?.find((e) => e.url === 'text')?.valueString;
  if (text) return text;
  const omb = (ext.extension ?? []).filter((e) => e.url === 'ombCategory').map((e) => e.valueCoding?.display ?? e.valueCoding?.code);
  return omb.length ? omb.filter(Boolean).join('; ') : null;
}

function onsetOf(c: FhirCondition): string | undefined {
  return c.onsetDateTime ?? c.onsetPeriod?.start ?? c.recordedDate;
}

function category(code: string | undefined): string {
  return (code ?? '').slice(0, 3);
}

/**
 * Whole years between two FHIR dates (YYYY, YYYY-MM, YYYY-MM-DD or dateTime). Missing
 * month/day count as January / the 1st.
 */
export function yearsBetween(from: string, to: string): number | null {
  const a = parseFhirDate(from);
  const b = parseFhirDate(to);
  if (!a || !b) return null;
  let years = b.y - a.y;
  if (b.m < a.m || (b.m === a.m && b.d < a.d)) years -= 1;
  return years >= 0 ? years : null;
}

function parseFhirDate(s: string): { y: number; m: number; d: number } | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(s);
  if (!m) return undefined;
  return { y: Number(m[1]), m: Number(m[2] ?? 1), d: Number(m[3] ?? 1) };
}
