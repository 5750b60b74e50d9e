/**
 * HTTP to one provider with every protection applied to each request: rate limiting,
 * circuit breaker, a timeout covering the whole request (body included), and retries with
 * full-jitter backoff on 429/5xx/network errors that honour Retry-After.
 *
 * Logs and error messages name the request by a label ("GET Patient"), never by URL: URLs
 * carry the provider's patient id, which is an identifier we keep out of logs.
 */
import type { Logger } from '../util/log.js';
import { GenolakeError } from '../util/errors.js';
import { backoffDelay, parseRetryAfter, RateLimiter, type CircuitBreaker, type Clock } from './resilience.js';

export type ProviderErrorCode =
  | 'PROVIDER_TIMEOUT'
  | 'PROVIDER_UNREACHABLE'
  | 'PROVIDER_HTTP_ERROR'
  | 'PROVIDER_RATE_LIMITED'
  | 'PROVIDER_NOT_FOUND'
  | 'PROVIDER_AUTH_FAILED'
  | 'PROVIDER_CIRCUIT_OPEN'
  | 'PROVIDER_BAD_RESPONSE'
  | 'PROVIDER_CONFIG';

/** A provider failure. Messages never contain PHI, URLs with ids, or secrets. */
export class ProviderError extends GenolakeError {
  readonly status?: number;
  readonly attempts: number;

  constructor(code: ProviderErrorCode, message: string, opts: { status?: number; attempts?: number; cause?: unknown } = {}) {
    super(code, message, {}, { cause: opts.cause });
    this.name = 'ProviderError';
    this.status = opts.status;
    this.attempts = opts.attempts ?? 0;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), status: this.status, attempts: this.attempts };
  }
}

export interface HttpPolicy {
  timeoutMs: number;
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
}

export interface HttpRequest {
  method?: 'GET' | 'POST';
  url: URL;
  headers?: Record<string, string>;
  body?: string;
  /** PHI-free name for logs and errors, e.g. "GET Condition". */
  label: string;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  body: string;
}

export interface ProviderHttpDeps {
  providerId: string;
  policy: HttpPolicy;
  breaker: CircuitBreaker;
  rateLimiter: RateLimiter;
  clock: Clock;
  random: () => number;
  log: Logger;
  fetch?: typeof globalThis.fetch;
}

type Outcome =
  | { kind: 'ok'; res: HttpResponse }
  | { kind: 'retry'; error: ProviderError; retryAfterMs?: number; health: 'failure' | 'neutral' }
  | { kind: 'fail'; error: ProviderError; health: 'failure' | 'neutral' };

export class ProviderHttp {
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(private readonly deps: ProviderHttpDeps) {
    this.fetchImpl = deps.fetch ?? globalThis.fetch;
  }

  get providerId(): string {
    return this.deps.providerId;
  }

  /** Sends `req` until it succeeds (2xx) or fails for good; throws ProviderError. */
  async request(req: HttpRequest, signal?: AbortSignal): Promise<HttpResponse> {
    const { policy, breaker, clock, log, providerId } = this.deps;
    for (let attempt = 1; ; attempt++) {
      if (!breaker.tryAcquire()) {
        throw new ProviderError('PROVIDER_CIRCUIT_OPEN', `${req.label}: circuit open for provider ${providerId}`, {
          attempts: attempt - 1,
        });
      }
      await this.deps.rateLimiter.acquire(signal);
      const outcome = await this.once(req, attempt, signal);
      if (outcome.kind === 'ok') {
        breaker.onSuccess();
        return outcome.res;
      }
      if (outcome.health === 'failure') breaker.onFailure();
      else breaker.onNeutral();
      const err = outcome.error;
      if (outcome.kind === 'fail' || attempt >= policy.maxAttempts) {
        throw new ProviderError(err.code as ProviderErrorCode, err.message, { status: err.status, attempts: attempt, cause: err.cause });
      }
      let delay = backoffDelay(attempt, policy.baseDelayMs, policy.maxDelayMs, this.deps.random);
      if (outcome.retryAfterMs !== undefined) {
        if (outcome.retryAfterMs > policy.maxRetryAfterMs) {
          throw new ProviderError(
            err.code as ProviderErrorCode,
            `${err.message}; Retry-After ${Math.ceil(outcome.retryAfterMs / 1000)} s exceeds the ${policy.maxRetryAfterMs} ms limit`,
            { status: err.status, attempts: attempt },
          );
        }
        delay = outcome.retryAfterMs;
      }
      log.warn({ provider_id: providerId, request: req.label, attempt, error_code: err.code, status: err.status, delay_ms: delay }, 'provider request failed; retrying');
      await clock.sleep(delay, signal);
    }
  }

