/**
 * `genolake providers add|list|remove`: the provider registry (a JSON file, the default,
 * or a DynamoDB table with `--registry dynamodb://table`). Auth is given as a *reference*
 * to a secret (--auth-env VAR or --auth-secret-arn ARN); the secret itself never enters
 * the registry.
 */
import { isAbsolute, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { defaultAdapterFactory } from '../../metadata/adapters/index.js';
import { PATIENT_DATA_FIELDS, type PatientDataField } from '../../metadata/facts.js';
import type { ProviderAuth, ProviderConfig, ProviderInput } from '../../metadata/provider.js';
import { openRegistry, type ProviderRegistry } from '../../metadata/registry.js';
import { InputError } from '../../util/errors.js';
import { out, positiveInt } from './common.js';

export const DEFAULT_REGISTRY = './providers.json';

export function registryOption(cmd: Command): Command {
  return cmd.option('--registry <file|dynamodb://table>', 'provider registry (env GENOLAKE_REGISTRY)', process.env.GENOLAKE_REGISTRY ?? DEFAULT_REGISTRY);
}

function fieldList(value: string): PatientDataField[] {
  const fields = value
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  for (const f of fields) {
    if (!(PATIENT_DATA_FIELDS as readonly string[]).includes(f)) throw new InvalidArgumentError(`unknown field ${JSON.stringify(f)} (known: ${PATIENT_DATA_FIELDS.join(', ')})`);
  }
  return fields as PatientDataField[];
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got ${JSON.stringify(value)}`);
  return n;
}

export async function withRegistry<T>(uri: string, fn: (r: ProviderRegistry) => Promise<T>): Promise<T> {
  const reg = await openRegistry(uri);
  try {
    return await fn(reg);
  } finally {
    await reg.close();
  }
}

interface AddOptions {
  registry: string;
  id: string;
  kind: string;
  url: string;
  authEnv?: string;
  authSecretArn?: string;
  authType?: 'api-key' | 'bearer' | 'oauth2';
  authHeader?: string;
  oauthTokenUrl?: string;
  oauthClientId?: string;
  oauthScope?: string;
  timeoutMs?: number;
  rateLimit?: number;
  maxAttempts?: number;
  fields?: PatientDataField[];
  storeProviderPatientId?: boolean;
}

/** CLI flags → a provider config input (validated by the registry on put). */
export function providerFromOptions(o: AddOptions): ProviderInput {
  if (o.authEnv && o.authSecretArn) throw new InputError('PROVIDER_AUTH', 'give --auth-env or --auth-secret-arn, not both', { field: 'auth' });
  const secret = o.authEnv ? `env:${o.authEnv}` : o.authSecretArn;
  let auth: ProviderAuth | undefined;
  const type = o.authType ?? (o.oauthTokenUrl ? 'oauth2' : secret ? 'bearer' : undefined);
  if (type && !secret) throw new InputError('PROVIDER_AUTH', `--auth-type ${type} needs --auth-env VAR or --auth-secret-arn ARN`, { field: 'auth' });
  if (type === 'api-key') auth = { type, secret: secret!, header: o.authHeader ?? 'X-API-Key' };
  else if (type === 'bearer') auth = { type, secret: secret! };
  else if (type === 'oauth2') {
    if (!o.oauthTokenUrl || !o.oauthClientId) throw new InputError('PROVIDER_AUTH', 'oauth2 needs --oauth-token-url and --oauth-client-id', { field: 'auth' });
    auth = { type, tokenUrl: o.oauthTokenUrl, clientId: o.oauthClientId, clientSecret: secret!, ...(o.oauthScope ? { scope: o.oauthScope } : {}) };
  }
  // A relative export-file path would depend on where each later command runs: store it absolute.
  const url = /^[a-z][a-z0-9+.-]*:/i.test(o.url) || isAbsolute(o.url) ? o.url : resolve(o.url);
  return {
    id: o.id,
    kind: o.kind,
    url,
    ...(auth ? { auth } : {}),
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.rateLimit !== undefined ? { rateLimitPerSecond: o.rateLimit } : {}),
    ...(o.maxAttempts !== undefined ? { retry: { maxAttempts: o.maxAttempts } } : {}),
    ...(o.fields ? { fields: o.fields } : {}),
    ...(o.storeProviderPatientId ? { storeProviderPatientId: true } : {}),
  };
}

function describeAuth(a: ProviderAuth): string {
  switch (a.type) {
    case 'none':
      return 'none';
    case 'api-key':
      return `api-key ${a.header}=${a.secret}`;
    case 'bearer':
      return `bearer ${a.secret}`;
    case 'oauth2':
      return `oauth2 ${a.clientId}@${a.tokenUrl} ${a.clientSecret}`;
  }
}

export function formatProvider(p: ProviderConfig): string {
  return [p.id, p.kind, p.url, `auth=${describeAuth(p.auth)}`, `timeout=${p.timeoutMs}ms`, `fields=${p.fields.join(',')}`, ...(p.storeProviderPatientId ? ['stores-provider-patient-id'] : [])].join('  ');
}

export function register(program: Command): void {
  const providers = program.command('providers').description('manage the provider registry (where patient metadata comes from)');
  const kinds = defaultAdapterFactory().kinds();

  registryOption(
    providers
      .command('add')
      .description('add or replace a provider (auth is a reference to a secret, never the secret)')
      .requiredOption('--id <id>', 'provider id (letters, digits, . _ -)')
      .addOption(new Option('--kind <kind>', 'adapter kind').choices(kinds).makeOptionMandatory())
      .requiredOption('--url <url>', 'FHIR base URL, or the export file (path, file:// or http(s) URL)')
      .option('--auth-env <VAR>', 'the secret is in environment variable VAR')
      .option('--auth-secret-arn <arn>', 'the secret is in AWS Secrets Manager (ARN, optionally #jsonKey)')
      .addOption(new Option('--auth-type <type>', 'how the secret is sent (default bearer; oauth2 when --oauth-token-url)').choices(['api-key', 'bearer', 'oauth2']))
      .option('--auth-header <name>', 'header for --auth-type api-key', 'X-API-Key')
      .option('--oauth-token-url <url>', 'OAuth2 client-credentials token endpoint')
      .option('--oauth-client-id <id>', 'OAuth2 client id')
      .option('--oauth-scope <scope>', 'OAuth2 scope')
      .option('--timeout-ms <ms>', 'per-request timeout', positiveInt)
      .option('--rate-limit <per-second>', 'requests per second to this provider', positiveNumber)
      .option('--max-attempts <n>', 'attempts per request, first included', positiveInt)
      .option('--fields <a,b,...>', `patients-table fields to store (default all: ${PATIENT_DATA_FIELDS.join(',')})`, fieldList)
      .option('--store-provider-patient-id', "store the provider's patient id in the patients table (off by default)"),
  ).action(async (o: AddOptions) => {
    const p = await withRegistry(o.registry, (r) => r.put(providerFromOptions(o)));
    out(`added ${formatProvider(p)}`);
  });

  registryOption(providers.command('list').description('list the providers').option('--json', 'print JSON')).action(async (o: { registry: string; json?: boolean }) => {
    const all = await withRegistry(o.registry, (r) => r.list());
    if (o.json) return out(JSON.stringify(all, null, 2));
    for (const p of all) out(formatProvider(p));
  });

  registryOption(providers.command('remove').description('remove a provider').requiredOption('--id <id>', 'provider id')).action(async (o: { registry: string; id: string }) => {
    const removed = await withRegistry(o.registry, (r) => r.remove(o.id));
    if (!removed) throw new InputError('PROVIDER_UNKNOWN', `provider ${o.id} is not in the registry`, { field: 'id' });
    out(`removed ${o.id}`);
  });
}
