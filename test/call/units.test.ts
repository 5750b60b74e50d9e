import { describe, expect, it } from 'vitest';
import { callRequest, callSite, fisherStrand, genotypeBatch, genotypePairs, gtIndex, readLogLiks, snvLogLiks } from '../../src/call/genotype.js';
import type { GenotypeRequest } from '../../src/call/kernel.js';
import { END_WINDOW, maskFor, normaliseIndel, reg2bins } from '../../src/call/pileup.js';
import { parseBed, planRegions } from '../../src/call/regions.js';
import { reg2bin } from '../../src/formats/bam.js';
import { alleleKeys } from '../../src/call/compare.js';

describe('region plan', () => {
  const refs = [
    { name: 'c1', length: 1_234_567 },
    { name: 'c2', length: 80_001 },
    { name: 'c3', length: 0 },
  ];

  it('tiles every reference with non-overlapping regions, sized for the pool', () => {
    for (const threads of [1, 2, 8]) {
      const plan = planRegions(refs, { threads });
      for (const r of refs.filter((x) => x.length > 0)) {
        const mine = plan.filter((p) => p.chrom === r.name);
        expect(mine[0].start).toBe(0);
        expect(mine[mine.length - 1].end).toBe(r.length);
        for (let i = 1; i < mine.length; i++) expect(mine[i].start).toBe(mine[i - 1].end);
        for (const m of mine) expect(m.refId).toBe(refs.indexOf(r));
      }
      expect(plan.some((p) => p.chrom === 'c3')).toBe(false);
      expect(plan.length).toBeGreaterThanOrEqual(Math.min(threads, 4));
      for (const p of plan) expect(p.end - p.start).toBeLessThanOrEqual(1_000_000);
    }
  });

  it('restricts to BED targets, merged and in @SQ order; bad BED lines and unknown contigs are input errors', () => {
    const bed = parseBed('track x\nc2\t100\t200\nc1\t50\t70\nc2\t150\t300\n# c\nc1\t10\t10\n');
    const plan = planRegions(refs, { targets: bed });
    expect(plan.map((p) => [p.chrom, p.start, p.end])).toEqual([
      ['c1', 50, 70],
      ['c2', 100, 300],
    ]);
    expect(() => parseBed('c1\t10\n', 't.bed')).toThrow(/start/);
    expect(() => parseBed('c1\t20\t10\n', 't.bed')).toThrow(expect.objectContaining({ code: 'BED_BAD_LINE', place: expect.objectContaining({ line: 1 }) }));
    expect(() => planRegions(refs, { targets: [{ chrom: 'chrZ', start: 0, end: 10 }] })).toThrow(expect.objectContaining({ code: 'REGION_UNKNOWN_CONTIG' }));
    expect(() => planRegions(refs, { targets: [{ chrom: 'c2', start: 0, end: 90_000 }] })).toThrow(expect.objectContaining({ code: 'REGION_OUT_OF_RANGE' }));
  });
});

describe('indel normalisation', () => {
  //            0123456789012
  const ref = 'GATTTTCACACAG';
  it('left-aligns deletions and insertions in repeats, with the anchor base', () => {
    // delete one T anywhere in TTTT → anchor A at 1
    expect(normaliseIndel(ref, 0, 5, 1, '')).toEqual({ anchor: 1, ref: 'AT', alt: 'A' });
    // delete CA at 8 (CACACA) → leftmost: anchor T at 5, REF TCA
    expect(normaliseIndel(ref, 0, 8, 2, '')).toEqual({ anchor: 5, ref: 'TCA', alt: 'T' });
    // insert T before 6 → anchor A at 1
    expect(normaliseIndel(ref, 0, 6, 0, 'T')).toEqual({ anchor: 1, ref: 'A', alt: 'AT' });
    // insert AC before 11 (…CACA|CAG) → leftmost rotation: anchor T at 5, ALT TCA
    expect(normaliseIndel(ref, 0, 11, 0, 'AC')).toEqual({ anchor: 5, ref: 'T', alt: 'TCA' });
    // the offset of the window is honoured; walking off the window gives no anchor
    expect(normaliseIndel(ref, 1000, 1005, 1, '')).toEqual({ anchor: 1001, ref: 'AT', alt: 'A' });
    expect(normaliseIndel('TTTT', 0, 2, 1, '')).toBeUndefined();
  });
});

