/**
 * Secret references → secret values, at the moment a request needs them. The values are
 * held only in memory by the adapter that asked, and never logged or written anywhere.
 */
import { ProviderError, type ProviderHttp } from './http.js';
import type { ProviderAuth, SecretRef } from './provider.js';
import type { Clock } from './resilience.js';

export type SecretResolver = (ref: SecretRef) => Promise<string>;

/** `env:NAME` from the environment; secretsmanager ARNs through the optional AWS client. */
export function defaultSecretResolver(env: NodeJS.ProcessEnv = process.env): SecretResolver {
  return async (ref) => {
    if (ref.startsWith('env:')) {
      const name = ref.slice(4);
      const v = env[name];
      if (!v) throw new ProviderError('PROVIDER_CONFIG', `secret ${ref} is not set in the environment`);
      return v;
    }
    return resolveSecretsManager(ref);
  };
}

async function resolveSecretsManager(ref: string): Promise<string> {
  const [arn, jsonKey] = ref.split('#', 2) as [string, string | undefined];
  // Optional dependency: only deployments that use ARNs install it.
  const modName = '@aws-sdk/client-secrets-manager';
  let mod: {
    SecretsManagerClient: new (cfg: { region?: string }) => { send(cmd: unknown): Promise<{ SecretString?: string }> };
    GetSecretValueCommand: new (input: { SecretId: string }) => unknown;
  };
  try {
    mod = (await import(modName)) as typeof mod;
  } catch {
    throw new ProviderError('PROVIDER_CONFIG', `secret ${arn} needs ${modName}; install it (npm install ${modName})`);
  }
  const region = arn.split(':')[3];
  const out = await new mod.SecretsManagerClient({ region }).send(new mod.GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new ProviderError('PROVIDER_CONFIG', `secret ${arn} has no string value`);
  if (!jsonKey) return out.SecretString;
  const v = (JSON.parse(out.SecretString) as Record<string, unknown>)[jsonKey];
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
