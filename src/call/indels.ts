/**
 * Indel genotyping by local realignment.
 *
 * Candidates are the normalised indels of the reads' CIGARs and of their soft clips
 * (pileup.ts) seen in at least minAltReads reads. Every POS with candidates is a site: its
 * window runs FLANK + the longest event's length either side of the events (to the right
 * from where the event could slide to in a repeat), and its haplotypes are the reference
 * over the window plus one per candidate at that POS, one per other candidate inside the
 * window and one per pair of the two that do not overlap (so that reads carrying a
 * neighbouring indel count for the allele at the POS they carry, not against it). Each
 * read's bases that project into the window, soft clips included, are aligned to every
 * haplotype in the kernel (gc_realign: a base-quality pair-HMM), in one call per region,
 * giving log10 P(read | haplotype).
 *
 * For a record with alleles 0..n−1 (0 = none of the site's alternates: the best of the
 * reference and the neighbours' haplotypes; an alternate: the best haplotype carrying it,
 * alone or with a neighbour), each read's allele likelihoods are floored at
 * its best minus MAPQ/10 (a read is no surer than its mapping), and
 *   P(read | a/b) = ½ P(read | a) + ½ P(read | b)
 * gives the diploid genotype likelihoods (readLogLiks + callSite in genotype.ts, or the
 * kernel's gc_genotype). A read counts in AD, DP and DP4 for the allele it prefers by at
 * least CLEAR_PREFERENCE (log10) over every other; reads that prefer none clearly are
 * uninformative. Alternates need minAltReads such reads and minIndelFraction of the
 * informative ones; at most two are kept, the second only on reads that tell it from the
 * first, and dropped again when no sample's genotype uses it.
 *
 * A read that clearly prefers an alternate of a called site inside it that its alignment
 * does not carry is misaligned there; region.ts leaves its bases out of the SNV evidence.
 */
import { genotypeBatch, type SiteCall } from './genotype.js';
import { realignReads, type GenotypeRequest } from './kernel.js';
import type { IndelEvent, ReadSpan, RegionPileup } from './pileup.js';

/** Reference bases either side of a site's events (plus the longest event's length). */
export const FLANK = 24;
/** Extra haplotype bases beyond the window, so a read segment can slide off its place. */
const HAP_PAD = 10;
/** Half-width of the alignment band around a read's place, plus the longest event (see realign.c). */
const BAND = 8;
/** Gap open and extension of the realignment, phred (GATK's defaults). */
export const GAP_OPEN_Q = 45;
export const GAP_EXT_Q = 10;
/** A read counts for an allele it prefers by this much (log10) over every other. */
export const CLEAR_PREFERENCE = 0.5;
/** Neighbouring candidates realigned at a site, at most (the best supported), and how far from its anchor. */
const MAX_NEIGHBOURS = 6;
const NEIGHBOUR_REACH = 180; // SITE_MARGIN + this stays inside CANDIDATE_MARGIN (pileup.ts)
/** How far a site's window may reach to the right of its anchor, before the flank (keeps it inside CANDIDATE_MARGIN). */
const MAX_REACH = 100;
/**
 * Sites are called this far outside the region too (not emitted): a read that clearly
 * prefers a called indel its alignment lacks is left out of the SNV evidence, and every
 * plan must leave out the same reads (reads up to DROP_MAX_READ long, sites inside them).
 */
export const SITE_MARGIN = 300;
const DROP_MAX_READ = 250;

export interface IndelOptions {
  minAltReads: number;
  minIndelFraction: number;
  indelTheta: number;
  minQual: number;
  genotypeKernel?: 'wasm' | 'js';
}

export interface IndelCalls {
  /** Called sites with anchors in [start − SITE_MARGIN, end + SITE_MARGIN), by anchor. */
  sites: IndelSiteCall[];
  /**
   * Per sample, the reads (indexes into its pileup's reads) that clearly prefer an
   * alternate allele of a called site inside them that they do not carry: misaligned
   * around it, so their bases are no SNV evidence.
   */
  drop: Set<number>[];
}

