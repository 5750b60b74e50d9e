import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Lake } from '../../src/lake/s3.js';
import { createS3EventHandler, decodeS3Key, type S3Event } from '../../src/stages/s3-event.js';
import type { IngestResult } from '../../src/stages/ingest.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';
import { buildTgz, buildZip, dropManifest, everything, goodMembers } from './helpers.js';

/** S3's own encoding of a key in event notifications: URL-encoded, spaces as '+'. */
function s3EncodeKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

/** An ObjectCreated:Put notification exactly as S3 delivers it to Lambda. */
function objectCreatedEvent(bucket: string, key: string, size: number): S3Event {
  return JSON.parse(
    JSON.stringify({
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: 'us-east-1',
          eventTime: '2026-11-23T10:00:00.000Z',
          eventName: 'ObjectCreated:Put',
          userIdentity: { principalId: 'AWS:AIDAEXAMPLE' },
          requestParameters: { sourceIPAddress: '127.0.0.1' },
          responseElements: { 'x-amz-request-id': 'C3D13FE58DE4C810', 'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD' },
          s3: {
            s3SchemaVersion: '1.0',
            configurationId: 'genolake-drops',
            bucket: { name: bucket, ownerIdentity: { principalId: 'A3NL1KOZZKExample' }, arn: `arn:aws:s3:::${bucket}` },
            object: { key: s3EncodeKey(key), size, eTag: 'd41d8cd98f00b204e9800998ecf8427e', sequencer: '0055AED6DCD90281E5' },
          },
        },
      ],
    }),
  ) as S3Event;
}

let s3: S3TestServer;
let lake: S3Lake;

beforeAll(async () => {
  s3 = await startS3Server();
  lake = new S3Lake(s3.config('lake'));
});
afterAll(async () => {
  lake?.destroy();
  await s3?.close();
});

describe('S3 ObjectCreated handler', () => {
  it('decodes keys the way S3 encodes them', () => {
    expect(decodeS3Key('incoming/lab+drop+%281%29%2B.tar.gz')).toBe('incoming/lab drop (1)+.tar.gz');
    expect(decodeS3Key(s3EncodeKey('a b/c+d é.zip'))).toBe('a b/c+d é.zip');
  });

  it('ingests an uploaded archive named by the event, once', async () => {
    const archive = await buildTgz(goodMembers());
    const key = 'incoming/lab drop+1.tar.gz';
    await lake.put(key, archive);
    const seen: IngestResult[] = [];
    const handler = createS3EventHandler({ lake: s3.config('lake'), onIngested: (r) => void seen.push(r) });
    const event = objectCreatedEvent(s3.bucket, `lake/${key}`, archive.length);
    expect((event.Records![0].s3.object.key)).toBe('lake/incoming/lab+drop%2B1.tar.gz');

    const first = await handler(event);
    expect(first.results).toEqual([{ bucket: s3.bucket, key: `lake/${key}`, status: 'ingested', runId: seen[0].runId }]);
    expect(seen[0].dropKey).toMatch(/^raw\/_drops\/[0-9a-f]{64}\/lab_drop_1\.tar\.gz$/);
    expect(await lake.isPublished(seen[0].fastqPrefix)).toBe(true);
    for (const rg of seen[0].readGroups) expect(await lake.exists(rg.r1)).toBe(true);

    // S3 delivers at least once: the same event again changes nothing.
    const before = await everything(lake);
    const again = await handler(event);
    expect(again.results[0]).toMatchObject({ status: 'duplicate', runId: seen[0].runId });
    expect(await everything(lake)).toEqual(before);
  });

  it('reports a bad archive as refused, skips its own writes and other buckets', async () => {
    const bad = await buildZip(goodMembers(dropManifest({ paired: 'yes' })));
    await lake.put('incoming/bad.zip', bad);
    const handler = createS3EventHandler({ lake });
    const before = await everything(lake);
    const event: S3Event = {
      Records: [
        objectCreatedEvent(s3.bucket, 'lake/incoming/bad.zip', bad.length).Records![0],
        objectCreatedEvent(s3.bucket, 'lake/raw/_drops/abc/x.tar.gz', 1).Records![0],
        objectCreatedEvent('another-bucket', 'lake/incoming/bad.zip', 1).Records![0],
        objectCreatedEvent(s3.bucket, 'elsewhere/incoming/bad.zip', 1).Records![0],
        { ...objectCreatedEvent(s3.bucket, 'lake/incoming/bad.zip', 1).Records![0], eventName: 'ObjectRemoved:Delete' },
      ],
    };
    const { results } = await handler(event);
    expect(results.map((r) => r.status)).toEqual(['refused', 'skipped', 'skipped', 'skipped', 'skipped']);
    expect(results[0].error?.code).toBe('MANIFEST_INVALID');
    expect(results[0].error?.message).toContain('paired: must be true or false');
    expect(results[0].error?.message).toContain(`s3://${s3.bucket}/lake/incoming/bad.zip/manifest.json`);
    expect(await everything(lake)).toEqual(before);
  });
});
