/**
 * Secret references → secret values, at the moment a request needs them. The values are
 * held only in memory by the adapter that asked, and never logged or written anywhere.
 */
import { ProviderError, type ProviderHttp } from './http.js';
import type { ProviderAuth, SecretRef } from './provider.js';
import type { Clock } from './resilience.js';

export type SecretResolver = (ref: SecretRef) => Promise<string>;

/** How long a secret read from Secrets Manager is reused before it is read again (rotation). */
export const SECRET_CACHE_MS = 5 * 60_000;

/**
 * `env:NAME` from the environment; secretsmanager ARNs from AWS Secrets Manager (region
 * from the ARN, credentials and endpoint the SDK's usual way: AWS_* environment, profile,
 * instance role; AWS_ENDPOINT_URL_SECRETS_MANAGER for a private endpoint). A provider asks
 * for its secret on every request, so a secret read from AWS is kept (in this resolver's
 * memory only) for SECRET_CACHE_MS; a failed read is not kept.
 */
export function defaultSecretResolver(env: NodeJS.ProcessEnv = process.env, now: () => number = Date.now): SecretResolver {
  const read = new Map<string, { at: number; secret: Promise<string> }>();
  return async (ref) => {
    if (ref.startsWith('env:')) {
      const name = ref.slice(4);
      const v = env[name];
      if (!v) throw new ProviderError('PROVIDER_CONFIG', `secret ${ref} is not set in the environment`);
      return v;
    }
    const [arn, jsonKey] = ref.split('#', 2) as [string, string | undefined];
    let hit = read.get(arn);
    if (!hit || now() - hit.at > SECRET_CACHE_MS) {
      const secret = readSecretsManager(arn);
      secret.catch(() => read.delete(arn));
      read.set(arn, (hit = { at: now(), secret }));
    }
    return secretField(arn, await hit.secret, jsonKey);
  };
}

async function readSecretsManager(arn: string): Promise<string> {
  // Loaded on first use: runs whose providers use env: secrets never load the AWS client.
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  const client = new SecretsManagerClient({ region: arn.split(':')[3], maxAttempts: 2 });
  let secret: string | undefined;
  try {
    secret = (await client.send(new GetSecretValueCommand({ SecretId: arn }))).SecretString;
  } catch (e) {
    // The provider's request fails like any provider failure (metadata marked missing, alarm);
    // the message names the secret reference and the AWS error, never a value.
    const err = e as { name?: string; message?: string };
    throw new ProviderError('PROVIDER_CONFIG', `secret ${arn} could not be read from Secrets Manager: ${err.name ?? 'Error'}: ${err.message ?? String(e)}`);
  } finally {
    client.destroy();
  }
  if (!secret) throw new ProviderError('PROVIDER_CONFIG', `secret ${arn} has no string value`);
  return secret;
}

/** The secret, or one string field of it when the reference names a JSON key (`ARN#key`). */
function secretField(arn: string, secret: string, jsonKey: string | undefined): string {
  if (!jsonKey) return secret;
  let v: unknown;
  try {
    v = (JSON.parse(secret) as Record<string, unknown>)[jsonKey];
  } catch {
    throw new ProviderError('PROVIDER_CONFIG', `secret ${arn} is not a JSON object, so it has no key ${jsonKey}`);
  }
  if (typeof v !== 'string') throw new ProviderError('PROVIDER_CONFIG', `secret ${arn} has no string key ${jsonKey}`);
  return v;
}

/** Produces the auth headers for a provider, caching OAuth2 tokens until shortly before expiry. */
export class AuthHeaders {
  private token?: { value: string; expiresAt: number };

  constructor(
    private readonly auth: ProviderAuth,
    private readonly secrets: SecretResolver,
    private readonly http: ProviderHttp,
    private readonly clock: Clock,
  ) {}

  async headers(signal?: AbortSignal): Promise<Record<string, string>> {
    const a = this.auth;
    switch (a.type) {
      case 'none':
        return {};
      case 'api-key':
        return { [a.header]: await this.secrets(a.secret) };
      case 'bearer':
        return { authorization: `Bearer ${await this.secrets(a.secret)}` };
      case 'oauth2':
        return { authorization: `Bearer ${await this.oauthToken(a, signal)}` };
    }
  }

  /** Forget a cached token (after a 401 it may have been revoked). */
  invalidate(): void {
    this.token = undefined;
  }

  private async oauthToken(a: Extract<ProviderAuth, { type: 'oauth2' }>, signal?: AbortSignal): Promise<string> {
    if (this.token && this.token.expiresAt > this.clock.now()) return this.token.value;
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: a.clientId, client_secret: await this.secrets(a.clientSecret) });
    if (a.scope) form.set('scope', a.scope);
    const body = (await this.http.json(
      { method: 'POST', url: new URL(a.tokenUrl), label: 'POST oauth2 token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() },
      signal,
    )) as { access_token?: unknown; expires_in?: unknown };
    if (typeof body.access_token !== 'string') throw new ProviderError('PROVIDER_AUTH_FAILED', 'POST oauth2 token: no access_token in the response');
    const ttl = typeof body.expires_in === 'number' ? body.expires_in * 1000 : 300_000;
    // Renew 30 s early so a token does not expire between the check and the request.
    this.token = { value: body.access_token, expiresAt: this.clock.now() + Math.max(0, ttl - 30_000) };
    return this.token.value;
  }
}