export interface IndelSiteCall {
  anchor: number;
  ref: string;
  alts: string[];
  qual: number;
  call: SiteCall;
  /** Per sample, reads per allele (AD). */
  ad: number[][];
  /** Reference forward, reference reverse, alternate forward, alternate reverse. */
  dp4: [number, number, number, number];
  /** Σ MAPQ² of the informative reads. */
  mq2: number;
  /** Longest |length change| of the alternates. */
  maxLen: number;
}

interface Candidate {
  ev: IndelEvent;
  key: string;
  support: number;
  len: number;
  /** Reference position past which the event cannot slide (its right-aligned end). */
  rightEnd: number;
}

const CODE = new Uint8Array(256).fill(4);
CODE[65] = CODE[97] = 0;
CODE[67] = CODE[99] = 1;
CODE[71] = CODE[103] = 2;
CODE[84] = CODE[116] = 3;

/** End of the reference span an indel can slide through to the right (left-aligned input). */
function rightEnd(refSeq: string, refOff: number, ev: IndelEvent): number {
  let p = ev.anchor + 1 - refOff;
  if (ev.ref.length > 1) {
    const d = ev.ref.length - 1;
    let n = 0;
    while (p + d < refSeq.length && refSeq[p] === refSeq[p + d] && n++ < MAX_REACH) p++;
    return p + d + refOff;
  }
  let s = ev.alt.slice(1);
  let n = 0;
  while (p < refSeq.length && refSeq[p] === s[0] && n++ < MAX_REACH) {
    s = s.slice(1) + s[0];
    p++;
  }
  return p + refOff;
}

interface Site {
  anchor: number;
  /** Candidates at the anchor, then the neighbours: haplotype h + 1 carries cands[h]. */
  cands: Candidate[];
  nAtAnchor: number;
  /**
   * Haplotypes carrying an alternate at the anchor and a neighbour (reads of a haplotype
   * with both fit neither alone): haplotype cands.length + 1 + i carries cands[combos[i][0]]
   * and cands[combos[i][1]].
   */
  combos: [number, number][];
  /** Per sample: [first job, job count]. */
  jobs: [number, number][];
  hap0: number;
}

/**
 * Calls the indel sites of a region with anchors in [start − SITE_MARGIN, end + SITE_MARGIN)
 * (the caller emits those inside [start, end)); sites are sorted by anchor. `refSeq` starts
 * at `refOff` and covers the reads' span. Needs only collectReads' part of the pileups.
 */
