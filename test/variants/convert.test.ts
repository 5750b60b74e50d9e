/**
 * The byte-level converter (src/variants/convert.ts) against the string-based one it
 * replaced (test/variants/oracle/convert-v1.ts): on varied VCFs both must give the same
 * tables, value for value, and the same errors for bad records.
 */
import type { Table } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { parseVcfHeader } from '../../src/formats/vcf.js';
import { InputError } from '../../src/util/errors.js';
import { VariantConverter, type ConvertResult, type RowContext } from '../../src/variants/convert.js';
import { VariantConverter as OracleConverter } from './oracle/convert-v1.js';

const CSQ_FORMAT = 'Allele|Consequence|IMPACT|SYMBOL|Gene|Feature|BIOTYPE|HGVSc|HGVSp';

function headerLines(samples: string[], annotation: 'csq' | 'csq-short' | 'bcsq' | 'none'): string[] {
  return [
    '##fileformat=VCFv4.2',
    '##reference=ref-Ü',
    '##contig=<ID=chr1,length=10000000>',
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    ...(annotation === 'csq' ? [`##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations. Format: ${CSQ_FORMAT}">`] : []),
    // No IMPACT and no Allele column: impact comes from the consequence, every entry fits every allele.
    ...(annotation === 'csq-short' ? ['##INFO=<ID=CSQ,Number=.,Type=String,Description="VEP. Format: Consequence|Gene|Feature|HGVSc">'] : []),
    ...(annotation === 'bcsq' ? ['##INFO=<ID=BCSQ,Number=.,Type=String,Description="bcftools csq. Format: Consequence|gene|transcript|biotype|strand|amino_acid_change|dna_change">'] : []),
    '##INFO=<ID=CLNSIG,Number=.,Type=String,Description="[known:clinvar] clinical significance">',
    '##INFO=<ID=KFLAG,Number=0,Type=Flag,Description="[known:db] a flag">',
    '##INFO=<ID=7,Number=.,Type=String,Description="[known:odd] an integer-like key (JSON puts it first)">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
    '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
    ['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', ...(samples.length ? ['FORMAT', ...samples] : [])].join('\t'),
  ];
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];

