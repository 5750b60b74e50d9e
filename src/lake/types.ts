import type { Readable } from 'node:stream';

/** Where a lake lives; serialisable so worker threads can open the same lake. */
export type LakeConfig = LocalLakeConfig | S3LakeConfig;

export interface LocalLakeConfig {
  kind: 'local';
  root: string;
  /** fsync each object and its directory before it becomes visible (slower; survives power loss). */
  fsync?: boolean;
}

export interface S3LakeConfig {
  kind: 's3';
  bucket: string;
  /** Key prefix of the lake root inside the bucket, without leading/trailing '/'; '' for the bucket root. */
  prefix: string;
  region?: string;
  /** A non-AWS endpoint (MinIO, s3rver, LocalStack); AWS when absent. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Explicit credentials; otherwise the AWS SDK default chain (env, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export interface ObjectInfo {
  /** Key relative to the lake root, '/'-separated, never starting with '/'. */
  key: string;
  size: number;
}

export type Body = Buffer | Uint8Array | string | Readable;

/** Name of the completion marker that `publish` writes last inside a published prefix. */
export const PUBLISHED_MARKER = '_SUCCESS.json';

/**
 * The lake: a key/value object store with directory-like prefixes.
 *
 * Keys are relative ('raw/patient_id=P/...'); implementations refuse keys that are
 * absolute or contain '..' so nothing can escape the root.
 *
 * Atomic publish: a stage writes its outputs under a staging prefix
 * (`stagingPrefix()`), then `publish(staging, final)` makes the whole tree visible at
 * `final` at once, replacing what was there, and writes `PUBLISHED_MARKER` last.
 * Readers of stage outputs check `isPublished(final)` (the marker), which is how an S3
 * lake, where there is no rename, stays all-or-nothing for readers.
 */
export interface Lake {
  readonly config: LakeConfig;
  /** Human-readable location, e.g. `/data/lake` or `s3://bucket/prefix`. */
  describe(): string;

  /** Writes one object; the object appears whole or not at all. Streams are not buffered. */
  put(key: string, body: Body): Promise<void>;
  /** Streams one object; throws a GenolakeError with code 'LAKE_NOT_FOUND' if absent. */
  get(key: string): Promise<Readable>;
  getBuffer(key: string): Promise<Buffer>;
  exists(key: string): Promise<boolean>;
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object under prefix (recursively), sorted by key. Staging areas are hidden. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  delete(key: string): Promise<void>;
  /**
   * Moves one object to `to`, replacing it: readers of `to` see the old object or the new
   * one, never a partial one (local: rename; S3: server-side copy, then delete).
   */
  move(from: string, to: string): Promise<void>;
  deletePrefix(prefix: string): Promise<void>;

  /** A fresh private prefix to write outputs into before publishing them. */
  stagingPrefix(label: string): string;
  /** Moves everything under `staging` to `final` atomically for readers; replaces `final`. */
  publish(staging: string, final: string, meta?: Record<string, unknown>): Promise<void>;
  isPublished(final: string): Promise<boolean>;

  /** A filesystem path for `key` when the lake is local (tools that need a path), else undefined. */
  localPath(key: string): string | undefined;
}