export function callIndelSites(
  pileups: RegionPileup[],
  refSeq: string,
  refOff: number,
  start: number,
  end: number,
  o: IndelOptions,
  file: string,
): IndelCalls {
  // candidates: CIGAR support pooled over the samples
  const support = new Map<string, number>();
  for (const pu of pileups) for (const r of pu.reads) for (const k of r.indels) if (pu.indels.has(k)) support.set(k, (support.get(k) ?? 0) + 1);
  const cands: Candidate[] = [];
  for (const [key, n] of support) {
    if (n < o.minAltReads) continue;
    const ev = pileups.find((pu) => pu.indels.has(key))!.indels.get(key)!;
    cands.push({ ev, key, support: n, len: Math.abs(ev.ref.length - ev.alt.length), rightEnd: rightEnd(refSeq, refOff, ev) });
  }
  cands.sort((a, b) => a.ev.anchor - b.ev.anchor || b.support - a.support || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const sites: Site[] = [];
  const siteSpec: number[] = [];
  const hapSpec: number[] = [];
  const hapParts: Uint8Array[] = [];
  let hapBytes = 0;
  const jobSpec: number[] = [];
  /** The read of each job (for MAPQ and strand), and its index in its pileup's reads. */
  const spanOf: ReadSpan[] = [];
  const readOf: number[] = [];
  const records: Buffer[] = [];
  const recIndex = pileups.map(() => new Map<number, number>());
  let nOut = 0;
  const refLo = refOff;
  const refHi = refOff + refSeq.length;
  for (let i = 0; i < cands.length; ) {
    const anchor = cands[i].ev.anchor;
    let j = i;
    while (j < cands.length && cands[j].ev.anchor === anchor) j++;
    const here = cands.slice(i, j);
    i = j;
    if (anchor < start - SITE_MARGIN || anchor >= end + SITE_MARGIN) continue;
    const maxLen = Math.max(...here.map((c) => c.len));
    const ws = Math.max(refLo, anchor - FLANK - maxLen);
    const locusEnd = Math.min(anchor + MAX_REACH, Math.max(...here.map((c) => c.rightEnd)));
    const we = Math.min(refHi, locusEnd + FLANK + maxLen);
    const neighbours = cands
      .filter((c) => c.ev.anchor !== anchor && c.ev.anchor >= ws && c.ev.anchor + c.ev.ref.length < we && Math.abs(c.ev.anchor - anchor) <= NEIGHBOUR_REACH)
      .sort((a, b) => b.support - a.support || a.ev.anchor - b.ev.anchor || (a.key < b.key ? -1 : 1))
      .slice(0, MAX_NEIGHBOURS);
    const siteCands = [...here, ...neighbours];
    const pad = HAP_PAD + Math.max(...siteCands.map((c) => c.len));
    const hs = Math.max(refLo, ws - pad);
    const he = Math.min(refHi, we + pad);
    const refHap = refSeq.slice(hs - refOff, he - refOff);
    const hap0 = hapSpec.length / 2;
    const addHap = (seq: string) => {
      const b = new Uint8Array(seq.length);
      for (let x = 0; x < seq.length; x++) b[x] = CODE[seq.charCodeAt(x)];
      hapSpec.push(hapBytes, b.length);
      hapParts.push(b);
      hapBytes += b.length;
    };
    addHap(refHap);
    for (const c of siteCands) {
      const a = c.ev.anchor - hs;
      addHap(refHap.slice(0, a + 1) + c.ev.alt.slice(1) + refHap.slice(a + c.ev.ref.length));
    }
    const combos: [number, number][] = [];
    here.forEach((a, i) => {
      neighbours.forEach((b, j) => {
        const [l, r] = a.ev.anchor < b.ev.anchor ? [a, b] : [b, a];
        if (r.ev.anchor < l.ev.anchor + l.ev.ref.length) return; // overlapping edits
        const x = r.ev.anchor - hs;
        const right = refHap.slice(0, x + 1) + r.ev.alt.slice(1) + refHap.slice(x + r.ev.ref.length);
        const y = l.ev.anchor - hs;
        addHap(right.slice(0, y + 1) + l.ev.alt.slice(1) + right.slice(y + l.ev.ref.length));
        combos.push([i, here.length + j]);
      });
    });
    const nHap = siteCands.length + 1 + combos.length;
    const siteNo = sites.length;
    siteSpec.push(ws, we, hap0, nHap, hs, BAND + Math.max(...siteCands.map((c) => c.len)));
    const site: Site = { anchor, cands: siteCands, nAtAnchor: here.length, combos, jobs: [], hap0 };
    pileups.forEach((pu, s) => {
      const first = jobSpec.length / 3;
      // reads are sorted by start: the first that can reach ws, then on while one can start before we
      let lo = 0;
      let hi = pu.reads.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (pu.reads[mid].start < ws - pu.maxQEnd) lo = mid + 1;
        else hi = mid;
      }
      for (let r = lo; r < pu.reads.length && pu.reads[r].start < we + pu.maxLeadClip; r++) {
        const sp = pu.reads[r];
        // a read that does not reach past the anchor, or starts past where the events can
        // slide to, reads the same on every haplotype of the anchor
        if (sp.qStart >= locusEnd || sp.qEnd <= anchor + 1) continue;
        let rec = recIndex[s].get(sp.rec);
        if (rec === undefined) {
          rec = records.length;
          records.push(pu.records[sp.rec]);
          recIndex[s].set(sp.rec, rec);
        }
        jobSpec.push(siteNo, rec, nOut);
        spanOf.push(sp);
        readOf.push(r);
        nOut += nHap;
      }
      site.jobs.push([first, jobSpec.length / 3 - first]);
    });
    sites.push(site);
  }
  const drop = pileups.map(() => new Set<number>());
  if (sites.length === 0) return { sites: [], drop };
  const hapSeq = new Uint8Array(hapBytes);
  let at = 0;
  for (const p of hapParts) {
    hapSeq.set(p, at);
    at += p.length;
  }
  const jobs = Int32Array.from(jobSpec);
  const out = realignReads(
    { records, sites: Int32Array.from(siteSpec), haps: Int32Array.from(hapSpec), hapSeq, jobs, nOut, gapOpenQ: GAP_OPEN_Q, gapExtQ: GAP_EXT_Q },
    file,
  );
  // alleles per site, then genotypes in batches (the kernel, or genotype.ts): a second
  // alternate no sample's genotype uses is dropped and the site genotyped again
  const chosen = sites.flatMap((site) => {
    const keep = chooseAlleles(site, out, jobs, o);
    return keep ? [{ site, keep }] : [];
  });
  const request = (c: { site: Site; keep: number[] }): GenotypeRequest => ({
    kind: 'reads',
    nAlleles: c.keep.length + 1,
    theta: o.indelTheta,
    samples: c.site.jobs.map(([f, n]) => {
      const liks: number[][] = [];
      const caps: number[] = [];
      for (let k = f; k < f + n; k++) {
        liks.push(alleleLiks(c.site, out, jobs, k, c.keep));
        caps.push(Math.min(spanOf[k].mapq, 60) / 10);
      }
      return { liks, caps };
    }),
  });
  const nSamples = pileups.length;
  const calls = genotypeBatch(chosen.map(request), nSamples, o.genotypeKernel);
  const again = chosen.flatMap((c, i) => (c.keep.length === 2 && !calls[i].calls.some((x) => x.gt.includes(2)) ? [i] : []));
  for (const i of again) chosen[i].keep = chosen[i].keep.slice(0, 1);
  genotypeBatch(again.map((i) => request(chosen[i])), nSamples, o.genotypeKernel).forEach((c, j) => (calls[again[j]] = c));
  const result: IndelSiteCall[] = [];
  chosen.forEach((c, i) => {
    const call = calls[i];
    if (!call.calls.some((x) => x.gt[1] > 0) || call.qual < o.minQual) return;
    result.push(finishSite(c.site, c.keep, call, out, jobs, spanOf));
    const keys = c.keep.map((h) => c.site.cands[h - 1].key);
    c.site.jobs.forEach(([f, n], s) => {
      for (let k = f; k < f + n; k++) {
        const sp = spanOf[k];
        if (sp.qEnd - sp.qStart > DROP_MAX_READ || c.site.anchor < sp.start || c.site.anchor >= sp.end) continue;
        const p = preferred(alleleLiks(c.site, out, jobs, k, c.keep));
        if (p > 0 && !sp.indels.includes(keys[p - 1])) drop[s].add(readOf[k]);
      }
    });
  });
  return { sites: result, drop };
}

