import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildFai, faiToText, IndexedFasta } from '../../src/annotate/fasta.js';
import { InputError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'gl-fa-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function makeFasta(): { file: string; seqs: Map<string, string> } {
  let s = 17;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 4);
  const seqs = new Map<string, string>();
  let text = '';
  for (const [name, len, width] of [['c1', 1000, 60], ['c2 desc', 77, 10], ['c3', 5, 60]] as const) {
    let q = '';
    for (let i = 0; i < len; i++) q += 'ACGTacgt'[rnd() + (i % 50 < 5 ? 4 : 0)];
    seqs.set(name.split(' ')[0], q);
    text += `>${name}\n`;
    for (let i = 0; i < q.length; i += width) text += q.slice(i, i + width) + '\n';
  }
  const file = join(dir, 'x.fa');
  writeFileSync(file, text);
  return { file, seqs };
}

describe('indexed FASTA', () => {
  const { file, seqs } = makeFasta();

  it('builds the same .fai as samtools faidx', async () => {
    const ours = faiToText(await buildFai(file));
    const copy = join(dir, 'y.fa');
    writeFileSync(copy, readFileSync(file));
    execFileSync('samtools', ['faidx', copy]);
    expect(ours).toBe(readFileSync(`${copy}.fai`, 'utf8'));
  });

  it('fetches any range (upper-cased, clipped at the ends)', async () => {
    const fa = await IndexedFasta.open(file);
    try {
      for (const [name, q] of seqs) {
        for (const [b, e] of [[0, 0], [0, q.length - 1], [3, 4], [59, 61], [q.length - 3, q.length + 10], [-5, 2]]) {
          const want = q.slice(Math.max(0, b), Math.min(q.length - 1, e) + 1).toUpperCase();
          expect(fa.fetch(name, b, e)).toBe(want);
        }
      }
      expect(fa.length('c2')).toBe(77);
      expect(() => fa.fetch('nope', 0, 1)).toThrow(InputError);
    } finally {
      fa.close();
    }
  });

  it('rejects ragged line lengths', async () => {
    const bad = join(dir, 'bad.fa');
    writeFileSync(bad, '>a\nACGT\nAC\nACGT\n');
    await expect(buildFai(bad)).rejects.toThrow(/different line length/);
  });
});
