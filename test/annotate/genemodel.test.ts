import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TxContext } from '../../src/annotate/consequence.js';
import { displayBiotype, loadGeneModel, shareModel, sharedModel } from '../../src/annotate/genemodel.js';
import { InputError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'gl-gm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function gffFile(lines: string[], ext = 'gff3'): string {
  const f = join(dir, `m${n++}.${ext}`);
  writeFileSync(f, lines.join('\n') + '\n');
  return f;
}
const row = (type: string, b: number, e: number, strand: string, phase: string, attrs: string) => ['chr1', 'src', type, b, e, '.', strand, phase, attrs].join('\t');

const GOOD = [
  '##gff-version 3',
  row('gene', 100, 1000, '+', '.', 'ID=gene:G1;Name=ABC;biotype=protein_coding'),
  row('mRNA', 100, 1000, '+', '.', 'ID=transcript:T1;Parent=gene:G1;biotype=protein_coding'),
  row('exon', 100, 300, '+', '.', 'Parent=transcript:T1'),
  row('exon', 500, 1000, '+', '.', 'Parent=transcript:T1'),
  row('five_prime_UTR', 100, 149, '+', '.', 'Parent=transcript:T1'),
  row('CDS', 150, 300, '+', '0', 'ID=CDS:P1;Parent=transcript:T1'),
  row('CDS', 500, 858, '+', '2', 'ID=CDS:P1;Parent=transcript:T1'),
  row('three_prime_UTR', 859, 1000, '+', '.', 'Parent=transcript:T1'),
  row('transcript', 100, 1000, '+', '.', 'ID=transcript:T2;Parent=gene:G1;biotype=nonsense_mediated_decay'),
  row('exon', 100, 1000, '+', '.', 'Parent=transcript:T2'),
  row('lincRNA', 2000, 2500, '-', '.', 'ID=transcript:T3;Parent=gene:G1;biotype=lincRNA'),
  row('exon', 2000, 2100, '-', '.', 'Parent=transcript:T3'),
  row('exon', 2400, 2500, '-', '.', 'Parent=transcript:T3'),
];

