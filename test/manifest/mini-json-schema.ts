/**
 * A small JSON Schema (2020-12) checker for the keywords the exported manifest schemas
 * use, so tests can check examples against the published files themselves rather than
 * only against zod. Unknown keywords make it throw: the check cannot silently pass.
 */
type Schema = Record<string, unknown>;

const KNOWN = new Set([
  '$schema', '$id', 'title', 'description', 'default', 'examples',
  'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems',
  'pattern', 'minLength', 'maxLength', 'enum', 'const', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
  'anyOf', 'allOf', 'not', 'if', 'then', 'else', 'propertyNames',
]);

function typeOk(type: string, v: unknown): boolean {
  switch (type) {
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array': return Array.isArray(v);
    case 'string': return typeof v === 'string';
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'integer': return Number.isInteger(v);
    case 'boolean': return typeof v === 'boolean';
    case 'null': return v === null;
    default: throw new Error(`unsupported type ${type}`);
  }
}

/** Problems of `value` against `schema`, as `path: keyword` strings; empty when valid. */
export function checkJsonSchema(schema: Schema, value: unknown, path = '$'): string[] {
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`unsupported keyword ${k} at ${path}`);
  const out: string[] = [];
  const s = schema;
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
    if (!types.some((t) => typeOk(t, value))) return [`${path}: type ${types.join('|')}`];
  }
  if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(value)) out.push(`${path}: const`);
  if (s.enum && !(s.enum as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value))) out.push(`${path}: enum`);
  if (typeof value === 'string') {
    if (s.pattern !== undefined && !new RegExp(s.pattern as string, 'u').test(value)) out.push(`${path}: pattern`);
    if (s.minLength !== undefined && [...value].length < (s.minLength as number)) out.push(`${path}: minLength`);
    if (s.maxLength !== undefined && [...value].length > (s.maxLength as number)) out.push(`${path}: maxLength`);
  }
  if (typeof value === 'number') {
    if (s.minimum !== undefined && value < (s.minimum as number)) out.push(`${path}: minimum`);
    if (s.maximum !== undefined && value > (s.maximum as number)) out.push(`${path}: maximum`);
    if (s.exclusiveMinimum !== undefined && value <= (s.exclusiveMinimum as number)) out.push(`${path}: exclusiveMinimum`);
    if (s.exclusiveMaximum !== undefined && value >= (s.exclusiveMaximum as number)) out.push(`${path}: exclusiveMaximum`);
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < (s.minItems as number)) out.push(`${path}: minItems`);
    if (s.maxItems !== undefined && value.length > (s.maxItems as number)) out.push(`${path}: maxItems`);
    if (s.items) value.forEach((v, i) => out.push(...checkJsonSchema(s.items as Schema, v, `${path}[${i}]`)));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const r of (s.required ?? []) as string[]) if (!(r in obj)) out.push(`${path}.${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) out.push(...checkJsonSchema(props[k], v, `${path}.${k}`));
      else if (s.additionalProperties === false) out.push(`${path}.${k}: additionalProperties`);
      else if (typeof s.additionalProperties === 'object') out.push(...checkJsonSchema(s.additionalProperties as Schema, v, `${path}.${k}`));
      if (s.propertyNames) out.push(...checkJsonSchema(s.propertyNames as Schema, k, `${path}.${k}(name)`));
    }
  }
  if (s.anyOf && !(s.anyOf as Schema[]).some((sub) => checkJsonSchema(sub, value, path).length === 0)) out.push(`${path}: anyOf`);
  for (const sub of (s.allOf ?? []) as Schema[]) out.push(...checkJsonSchema(sub, value, path));
  if (s.not && checkJsonSchema(s.not as Schema, value, path).length === 0) out.push(`${path}: not`);
  if (s.if) {
    const branch = checkJsonSchema(s.if as Schema, value, path).length === 0 ? s.then : s.else;
    if (branch) out.push(...checkJsonSchema(branch as Schema, value, path));
  }
  return out;
}