/** Data lines exercising every path: odd numbers, missing fields, annotations, known fields. */
function dataLines(seed: number, n: number, samples: number, annotation: string): string[] {
  let x = seed >>> 0;
  const rnd = () => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const chroms = ['chr1', 'chr2', 'chrÜn', 'HLA-A*01:01'];
  const out: string[] = [];
  let ci = 0;
  let pos = 1;
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.02 && ci < chroms.length - 1) {
      ci++;
      pos = 1;
    }
    pos += Math.floor(rnd() * 5); // repeats allowed (same position twice is sorted)
    const ref = pick(rnd, ['A', 'C', 'GT', 'acgtn', 'TTTT', 'N']);
    const altChoices = ['C', 'G', `${ref}A`, ref.slice(0, 1), 'T', '*', '<DEL>', '<DÜP:TANDEM>', 'A[chr2:100[', ']chrÜ:5]T', '.A', 'G.', '<INS:😀>'];
    const nAlts = rnd() < 0.08 ? 0 : rnd() < 0.75 ? 1 : 2 + Math.floor(rnd() * 2);
    const alts = Array.from({ length: nAlts }, () => pick(rnd, altChoices));
    const altText = nAlts === 0 ? '.' : alts.join(',');
    const qual = pick(rnd, ['.', '30', '45.3', '0.1', '1e3', '12.', '.5', '99.999999999999999', '-0', '7', '']);
    const id = pick(rnd, ['.', `rs${i}`, `rs${i};rs${i + 1}`]);
    const filter = pick(rnd, ['.', 'PASS', 'LowQual;q10', 'PASS']);
    const info: string[] = [];
    if (rnd() < 0.7) info.push(`DP=${Math.floor(rnd() * 100)}`);
    const alleleName = (a: string) => (a.length !== ref.length && a[0] === ref[0] ? (a.length === 1 ? '-' : a.slice(1)) : a);
    if (annotation === 'csq' && rnd() < 0.8) {
      const entries: string[] = [];
      const k = 1 + Math.floor(rnd() * 4);
      for (let e = 0; e < k; e++) {
        const allele = nAlts && rnd() < 0.8 ? (rnd() < 0.5 ? alleleName(pick(rnd, alts)) : pick(rnd, alts)) : pick(rnd, ['', 'Z', '-']);
        const cons = pick(rnd, ['missense_variant', 'intron_variant&splice_region_variant', '*stop_gained', 'Frameshift_Variant', '', 'weird_term', 'synonymous_variant']);
        const impact = pick(rnd, ['HIGH', 'MODERATE', 'LOW', 'MODIFIER', '', '', 'high', 'constructor']);
        const g = pick(rnd, ['', 'BRCA1', 'GÉNE', 'TP53']);
        const fields = [allele, cons, impact, g, `ENSG${e}`, pick(rnd, ['', `ENST${e}`]), 'protein_coding', pick(rnd, ['', `c.${i}A>G`]), pick(rnd, ['', `p.Lys${i}Arg`, 'p.%3D'])];
        entries.push((rnd() < 0.1 ? fields.slice(0, 3 + Math.floor(rnd() * 5)) : fields).join('|'));
      }
      info.push(`CSQ=${entries.join(',')}`);
    }
    if (annotation === 'csq-short' && rnd() < 0.8) {
      info.push(`CSQ=${[pick(rnd, ['missense_variant', 'intron_variant', 'stop_gained&missense_variant', '']), 'G1', 'T1', 'c.1A>G'].join('|')},${['synonymous_variant', 'G2', '', ''].join('|')}`);
    }
    if (annotation === 'bcsq' && rnd() < 0.8) {
      const entries = Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, e) =>
        [pick(rnd, ['missense', 'synonymous', '@123', 'frameshift&start_lost', '', '*missense', 'stop_gained']), `G${e}`, pick(rnd, ['', `T${e}`]), 'protein_coding', '+', pick(rnd, ['', `${e}K>R`]), pick(rnd, ['', `${e}A>G`])].join('|'),
      );
      info.push(`BCSQ=${entries.join(',')}`);
    }
    if (rnd() < 0.3) info.push(`CLNSIG=${pick(rnd, ['Pathogenic', 'Benign,Likely_benign', 'say "hi"\\now', 'naïve', '', 'tab\u0001ctl', 'cr\rin\bside\f'])}`);
    if (rnd() < 0.2) info.push('KFLAG');
    if (rnd() < 0.1) info.push(`7=${pick(rnd, ['x', 'y,z'])}`);
    if (rnd() < 0.1) info.push('NOTE=Ünïcode→text');
    if (rnd() < 0.1) info.push('CLNSIG=second_copy_ignored');
    const infoText = info.length ? info.join(';') : '.';
    const fmt = pick(rnd, ['GT:DP:AD:GQ', 'GT:AD', 'DP:GT:GQ', 'GT', 'AD:DP', 'GT:DP:AD:GQ', '.']);
    const keys = fmt.split(':');
    const sampleText = () => {
      const gt = pick(rnd, ['0/1', '1|1', './.', '.', '0', '1', '', `${nAlts}/${nAlts}`, '0/0', nAlts >= 2 ? '1/2' : '0/1', '01/1', '0|.', 'a/1', '1.0/0', ' 1/0']);
      const nA = Math.max(nAlts, 1);
      const ad = pick(rnd, [
        Array.from({ length: nA + 1 }, (_, k) => 10 - k).join(','),
        '.',
        Array.from({ length: nA + 1 }, () => '.').join(','),
        '5',
        '0,0',
        '3e1,+2,2.0',
        '-0,4',
        '4000000000,1',
        '1.5,2',
      ]);
      const vals: Record<string, string> = { GT: gt, DP: pick(rnd, ['25', '.', '', '7.0', 'x', '-3']), AD: ad, GQ: pick(rnd, ['40', '.', '99']) };
      const fields = keys.map((k) => vals[k] ?? '.');
      // Trailing fields may be dropped (VCF allows it).
      return rnd() < 0.1 ? fields.slice(0, Math.max(1, fields.length - 1)).join(':') : fields.join(':');
    };
    const cols = [chroms[ci], String(pos), id, ref, altText, qual, filter, infoText];
    if (samples) cols.push(fmt, ...Array.from({ length: samples }, sampleText));
    out.push(cols.join('\t'));
  }
  return out;
}

function rowsOf(t: Table): unknown[][] {
  const names = t.schema.fields.map((f) => f.name);
  const cols = names.map((n) => t.getChild(n)!);
  const rows: unknown[][] = [];
  for (let i = 0; i < t.numRows; i++) {
    rows.push(
      cols.map((c) => {
        const v = c.get(i);
        if (typeof v === 'bigint') return `${v}n`;
        if (typeof v === 'number' && Object.is(v, -0)) return '-0';
        return v;
      }),
    );
  }
  return rows;
}