describe('read-end masking', () => {
  it('leaves out the bases of a read beyond a nearby indel it does not carry', () => {
    const del = { anchor: 1000, refLen: 4, len: 3, key: '1000:ACGT:A' };
    const read = (start: number, end: number, indels: string[] = []) => ({ start, end, mapq: 60, reverse: false, indels });
    // ends 10 bases after the deletion: bases after the anchor are suspect
    expect(maskFor(read(870, 1014), [del])).toEqual([870, 1001]);
    // starts shortly before it: bases up to the end of the locus are suspect
    expect(maskFor(read(995, 1145), [del])).toEqual([1004, 1145]);
    // carries it, or spans it with long flanks: nothing masked
    expect(maskFor(read(870, 1014, [del.key]), [del])).toEqual([870, 1014]);
    expect(maskFor(read(900, 1050), [del])).toEqual([900, 1050]);
    expect(maskFor(read(900, 1004 + END_WINDOW + 3), [del])).toEqual([900, 1004 + END_WINDOW + 3]);
    expect(maskFor(read(900, 1050), [])).toEqual([900, 1050]);
  });
});

describe('genotype likelihoods', () => {
  it('orders genotypes as VCF does', () => {
    expect(genotypePairs(3)).toEqual([[0, 0], [0, 1], [1, 1], [0, 2], [1, 2], [2, 2]]);
    genotypePairs(4).forEach(([j, k], i) => {
      expect(gtIndex(j, k)).toBe(i);
      expect(gtIndex(k, j)).toBe(i);
    });
  });

  it('calls hom-ref, het and hom-alt from pileup sums', () => {
    const e = 10 ** -3; // Q30
    const sums = (counts: number[]) => {
      const s1 = new Float32Array(4);
      const s2 = new Float32Array(4);
      const s3 = new Float32Array(4);
      counts.forEach((n, b) => {
        s1[b] = n * Math.log10(1 - e);
        s2[b] = n * Math.log10(e / 3);
        s3[b] = n * Math.log10((1 - e + e / 3) / 2);
      });
      return [s1, s2, s3] as const;
    };
    const call = (counts: number[]) => {
      const [s1, s2, s3] = sums(counts);
      return callSite([snvLogLiks(s1, s2, s3, 0, [0, 2])], 2, 1e-3);
    };
    const het = call([10, 0, 9, 0]);
    expect(het.calls[0].gt).toEqual([0, 1]);
    expect(het.calls[0].pl[1]).toBe(0);
    expect(het.qual).toBeGreaterThan(100);
    expect(het.calls[0].gq).toBe(99);
    expect(call([0, 0, 20, 0]).calls[0].gt).toEqual([1, 1]);
    const ref = call([25, 0, 1, 0]);
    expect(ref.calls[0].gt).toEqual([0, 0]);
    expect(ref.qual).toBeLessThan(5);
    // likelihoods agree with a direct per-read computation
    const [s1, s2, s3] = sums([3, 1, 2, 0]);
    const direct = genotypePairs(2).map(([j, k]) => {
      const a = [0, 2][j];
      const b = [0, 2][k];
      const p = (x: number) => ((x === a ? 1 - e : e / 3) + (x === b ? 1 - e : e / 3)) / 2;
      return 3 * Math.log10(p(0)) + Math.log10(p(1)) + 2 * Math.log10(p(2));
    });
    snvLogLiks(s1, s2, s3, 0, [0, 2]).forEach((v, i) => expect(v).toBeCloseTo(direct[i], 4));
  });

  it('scores indels from reads: ½ P(read | a) + ½ P(read | b), each read floored at its best minus its cap', () => {
    // reads with log10 P(read | ref), P(read | alt): 8 for the alternate, 9 for the reference
    const alt = [-6, -1];
    const ref = [-1, -6];
    const reads = (nAlt: number, nRef: number) => [...Array(nAlt).fill(alt), ...Array(nRef).fill(ref)];
    const caps = (n: number, c = 6) => Array(n).fill(c);
    const het = callSite([readLogLiks(reads(8, 9), caps(17), 2)], 2, 1e-4);
    expect(het.calls[0].gt).toEqual([0, 1]);
    expect(callSite([readLogLiks(reads(15, 0), caps(15), 2)], 2, 1e-4).calls[0].gt).toEqual([1, 1]);
    expect(callSite([readLogLiks(reads(1, 30), caps(31), 2)], 2, 1e-4).calls[0].gt).toEqual([0, 0]);
    // one read: hom-ref, het, hom-alt likelihoods by hand
    const one = readLogLiks([alt], [6], 2);
    expect(one[0]).toBeCloseTo(-6, 9);
    expect(one[1]).toBeCloseTo(Math.log10(0.5 * 1e-6 + 0.5 * 1e-1), 9);
    expect(one[2]).toBeCloseTo(-1, 9);
    // a cap of 2 (MAPQ 20) limits how much one read can say
    expect(readLogLiks([alt], [2], 2)[0]).toBeCloseTo(-3, 9);
    // two samples: QUAL accumulates, genotypes are per sample
    const two = callSite([readLogLiks(reads(8, 9), caps(17), 2), readLogLiks(reads(0, 20), caps(20), 2)], 2, 1e-4);
    expect(two.calls.map((c) => c.gt)).toEqual([[0, 1], [0, 0]]);
  });

  it('the genotype kernel (gc_genotype) gives the numbers of genotype.ts, bit for bit', () => {
    let x = 12345;
    const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const reqs: GenotypeRequest[] = [];
    for (let i = 0; i < 300; i++) {
      const nS = 2;
      if (i % 2 === 0) {
        const alleles = [0, 1, 2, 3].sort(() => rnd() - 0.5).slice(0, 2 + (i % 3 === 0 ? 1 : 0));
        const samples = Array.from({ length: nS }, () => {
          const counts = [0, 1, 2, 3].map(() => Math.floor(rnd() * 20));
          const e = 10 ** (-(10 + rnd() * 30) / 10);
          const v = new Float32Array(12);
          counts.forEach((c, b) => {
            v[b] = c * Math.log10(1 - e);
            v[4 + b] = c * Math.log10(e / 3);
            v[8 + b] = c * Math.log10((1 - e + e / 3) / 2);
          });
          return v;
        });
        reqs.push({ kind: 'snv', alleles, theta: 1e-3, samples });
      } else {
        const n = 2 + (i % 3 === 1 ? 1 : 0);
        const samples = Array.from({ length: nS }, () => {
          const r = Math.floor(rnd() * 30);
          return {
            liks: Array.from({ length: r }, () => Array.from({ length: n }, () => -rnd() * 12)),
            caps: Array.from({ length: r }, () => Math.floor(rnd() * 61) / 10),
          };
        });
        reqs.push({ kind: 'reads', nAlleles: n, theta: 1e-4, samples });
      }
    }
    const wasm = genotypeBatch(reqs, 2, 'wasm');
    const js = genotypeBatch(reqs, 2, 'js');
    expect(wasm).toEqual(js);
    expect(js).toEqual(reqs.map(callRequest));
    expect(new Set(js.flatMap((c) => c.calls.map((k) => k.gt.join('/')))).size).toBeGreaterThan(3);
  });
});

