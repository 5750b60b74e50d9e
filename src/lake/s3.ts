import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  paginateListObjectsV2,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { GenolakeError } from '../util/errors.js';
import {
  asPrefix,
  checkKey,
  checkObjectKey,
  checkPublishPrefixes,
  isHidden,
  markerBody,
  newStagingPrefix,
} from './keys.js';
import { PUBLISHED_MARKER, type Body, type Lake, type ObjectInfo, type S3LakeConfig } from './types.js';

/** Tuning knobs; the defaults suit AWS S3. Tests lower them to exercise paging and large-object paths. */
export interface S3LakeOptions {
  /** Multipart part size for streamed puts (bytes, >= 5 MiB on S3). Memory per put is about partSize * queueSize. */
  partSize?: number;
  /** Parts uploaded in parallel per put. */
  queueSize?: number;
  /** Buffers/strings up to this size go in one PutObject; larger ones are uploaded in parts. */
  singlePutMax?: number;
  /** Keys per ListObjectsV2 page (S3 caps it at 1000). */
  pageSize?: number;
  /** Objects copied in parallel during publish. */
  copyConcurrency?: number;
  /** Objects larger than this are re-uploaded in parts instead of CopyObject (S3's single-copy limit is 5 GiB). */
  copyObjectMax?: number;
}

const MiB = 1024 * 1024;
const DEFAULTS: Required<S3LakeOptions> = {
  partSize: 8 * MiB,
  queueSize: 4,
  singlePutMax: 8 * MiB,
  pageSize: 1000,
  copyConcurrency: 8,
  copyObjectMax: 5 * 1024 * MiB,
};

/** What the SDK throws: a name, and HTTP metadata when the service answered. */
interface SdkError {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function isMissingObject(e: unknown): boolean {
  const err = e as SdkError;
  if (err?.name === 'NoSuchBucket') return false;
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.$metadata?.httpStatusCode === 404;
}

/**
 * x-amz-copy-source is `bucket/key`, URL-encoded. Encoding every segment is what AWS
 * documents; '=' ':' '@' ',' are left literal because AWS accepts them as they are and
 * some S3-compatible servers (s3rver) decode the header with decodeURI, which would
 * leave '%3D' in Hive-style keys like `patient_id=P`.
 */
function copySource(bucket: string, key: string): string {
  const enc = key
    .split('/')
    .map((seg) => encodeURIComponent(seg).replace(/%3D/gi, '=').replace(/%3A/gi, ':').replace(/%40/gi, '@').replace(/%2C/gi, ','))
    .join('/');
  return `${bucket}/${enc}`;
}

/** Runs `fn` over items with at most `limit` in flight; rejects on the first failure. */
async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++];
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * A lake in an S3 bucket under a key prefix. Objects are written whole (PutObject or a
 * multipart upload that only becomes visible when completed). S3 has no rename, so
 * `publish` copies and writes the completion marker last; see `publish`.
 */
export class S3Lake implements Lake {
  readonly config: S3LakeConfig;
  /** The SDK client, for callers that need S3 features the Lake interface does not cover. */
  readonly client: S3Client;
  private readonly bucket: string;
  /** The lake root inside the bucket: '' or 'some/prefix/'. */
  private readonly root: string;
  private readonly opts: Required<S3LakeOptions>;