function summary(r: ConvertResult) {
  return {
    records: r.records,
    chroms: r.chroms.map((c) => ({
      chrom: c.chrom,
      records: c.records,
      rows: c.rows,
      firstPos: c.firstPos,
      lastPos: c.lastPos,
      schema: c.table.schema.fields.map((f) => `${f.name}:${f.type}`),
    })),
  };
}

/** The old worker's line loop over decoded text, feeding the oracle. */
function runOracle(headerText: string, data: Buffer, ctx: RowContext): ConvertResult {
  const conv = new OracleConverter(parseVcfHeader(headerText, 'f.vcf'), 'f.vcf', ctx);
  const text = data.toString('utf8');
  let record = 0;
  let at = 0;
  while (at < text.length) {
    let nl = text.indexOf('\n', at);
    if (nl < 0) nl = text.length;
    let line = text.slice(at, nl);
    at = nl + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') continue;
    record++;
    if (line.charCodeAt(0) === 35) throw new InputError('VCF_BAD_RECORD', 'header line (#) among the data lines', { file: 'f.vcf', record });
    conv.add(line, record);
  }
  return conv.finish();
}

function runNew(headerText: string, data: Buffer, ctx: RowContext, chunks = 1): ConvertResult {
  const conv = new VariantConverter(parseVcfHeader(headerText, 'f.vcf'), 'f.vcf', ctx);
  // Several calls, cut at line ends: records number on.
  let at = 0;
  for (let k = 1; k <= chunks; k++) {
    const cut = k === chunks ? data.length : data.indexOf(10, Math.floor((data.length * k) / chunks)) + 1 || data.length;
    if (cut > at) conv.addLines(data.subarray(at, cut));
    at = Math.max(at, cut);
  }
  return conv.finish();
}

function expectSame(headerText: string, data: Buffer, ctx: RowContext, chunks = 1): number {
  const want = runOracle(headerText, data, ctx);
  const got = runNew(headerText, data, ctx, chunks);
  expect(summary(got)).toEqual(summary(want));
  let rows = 0;
  for (let i = 0; i < want.chroms.length; i++) {
    expect(rowsOf(got.chroms[i].table)).toEqual(rowsOf(want.chroms[i].table));
    rows += want.chroms[i].rows;
  }
  return rows;
}

function outcome(f: () => unknown): unknown {
  try {
    f();
    return 'ok';
  } catch (e) {
    const g = e as InputError;
    return { name: g.name, code: g.code, message: g.message, place: JSON.parse(JSON.stringify(g.place)) };
  }
}

const ctxFor = (samples: string[], pick?: number[]): RowContext => ({
  samples: (pick ?? samples.map((_, i) => i)).map((column) => ({ column, sampleId: `${samples[column]}-id` })),
  runId: 'run-1',
  reference: 'GRCh38',
  genolakeVersion: '9.9.9',
});

