import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotateVcf } from '../../src/annotate/annotate.js';
import { register } from '../../src/cli/commands/annotate.js';
import { InputError } from '../../src/util/errors.js';
import { readText } from './helpers.js';
import { buildSynthetic, fasta, gff3, sparseVariants, writeTwoContigs, type SynVariant } from './synthetic.js';

describe('annotate CLI and BGZF output', () => {
  let dir: string;
  let fa: string, gff: string, vcf: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'gl-ann-cli-'));
    // two contigs with the same design so parts split at the chromosome boundary
    const { g, g2 } = writeTwoContigs(dir);
    fa = join(dir, 'ref.fa');
    gff = join(dir, 'genes.gff3');
    const rows: string[] = ['##fileformat=VCFv4.2', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB'];
    const add = (chrom: string, vs: SynVariant[]) => {
      for (const v of vs) rows.push([chrom, v.pos, '.', v.ref, v.alt, '.', '.', '.', 'GT', ...(v.gts ?? [])].join('\t'));
    };
    add('chrS', sparseVariants(g, 5, 2));
    add('chrT', sparseVariants(g, 6, 2));
    vcf = join(dir, 'in.vcf');
    writeFileSync(vcf, rows.join('\n') + '\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cli = async (args: string[]) => {
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(['node', 'genolake', 'annotate', ...args]);
  };

  it('runs from the CLI and writes BGZF for .gz outputs', async () => {
    const plain = join(dir, 'cli.vcf');
    const gz = join(dir, 'cli.vcf.gz');
    await cli(['--reference', fa, '--gff', gff, '--vcf', vcf, '--out', plain]);
    await cli(['--reference', fa, '--gff', gff, '--vcf', vcf, '--out', gz]);
    const text = readText(plain);
    expect(text).toMatch(/^##fileformat=VCFv4.2/);
    expect(text).toMatch(/;?BCSQ=[^\t]+/);
    expect(text).toMatch(/##INFO=<ID=BCSQ,/);
    expect(gunzipSync(readFileSync(gz)).toString()).toBe(text);
    // htslib reads it as BGZF
    const viaBcftools = execFileSync('bcftools', ['view', '-H', gz]).toString();
    expect(viaBcftools.split('\n').filter(Boolean).length).toBe(text.split('\n').filter((l) => l && l[0] !== '#').length);
    expect(readdirNoTmp()).toBe(true);
  });

  it('-W writes a tabix index that answers region queries', async () => {
    const gz = join(dir, 'indexed.vcf.gz');
    await cli(['--reference', fa, '--gff', gff, '--vcf', vcf, '--out', gz, '-W']);
    const records = gunzipSync(readFileSync(gz)).toString().split('\n').filter((l) => l && l[0] !== '#');
    for (const chrom of ['chrS', 'chrT']) {
      const want = records.filter((l) => l.startsWith(`${chrom}\t`));
      expect(want.length).toBeGreaterThan(0);
      expect(execFileSync('tabix', [gz, chrom]).toString().split('\n').filter(Boolean)).toEqual(want);
    }
    await expect(cli(['--reference', fa, '--gff', gff, '--vcf', vcf, '--out', join(dir, 'plain.vcf'), '-W'])).rejects.toThrow(/--write-index needs a BGZF output/);
  });

  it('reports bad usage and bad input as InputError, leaving no output behind', async () => {
    await expect(cli(['--reference', fa, '--gff', gff, '--gtf', gff, '--vcf', vcf, '--out', join(dir, 'x.vcf')])).rejects.toThrow(InputError);
    const bad = join(dir, 'bad.vcf');
    writeFileSync(bad, '##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchrS\t500\t.\tQ\tA\t.\t.\t.\n');
    const err = await cli(['--reference', fa, '--gff', gff, '--vcf', bad, '--out', join(dir, 'bad.out.vcf')]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).place).toMatchObject({ file: bad, record: 1, field: 'REF' });
    expect(existsSync(join(dir, 'bad.out.vcf'))).toBe(false);
    // REF that does not match the reference
    const mism = join(dir, 'mism.vcf');
    const g = buildSynthetic(3);
    const p = g.transcripts[0].cds[0][0] + 5;
    const wrong = { A: 'C', C: 'G', G: 'T', T: 'A' }[g.seq[p - 1] as 'A'];
    writeFileSync(mism, `##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchrS\t${p}\t.\t${wrong}\tA\t.\t.\t.\n`);
    const e2 = await annotateVcf({ reference: fa, gff, vcf: mism, out: join(dir, 'm.out.vcf') }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(InputError);
    expect((e2 as InputError).message).toMatch(/does not match/);
  });

  function readdirNoTmp(): boolean {
    return !execFileSync('ls', [dir]).toString().includes('.tmp-');
  }
});

describe('input order', () => {
  it('rejects an unsorted VCF naming the record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gl-ann-sort-'));
    try {
      const g = buildSynthetic(3);
      const fa = join(dir, 'ref.fa');
      writeFileSync(fa, fasta(g));
      const gff = join(dir, 'g.gff3');
      writeFileSync(gff, gff3(g));
      const vcf = join(dir, 'u.vcf');
      const b = (p: number) => g.seq[p - 1];
      writeFileSync(vcf, `##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchrS\t900\t.\t${b(900)}\tN\t.\t.\t.\nchrS\t100\t.\t${b(100)}\tN\t.\t.\t.\n`);
      const e = await annotateVcf({ reference: fa, gff, vcf, out: join(dir, 'o.vcf') }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).place).toMatchObject({ file: vcf, record: 2 });
      expect(existsSync(join(dir, 'o.vcf'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