  constructor(config: S3LakeConfig, options: S3LakeOptions = {}) {
    if (config.kind !== 's3' || !config.bucket) {
      throw new GenolakeError('LAKE_BAD_CONFIG', 'an S3 lake needs kind "s3" and a bucket');
    }
    const prefix = (config.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.root = prefix === '' ? '' : asPrefix(prefix);
    this.config = { ...config, prefix };
    this.bucket = config.bucket;
    this.opts = { ...DEFAULTS, ...options };
    this.client = new S3Client({
      region: config.region ?? 'us-east-1',
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials: config.credentials,
      // S3-compatible stores (MinIO, s3rver, ...) do not all understand the SDK's default
      // CRC32 trailers and aws-chunked streaming bodies; with a custom endpoint we only
      // send checksums where the API demands them.
      requestChecksumCalculation: config.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
      responseChecksumValidation: config.endpoint ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED',
    });
  }

  describe(): string {
    return `s3://${this.bucket}/${this.config.prefix}`;
  }

  /** Releases the client's sockets; the lake cannot be used afterwards. */
  destroy(): void {
    this.client.destroy();
  }

  localPath(_key: string): undefined {
    return undefined;
  }

  private s3Key(key: string): string {
    return this.root + checkObjectKey(key);
  }

  private fail(op: string, key: string, e: unknown): GenolakeError {
    const err = e as SdkError;
    const where = `s3://${this.bucket}/${this.root}${key}`;
    if (err?.name === 'NoSuchBucket') {
      return new GenolakeError('LAKE_NO_BUCKET', `${op} ${where}: bucket ${this.bucket} does not exist`, {}, { cause: e });
    }
    return new GenolakeError('LAKE_S3_ERROR', `${op} ${where}: ${err?.name ?? 'error'}: ${err?.message ?? String(e)}`, {}, { cause: e });
  }

  async put(key: string, body: Body): Promise<void> {
    const k = this.s3Key(key);
    try {
      if (!(body instanceof Readable)) {
        const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
        if (buf.byteLength <= this.opts.singlePutMax) {
          await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: k, Body: buf, ContentLength: buf.byteLength }));
          return;
        }
      }
      await this.upload(k, body);
    } catch (e) {
      if (e instanceof GenolakeError) throw e;
      throw this.fail('put', key, e);
    }
  }

  /**
   * Streams a body of unknown length with a multipart upload; the object appears only
   * when the upload completes, and a failed upload is aborted so no parts linger.
   */
  private async upload(s3Key: string, body: Body): Promise<void> {
    const up = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: s3Key, Body: body },
      partSize: this.opts.partSize,
      queueSize: this.opts.queueSize,
      leavePartsOnError: false,
    });
    // lib-storage reads the stream by iterating it; a source that errors rejects `done()`.
    await up.done();
  }

  async get(key: string): Promise<Readable> {
    const k = this.s3Key(key);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: k }));
      if (!(res.Body instanceof Readable)) throw new Error('GetObject returned no stream body');
      return res.Body;
    } catch (e) {
      if (isMissingObject(e)) throw new GenolakeError('LAKE_NOT_FOUND', `not in lake ${this.describe()}: ${key}`);
      throw this.fail('get', key, e);
    }
  }

  async getBuffer(key: string): Promise<Buffer> {
    const stream = await this.get(key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks);
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== undefined;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const k = this.s3Key(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: k }));
      return { key: k.slice(this.root.length), size: res.ContentLength ?? 0 };
    } catch (e) {
      if (isMissingObject(e)) return undefined;
      throw this.fail('stat', key, e);
    }
  }

  /** Every object under the lake-relative prefix, hidden ones included, in S3's (UTF-8 byte) order. */
  private async *listAll(prefix: string): AsyncIterable<ObjectInfo> {
    const p = asPrefix(prefix);
    try {
      const pages = paginateListObjectsV2(
        { client: this.client, pageSize: this.opts.pageSize },
        { Bucket: this.bucket, Prefix: this.root + p },
      );
      for await (const page of pages) {
        for (const obj of page.Contents ?? []) {
          if (!obj.Key || !obj.Key.startsWith(this.root)) continue;
          const key = obj.Key.slice(this.root.length);
          // "Folder" placeholders that consoles create are not objects of the lake.
          if (key === '' || key.endsWith('/')) continue;
          yield { key, size: obj.Size ?? 0 };
        }
      }
    } catch (e) {
      throw this.fail('list', p, e);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const info of this.listAll(prefix)) {
      if (!isHidden(info.key)) yield info;
    }
  }

  async delete(key: string): Promise<void> {
    const k = this.s3Key(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: k }));
    } catch (e) {
      if (isMissingObject(e)) return;
      throw this.fail('delete', key, e);
    }
  }

  /** Deletes lake-relative keys in batches of at most 1000 (the DeleteObjects limit). */
  private async deleteKeys(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      let res;
      try {
        res = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.root + k })), Quiet: true },
          }),
        );
      } catch (e) {
        throw this.fail('delete', batch[0], e);
      }
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0];
        throw new GenolakeError(
          'LAKE_S3_ERROR',
          `delete failed for ${failed.length} object(s) in ${this.describe()}, first ${first.Key}: ${first.Code} ${first.Message ?? ''}`.trim(),
        );
      }
    }
  }

  async deletePrefix(prefix: string): Promise<void> {
    const p = asPrefix(prefix);
    if (p === '') throw new GenolakeError('LAKE_BAD_KEY', 'refusing to delete the whole lake');
    // Delete page by page so a huge prefix never sits in memory.
    let batch: string[] = [];
    for await (const info of this.listAll(p)) {
      batch.push(info.key);
      if (batch.length === 1000) {
        await this.deleteKeys(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.deleteKeys(batch);
  }

  stagingPrefix(label: string): string {
    return newStagingPrefix(label, randomUUID());
  }

  async move(from: string, to: string): Promise<void> {
    checkObjectKey(to);
    const info = await this.stat(from);
    if (!info) throw new GenolakeError('LAKE_NOT_FOUND', `not in lake ${this.describe()}: ${from}`);
    await this.copy(from, to, info.size);
    await this.delete(from);
  }

  /** Server-side copy within the bucket; objects above the CopyObject limit are streamed through a multipart upload. */
  private async copy(fromKey: string, toKey: string, size: number): Promise<void> {
    try {
      if (size > this.opts.copyObjectMax) {
        const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.root + fromKey }));
        if (!(res.Body instanceof Readable)) throw new Error('GetObject returned no stream body');
        await this.upload(this.root + toKey, res.Body);
        return;
      }
      await this.client.send(
        new CopyObjectCommand({ Bucket: this.bucket, Key: this.root + toKey, CopySource: copySource(this.bucket, this.root + fromKey) }),
      );
    } catch (e) {
      if (e instanceof GenolakeError) throw e;
      throw this.fail(`copy ${fromKey} to`, toKey, e);
    }
  }

  /**
   * S3 has no rename, so publish keeps readers all-or-nothing through the marker:
   *  1. delete the old marker: from here on `final` reads as unpublished;
   *  2. delete old objects under `final` that the new tree does not have;
   *  3. copy every staged object to `final` (overwriting same-named ones);
   *  4. write the marker, LAST: only now is `final` published, and everything under it is new;
   *  5. delete the staging prefix.
   * A crash anywhere before 4 leaves `final` unpublished (a rerun publishes again); after 4
   * only staging garbage remains. One publisher per `final` at a time (stages are
   * deterministic, so the engine never races two publishes of the same output).
   */
  async publish(staging: string, final: string, meta: Record<string, unknown> = {}): Promise<void> {
    const { staging: s, final: f } = checkPublishPrefixes(staging, final);
    const staged: ObjectInfo[] = [];
    for await (const info of this.listAll(s)) {
      const rel = info.key.slice(s.length);
      // A marker left in staging would be copied early and publish too soon: we write our own, last.
      if (rel === PUBLISHED_MARKER) continue;
      staged.push({ key: rel, size: info.size });
    }
    const marker = `${f}${PUBLISHED_MARKER}`;

    await this.delete(marker);

    const keep = new Set(staged.map((o) => o.key));
    let stale: string[] = [];
    for await (const info of this.listAll(f)) {
      if (info.key === marker || keep.has(info.key.slice(f.length))) continue;
      stale.push(info.key);
      if (stale.length === 1000) {
        await this.deleteKeys(stale);
        stale = [];
      }
    }
    if (stale.length > 0) await this.deleteKeys(stale);

    await mapLimit(staged, this.opts.copyConcurrency, (o) => this.copy(`${s}${o.key}`, `${f}${o.key}`, o.size));

    await this.put(marker, markerBody(staged.length, meta));

    await this.deletePrefix(s);
  }

  async isPublished(final: string): Promise<boolean> {
    return this.exists(`${asPrefix(checkKey(final))}${PUBLISHED_MARKER}`);
  }
}
