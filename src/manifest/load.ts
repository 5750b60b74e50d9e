/**
 * Reading manifests: text (JSON or YAML) → validated, typed manifest, or one
 * `ManifestError` that lists every problem by field path.
 *
 * Drop manifests may leave out `kind` (labs only ever send drops); experiment
 * manifests must say `kind: experiment`.
 */
import { open } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { InputError } from '../util/errors.js';
import { dropManifestSchema, type DropManifest } from './drop.js';
import { experimentManifestSchema, type ExperimentManifest } from './experiment.js';
import { showValue } from './ids.js';
import { collectIssues, manifestErrorMap, newIssueContext, suggestKey, type IssueContext, type ManifestIssue } from './issues.js';
import { findJsonSyntaxProblem } from './json-syntax.js';

export type Manifest = DropManifest | ExperimentManifest;
export type ManifestKind = Manifest['kind'];
export const MANIFEST_KINDS = ['drop', 'experiment'] as const;

/** Text format of a manifest; `data` for values that did not come from text. */
export type ManifestFormat = 'json' | 'yaml';

/** Manifests are small; anything bigger is not a manifest (and is not read into memory). */
export const MANIFEST_MAX_BYTES = 1024 * 1024;

/** YAML aliases expand; a handful is plenty for a manifest and keeps "billion laughs" out. */
const YAML_MAX_ALIASES = 50;

/**
 * A manifest that cannot be used. `issues` holds every problem found, each with its field
 * path (`read_groups[1].r2`); the message lists them all, one per line. Syntax errors
 * carry the 1-based `line` and `column` (also in the message).
 */
export class ManifestError extends InputError {
  readonly issues: readonly ManifestIssue[];
  readonly source: string;
  readonly line?: number;
  readonly column?: number;

  constructor(
    source: string,
    issues: readonly ManifestIssue[],
    opts: { what?: string; code?: string; line?: number; column?: number; cause?: unknown } = {},
  ) {
    const what = opts.what ?? 'manifest';
    const head =
      issues.length === 1 && opts.line !== undefined
        ? `invalid ${what}: ${issues[0].message}`
        : `invalid ${what}: ${issues.length} problem${issues.length === 1 ? '' : 's'}`;
    const body = opts.line !== undefined && issues.length === 1 ? '' : issues.map((i) => `\n  ${i.path}: ${i.message}`).join('');
    super(opts.code ?? 'MANIFEST_INVALID', `${head}${body}`, { file: source }, { cause: opts.cause });
    this.name = 'ManifestError';
    this.issues = issues;
    this.source = source;
    this.line = opts.line;
    this.column = opts.column;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), issues: this.issues, ...(this.line !== undefined ? { line: this.line, column: this.column } : {}) };
  }
}

