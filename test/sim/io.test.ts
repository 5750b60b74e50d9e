import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BGZF_EOF, Sink, bgzf } from '../../src/sim/io.js';
import { writeTarGz } from '../../src/sim/tar.js';

describe('simulator output helpers', () => {
  it('Sink reports a failing destination instead of hanging', async () => {
    for (const gzip of [true, false]) {
      const s = new Sink(join(tmpdir(), 'no-such-dir-gl', 'x'), { gzip });
      const go = async () => {
        for (let i = 0; i < 100; i++) await s.write(Buffer.alloc(100_000, 65));
        await s.close();
      };
      await expect(go()).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });

  it('writes BGZF that gunzip and bgzip read, ending with the EOF block', async () => {
    const text = Array.from({ length: 20_000 }, (_, i) => `line ${i}\n`).join('');
    const buf = bgzf(text);
    expect(buf.subarray(buf.length - 28).equals(BGZF_EOF)).toBe(true);
    expect(gunzipSync(buf).toString()).toBe(text);
    const dir = await mkdtemp(join(tmpdir(), 'gl-sim-io-'));
    try {
      await writeFile(join(dir, 'x.gz'), buf);
      const r = spawnSync('bgzip', ['-t', 'x.gz'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      // tar members: fixed metadata, any content size, same bytes twice
      await writeFile(join(dir, 'big.bin'), Buffer.alloc(70_001, 7));
      const members = [
        { name: 'a.txt', data: 'hello\n' },
        { name: 'sub/big.bin', path: join(dir, 'big.bin') },
        { name: 'empty', data: '' },
      ];
      await writeTarGz(join(dir, 'one.tar.gz'), members);
      await writeTarGz(join(dir, 'two.tar.gz'), members);
      expect((await readFile(join(dir, 'one.tar.gz'))).equals(await readFile(join(dir, 'two.tar.gz')))).toBe(true);
      const t = spawnSync('tar', ['-tvzf', 'one.tar.gz'], { cwd: dir, encoding: 'utf8' });
      expect(t.status, t.stderr).toBe(0);
      expect(t.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(2, 3).concat(l.split(/\s+/).slice(-1)))).toEqual([
        ['6', 'a.txt'],
        ['70001', 'sub/big.bin'],
        ['0', 'empty'],
      ]);
      const x = spawnSync('tar', ['-xzf', 'one.tar.gz', '-O', 'sub/big.bin'], { cwd: dir });
      expect(x.stdout.equals(Buffer.alloc(70_001, 7))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
