/**
 * Turns zod issues into the problems a user reads: one per field, by field path
 * (`read_groups[1].r2`), in plain words. Unknown keys are reported one by one with a
 * "did you mean" hint, and a failed union reports the alternative the user evidently meant.
 */
import type { z } from 'zod';
import { showValue } from './ids.js';

export interface ManifestIssue {
  /** Field path such as `read_groups[1].r2`; `(root)` for the manifest as a whole. */
  path: string;
  message: string;
}

type PathItem = PropertyKey;
type RawIssue = z.core.$ZodRawIssue;
type Issue = z.core.$ZodIssue;

/** `['read_groups', 1, 'r2']` → `read_groups[1].r2`. */
export function formatPath(path: readonly PathItem[]): string {
  let out = '';
  for (const item of path) {
    if (typeof item === 'number') out += `[${item}]`;
    else if (typeof item === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(item)) out += out === '' ? item : `.${item}`;
    else out += `[${JSON.stringify(String(item))}]`;
  }
  return out === '' ? '(root)' : out;
}

/** Per-parse state: the known keys of each object that had unknown ones (for hints). */
export interface IssueContext {
  /** 'yaml' adds a quoting hint when a YAML scalar turned into a number or boolean. */
  format: 'json' | 'yaml' | 'data';
  knownKeys: WeakMap<object, string[]>;
}

export function newIssueContext(format: IssueContext['format']): IssueContext {
  return { format, knownKeys: new WeakMap() };
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return showValue(value);
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
};

function sizeWord(origin: string, n: number | bigint): string {
  if (origin === 'array' || origin === 'set') return `${n} item${n === 1 ? '' : 's'}`;
  if (origin === 'string') return `${n} character${n === 1 ? '' : 's'}`;
  return String(n);
}

/**
 * The error map for one parse: wording for every issue that the schema did not word
 * itself. Passed per call (never installed globally) so other zod users are unaffected.
 */
export function manifestErrorMap(ctx: IssueContext): z.core.$ZodErrorMap {
  return (iss: RawIssue) => {
    switch (iss.code) {
      case 'invalid_type': {
        if (iss.input === undefined) return 'required';
        const want = EXPECTED[iss.expected] ?? iss.expected;
        let msg = `must be ${want} (got ${kindOf(iss.input)})`;
        if (ctx.format === 'yaml' && iss.expected === 'string' && ['number', 'boolean'].includes(typeof iss.input)) {
          msg += '; in YAML, quote values like 001, 1e5, yes or true to keep them as text';
        }
        return msg;
      }
      case 'too_small': {
        if (iss.origin === 'string' && Number(iss.minimum) === 1) return 'must not be empty';
        if (iss.origin === 'array' || iss.origin === 'string') return `must have at least ${sizeWord(iss.origin, iss.minimum)}`;
        return `${iss.inclusive ? 'must be at least' : 'must be greater than'} ${iss.minimum} (got ${kindOf(iss.input)})`;
      }
      case 'too_big': {
        if (iss.origin === 'array' || iss.origin === 'string') return `must have at most ${sizeWord(iss.origin, iss.maximum)}`;
        return `${iss.inclusive ? 'must be at most' : 'must be less than'} ${iss.maximum} (got ${kindOf(iss.input)})`;
      }
      case 'invalid_value': {
        const values = iss.values.map((v) => JSON.stringify(v));
        let msg = values.length === 1 ? `must be ${values[0]}` : `must be one of ${values.join(', ')}`;
        msg += ` (got ${kindOf(iss.input)})`;
        const near = typeof iss.input === 'string' ? iss.values.find((v) => typeof v === 'string' && v.toLowerCase() === (iss.input as string).toLowerCase()) : undefined;
        if (near !== undefined) msg += `; did you mean ${JSON.stringify(near)}?`;
        return msg;
      }
      case 'unrecognized_keys': {
        // Remember which keys this object does accept, for the per-key hint below.
        const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
        if (shape && typeof iss.input === 'object' && iss.input !== null) ctx.knownKeys.set(iss.input, Object.keys(shape));
        return `unknown field${iss.keys.length === 1 ? '' : 's'} ${iss.keys.join(', ')}`;
      }
      default:
        return undefined;
    }
  };
}

/** Edit distance counting a swap of two neighbouring letters as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known key the user probably meant: same letters ignoring case/`_`/`-`, or 1-2 edits away. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const same = known.find((k) => norm(k) === norm(key));
  if (same) return same;
  // `patient` for `patient_id`, `sample` for `sample_id`.
  const withId = known.find((k) => norm(k) === `${norm(key)}id`);
  if (withId) return withId;
  let best: string | undefined;
  let bestDist = Math.min(2, Math.floor(key.length / 3));
  for (const k of known) {
    const d = Math.min(editDistance(key.toLowerCase(), k.toLowerCase()), editDistance(norm(key), norm(k).replace(/id$/, '')) + 0.5);
    if (d <= bestDist && (best === undefined || d < bestDist)) {
      best = k;
      bestDist = d;
    }
  }
  return best;
}

/** Cost of a union alternative: how much the input would have to change to fit it. */
function branchCost(issues: readonly Issue[]): number {
  let cost = 0;
  for (const iss of issues) {
    // Wrong type at the alternative's root: the input is not this alternative at all.
    if (iss.path.length === 0 && iss.code === 'invalid_type') return Infinity;
    cost += iss.code === 'unrecognized_keys' ? iss.keys.length : 1;
  }
  return cost;
}

/** Flattens zod issues (already worded by `manifestErrorMap`) into manifest issues. */
export function collectIssues(issues: readonly Issue[], ctx: IssueContext, prefix: readonly PathItem[] = []): ManifestIssue[] {
  const out: ManifestIssue[] = [];
  for (const iss of issues) {
    const path = [...prefix, ...iss.path];
    if (iss.code === 'unrecognized_keys') {
      const known = typeof iss.input === 'object' && iss.input !== null ? ctx.knownKeys.get(iss.input) : undefined;
      for (const key of iss.keys) {
        const near = known ? suggestKey(key, known) : undefined;
        out.push({ path: formatPath([...path, key]), message: `unknown field${near ? `; did you mean ${near}?` : ''}` });
      }
    } else if (iss.code === 'invalid_union') {
      // Report the alternative that fits best; if none stands out, the union's own message.
      const costs = iss.errors.map(branchCost);
      const min = Math.min(...costs);
      const best = costs.filter((c) => c === min).length === 1 && Number.isFinite(min) ? costs.indexOf(min) : -1;
      if (best >= 0) out.push(...collectIssues(iss.errors[best], ctx, path));
      else out.push({ path: formatPath(path), message: `${iss.message} (got ${kindOf(iss.input)})` });
    } else {
      out.push({ path: formatPath(path), message: iss.message });
    }
  }
  // The same problem can surface twice (a union alternative and a refinement); say it once.
  const seen = new Set<string>();
  return out.filter((i) => {
    const k = `${i.path}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
