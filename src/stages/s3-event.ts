/**
 * Ingest triggered by S3: a Lambda-style handler for the `ObjectCreated` event S3 sends
 * when a lab uploads an archive (e.g. to `s3://bucket/<lake prefix>/incoming/`).
 *
 *     export const handler = createS3EventHandler({ lake: 's3://my-bucket/lake' });
 *
 * Each record's key is URL-encoded by S3 (spaces as '+'); it is decoded, mapped to a
 * key of the lake, and ingested with `ingestFromLake`. Records the lake writes itself
 * (`raw/`, `staged/`, `curated/`, `experimental/`, `_...`) and folder markers are
 * skipped, so a bucket-wide notification cannot make ingest trigger itself.
 *
 * A bad archive is a result (`refused`, with the error), not a thrown error: retrying
 * cannot fix it. Any other failure (the store is unreachable, ...) is thrown after all
 * records were tried, so Lambda retries the event; records already ingested are then
 * recognised as duplicates.
 */
import { openLake } from '../lake/open.js';
import type { Lake, LakeConfig } from '../lake/types.js';
import { isGenolakeError, InputError } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/log.js';
import { ingestFromLake, type IngestOptions, type IngestResult } from './ingest.js';

/** The part of an S3 event notification record that ingest reads. */
export interface S3EventRecord {
  eventSource?: string;
  eventName?: string;
  s3: {
    bucket: { name: string };
    object: { key: string; size?: number };
  };
}

export interface S3Event {
  Records?: S3EventRecord[];
}

export type S3RecordStatus = 'ingested' | 'duplicate' | 'skipped' | 'refused';

export interface S3RecordOutcome {
  bucket: string;
  /** Decoded object key as S3 stores it. */
  key: string;
  status: S3RecordStatus;
  runId?: string;
  /** Why a record was skipped. */
  reason?: string;
  /** The input error of a refused archive. */
  error?: { code: string; message: string };
}

export interface S3EventResult {
  results: S3RecordOutcome[];
}

export interface S3EventHandlerOptions {
  /** The lake, its config, or its URI (`s3://bucket/prefix`); opened once, lazily. */
  lake: Lake | LakeConfig | string;
  /** Called after each successful (or duplicate) ingest, e.g. to start the pipeline. */
  onIngested?(result: IngestResult, record: S3RecordOutcome): unknown;
  limits?: IngestOptions['limits'];
  log?: Logger;
}

export type S3EventHandler = (event: S3Event, context?: unknown) => Promise<S3EventResult>;

/** S3 event keys are URL-encoded with '+' for spaces. */
export function decodeS3Key(raw: string): string {
  return decodeURIComponent(raw.replace(/\+/g, ' '));
}

/** Lake areas ingest writes to (or that are internal): uploads there are never drops. */
const LAKE_ZONES = new Set(['raw', 'staged', 'curated', 'experimental']);

function isLake(x: Lake | LakeConfig | string): x is Lake {
  return typeof x === 'object' && typeof (x as Lake).put === 'function';
}

/**
 * Where an S3 object is in the lake: its key relative to the lake root, or why it is not
 * a drop for this lake. For a local lake (tests, on-premises setups that mirror S3
 * notifications) the key is taken as a lake key and the bucket is not checked.
 */
export function lakeKeyFor(lake: Lake, bucket: string, key: string): { key: string } | { skip: string } {
  let rel = key;
  const cfg = lake.config;
  if (cfg.kind === 's3') {
    if (bucket !== cfg.bucket) return { skip: `bucket ${bucket} is not the lake's bucket ${cfg.bucket}` };
    const prefix = cfg.prefix ? `${cfg.prefix.replace(/\/+$/, '')}/` : '';
    if (!key.startsWith(prefix)) return { skip: `key is outside the lake prefix ${prefix}` };
    rel = key.slice(prefix.length);
  }
  if (rel === '' || rel.endsWith('/')) return { skip: 'a folder marker, not an archive' };
  const first = rel.split('/')[0];
  if (LAKE_ZONES.has(first) || first.startsWith('_')) return { skip: `${first}/ is written by genolake itself` };
  if (rel.split('/').some((s) => s === '..' || s === '.' || s.startsWith('.tmp-'))) return { skip: 'not a plain object key' };
  return { key: rel };
}

export function createS3EventHandler(opts: S3EventHandlerOptions): S3EventHandler {
  const log = (opts.log ?? silentLogger()).child({ stage: 's3-event' });
  let lakePromise: Promise<Lake> | undefined;
  const getLake = () => (lakePromise ??= isLake(opts.lake) ? Promise.resolve(opts.lake) : openLake(opts.lake));

  return async (event: S3Event): Promise<S3EventResult> => {
    const lake = await getLake();
    const results: S3RecordOutcome[] = [];
    const failures: unknown[] = [];
    for (const rec of event?.Records ?? []) {
      const bucket = rec?.s3?.bucket?.name ?? '';
      let key: string;
      try {
        key = decodeS3Key(rec?.s3?.object?.key ?? '');
      } catch {
        results.push({ bucket, key: rec?.s3?.object?.key ?? '', status: 'skipped', reason: 'key is not valid URL encoding' });
        continue;
      }
      const out: S3RecordOutcome = { bucket, key, status: 'skipped' };
      results.push(out);
      if (rec.eventName !== undefined && !rec.eventName.startsWith('ObjectCreated')) {
        out.reason = `event ${rec.eventName} is not ObjectCreated`;
        continue;
      }
      const where = lakeKeyFor(lake, bucket, key);
      if ('skip' in where) {
        out.reason = where.skip;
        log.info({ bucket, key, reason: where.skip }, 'skipped S3 event record');
        continue;
      }
      try {
        const res = await ingestFromLake(lake, where.key, { limits: opts.limits, log: opts.log, displayName: `s3://${bucket}/${key}` });
        out.status = res.duplicate ? 'duplicate' : 'ingested';
        out.runId = res.runId;
        if (opts.onIngested) await opts.onIngested(res, out);
      } catch (e) {
        if (e instanceof InputError || (isGenolakeError(e) && e.name === 'InputError')) {
          out.status = 'refused';
          out.error = { code: e.code, message: e.describe() };
          log.warn({ bucket, key, err: out.error }, 'refused dropped archive');
        } else {
          out.status = 'skipped';
          out.reason = `failed: ${e instanceof Error ? e.message : String(e)}`;
          failures.push(e);
          log.error({ bucket, key, err: e }, 'ingest failed');
        }
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} records of the S3 event failed`);
    return { results };
  };
}