describe('strand bias', () => {
  it('is the phred-scaled two-sided Fisher exact test', () => {
    // [[3,1],[1,3]]: p = 0.4857 (R fisher.test)
    expect(fisherStrand(3, 1, 1, 3)).toBeCloseTo(-10 * Math.log10(0.4857143), 3);
    // [[10,10],[0,12]]: p = 0.004391 (exact, two-sided): all alternate reads on one strand
    expect(fisherStrand(10, 10, 0, 12)).toBeCloseTo(-10 * Math.log10(0.004390981), 3);
    expect(fisherStrand(10, 10, 6, 6)).toBe(0);
    expect(fisherStrand(0, 0, 0, 0)).toBe(0);
  });
});

describe('helpers', () => {
  it('reg2bins lists the bin of every interval inside the query', () => {
    for (const [b, e] of [[0, 1], [16383, 16385], [100_000, 300_000], [5_000_000, 5_000_001]]) {
      const bins = new Set(reg2bins(b, e));
      for (let x = b; x < e; x += 997) expect(bins.has(reg2bin(x, Math.min(e, x + 150)))).toBe(true);
    }
  });

  it('the comparator splits multiallelics, decomposes MNPs and trims indels', () => {
    const k = alleleKeys(['c\t10\t.\tAC\tGT,A\t.\tPASS\t.\tGT\t1/2', 'c\t20\t.\tA\tG\t.\tLowQual\t.\tGT\t0/0', 'c\t30\t.\tCAT\tCT\t.\tPASS\t.']);
    expect([...k.snv].sort()).toEqual(['c:10:A:G', 'c:11:C:T']);
    expect([...k.indel]).toEqual(['c:10:AC:A', 'c:30:CA:C']);
  });
});