/**
 * Per job: allele log-likelihoods for `alleles` (haplotype numbers of alternates at the
 * anchor), each the best of the haplotypes that carry it (alone or with a neighbour).
 * Allele 0 is the best of the reference and the neighbours' haplotypes; the anchor's
 * other candidates are left out (not kept: often the same event, spelt with another
 * length in a repeat, that a read inside the repeat cannot tell apart).
 */
function alleleLiks(site: Site, out: Float64Array, jobs: Int32Array, k: number, alleles: number[]): number[] {
  const base = jobs[3 * k + 2];
  const nCand = site.cands.length + 1;
  let other = out[base];
  for (let h = site.nAtAnchor + 1; h < nCand; h++) other = Math.max(other, out[base + h]);
  const l = [other];
  for (const h of alleles) {
    let v = out[base + h];
    site.combos.forEach(([a], i) => {
      if (a === h - 1) v = Math.max(v, out[base + nCand + i]);
    });
    l.push(v);
  }
  return l;
}

function preferred(l: number[]): number {
  let best = 0;
  for (let a = 1; a < l.length; a++) if (l[a] > l[best]) best = a;
  for (let a = 0; a < l.length; a++) if (a !== best && l[best] - l[a] < CLEAR_PREFERENCE) return -1;
  return best;
}

