/**
 * The reference registry: reference names (as drop and experiment manifests give them,
 * e.g. `GRCh38`, `sim-demo`) → a FASTA and, optionally, the gene models that go with it.
 *
 * A JSON file, so a lab keeps it next to its references and versions it:
 *
 *     { "references": { "sim-demo": { "fasta": "reference/ref.fa", "genes": "reference/genes.gff3" } } }
 *
 * Relative paths are relative to the registry file, so the folder can move as a whole.
 */
import { access, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { z } from 'zod';
import { safeId } from '../manifest/ids.js';
import { InputError } from '../util/errors.js';

export interface ReferenceEntry {
  /** Absolute path of the FASTA. */
  fasta: string;
  /** Absolute path of the GFF3/GTF gene models, if registered. */
  genes?: string;
}

const entrySchema = z.strictObject({
  fasta: z.string().min(1),
  genes: z.string().min(1).optional(),
  description: z.string().max(1000).optional(),
});
const registrySchema = z.strictObject({ references: z.record(safeId('reference name'), entrySchema) });

/** Where the registry is looked for when no file is named: $GENOLAKE_REFERENCES. */
export function defaultReferenceRegistry(): string | undefined {
  return process.env.GENOLAKE_REFERENCES || undefined;
}

export class ReferenceRegistry {
  private constructor(
    readonly file: string,
    private readonly entries: ReadonlyMap<string, ReferenceEntry>,
  ) {}

  static async open(file: string): Promise<ReferenceRegistry> {
    const path = resolve(file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new InputError('REFERENCES_UNREADABLE', `cannot read the reference registry: ${(e as Error).message}`, { file: path });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new InputError('REFERENCES_INVALID', `reference registry is not JSON: ${(e as Error).message}`, { file: path });
    }
    const parsed = registrySchema.safeParse(data);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new InputError('REFERENCES_INVALID', `reference registry is not valid: ${problems}`, { file: path });
    }
    const base = dirname(path);
    const entries = new Map<string, ReferenceEntry>();
    for (const [name, e] of Object.entries(parsed.data.references)) {
      entries.set(name, { fasta: resolve(base, e.fasta), ...(e.genes ? { genes: resolve(base, e.genes) } : {}) });
    }
    return new ReferenceRegistry(path, entries);
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** The entry of `name`, its files checked to exist; `field` names where the name came from. */
  async resolve(name: string, field: string): Promise<ReferenceEntry> {
    const e = this.entries.get(name);
    if (!e) {
      const known = this.names();
      throw new InputError(
        'REFERENCE_UNKNOWN',
        `${field}: reference ${JSON.stringify(name)} is not in the registry (${known.length ? `known: ${known.join(', ')}` : 'it is empty'})`,
        { file: this.file, field },
      );
    }
    for (const [what, p] of [['fasta', e.fasta], ['genes', e.genes]] as const) {
      if (p === undefined) continue;
      try {
        await access(p);
      } catch {
        throw new InputError('REFERENCE_FILE_MISSING', `reference ${JSON.stringify(name)}: its ${what} ${p} does not exist`, { file: this.file, field: `references.${name}.${what}` });
      }
    }
    return e;
  }
}

/** Writes (atomically) a registry of the given references; paths are stored relative to the file. */
export async function writeReferenceRegistry(file: string, refs: Record<string, ReferenceEntry>): Promise<void> {
  const path = resolve(file);
  const base = dirname(path);
  const rel = (p: string) => {
    const r = relative(base, resolve(p));
    return r.startsWith('..') || isAbsolute(r) ? resolve(p) : r;
  };
  const references: Record<string, { fasta: string; genes?: string }> = {};
  for (const [name, e] of Object.entries(refs)) references[name] = { fasta: rel(e.fasta), ...(e.genes ? { genes: rel(e.genes) } : {}) };
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify({ references }, null, 2)}\n`);
  await rename(tmp, path);
}