describe('byte-level VCF converter = string-based oracle', () => {
  const cases: [string, string[], 'csq' | 'csq-short' | 'bcsq' | 'none', number[] | undefined][] = [
    ['one sample, CSQ', ['S1'], 'csq', undefined],
    ['three samples, CSQ, a subset selected out of order and one twice', ['TUMOR', 'NORMAL', 'BLOOD'], 'csq', [2, 0, 2]],
    ['two samples, BCSQ', ['A', 'B'], 'bcsq', undefined],
    ['CSQ without IMPACT or Allele columns', ['S1'], 'csq-short', undefined],
    ['no annotations', ['S1', 'S2'], 'none', undefined],
  ];
  for (const [name, samples, annotation, selected] of cases) {
    it(name, () => {
      const headerText = `${headerLines(samples, annotation).join('\n')}\n`;
      const data = Buffer.from(`${dataLines(samples.length * 31 + annotation.length, 3000, samples.length, annotation).join('\n')}\n`);
      const rows = expectSame(headerText, data, ctxFor(samples, selected), 3);
      expect(rows).toBeGreaterThan(1000);
    });
  }

  it('CRLF line ends, blank lines, no final newline, bytes that are not UTF-8', () => {
    const samples = ['S1', 'S2'];
    const headerText = `${headerLines(samples, 'csq').join('\n')}\n`;
    const lines = dataLines(5, 400, 2, 'csq');
    const crlf = Buffer.from(`${lines.slice(0, 200).join('\r\n')}\r\n\r\n\n${lines.slice(200).join('\n')}`);
    expectSame(headerText, crlf, ctxFor(samples));
    // A Latin-1 byte in INFO and in a CSQ gene: read as U+FFFD, like the string reader did.
    const bad = Buffer.concat([Buffer.from(`${lines.slice(0, 50).join('\n')}\n`), Buffer.from(`${lines[49].split('\t')[0]}\t999999\t.\tA\tG\t5\tPASS\tCLNSIG=caf\xe9;CSQ=G|missense_variant|HIGH|G\xe9N|E|T|p|c.1|p.1\tGT\t0/1\t1/1\n`, 'latin1')]);
    expectSame(headerText, bad, ctxFor(samples));
  });

  it('column buffers handed back with release() serve later conversions without leftovers', () => {
    const samples = ['S1', 'S2'];
    const headerText = `${headerLines(samples, 'csq').join('\n')}\n`;
    const big = Buffer.from(`${dataLines(21, 2500, 2, 'csq').join('\n')}\n`);
    const small = Buffer.from(`${dataLines(22, 300, 2, 'csq').join('\n')}\n`);
    const ctx = ctxFor(samples);
    for (const data of [big, small, big, small]) {
      const want = runOracle(headerText, data, ctx);
      const conv = new VariantConverter(parseVcfHeader(headerText, 'f.vcf'), 'f.vcf', ctx);
      conv.addLines(data);
      const got = conv.finish();
      expect(summary(got)).toEqual(summary(want));
      for (let i = 0; i < want.chroms.length; i++) expect(rowsOf(got.chroms[i].table)).toEqual(rowsOf(want.chroms[i].table));
      conv.release();
    }
  });

  it('a sites-only VCF gives no rows but counts its records', () => {
    const headerText = `${headerLines([], 'csq').join('\n')}\n`;
    const data = Buffer.from(`${dataLines(9, 200, 0, 'csq').join('\n')}\n`);
    const ctx = { ...ctxFor([]), samples: [] };
    expect(expectSame(headerText, data, ctx)).toBe(0);
  });

  describe('bad records: the same error, naming the record and field', () => {
    const samples = ['S1', 'S2'];
    const headerText = `${headerLines(samples, 'csq').join('\n')}\n`;
    const good = dataLines(3, 40, 2, 'csq').filter((l) => l.startsWith('chr1\t'));
    const f = good[10].split('\t');
    const set = (k: number, v: string) => f.map((x, i) => (i === k ? v : x)).join('\t');
    const bad: [string, string][] = [
      ['POS not a number', set(1, '12a')],
      ['POS 0', set(1, '0')],
      ['POS empty', set(1, '')],
      ['empty CHROM', set(0, '')],
      ['REF not bases', set(3, 'AXÜ')],
      ['REF empty', set(3, '')],
      ['ALT not an allele', set(4, 'C,<bad')],
      ['ALT empty allele', set(4, 'C,')],
      ['QUAL not a number', set(5, 'high')],
      ['QUAL infinite', set(5, '1e999')],
      ['empty INFO', set(7, '')],
      ['too few columns', f.slice(0, 6).join('\t')],
      ['a sample missing', f.slice(0, 10).join('\t')],
      ['a sample too many', [...f, '0/1'].join('\t')],
      ['GT names a missing allele', `chr1\t${f[1]}\t.\tA\tC,G\t5\tPASS\t.\tGT:DP\t0/1:5\t3|0:1`],
      ['a header line among the data', '##INFO=<ID=X,Number=1,Type=String,Description="late">'],
      ['unsorted position', set(1, '1')],
      ['a contig seen before', set(0, 'chr2')],
    ];
    for (const [name, line] of bad) {
      it(name, () => {
        const data = Buffer.from(`${good.slice(0, 10).join('\n')}\n\n${line}\n${good.slice(11).join('\n')}\n`);
        const ctx = ctxFor(samples);
        const want = outcome(() => runOracle(headerText, data, ctx));
        expect(want).not.toBe('ok');
        expect(outcome(() => runNew(headerText, data, ctx))).toEqual(want);
        expect((want as { place: { record: number } }).place.record).toBeGreaterThan(5);
      });
    }
  });
});