  /** Convenience: GET/POST and parse a JSON body. */
  async json(req: HttpRequest, signal?: AbortSignal): Promise<unknown> {
    const res = await this.request({ ...req, headers: { accept: 'application/fhir+json, application/json', ...req.headers } }, signal);
    try {
      return JSON.parse(res.body) as unknown;
    } catch (e) {
      throw new ProviderError('PROVIDER_BAD_RESPONSE', `${req.label}: response is not JSON`, { status: res.status, cause: e });
    }
  }

  private async once(req: HttpRequest, attempt: number, outer?: AbortSignal): Promise<Outcome> {
    const { policy, clock, log, providerId } = this.deps;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(new ProviderError('PROVIDER_TIMEOUT', 'timeout')), policy.timeoutMs);
    const onOuter = (): void => ctl.abort(outer?.reason);
    outer?.addEventListener('abort', onOuter, { once: true });
    const started = clock.now();
    try {
      const res = await this.fetchImpl(req.url, {
        method: req.method ?? 'GET',
        headers: req.headers,
        body: req.body,
        signal: ctl.signal,
        // A redirect could carry our credentials to another host: refuse it.
        redirect: 'error',
      });
      const body = await res.text();
      log.debug({ provider_id: providerId, request: req.label, attempt, status: res.status, ms: clock.now() - started }, 'provider response');
      return classify(req.label, res.status, res.headers, body, clock.now());
    } catch (e) {
      if (outer?.aborted) throw outer.reason;
      if (ctl.signal.aborted) {
        const error = new ProviderError('PROVIDER_TIMEOUT', `${req.label}: no complete response within ${policy.timeoutMs} ms`);
        return { kind: 'retry', error, health: 'failure' };
      }
      const code = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).name;
      const error = new ProviderError('PROVIDER_UNREACHABLE', `${req.label}: network error (${code})`, { cause: e });
      return { kind: 'retry', error, health: 'failure' };
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    }
  }
}

/** FHIR OperationOutcome → its issue codes (never `diagnostics`, which may echo PHI). */
function outcomeCodes(body: string): string {
  try {
    const o = JSON.parse(body) as { resourceType?: string; issue?: Array<{ code?: string }> };
    if (o.resourceType === 'OperationOutcome' && Array.isArray(o.issue)) {
      const codes = o.issue.map((i) => i.code).filter(Boolean);
      if (codes.length) return ` (OperationOutcome: ${codes.join(', ')})`;
    }
  } catch {
    /* not JSON: nothing to add */
  }
  return '';
}

function classify(label: string, status: number, headers: Headers, body: string, now: number): Outcome {
  if (status >= 200 && status < 300) return { kind: 'ok', res: { status, headers, body } };
  const detail = `${label}: HTTP ${status}${outcomeCodes(body)}`;
  if (status === 429) {
    const error = new ProviderError('PROVIDER_RATE_LIMITED', detail, { status });
    // Throttling says the provider is alive: it does not count against the circuit.
    return { kind: 'retry', error, retryAfterMs: parseRetryAfter(headers.get('retry-after'), now), health: 'neutral' };
  }
  if (status >= 500) {
    const error = new ProviderError('PROVIDER_HTTP_ERROR', detail, { status });
    return { kind: 'retry', error, retryAfterMs: parseRetryAfter(headers.get('retry-after'), now), health: 'failure' };
  }
  if (status === 404 || status === 410) return { kind: 'fail', error: new ProviderError('PROVIDER_NOT_FOUND', detail, { status }), health: 'neutral' };
  if (status === 401 || status === 403) return { kind: 'fail', error: new ProviderError('PROVIDER_AUTH_FAILED', detail, { status }), health: 'neutral' };
  return { kind: 'fail', error: new ProviderError('PROVIDER_HTTP_ERROR', detail, { status }), health: 'neutral' };
}
