/**
 * The provider registry: provider_id → ProviderConfig, behind one interface with two
 * backends:
 *
 * - a local JSON file (the embedded default): `{ "version": 1, "providers": { id: config } }`,
 *   rewritten atomically (temp file + rename) on every change;
 * - a DynamoDB table (`dynamodb://table`): partition key `provider_id` (S), the validated
 *   config as a JSON string in `config`, plus `kind` and `updated_at` for people browsing
 *   the table. Endpoint and region come from AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL and
 *   AWS_REGION (so tests point it at dynalite). `put` creates the table when it is missing;
 *   reads of a missing table fail with REGISTRY_TABLE_MISSING.
 *
 * Every config is validated with ProviderSchema on the way in and on the way out, so a
 * registry can hold secret *references* only (env:NAME or a secretsmanager ARN).
 */
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { GenolakeError, InputError } from '../util/errors.js';
import { ProviderSchema, type ProviderConfig, type ProviderInput } from './provider.js';

export interface ProviderRegistry {
  /** `/path/providers.json` or `dynamodb://table`. */
  describe(): string;
  get(providerId: string): Promise<ProviderConfig | undefined>;
  /** All providers, sorted by id. */
  list(): Promise<ProviderConfig[]>;
  /** Adds or replaces a provider; returns the stored (validated, defaults applied) config. */
  put(provider: ProviderInput): Promise<ProviderConfig>;
  /** Removes a provider; false when it was not there. */
  remove(providerId: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Validates a provider config, turning zod issues into one InputError naming the field. */
export function parseProvider(input: unknown, where: { file?: string; record?: number } = {}): ProviderConfig {
  const r = ProviderSchema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue.path.map(String).join('.') || undefined;
  // zod messages describe the rule, never echo the value (which could be a pasted secret).
  throw new InputError('PROVIDER_INVALID', issue.message, { ...where, ...(field ? { field } : {}) });
}

export async function openRegistry(uri: string): Promise<ProviderRegistry> {
  const m = /^dynamodb:\/\/([A-Za-z0-9_.-]{3,255})\/?$/.exec(uri);
  if (m) {
    const { DynamoRegistry } = await import('./registry-dynamodb.js');
    return new DynamoRegistry(m[1]);
  }
  if (/^dynamodb:/i.test(uri)) throw new InputError('REGISTRY_BAD_URI', 'a DynamoDB registry is dynamodb://<table> (3-255 letters, digits, _ . -)', { field: 'registry' });
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !/^file:\/\//i.test(uri)) {
    throw new InputError('REGISTRY_BAD_URI', 'a registry is a JSON file path or dynamodb://<table>', { field: 'registry' });
  }
  return new FileRegistry(uri.replace(/^file:\/\//i, ''));
}

const FileSchema = z.object({
  version: z.literal(1),
  providers: z.record(z.string(), z.unknown()),
});

export class FileRegistry implements ProviderRegistry {
  readonly path: string;

  constructor(path: string) {
    this.path = resolve(path);
  }

  describe(): string {
    return this.path;
  }

  private async load(): Promise<Map<string, ProviderConfig>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
      throw new GenolakeError('REGISTRY_READ', `cannot read the provider registry: ${(e as Error).message}`, { file: this.path });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new InputError('REGISTRY_BAD_FILE', 'the provider registry is not valid JSON', { file: this.path });
    }
    const parsed = FileSchema.safeParse(doc);
    if (!parsed.success) throw new InputError('REGISTRY_BAD_FILE', 'expected {"version": 1, "providers": {<id>: {...}}}', { file: this.path });
    const out = new Map<string, ProviderConfig>();
    for (const [id, cfg] of Object.entries(parsed.data.providers)) {
      const p = parseProvider(cfg, { file: this.path });
      if (p.id !== id) throw new InputError('REGISTRY_BAD_FILE', `provider under key ${id} has id ${p.id}`, { file: this.path, field: `providers.${id}.id` });
      out.set(id, p);
    }
    return out;
  }

  /** Writes the whole registry to a temp file in the same directory, then renames it over the old one. */
  private async save(providers: Map<string, ProviderConfig>): Promise<void> {
    const sorted = Object.fromEntries([...providers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const text = `${JSON.stringify({ version: 1, providers: sorted }, null, 2)}\n`;
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw new GenolakeError('REGISTRY_WRITE', `cannot write the provider registry: ${(e as Error).message}`, { file: this.path });
    }
  }

  async get(providerId: string): Promise<ProviderConfig | undefined> {
    return (await this.load()).get(providerId);
  }

  async list(): Promise<ProviderConfig[]> {
    return [...(await this.load()).values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async put(provider: ProviderInput): Promise<ProviderConfig> {
    const p = parseProvider(provider);
    return this.exclusive(async () => {
      const all = await this.load();
      all.set(p.id, p);
      await this.save(all);
      return p;
    });
  }

  async remove(providerId: string): Promise<boolean> {
    return this.exclusive(async () => {
      const all = await this.load();
      if (!all.delete(providerId)) return false;
      await this.save(all);
      return true;
    });
  }

  /**
   * Read-modify-write under a lock, so concurrent `providers add` never lose an update:
   * a queue within this process and a `<file>.lock` (O_EXCL) between processes. A lock
   * older than 30 s is taken to be left over from a crash and broken.
   */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const prev = FileRegistry.queues.get(this.path) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(async () => {
      const lock = `${this.path}.lock`;
      await mkdir(dirname(this.path), { recursive: true });
      for (let waited = 0; ; waited += 50) {
        try {
          await (await open(lock, 'wx')).close();
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? Date.now());
          if (age > 30_000) await rm(lock, { force: true });
          else if (waited > 10_000) throw new GenolakeError('REGISTRY_LOCKED', `the provider registry is locked by another process (${lock})`, { file: this.path });
          else await new Promise((r) => setTimeout(r, 50));
        }
      }
      try {
        return await fn();
      } finally {
        await rm(lock, { force: true });
      }
    });
    FileRegistry.queues.set(this.path, run);
    return run;
  }

  private static readonly queues = new Map<string, Promise<unknown>>();

  async close(): Promise<void> {}
}
