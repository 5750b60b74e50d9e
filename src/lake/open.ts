import { LocalLake } from './local.js';
import type { Lake, LakeConfig } from './types.js';

/** `./lake`, `/abs/dir` or `s3://bucket/prefix` → a LakeConfig. */
export function parseLakeUri(uri: string): LakeConfig {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (m) {
    return {
      kind: 's3',
      bucket: m[1],
      prefix: m[2].replace(/\/+$/, ''),
      endpoint: process.env.GENOLAKE_S3_ENDPOINT ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL,
      region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: process.env.GENOLAKE_S3_PATH_STYLE === '1' ? true : undefined,
    };
  }
  return { kind: 'local', root: uri };
}

export async function openLake(config: LakeConfig | string): Promise<Lake> {
  const cfg = typeof config === 'string' ? parseLakeUri(config) : config;
  if (cfg.kind === 'local') return new LocalLake(cfg.root);
  const { S3Lake } = await import('./s3.js');
  return new S3Lake(cfg);
}
