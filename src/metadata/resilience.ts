/**
 * The pieces that keep a slow or failing provider from hurting a run: an injectable clock
 * (so tests never really wait), full-jitter backoff, Retry-After parsing, a per-provider
 * circuit breaker and a request-spacing rate limiter.
 */

/** Time as the resilience code sees it; tests pass a fake one. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** Full jitter (AWS architecture blog): uniform in [0, min(cap, base·2^(attempt-1))]. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). Returns the wait
 * in ms (never negative), or undefined when the header is absent or unparseable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value == null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
}

/**
 * Closed: requests flow, consecutive failures are counted. Open (after `failureThreshold`
 * failures): requests are refused at once until `cooldownMs` has passed. Half-open: one
 * trial request is let through; its success closes the circuit, its failure reopens it.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;

  constructor(
    private readonly opts: BreakerOptions,
    private readonly clock: Clock,
  ) {}

  current(): BreakerState {
    if (this.state === 'open' && this.clock.now() - this.openedAt >= this.opts.cooldownMs) return 'half-open';
    return this.state;
  }

  /** Asks to send one request; false means the circuit refuses it. */
  tryAcquire(): boolean {
    const s = this.current();
    if (s === 'closed') return true;
    if (s === 'open') return false;
    if (this.trialInFlight) return false;
    this.state = 'half-open';
    this.trialInFlight = true;
    return true;
  }

  onSuccess(): void {
    this.state = 'closed';
    this.failures = 0;
    this.trialInFlight = false;
  }

  onFailure(): void {
    this.trialInFlight = false;
    if (this.state === 'half-open') return this.open();
    this.failures += 1;
    if (this.failures >= this.opts.failureThreshold) this.open();
  }

  /** A request that ended without telling anything about the provider's health (e.g. 404). */
  onNeutral(): void {
    if (this.state === 'half-open') this.onSuccess();
  }

  private open(): void {
    this.state = 'open';
    this.openedAt = this.clock.now();
    this.failures = 0;
  }
}

/**
 * One breaker per provider id. Owned by whoever runs many fetches (a `genolake run`, a
 * `metadata retry`) and passed in, so breakers are shared per run without module globals.
 */
export class CircuitBreakers {
  private readonly byProvider = new Map<string, CircuitBreaker>();

  constructor(private readonly clock: Clock = systemClock) {}

  for(providerId: string, opts: BreakerOptions): CircuitBreaker {
    let b = this.byProvider.get(providerId);
    if (!b) this.byProvider.set(providerId, (b = new CircuitBreaker(opts, this.clock)));
    return b;
  }
}

/** Spaces request starts `1000/perSecond` ms apart (a provider's published rate limit). */
export class RateLimiter {
  private next = 0;
  private readonly intervalMs: number;

  constructor(
    perSecond: number | undefined,
    private readonly clock: Clock,
  ) {
    this.intervalMs = perSecond ? 1000 / perSecond : 0;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.intervalMs === 0) return;
    const now = this.clock.now();
    const slot = Math.max(now, this.next);
    this.next = slot + this.intervalMs;
    if (slot > now) await this.clock.sleep(slot - now, signal);
  }
}