/** JSON or YAML: by file extension, else by content (a JSON manifest starts with '{'). */
export function manifestFormat(source: string, text: string): ManifestFormat {
  const ext = extname(source).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  return /^\s*[{[]/.test(text) ? 'json' : 'yaml';
}

function syntaxError(source: string, format: ManifestFormat, line: number, column: number, message: string, cause?: unknown): ManifestError {
  const where = `line ${line}, column ${column}`;
  return new ManifestError(source, [{ path: '(root)', message: `${format === 'json' ? 'JSON' : 'YAML'} syntax error at ${where}: ${message}` }], {
    what: 'manifest',
    code: 'MANIFEST_SYNTAX',
    line,
    column,
    cause,
  });
}

/** Parses manifest text into plain data; syntax errors name the line and column. */
export function parseManifestSyntax(text: string, source: string, format: ManifestFormat = manifestFormat(source, text)): unknown {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (t.trim() === '') {
    throw new ManifestError(source, [{ path: '(root)', message: 'the manifest is empty' }], { code: 'MANIFEST_SYNTAX' });
  }
  if (format === 'json') {
    try {
      return JSON.parse(t) as unknown;
    } catch (e) {
      const p = findJsonSyntaxProblem(t);
      if (p) throw syntaxError(source, 'json', p.line, p.column, p.message, e);
      throw syntaxError(source, 'json', 1, 1, e instanceof Error ? e.message : String(e), e);
    }
  }
  const doc = parseDocument(t, { prettyErrors: true, uniqueKeys: true, strict: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    // The yaml library's first message line is the useful part; the rest is a code excerpt.
    const msg = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw syntaxError(source, 'yaml', pos?.line ?? 1, pos?.col ?? 1, msg, err);
  }
  try {
    return doc.toJS({ maxAliasCount: YAML_MAX_ALIASES }) as unknown;
  } catch (e) {
    throw new ManifestError(source, [{ path: '(root)', message: e instanceof Error ? e.message : String(e) }], { code: 'MANIFEST_SYNTAX', cause: e });
  }
}

function validate<S extends z.ZodType>(schema: S, data: unknown, source: string, ctx: IssueContext, what: string): z.output<S> {
  const res = schema.safeParse(data, { error: manifestErrorMap(ctx), reportInput: true });
  if (res.success) return res.data;
  throw new ManifestError(source, collectIssues(res.error.issues, ctx), { what });
}

function notAnObject(data: unknown, source: string, what: string): ManifestError | undefined {
  if (typeof data === 'object' && data !== null && !Array.isArray(data)) return undefined;
  const got = data === null ? 'null' : Array.isArray(data) ? 'a list' : showValue(data);
  return new ManifestError(source, [{ path: '(root)', message: `must be an object with the manifest's fields (got ${got})` }], { what });
}

/** Validates already-parsed data as a drop manifest (`kind` may be absent). */
export function parseDropManifest(data: unknown, source: string, format: ManifestFormat | 'data' = 'data'): DropManifest {
  const bad = notAnObject(data, source, 'drop manifest');
  if (bad) throw bad;
  return validate(dropManifestSchema, data, source, newIssueContext(format), 'drop manifest');
}

/** Validates already-parsed data as an experiment manifest. */
export function parseExperimentManifest(data: unknown, source: string, format: ManifestFormat | 'data' = 'data'): ExperimentManifest {
  const bad = notAnObject(data, source, 'experiment manifest');
  if (bad) throw bad;
  return validate(experimentManifestSchema, data, source, newIssueContext(format), 'experiment manifest');
}

/** Validates parsed data as whichever manifest its `kind` names (absent: a drop). */
export function parseManifestData(data: unknown, source: string, format: ManifestFormat | 'data' = 'data'): Manifest {
  const bad = notAnObject(data, source, 'manifest');
  if (bad) throw bad;
  const kind = (data as { kind?: unknown }).kind;
  if (kind === undefined || kind === 'drop') return parseDropManifest(data, source, format);
  if (kind === 'experiment') return parseExperimentManifest(data, source, format);
  const near = typeof kind === 'string' ? suggestKey(kind, MANIFEST_KINDS) : undefined;
  throw new ManifestError(source, [
    {
      path: 'kind',
      message: `must be "drop" or "experiment" (got ${showValue(kind)})${near ? `; did you mean ${JSON.stringify(near)}?` : ''}`,
    },
  ]);
}

/** Parses and validates manifest text (JSON or YAML, see `manifestFormat`). `source` names it in errors. */
export function parseManifestText(text: string, source: string): Manifest {
  const format = manifestFormat(source, text);
  return parseManifestData(parseManifestSyntax(text, source, format), source, format);
}

/** Reads at most `max` bytes of a file as UTF-8; larger files are refused without being read. */
export async function readManifestBytes(path: string, max = MANIFEST_MAX_BYTES): Promise<string> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new InputError('MANIFEST_NOT_FOUND', `cannot read manifest: ${e.code ?? e.message}`, { file: path }, { cause: e });
  });
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw new InputError('MANIFEST_NOT_FOUND', 'manifest is not a regular file', { file: path });
    if (info.size > max) throw new InputError('MANIFEST_TOO_LARGE', `manifest is ${info.size} bytes; at most ${max} allowed`, { file: path });
    return (await fh.readFile()).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Reads, parses and validates the manifest file at `path`. */
export async function loadManifestFile(path: string): Promise<Manifest> {
  return parseManifestText(await readManifestBytes(path), path);
}

/** Like `loadManifestFile`, but the file must be a drop manifest. */
export async function loadDropManifestFile(path: string): Promise<DropManifest> {
  const text = await readManifestBytes(path);
  const format = manifestFormat(path, text);
  return parseDropManifest(parseManifestSyntax(text, path, format), path, format);
}

/** Like `loadManifestFile`, but the file must be an experiment manifest. */
export async function loadExperimentManifestFile(path: string): Promise<ExperimentManifest> {
  const text = await readManifestBytes(path);
  const format = manifestFormat(path, text);
  return parseExperimentManifest(parseManifestSyntax(text, path, format), path, format);
}
