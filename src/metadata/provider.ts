/**
 * A provider's entry in the registry. Auth holds a *reference* to a secret (an environment
 * variable name or an AWS Secrets Manager ARN), never the secret itself: the registry
 * (a JSON file or a DynamoDB table) is readable by operators and gets copied around.
 */
import { z } from 'zod';
import { PATIENT_DATA_FIELDS } from './facts.js';

/** `env:NAME` or `arn:aws:secretsmanager:region:account:secret:name` (optionally `#jsonKey`). */
export const SecretRefSchema = z
  .string()
  .regex(
    /^(env:[A-Za-z_][A-Za-z0-9_]*|arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+(#[A-Za-z0-9_.-]+)?)$/,
    'must be a secret reference (env:VAR_NAME or a secretsmanager ARN), never the secret itself',
  );
export type SecretRef = z.infer<typeof SecretRefSchema>;

export const AuthSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }),
  /** The secret is sent as-is in `header` (default `X-API-Key`). */
  z.object({ type: z.literal('api-key'), secret: SecretRefSchema, header: z.string().min(1).default('X-API-Key') }),
  /** The secret is a bearer token sent as `Authorization: Bearer …`. */
  z.object({ type: z.literal('bearer'), secret: SecretRefSchema }),
  /** OAuth2 client credentials grant (SMART backend services style, with a client secret). */
  z.object({
    type: z.literal('oauth2'),
    tokenUrl: z.url(),
    clientId: z.string().min(1),
    clientSecret: SecretRefSchema,
    scope: z.string().optional(),
  }),
]);
export type ProviderAuth = z.infer<typeof AuthSchema>;

export const RetrySchema = z.object({
  /** Total attempts per request, first one included. */
  maxAttempts: z.number().int().min(1).max(20).default(4),
  /** Backoff is full jitter: random(0, min(maxDelayMs, baseDelayMs·2^(attempt-1))). */
  baseDelayMs: z.number().int().min(0).default(250),
  maxDelayMs: z.number().int().min(0).default(10_000),
  /** A Retry-After longer than this is not waited for: the request fails instead of blocking. */
  maxRetryAfterMs: z.number().int().min(0).default(60_000),
});

export const BreakerSchema = z.object({
  /** Consecutive failed attempts (timeouts, network errors, 5xx) that open the circuit. */
  failureThreshold: z.number().int().min(1).default(5),
  /** How long the circuit stays open before one trial request is let through. */
  cooldownMs: z.number().int().min(0).default(30_000),
});

export const FieldSchema = z.enum(PATIENT_DATA_FIELDS);

export const ProviderSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, . _ - (max 128)'),
  /** Adapter kind, resolved by the adapter factory (built in: fhir, csv, json). */
  kind: z.string().regex(/^[a-z][a-z0-9-]*$/),
  /** FHIR base URL (http/https), or the export file (path or file:// URL) for csv/json. */
  url: z.string().min(1),
  auth: AuthSchema.default({ type: 'none' }),
  /** Per-request timeout (whole request, body included). */
  timeoutMs: z.number().int().min(1).default(10_000),
  /** Requests per second to this provider (spacing between request starts); absent = unlimited. */
  rateLimitPerSecond: z.number().positive().optional(),
  retry: RetrySchema.prefault({}),
  breaker: BreakerSchema.prefault({}),
  /** The patients-table columns to store; everything else is dropped (and not even fetched). */
  fields: z.array(FieldSchema).default([...PATIENT_DATA_FIELDS]),
  /** Store the provider's own patient id in the table (off: it stays out of the lake's tables). */
  storeProviderPatientId: z.boolean().default(false),
});

export type ProviderConfig = z.infer<typeof ProviderSchema>;
/** What a user writes: everything with a default may be left out. */
export type ProviderInput = z.input<typeof ProviderSchema>;
