import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../../src/engine/run.js';
import { openRunLog } from '../../src/engine/runlog.js';
import { LocalLake } from '../../src/lake/local.js';
import { openLake } from '../../src/lake/open.js';
import type { Lake } from '../../src/lake/types.js';
import { startS3Server, type S3TestServer } from '../helpers/s3server.js';

let dir: string;
let s3: S3TestServer;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'genolake-runlog-'));
  s3 = await startS3Server({ bucket: 'engine-runlog' });
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

const parse = (b: Buffer) =>
  b
    .toString('utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

for (const kind of ['local', 's3'] as const) {
  describe(`run log (${kind} lake)`, () => {
    const lakeFor = async (name: string): Promise<Lake> =>
      kind === 'local' ? new LocalLake(join(dir, name)) : openLake(s3.config(name));

    it('writes pino JSON lines to _runs/<id>/log.jsonl and appends on resume', async () => {
      const lake = await lakeFor('a');
      const store = new RunStore(lake, 'r1');
      const first = await openRunLog(lake, store, { level: 'info', flushIntervalMs: 20 });
      expect(first.key).toBe('_runs/r1/log.jsonl');
      first.log.info({ n: 1 }, 'one');
      first.log.debug('not at info');
      first.log.child({ stage: 'x' }).warn('two');
      if (kind === 's3') {
        // buffered lines reach the lake within a flush interval, before close
        const deadline = Date.now() + 10_000;
        while (!(await lake.exists(first.key))) {
          if (Date.now() > deadline) throw new Error('log never flushed');
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      await first.close();
      await first.close();
      first.log.info('after close is dropped');

      const second = await openRunLog(lake, store, { resume: true });
      second.log.error({ err: 'boom' }, 'three');
      await second.close();

      const lines = parse(await lake.getBuffer(first.key));
      expect(lines.map((l) => l.msg)).toEqual(['one', 'two', 'three']);
      expect(lines[0]).toMatchObject({ level: 30, runId: 'r1', n: 1, app: 'genolake' });
      expect(lines[1]).toMatchObject({ level: 40, stage: 'x' });
      expect(typeof lines[2].time).toBe('string');
    });

    it('forwards to an extra logger at its level, even when the file is silent', async () => {
      const lake = await lakeFor('b');
      const got: Record<string, unknown>[] = [];
      const also = pino(
        { level: 'debug' },
        new Writable({
          write(c, _e, cb) {
            got.push(JSON.parse(String(c)));
            cb();
          },
        }),
      );
      const rl = await openRunLog(lake, new RunStore(lake, 'r2'), { level: 'silent', also });
      rl.log.debug({ k: 'v' }, 'dbg');
      rl.log.info('inf');
      await rl.close();
      expect(got.map((g) => [g.level, g.msg, g.runId])).toEqual([
        [20, 'dbg', 'r2'],
        [30, 'inf', 'r2'],
      ]);
      expect(got[0].k).toBe('v');
      expect(await lake.exists('_runs/r2/log.jsonl')).toBe(false);
    });
  });
}
