import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3LakeConfig } from '../../src/lake/types.js';

export interface S3TestServer {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  port: number;
  /** A bucket that exists on the server. */
  bucket: string;
  /** An S3 lake config for this server's bucket (path-style, dummy credentials S3RVER/S3RVER). */
  config(prefix?: string): S3LakeConfig;
  /** Stops the server and deletes its data directory. */
  close(): Promise<void>;
}

/**
 * The server runs in a child process because s3rver encrypts ListObjectsV2 continuation
 * tokens with DES, which Node 20's OpenSSL 3 only offers with --openssl-legacy-provider;
 * in-process, any listing longer than one page fails with InternalError. The child exits
 * when asked to, or by itself when this process goes away (the IPC channel closes).
 */
const CHILD = `
const S3rver = require(process.env.S3RVER_MODULE);
const server = new S3rver(JSON.parse(process.env.S3RVER_OPTIONS));
const stop = () => server.close().then(() => process.exit(0), () => process.exit(1));
process.on('disconnect', stop);
process.on('message', (m) => { if (m === 'close') stop(); });
server.run().then(
  (addr) => process.send({ port: addr.port }),
  (err) => { process.send({ error: String((err && err.stack) || err) }); process.exit(1); },
);
`;

/**
 * Starts a silent s3rver on 127.0.0.1 on a free port, storing objects in a fresh temp
 * directory, with one bucket created. Tests that need S3 call this in beforeAll and
 * `close()` in afterAll.
 */
export async function startS3Server(opts: { bucket?: string } = {}): Promise<S3TestServer> {
  const bucket = opts.bucket ?? 'genolake-test';
  const directory = await mkdtemp(join(tmpdir(), 'genolake-s3rver-'));
  const options = {
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    // Path-style addressing only: the SDK is configured with forcePathStyle.
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  };
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', CHILD], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      S3RVER_MODULE: createRequire(import.meta.url).resolve('s3rver'),
      S3RVER_OPTIONS: JSON.stringify(options),
    },
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = once(child, 'exit');

  let port: number;
  try {
    const first = await Promise.race([
      once(child, 'message').then(([m]) => m as { port?: number; error?: string }),
      exited.then(([code]) => ({ error: `s3rver exited with code ${String(code)}: ${stderr}` })),
    ]);
    if (first.port === undefined) throw new Error(`could not start s3rver: ${first.error ?? 'no port'}`);
    port = first.port;
  } catch (e) {
    if (child.exitCode === null) child.kill();
    await rm(directory, { recursive: true, force: true });
    throw e;
  }

  const endpoint = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    port,
    bucket,
    config(prefix = '') {
      return {
        kind: 's3',
        bucket,
        prefix,
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      };
    },
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.send('close');
          const timer = setTimeout(() => child.kill(), 5000);
          await exited;
          clearTimeout(timer);
        }
        await rm(directory, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
