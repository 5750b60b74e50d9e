/**
 * The realignment kernel (wasm/caller/realign.c via realignReads) and the indel genotyping
 * built on it (callIndelSites), on hand-made reads against a made-up reference.
 */
import { describe, expect, it } from 'vitest';
import { encodeRecord } from '../../src/formats/bam.js';
import { parseCigar } from '../../src/formats/sam-record.js';
import { callIndelSites } from '../../src/call/indels.js';
import { realignReads } from '../../src/call/kernel.js';
import { clipIndels, collectReads, normaliseIndel } from '../../src/call/pileup.js';

/** A reference without repeats worth the name: a fixed pseudo-random sequence. */
function randomSeq(n: number, seed: number): string {
  let x = seed >>> 0;
  let s = '';
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += 'ACGT'[x >>> 30];
  }
  return s;
}
const REF = randomSeq(1200, 7);

let readNo = 0;
/** A BAM record (with block_size) of `seq` aligned at 0-based `pos` with `cigar`. */
function rec(pos: number, cigar: string, seq: string, opts: { mapq?: number; reverse?: boolean; bq?: number } = {}): Buffer {
  return encodeRecord({
    qname: `r${readNo++}`,
    flag: opts.reverse ? 0x10 : 0,
    refId: 0,
    pos,
    mapq: opts.mapq ?? 60,
    cigar: parseCigar(cigar),
    nextRefId: -1,
    nextPos: -1,
    tlen: 0,
    seq,
    qual: new Uint8Array(seq.length).fill(opts.bq ?? 30),
    tags: [],
  });
}

const CODE: Record<string, number> = { A: 0, C: 1, G: 2, T: 3 };
const codes = (s: string) => Uint8Array.from(s, (c) => CODE[c] ?? 4);

/** log10 P(read | hap) of each record against the reference and one alternate over [hs, he). */
function score(records: Buffer[], hs: number, he: number, ws: number, we: number, alt: string, band = 12): number[][] {
  const ref = REF.slice(hs, he);
  const hapSeq = codes(ref + alt);
  const out = realignReads(
    {
      records,
      sites: Int32Array.from([ws, we, 0, 2, hs, band]),
      haps: Int32Array.from([0, ref.length, ref.length, alt.length]),
      hapSeq,
      jobs: Int32Array.from(records.flatMap((_, i) => [0, i, 2 * i])),
      nOut: 2 * records.length,
      gapOpenQ: 45,
      gapExtQ: 10,
    },
    'test',
  );
  return records.map((_, i) => [out[2 * i], out[2 * i + 1]]);
}

describe('realignment kernel', () => {
  // a 3-base deletion after reference position 600 (bases 601..603 gone)
  const hs = 540;
  const he = 680;
  const delHap = REF.slice(hs, 601) + REF.slice(604, he);

  it('a read soft-clipped just before a deletion it carries prefers the deletion haplotype', () => {
    // the read: 50 bases up to 600, then the bases after the deletion; the aligner clipped them
    const seq = REF.slice(551, 601) + REF.slice(604, 616);
    const [[lRef, lDel]] = score([rec(551, '50M12S', seq)], hs, he, 560, 640, delHap);
    expect(lDel - lRef).toBeGreaterThan(3);
  });

  it('a reference read prefers the reference, and one ending at the anchor prefers neither', () => {
    const [[lRef, lDel], [eRef, eDel]] = score([rec(560, '60M', REF.slice(560, 620)), rec(541, '60M', REF.slice(541, 601))], hs, he, 560, 640, delHap);
    expect(lRef - lDel).toBeGreaterThan(3);
    expect(Math.abs(eRef - eDel)).toBeLessThan(0.05);
  });

  it('a read carrying the deletion in its CIGAR prefers it; low base qualities weaken the evidence', () => {
    const seq = REF.slice(570, 601) + REF.slice(604, 634);
    const [[hRef, hDel], [lRef, lDel]] = score([rec(570, '31M3D30M', seq), rec(570, '31M3D30M', seq, { bq: 8 })], hs, he, 560, 640, delHap);
    expect(hDel - hRef).toBeGreaterThan(3);
    expect(lDel - lRef).toBeGreaterThan(0);
    expect(lDel - lRef).toBeLessThan(hDel - hRef);
  });

  it('a read with no base in the window scores 0 on every haplotype', () => {
    const [[a, b]] = score([rec(100, '50M', REF.slice(100, 150))], hs, he, 560, 640, delHap);
    expect([a, b]).toEqual([0, 0]);
  });
});

describe('indels behind soft clips', () => {
  it('reads a clip as the insertion or deletion whose far side matches the reference', () => {
    // leading clip: 6 reference bases, then 4 inserted ones, then the alignment at 601
    expect(clipIndels(REF.slice(595, 601) + 'TTAC', true, 601, REF, 0)).toEqual([normaliseIndel(REF, 0, 601, 0, 'TTAC')]);
    // trailing clip after base 600: the reference from 605 on, so 601..604 are deleted
    expect(clipIndels(REF.slice(605, 615), false, 601, REF, 0)).toEqual([normaliseIndel(REF, 0, 601, 4, '')]);
    // leading clip that matches the reference 3 bases before the alignment: a 3-base deletion
    expect(clipIndels(REF.slice(588, 598), true, 601, REF, 0)).toEqual([normaliseIndel(REF, 0, 598, 3, '')]);
    // a clip that is none of these, or holds an N
    expect(clipIndels('GATTACAGATTACA', false, 601, REF, 0)).toEqual([]);
    expect(clipIndels('NNNNNNNNNN', false, 601, REF, 0)).toEqual([]);
  });
});

