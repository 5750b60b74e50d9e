import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { faiText, readFasta } from '../../src/align/fasta.js';
import { InputError } from '../../src/util/errors.js';
import { inputErrorOf } from '../helpers/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'gl-fasta-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
function fa(text: string): string {
  const f = join(tmp, `t${n++}.fa`);
  writeFileSync(f, text);
  return f;
}

async function failure(text: string): Promise<InputError> {
  const f = fa(text);
  const e = await inputErrorOf(readFasta(f));
  expect(e.place.file).toBe(f);
  return e;
}

function seqOf(len: number, seed: number): string {
  let s = seed, out = '';
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += 'ACGTacgtN'[(s >>> 16) % 9];
  }
  return out;
}

function wrap(seq: string, w: number): string {
  let o = '';
  for (let i = 0; i < seq.length; i += w) o += `${seq.slice(i, i + w)}\n`;
  return o;
}

describe('FASTA validation', () => {
  it('reads contigs, codes and IUPAC as N', async () => {
    const f = fa('>a desc\nACGTN\nacgtr\n>b\nYYK\n');
    const r = await readFasta(f);
    expect(r.contigs.map((c) => [c.name, c.length])).toEqual([['a', 10], ['b', 3]]);
    expect(Array.from(r.codes)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4, 4, 4]);
    expect(r.iupac).toBe(4);
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('rejects duplicate names with both lines', async () => {
    const e = await failure('>a\nACGT\n>b\nAC\n>a\nGG\n');
    expect(e.code).toBe('FASTA_DUPLICATE_NAME');
    expect(e.place.line).toBe(5);
    expect(e.message).toContain('"a"');
    expect(e.message).toContain('line 1');
  });

  it('rejects empty contigs', async () => {
    const e = await failure('>a\nACGT\n>empty\n>c\nAC\n');
    expect(e.code).toBe('FASTA_EMPTY_CONTIG');
    expect(e.place.line).toBe(3);
    expect(e.message).toContain('"empty"');
    expect((await failure('>a\nAC\n>last\n')).code).toBe('FASTA_EMPTY_CONTIG');
  });

  it('rejects illegal characters naming line, column and contig', async () => {
    const e = await failure('>a\nACGT\n>chr2\nAC\nAC-T\n');
    expect(e.code).toBe('FASTA_BAD_CHAR');
    expect(e.place.line).toBe(5);
    expect(e.message).toContain('"chr2"');
    expect(e.message).toContain("'-'");
    expect(e.message).toContain('column 3');
    expect((await failure('>a\nAC1T\n')).code).toBe('FASTA_BAD_CHAR');
  });

  it('rejects sequence before a header, nameless headers, empty files', async () => {
    expect((await failure('ACGT\n>a\nAC\n')).code).toBe('FASTA_NO_HEADER');
    expect((await failure('> \nACGT\n')).code).toBe('FASTA_EMPTY_NAME');
    expect((await failure('')).code).toBe('FASTA_EMPTY');
  });

  it('rejects ragged line lengths (a .fai could not describe them)', async () => {
    expect((await failure('>a\nACGT\nAC\nACGT\n')).code).toBe('FASTA_LINE_LENGTH');
    expect((await failure('>a\nACGT\nACGTA\n')).code).toBe('FASTA_LINE_LENGTH');
  });
});

describe('.fai', () => {
  const cases: [string, string][] = [
    ['multi-line, short last line', `>chr1 first\n${wrap(seqOf(1000, 1), 60)}>chr2\n${wrap(seqOf(77, 2), 60)}>chr3\n${wrap(seqOf(120, 3), 60)}`],
    ['single-line contigs', `>x\n${seqOf(50, 4)}\n>y\n${seqOf(7, 5)}\n`],
    ['width 70, no final newline', `>a\n${wrap(seqOf(300, 6), 70).slice(0, -1)}`],
    ['header with tabs, lower case', `>s1\tx y\n${wrap(seqOf(200, 7).toLowerCase(), 50)}>s2\n${wrap(seqOf(10, 8), 50)}`],
    ['CRLF line ends', `>a\r\n${wrap(seqOf(130, 9), 60).replace(/\n/g, '\r\n')}>b\r\nACGT\r\n`],
  ];
  for (const [name, text] of cases) {
    it(`is byte-identical to samtools faidx: ${name}`, async () => {
      const f = fa(text);
      const r = await readFasta(f);
      execFileSync('samtools', ['faidx', f]);
      expect(faiText(r.contigs)).toBe(readFileSync(`${f}.fai`, 'utf8'));
    });
  }
});
