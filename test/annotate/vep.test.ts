import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { annotateVcf } from '../../src/annotate/annotate.js';
import { hgvsp, impactOf } from '../../src/annotate/vep.js';
import { CONFORMANCE_DIR, infoMap, readText, vcfRows } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'gl-vep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function csqOf(out: string, pos: string): string[][] {
  const r = vcfRows(readText(out)).find((c) => c[1] === pos)!;
  return (infoMap(r[7]).get('CSQ') ?? '').split(',').map((e) => e.split('|'));
}

describe('VEP-style CSQ', () => {
  it('impact classes follow the Ensembl VEP table', () => {
    expect(impactOf(['stop_gained', 'splice_region_variant'])).toBe('HIGH');
    expect(impactOf(['splice_donor_variant'])).toBe('HIGH');
    expect(impactOf(['missense_variant'])).toBe('MODERATE');
    expect(impactOf(['inframe_deletion'])).toBe('MODERATE');
    expect(impactOf(['synonymous_variant', 'splice_region_variant'])).toBe('LOW');
    expect(impactOf(['intron_variant'])).toBe('MODIFIER');
    expect(impactOf(['3_prime_UTR_variant'])).toBe('MODIFIER');
  });

  it('HGVS p. from the amino-acid change', () => {
    expect(hgvsp('T', '56R>56C', ['missense_variant'])).toBe('T:p.Arg56Cys');
    expect(hgvsp('T', '145L', ['synonymous_variant'])).toBe('T:p.Leu145=');
    expect(hgvsp('T', '132EE>132D*', ['stop_gained'])).toBe('T:p.Glu132_Glu133delinsAspTer');
    expect(hgvsp('T', '3GLGLW>3W', ['inframe_deletion'])).toBe('T:p.Gly3_Leu6del');
    expect(hgvsp('T', '89K>89KKKEKG', ['inframe_insertion'], 'R')).toBe('T:p.Lys89_Arg90insLysLysGluLysGly');
    expect(hgvsp('T', '157SSHLMC*>157SSHLMSLC', ['frameshift_variant'])).toBe('T:p.Cys162SerfsTer?');
    expect(hgvsp('T', '1M>1V', ['start_lost'])).toBe('T:p.Met1?');
  });

  it('writes the header and per-transcript entries with HGVS on both strands', async () => {
    const c = join(CONFORMANCE_DIR, 'ENST00000420190');
    const out = join(dir, 'a.vcf');
    await annotateVcf({ reference: join(c, 'ENST00000420190.fa'), gff: join(c, 'ENST00000420190.gff'), vcf: join(c, 'abort-in-csq-push.vcf'), out, modelCache: false });
    const text = readText(out);
    expect(text).toMatch(/##INFO=<ID=CSQ,.*Format: Allele\|Consequence\|IMPACT\|SYMBOL\|Gene\|Feature\|BIOTYPE\|HGVSc\|HGVSp">/);
    const e = csqOf(out, '5500')[0];
    expect(e).toEqual(['T', 'missense_variant', 'MODERATE', 'SAMD11', 'ENSG00000187634', 'ENST00000342066', 'protein_coding', 'ENST00000342066:c.166C>T', 'ENST00000342066:p.Arg56Cys']);
    const syn = csqOf(out, '14483').find((x) => x[5] === 'ENST00000342066')!;
    expect(syn[8]).toBe('ENST00000342066:p.Gly159%3D');

    // reverse strand: MNP turning two codons into Asp-Ter
    const d = join(CONFORMANCE_DIR, 'ENST00000360372');
    const out2 = join(dir, 'b.vcf');
    await annotateVcf({ reference: join(d, 'ENST00000360372.fa'), gff: join(d, 'ENST00000360372.gff'), vcf: join(d, 'mnp.vcf'), out: out2, modelCache: false });
    const m = csqOf(out2, '4391')[0];
    expect(m.slice(0, 3)).toEqual(['AA', 'stop_gained', 'HIGH']);
    expect(m[7]).toBe('ENST00000360372:c.396_397delinsTT');
    expect(m[8]).toBe('ENST00000360372:p.Glu132_Glu133delinsAspTer');

    // deletion and insertion: anchor bases trimmed
    const f = join(CONFORMANCE_DIR, 'ENST00000400151');
    const out3 = join(dir, 'c.vcf');
    await annotateVcf({ reference: join(f, 'ENST00000400151.fa'), gff: join(f, 'ENST00000400151.gff'), vcf: join(f, 'long-del.vcf'), out: out3, modelCache: false });
    const fs = csqOf(out3, '28388')[0];
    expect(fs.slice(0, 3)).toEqual(['-', 'frameshift_variant', 'HIGH']);
    expect(fs[7]).toBe('ENST00000400151:c.472_490del');
    const g = join(CONFORMANCE_DIR, 'ENST00000301246');
    const out4 = join(dir, 'd.vcf');
    await annotateVcf({ reference: join(g, 'ENST00000301246.fa'), gff: join(g, 'ENST00000301246.gff'), vcf: join(g, '15bp-insert.vcf'), out: out4, modelCache: false });
    const ins = csqOf(out4, '770').find((x) => x[5] === 'ENST00000301246')!;
    expect(ins[7]).toBe('ENST00000301246:c.267_268insAAGAAGGAGAAGGGC');
    expect(ins[8]).toBe('ENST00000301246:p.Lys89_Lys90insLysLysGluLysGly');
    expect(csqOf(out4, '770').find((x) => x[5] === 'ENST00000588605')!.slice(1, 3)).toEqual(['3_prime_UTR_variant', 'MODIFIER']);
  });
});
