import { GenolakeError } from '../util/errors.js';

/** Normalises a lake key and refuses anything that could escape the lake root. */
export function checkKey(key: string): string {
  if (typeof key !== 'string') throw new GenolakeError('LAKE_BAD_KEY', `lake key must be a string`);
  const k = key.replace(/\/+/g, '/').replace(/^\.\//, '');
  if (k.startsWith('/') || /^[a-zA-Z]:/.test(k) || k.includes('\\') || k.includes('\0')) {
    throw new GenolakeError('LAKE_BAD_KEY', `lake key must be relative: ${JSON.stringify(key)}`);
  }
  if (k.split('/').some((seg) => seg === '..' || seg === '.')) {
    throw new GenolakeError('LAKE_BAD_KEY', `lake key must not contain '.' or '..' segments: ${JSON.stringify(key)}`);
  }
  return k;
}

/** A key that names one object: safe (see checkKey), not empty, not a prefix ending in '/'. */
export function checkObjectKey(key: string): string {
  const k = checkKey(key);
  if (k === '' || k.endsWith('/')) {
    throw new GenolakeError('LAKE_BAD_KEY', `lake object key must name a file, not a prefix: ${JSON.stringify(key)}`);
  }
  return k;
}

/** A prefix always ends with '/' (or is empty for the whole lake). */
export function asPrefix(prefix: string): string {
  const p = prefix === '' ? '' : checkKey(prefix);
  return p === '' || p.endsWith('/') ? p : `${p}/`;
}

export const STAGING_ROOT = '_staging/';

/** Staging areas and in-flight temporary files: never listed, never published. */
export function isHidden(key: string): boolean {
  return key.startsWith(STAGING_ROOT) || key.split('/').some((seg) => seg.startsWith('.tmp-'));
}

/**
 * Orders keys by their UTF-8 bytes, which is the order S3 lists in, so both lake
 * implementations list in exactly the same order (JS `<` compares UTF-16 units and
 * differs for characters outside the BMP).
 */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Checks a (staging, final) pair for `publish` and returns them as prefixes. Overlapping
 * prefixes would make publish delete what it is copying; the whole lake or a hidden
 * area cannot be a publish target.
 */
export function checkPublishPrefixes(staging: string, final: string): { staging: string; final: string } {
  const s = asPrefix(staging);
  const f = asPrefix(final);
  if (s === '' || f === '') {
    throw new GenolakeError('LAKE_BAD_KEY', 'publish needs a non-empty staging and final prefix');
  }
  if (s.startsWith(f) || f.startsWith(s)) {
    throw new GenolakeError('LAKE_BAD_KEY', `publish staging and final prefixes overlap: ${s} and ${f}`);
  }
  if (isHidden(f)) {
    throw new GenolakeError('LAKE_BAD_KEY', `cannot publish into a hidden (staging/tmp) prefix: ${f}`);
  }
  return { staging: s, final: f };
}

/** The JSON body of the completion marker, identical for every lake implementation. */
export function markerBody(objects: number, meta: Record<string, unknown>): string {
  return `${JSON.stringify({ publishedAt: new Date().toISOString(), objects, ...meta }, null, 2)}\n`;
}

/** A fresh, unique staging prefix for `label` (any characters; unsafe ones become '_'). */
export function newStagingPrefix(label: string, id: string): string {
  const safe = String(label).replace(/[^A-Za-z0-9._=-]/g, '_').replace(/^\.+/, '_').slice(0, 100) || 'stage';
  return `${STAGING_ROOT}${safe}-${id}/`;
}

/** Lake prefix of a sample's per-run outputs (see README, "Lake layout"); `outRoot` is '' or `experimental/<id>/`. */
export function stagedPrefix(run: { manifest: { patient_id: string; sample_id: string }; runId: string }, outRoot = ''): string {
  const m = run.manifest;
  return `${outRoot}staged/patient_id=${m.patient_id}/sample_id=${m.sample_id}/run_id=${run.runId}/`;
}
