import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { alignProgram as program } from './program.js';
import { InputError } from '../../src/util/errors.js';
import { makeGenome } from '../../benchmarks/lib/refgen.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'gl-align-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));


describe('genolake index / genolake align commands', () => {
  it('index then align (paired, with a read group) from the command line', async () => {
    const g = makeGenome({ length: 100_000, seed: 5, contigs: 2 }) as { name: string; seq: Uint8Array }[];
    const fa = join(tmp, 'g.fa');
    writeFileSync(fa, g.map((c) => `>${c.name}\n${Buffer.from(c.seq).toString('latin1').replace(/(.{60})/g, '$1\n')}\n`).join(''));
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program().parseAsync(['node', 'genolake', 'index', fa, '--out', join(tmp, 'idx')]);
      execFileSync('wgsim', ['-S', '3', '-N', '500', '-1', '100', '-2', '100', fa, join(tmp, 'a.fq'), join(tmp, 'b.fq')], { stdio: 'ignore' });
      await program().parseAsync(['node', 'genolake', 'align', '--index', join(tmp, 'idx'), '--r1', join(tmp, 'a.fq'), '--r2', join(tmp, 'b.fq'),
        '--rg', 'lane1:NA12878', '--threads', '1', '--param', 'minScore=25', '--out', join(tmp, 'o.sam')]);
      expect(out.mock.calls.map((c) => String(c[0])).join('')).toMatch(/align: 1000 reads, \d+ mapped/);
    } finally {
      out.mockRestore();
    }
    expect(readFileSync(join(tmp, 'idx', 'g.fa.fai'), 'utf8')).toBe((execFileSync('samtools', ['faidx', fa]), readFileSync(`${fa}.fai`, 'utf8')));
    const sam = readFileSync(join(tmp, 'o.sam'), 'utf8');
    expect(sam).toContain('@RG\tID:lane1\tSM:NA12878');
    expect(sam).toContain('minScore=25');
    expect(Number(execFileSync('samtools', ['view', '-c', '-F', '4', join(tmp, 'o.sam')], { encoding: 'utf8' }))).toBeGreaterThan(950);
  });

  it('reports bad FASTQ qualities as input errors', async () => {
    const fq = join(tmp, 'q.fq');
    writeFileSync(fq, '@r1\nACGTACGTAC\n+\nIIII IIIII\n');
    await expect(program().parseAsync(['node', 'genolake', 'align', '--index', join(tmp, 'idx'), '--r1', fq, '--threads', '1', '--out', join(tmp, 'q.sam')]))
      .rejects.toBeInstanceOf(InputError);
  });
});