describe('gene models', () => {
  it('parses Ensembl GFF3: prefixes stripped, biotypes, strand, exons, CDS with phase, UTRs, overlap queries', async () => {
    const m = await loadGeneModel(gffFile(GOOD));
    expect(m.transcripts.map((t) => t.id)).toEqual(['T1', 'T2', 'T3']);
    const t1 = m.transcripts[0];
    expect([t1.geneId, t1.geneName, t1.biotype, t1.coding, t1.strand]).toEqual(['G1', 'ABC', 'protein_coding', true, '+']);
    expect([t1.beg, t1.end]).toEqual([99, 999]);
    expect(t1.exons).toEqual([{ beg: 99, end: 299 }, { beg: 499, end: 999 }]);
    expect(t1.cds).toEqual([{ beg: 149, end: 299, phase: 0 }, { beg: 499, end: 857, phase: 2 }]);
    expect(t1.utr5).toEqual([{ beg: 99, end: 148 }]);
    expect(t1.utr3).toEqual([{ beg: 858, end: 999 }]);
    expect(m.transcripts[1].biotype).toBe('NMD');
    expect(m.transcripts[1].coding).toBe(false);
    expect([m.transcripts[2].biotype, m.transcripts[2].strand]).toEqual(['lincRNA', '-']);
    expect(m.overlapping('chr1', 300, 600).map((t) => t.id)).toEqual(['T1', 'T2']);
    expect(m.overlapping('chr1', 2050, 2050).map((t) => t.id)).toEqual(['T3']);
    expect(m.overlapping('chr1', 10, 50)).toEqual([]);
    expect(m.overlapping('chrX', 0, 1e9)).toEqual([]);
  });

  it('short biotype names as printed in BCSQ', () => {
    expect(displayBiotype('IG_V_gene')).toBe('IG_V');
    expect(displayBiotype('mRNA')).toBe('protein_coding');
    expect(displayBiotype('nonsense_mediated_decay')).toBe('NMD');
    expect(displayBiotype('lincRNA')).toBe('lincRNA');
  });

  it('honours the phase of a 5\'-incomplete CDS on the reverse strand when splicing the coding sequence', async () => {
    const m = await loadGeneModel(
      gffFile([
        row('gene', 1, 30, '-', '.', 'ID=gene:G;biotype=protein_coding'),
        row('mRNA', 1, 30, '-', '.', 'ID=transcript:T;Parent=gene:G;biotype=protein_coding'),
        row('exon', 1, 12, '-', '.', 'Parent=transcript:T'),
        row('exon', 20, 30, '-', '.', 'Parent=transcript:T'),
        row('CDS', 1, 12, '-', '0', 'Parent=transcript:T'),
        row('CDS', 20, 30, '-', '2', 'Parent=transcript:T'),
      ]),
    );
    //          1234567890123456789012345678901234567890
    const seq = 'AAACCCGGGTTTNNNNNNNAAGCATGGCAT';
    const ctx = new TxContext(m.transcripts[0], (_c, b, e) => seq.slice(b, e + 1));
    // reverse complement of 20..30 is ATGCCATGCTT; phase 2 skips "AT"
    expect(ctx.phase).toBe(2);
    expect(ctx.cds).toBe('GCCATGCTT' + 'AAACCCGGGTTT');
    expect(ctx.cdsOffset(29)).toBe(-2); // the two skipped bases
    expect(ctx.cdsOffset(28)).toBe(-1);
    expect(ctx.cdsOffset(27)).toBe(0);
    expect(ctx.cdsOffset(11)).toBe(9);
  });

  it('keeps coding segments that overlap (ribosomal slippage), reads their shared bases twice, drops repeated rows; workers get the same', async () => {
    const m = await loadGeneModel(
      gffFile([
        row('gene', 1, 30, '-', '.', 'ID=gene:G;biotype=protein_coding'),
        row('mRNA', 1, 30, '-', '.', 'ID=transcript:T;Parent=gene:G;biotype=protein_coding'),
        row('CDS', 1, 12, '-', '0', 'Parent=transcript:T'),
        row('CDS', 12, 30, '-', '0', 'Parent=transcript:T'),
        row('CDS', 14, 20, '-', '0', 'Parent=transcript:T'),
      ]),
    );
    const t = m.transcripts[0];
    expect(t.cds.map((c) => [c.beg, c.end])).toEqual([[0, 11], [11, 29]]);
    expect(t.cdsJunctions).toEqual([11, 11]);
    expect(t.exons).toEqual([{ beg: 0, end: 29 }]);
    //          123456789012345678901234567890
    const seq = 'ATGCCCGGGTTTAAACCCGGGTTTAAACCC';
    const ctx = new TxContext(t, (_c, b, e) => seq.slice(b, e + 1));
    expect(ctx.overlappingSegs).toBe(true);
    // 30..12 then 12..1 (reverse strand): base 12 is in both
    expect(ctx.cds.length).toBe(31);
    expect(ctx.cdsOffset(11)).toBe(18);
    expect(ctx.cdsOffset(11, 1)).toBe(19);
    const shared = sharedModel(shareModel(m)).transcripts[0];
    expect(shared.cds).toEqual(t.cds);
    expect(shared.cdsJunctions).toEqual([11, 11]);
  });

  it('parses GENCODE GTF, folding stop_codon rows into the CDS and deriving UTRs', async () => {
    const attrs = 'gene_id "G1"; gene_type "protein_coding"; gene_name "ABC"; transcript_id "T1"; transcript_type "protein_coding";';
    const f = gffFile(
      [
        row('gene', 100, 1000, '+', '.', 'gene_id "G1"; gene_type "protein_coding"; gene_name "ABC";'),
        row('transcript', 100, 1000, '+', '.', attrs),
        row('exon', 100, 300, '+', '.', attrs),
        row('exon', 500, 1000, '+', '.', attrs),
        row('CDS', 150, 300, '+', '0', attrs),
        row('CDS', 500, 855, '+', '2', attrs),
        row('stop_codon', 856, 858, '+', '0', attrs),
        row('UTR', 100, 149, '+', '.', attrs),
        row('UTR', 859, 1000, '+', '.', attrs),
      ],
      'gtf',
    );
    const m = await loadGeneModel(f);
    const t = m.transcripts[0];
    expect([t.geneName, t.biotype]).toEqual(['ABC', 'protein_coding']);
    expect(t.cds.map((c) => [c.beg, c.end])).toEqual([[149, 299], [499, 857]]);
    expect(t.utr5).toEqual([{ beg: 99, end: 148 }]);
    expect(t.utr3).toEqual([{ beg: 858, end: 999 }]);
  });

  it('rejects broken models naming file and line', async () => {
    const cases: Array<[string[], RegExp, number]> = [
      [[...GOOD.slice(0, 3), row('CDS', 120, 350, '+', '0', 'Parent=transcript:T1'), row('exon', 100, 300, '+', '.', 'Parent=transcript:T1')], /outside its exons/, 4],
      [[...GOOD.slice(0, 3), row('exon', 100, 300, '+', '.', 'Parent=transcript:NOPE')], /unknown parent transcript "NOPE"/, 4],
      [[...GOOD.slice(0, 3), row('exon', 100, 300, '+', '.', 'Parent=transcript:T1'), row('exon', 400, 500, '-', '.', 'Parent=transcript:T1')], /on strand - but transcript T1 is on \+/, 5],
      [[GOOD[0], row('mRNA', 100, 1000, '+', '.', 'ID=transcript:T9;Parent=gene:MISSING;biotype=protein_coding'), row('exon', 100, 300, '+', '.', 'Parent=transcript:T9')], /unknown gene "MISSING"/, 2],
      [[GOOD[0], ['chr1', 'x', 'exon', '10'].join('\t')], /expected 9 columns/, 2],
      [[GOOD[0], row('CDS', 100, 300, '+', '7', 'Parent=transcript:T1')], /bad phase/, 2],
    ];
    for (const [lines, re, line] of cases) {
      const f = gffFile(lines);
      const err = await loadGeneModel(f).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toMatch(re);
      expect((err as InputError).place).toMatchObject({ file: f, line });
    }
  });
});
