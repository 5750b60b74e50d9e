/**
 * Known-variant database specs: `NAME=db.vcf.gz[:FIELD,…]` as given on the command line or in
 * a manifest, parsed and checked without opening anything (the matcher, known.ts, loads the
 * tabix reader; the CLI needs only this).
 */
import { isAbsolute, resolve } from 'node:path';
import { InputError } from '../util/errors.js';

/** One database as given on the command line (`NAME=db.vcf.gz[:FIELD,…]`) or in a manifest. */
export interface KnownDbSpec {
  /** Prefix of the output INFO keys; see KNOWN_NAME_PATTERN. */
  name: string;
  /** BGZF VCF with a `.tbi` (or `.csi`) beside it; a local path or an http(s) URL. */
  path: string;
  /** INFO keys of the database to copy (ID is always copied). */
  fields: string[];
}

/** A database name: a letter, then letters, digits or '_' (it prefixes VCF INFO keys). */
export const KNOWN_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_]{0,63}$';
const KNOWN_NAME = new RegExp(KNOWN_NAME_PATTERN);
/** VCF 4.3 INFO key syntax. */
const INFO_KEY = /^([A-Za-z_][0-9A-Za-z_.]*|1000G)$/;
const FIELD_LIST = /^(?:INFO\/)?[A-Za-z_][0-9A-Za-z_.]*(?:,(?:INFO\/)?[A-Za-z_][0-9A-Za-z_.]*)*$/;

export const isUrl = (p: string): boolean => /^https?:\/\//i.test(p);

/** Parses `NAME=path[:FIELD,FIELD…]`; a ':' followed by something that is not a field list belongs to the path (URLs). */
export function parseKnownSpec(text: string): KnownDbSpec {
  const eq = text.indexOf('=');
  if (eq < 0) throw new InputError('bad_usage', `--known ${JSON.stringify(text)}: expected NAME=db.vcf.gz[:FIELD,…]`);
  const name = text.slice(0, eq);
  let path = text.slice(eq + 1);
  let fields: string[] = [];
  const colon = path.lastIndexOf(':');
  if (colon >= 0 && (FIELD_LIST.test(path.slice(colon + 1)) || colon === path.length - 1)) {
    const list = path.slice(colon + 1);
    if (!list) throw new InputError('bad_usage', `--known ${JSON.stringify(text)}: empty field list after ':'`);
    fields = list.split(',').map((f) => f.replace(/^INFO\//, ''));
    path = path.slice(0, colon);
  }
  const spec = { name, path, fields };
  checkSpec(spec);
  return spec;
}

/** The spec with a local path made absolute against `baseDir` (URLs unchanged): for run records and manifests. */
export function resolveKnownSpec(spec: KnownDbSpec, baseDir: string): KnownDbSpec {
  return isUrl(spec.path) || isAbsolute(spec.path) ? spec : { ...spec, path: resolve(baseDir, spec.path) };
}

/**
 * Databases from a manifest parameter (`stages.annotate.params.known` of an experiment):
 * a list of `NAME=db.vcf.gz[:FIELD,…]` strings, relative paths against `baseDir`.
 */
export function knownFromParam(value: unknown, field: string, baseDir: string): KnownDbSpec[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'string')) {
    throw new InputError('bad_known_param', `${field}: must be a list of "NAME=db.vcf.gz[:FIELD,…]" strings`, { field });
  }
  return (list as string[]).map((v, i) => {
    try {
      return resolveKnownSpec(parseKnownSpec(v), baseDir);
    } catch (e) {
      if (e instanceof InputError) throw new InputError(e.code, `${field}[${i}]: ${e.message.replace(/^--known /, '')}`, { ...e.place, field: `${field}[${i}]` }, { cause: e });
      throw e;
    }
  });
}

export function checkSpec(spec: KnownDbSpec): void {
  if (!KNOWN_NAME.test(spec.name)) {
    throw new InputError('bad_known_name', `known-variant database name ${JSON.stringify(spec.name)} must be a letter followed by up to 63 letters, digits or '_' (it prefixes INFO keys)`, { file: spec.path || undefined });
  }
  if (!spec.path) throw new InputError('bad_usage', `known-variant database ${spec.name}: no file given`);
  for (const f of spec.fields) {
    if (!INFO_KEY.test(f)) throw new InputError('bad_known_field', `known-variant database ${spec.name}: ${JSON.stringify(f)} is not an INFO key`, { file: spec.path, field: f });
  }
}