describe('indel genotyping by realignment', () => {
  const opts = { minAltReads: 2, minIndelFraction: 0.15, indelTheta: 1e-4, minQual: 20 };
  const call = (records: Buffer[]) => {
    const pu = collectReads(records, 0, 1200, REF, 0, {});
    return callIndelSites([pu], REF, 0, 0, 1200, opts, 'test').sites;
  };

  it('calls 1/2 when the reads split between two deletions at one POS', () => {
    const records: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const start = 520 + 4 * i;
      const len = i % 2 ? 5 : 3;
      const left = 601 - start;
      const seq = REF.slice(start, 601) + REF.slice(601 + len, 601 + len + (100 - left));
      records.push(rec(start, `${left}M${len}D${100 - left}M`, seq, { reverse: i % 4 < 2 }));
    }
    const sites = call(records);
    expect(sites).toHaveLength(1);
    const s = sites[0];
    expect(s.anchor).toBe(600);
    expect(s.ref).toBe(REF.slice(600, 606));
    expect(s.alts.sort()).toEqual([REF[600] + REF.slice(604, 606), REF[600]].sort());
    expect(s.call.calls[0].gt).toEqual([1, 2]);
    expect(s.ad[0][0]).toBe(0);
    expect(s.ad[0][1] + s.ad[0][2]).toBeGreaterThanOrEqual(18);
    expect(s.qual).toBeGreaterThan(100);
  });

  it('counts soft-clipped reads for the deletion they carry (AD from the realignment)', () => {
    const records: Buffer[] = [];
    const withDel = (start: number, clipped: boolean) => {
      const left = 601 - start;
      const seq = REF.slice(start, 601) + REF.slice(604, 604 + 100 - left);
      records.push(rec(start, clipped ? `${left}M${100 - left}S` : `${left}M3D${100 - left}M`, seq));
    };
    // reads ending shortly after the deletion: the aligner clipped their last bases
    withDel(503, true);
    withDel(507, true);
    for (let start = 510; start < 590; start += 4) {
      if (start % 8 === 2) withDel(start, false);
      else records.push(rec(start, '100M', REF.slice(start, start + 100)));
    }
    const sites = call(records);
    expect(sites).toHaveLength(1);
    const s = sites[0];
    expect(s.alts).toEqual([REF[600]]);
    expect(s.call.calls[0].gt).toEqual([0, 1]);
    // every read that reaches past the deletion counts for its allele, the clipped ones included
    expect(s.ad[0]).toEqual([10, 12]);
  });

  it('names the reads that prefer a called deletion their alignment lacks, for the SNV evidence to leave out', () => {
    const records: Buffer[] = [];
    for (let start = 510; start < 590; start += 4) {
      const left = 601 - start;
      if (start % 8 === 2) records.push(rec(start, `${left}M3D${100 - left}M`, REF.slice(start, 601) + REF.slice(604, 604 + 100 - left)));
      else records.push(rec(start, '100M', REF.slice(start, start + 100)));
    }
    // two reads of the deletion allele aligned straight through it: mismatches after base 600
    records.push(rec(540, '100M', REF.slice(540, 601) + REF.slice(604, 643)));
    records.push(rec(548, '100M', REF.slice(548, 601) + REF.slice(604, 651)));
    records.sort((a, b) => a.readInt32LE(8) - b.readInt32LE(8));
    const pu = collectReads(records, 0, 1200, REF, 0, {});
    const { sites, drop } = callIndelSites([pu], REF, 0, 0, 1200, opts, 'test');
    expect(sites.map((x) => [x.anchor, x.call.calls[0].gt])).toEqual([[600, [0, 1]]]);
    expect(sites[0].ad[0]).toEqual([10, 12]);
    const dropped = [...drop[0]].map((j) => pu.reads[j]).map((r) => [r.start, r.indels.length]);
    expect(dropped.sort()).toEqual([[540, 0], [548, 0]]);
  });

  it('counts reads that carry a neighbouring indel as well for the allele they carry (haplotypes with both)', () => {
    // a homozygous 3-base deletion after 600 and, on half of the reads, a 2-base insertion before p
    let p = 618;
    while (REF[p - 1] === 'A' || REF[p - 1] === 'G') p++;
    const records: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      const start = 510 + 4 * i;
      const left = 601 - start;
      const mid = p - 604;
      if (i % 2) {
        const right = 150 - left - mid - 2;
        records.push(rec(start, `${left}M3D${mid}M2I${right}M`, REF.slice(start, 601) + REF.slice(604, p) + 'GA' + REF.slice(p, p + right)));
      } else {
        records.push(rec(start, `${left}M3D${150 - left}M`, REF.slice(start, 601) + REF.slice(604, 604 + 150 - left)));
      }
    }
    const sites = call(records);
    expect(sites.map((x) => [x.anchor, x.alts.length, x.call.calls[0].gt])).toEqual([
      [600, 1, [1, 1]],
      [p - 1, 1, [0, 1]],
    ]);
    expect(sites[0].ad[0][0]).toBe(0);
    expect(sites[0].ad[0][1]).toBeGreaterThanOrEqual(18);
  });

  it('calls nothing from reads that all match the reference', () => {
    const records: Buffer[] = [];
    for (let i = 0; i < 20; i++) records.push(rec(520 + 4 * i, '100M', REF.slice(520 + 4 * i, 620 + 4 * i)));
    // two reads with a deletion that the others contradict: below minIndelFraction
    records.push(rec(560, '41M3D59M', REF.slice(560, 601) + REF.slice(604, 663)));
    records.push(rec(562, '39M3D61M', REF.slice(562, 601) + REF.slice(604, 665)));
    records.sort((a, b) => a.readInt32LE(8) - b.readInt32LE(8));
    expect(call(records)).toEqual([]);
  });
});