/**
 * The alternates of a site, greedily: the best supported on its own (reads that clearly
 * prefer it to allele 0, then the summed log-likelihood ratio, then CIGAR support), then a
 * second one only on reads that clearly prefer it to the first as well. Undefined when
 * none has minAltReads such reads and minIndelFraction of the informative ones.
 */
function chooseAlleles(site: Site, out: Float64Array, jobs: Int32Array, o: IndelOptions): number[] | undefined {
  const pooledAd = (als: number[]): number[] => {
    const t = new Array(als.length + 1).fill(0);
    for (const [f, n] of site.jobs) {
      for (let k = f; k < f + n; k++) {
        const p = preferred(alleleLiks(site, out, jobs, k, als));
        if (p >= 0) t[p]++;
      }
    }
    return t;
  };
  const passes = (ad: number[], a: number) => ad[a] >= o.minAltReads && ad[a] >= o.minIndelFraction * ad.reduce((s, v) => s + v, 0);
  const alone = Array.from({ length: site.nAtAnchor }, (_, i) => {
    const h = i + 1;
    const ad = pooledAd([h]);
    let ratio = 0;
    for (const [f, n] of site.jobs) {
      for (let k = f; k < f + n; k++) {
        const l = alleleLiks(site, out, jobs, k, [h]);
        ratio += l[1] - l[0];
      }
    }
    return { h, ad, ratio };
  });
  alone.sort((a, b) => b.ad[1] - a.ad[1] || b.ratio - a.ratio || a.h - b.h);
  if (!passes(alone[0].ad, 1)) return undefined;
  const keep = [alone[0].h];
  for (const c of alone.slice(1)) {
    if (passes(pooledAd([keep[0], c.h]), 2)) {
      keep.push(c.h);
      break;
    }
  }
  return keep;
}

/** The record of a called site: REF/ALT, AD per sample, DP4 and MQ² of the informative reads. */
function finishSite(site: Site, alleles: number[], call: SiteCall, out: Float64Array, jobs: Int32Array, spanOf: ReadSpan[]): IndelSiteCall {
  const dp4: [number, number, number, number] = [0, 0, 0, 0];
  let mq2 = 0;
  const ad = site.jobs.map(([f, n]) => {
    const a = new Array(alleles.length + 1).fill(0);
    for (let k = f; k < f + n; k++) {
      const p = preferred(alleleLiks(site, out, jobs, k, alleles));
      if (p < 0) continue;
      a[p]++;
      const sp = spanOf[k];
      dp4[(p > 0 ? 2 : 0) + (sp.reverse ? 1 : 0)]++;
      mq2 += sp.mapq * sp.mapq;
    }
    return a;
  });
  const evs = alleles.map((h) => site.cands[h - 1].ev);
  const refAllele = evs.reduce((r, e) => (e.ref.length > r.length ? e.ref : r), '');
  return {
    anchor: site.anchor,
    ref: refAllele,
    alts: evs.map((e) => e.alt + refAllele.slice(e.ref.length)),
    qual: call.qual,
    call,
    ad,
    dp4,
    mq2,
    maxLen: Math.max(...alleles.map((h) => site.cands[h - 1].len)),
  };
}
