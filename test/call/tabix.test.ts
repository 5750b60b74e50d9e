import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TabixIndexedFile } from '@gmod/tabix';
import { indexBgzfVcf, VcfGzWriter } from '../../src/formats/tabix.js';

const dir = mkdtempSync(join(tmpdir(), 'gl-tabix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Random sorted records on two of three contigs (deletions, and symbolic ones with END=). */
function sampleVcf(): { header: string; lines: string[] } {
  const rnd = lcg(7);
  const contigs = [
    { name: 'chrA', length: 3_000_000 },
    { name: 'chrB', length: 200_000 },
    { name: 'chrC', length: 50_000 },
  ];
  const header =
    '##fileformat=VCFv4.3\n' +
    contigs.map((c) => `##contig=<ID=${c.name},length=${c.length}>\n`).join('') +
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End">\n' +
    '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n';
  const lines: string[] = [];
  for (const c of contigs) {
    if (c.name === 'chrC') continue; // a contig without records
    let pos = 1;
    const n = c.name === 'chrA' ? 20000 : 3000;
    for (let i = 0; i < n; i++) {
      pos += 1 + Math.floor(rnd() * (c.length / n) * 1.9);
      if (pos >= c.length - 3000) break;
      const del = rnd() < 0.1;
      const sv = rnd() < 0.01;
      const ref = del ? 'ACGTACGTAC'.slice(0, 2 + Math.floor(rnd() * 8)) : 'A';
      const info = sv ? `END=${pos + 2000}` : '.';
      lines.push(`${c.name}\t${pos}\t.\t${ref}\t${sv ? '<DEL>' : 'G'}\t50\tPASS\t${info}`);
    }
  }
  return { header, lines };
}

/** Debian tabix and @gmod/tabix answer region queries on `file` + `.tbi` with exactly `lines`. */
async function expectQueries(file: string, lines: string[]): Promise<void> {
  expect(execFileSync('tabix', ['-l', file], { encoding: 'utf8' })).toBe('chrA\nchrB\n');
  const endOf = (l: string) => {
    const f = l.split('\t');
    const m = /END=(\d+)/.exec(f[7]);
    return m ? Number(m[1]) : Number(f[1]) + f[3].length - 1;
  };
  const queries: [string, number, number][] = [
    ['chrA', 1, 100],
    ['chrA', 16000, 17000],
    ['chrA', 1_000_000, 1_065_536],
    ['chrA', 2_500_000, 3_000_000],
    ['chrB', 100_000, 100_500],
    ['chrB', 1, 200_000],
    ['chrC', 1, 50_000],
  ];
  // @gmod/tabix (what genome browsers use) reads our .tbi too: same records for every query.
  const gmod = new TabixIndexedFile({ path: file, tbiPath: `${file}.tbi` });
  expect(await gmod.getReferenceSequenceNames()).toEqual(['chrA', 'chrB']);
  for (const [c, s, e] of queries) {
    const want = lines.filter((l) => l.startsWith(`${c}\t`) && Number(l.split('\t')[1]) <= e && endOf(l) >= s);
    const got = execFileSync('tabix', [file, `${c}:${s}-${e}`], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(got.split('\n').filter(Boolean)).toEqual(want);
    const viaGmod: string[] = [];
    // @gmod/tabix takes 0-based half-open coordinates.
    await gmod.getLines(c, s - 1, e, (line: string) => viaGmod.push(line));
    expect(viaGmod).toEqual(want);
  }
  // the whole file reads back through a full region query per contig
  const all = ['chrA', 'chrB'].flatMap((c) => execFileSync('tabix', [file, c], { encoding: 'utf8', maxBuffer: 1 << 26 }).split('\n').filter(Boolean));
  expect(all).toEqual(lines);
}

describe('tabix writer', () => {
  it('Debian tabix and @gmod/tabix answer region queries on our .tbi with the records we wrote', async () => {
    const { header, lines } = sampleVcf();
    const file = join(dir, 'x.vcf.gz');
    const w = await VcfGzWriter.create(file);
    await w.writeHeader(header);
    for (const l of lines) await w.writeRecord(l);
    await w.close();
    await expectQueries(file, lines);
  });

  it('indexes a BGZF VCF another tool compressed (lines across block edges), by reading it once', async () => {
    const { header, lines } = sampleVcf();
    const plain = join(dir, 'y.vcf');
    writeFileSync(plain, header + lines.map((l) => `${l}\n`).join(''));
    // bgzip (htslib) cuts blocks at 64 KiB of text, wherever a line is
    execFileSync('bgzip', ['-f', plain]);
    const file = `${plain}.gz`;
    expect(await indexBgzfVcf(file)).toBe(`${file}.tbi`);
    await expectQueries(file, lines);
  });

  it('names the file and line of an unsorted record', async () => {
    const { header, lines } = sampleVcf();
    const plain = join(dir, 'z.vcf');
    writeFileSync(plain, header + [lines[0], lines[2], lines[1], ...lines.slice(3)].map((l) => `${l}\n`).join(''));
    execFileSync('bgzip', ['-f', plain]);
    await expect(indexBgzfVcf(`${plain}.gz`)).rejects.toMatchObject({ code: 'VCF_UNSORTED', place: { file: `${plain}.gz` } });
  });
});
