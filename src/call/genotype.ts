/**
 * Diploid genotype likelihoods and calls.
 *
 * Genotypes over alleles 0..n−1 are in VCF order: (j, k) with j ≤ k at index k(k+1)/2 + j.
 * SNV likelihoods come from the pileup sums S1/S2/S3 (see pileup.ts):
 *   hom a:      S1[a] + Σ_{x≠a} S2[x]
 *   het a/b:    S3[a] + S3[b] + Σ_{x∉{a,b}} S2[x]
 * Indel likelihoods come from each read's likelihood under each allele (readLogLiks, from
 * the realignment in indels.ts): P(read | a/b) = ½ P(read | a) + ½ P(read | b).
 * Priors: heterozygosity θ spread over the alternate alleles (het θ/nAlt, hom θ/(2 nAlt),
 * alt/alt′ het θ²); QUAL = −10 log10 Π_samples P(0/0 | data); GQ from the posterior of
 * the called genotype (capped at 99); PL from the likelihoods.
 */
import { genotypeSites, type GenotypeRequest } from './kernel.js';

export const gtIndex = (j: number, k: number): number => (j <= k ? (k * (k + 1)) / 2 + j : (j * (j + 1)) / 2 + k);

/** Genotype pairs in VCF order for n alleles. */
export function genotypePairs(n: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k = 0; k < n; k++) for (let j = 0; j <= k; j++) out.push([j, k]);
  return out;
}

/** log10 likelihoods of every genotype of `alleles` (base indices 0..3) at pileup slot `off` (= position × 4). */
export function snvLogLiks(s1: ArrayLike<number>, s2: ArrayLike<number>, s3: ArrayLike<number>, off: number, alleles: number[]): number[] {
  let sumS2 = 0;
  for (let x = 0; x < 4; x++) sumS2 += s2[off + x];
  const out: number[] = [];
  for (const [j, k] of genotypePairs(alleles.length)) {
    const a = alleles[j];
    const b = alleles[k];
    if (a === b) out.push(s1[off + a] + sumS2 - s2[off + a]);
    else out.push(s3[off + a] + s3[off + b] + sumS2 - s2[off + a] - s2[off + b]);
  }
  return out;
}

/**
 * log10 likelihoods of every genotype of n alleles from reads: liks[r][a] = log10 P(read r |
 * allele a); each read's likelihoods are floored at its best minus caps[r] (a read is no
 * surer than its mapping), then P(read | a/b) = ½ P(read | a) + ½ P(read | b).
 */
export function readLogLiks(liks: number[][], caps: number[], n: number): number[] {
  const gl = new Array((n * (n + 1)) / 2).fill(0);
  liks.forEach((l, r) => {
    const best = Math.max(...l);
    const floor = best - caps[r];
    const p = l.map((v) => Math.pow(10, Math.max(v, floor) - best));
    let g = 0;
    for (let b = 0; b < n; b++) for (let a = 0; a <= b; a++) gl[g++] += Math.log10(0.5 * p[a] + 0.5 * p[b]) + best;
  });
  return gl;
}

/** log10 priors of the genotypes of n alleles. */
export function genotypePriors(n: number, theta: number): number[] {
  const nAlt = Math.max(1, n - 1);
  const p = genotypePairs(n).map(([j, k]) => {
    if (j === 0 && k === 0) return 0;
    if (j === 0) return theta / nAlt;
    if (j === k) return theta / (2 * nAlt);
    return theta * theta;
  });
  p[0] = 1 - p.slice(1).reduce((s, v) => s + v, 0);
  return p.map((v) => Math.log10(v));
}

export interface GenotypeCall {
  gt: [number, number];
  gq: number;
  pl: number[];
}

export interface SiteCall {
  qual: number;
  calls: GenotypeCall[];
}

function log10SumExp(v: number[]): number {
  const m = Math.max(...v);
  if (m === -Infinity) return m;
  let s = 0;
  for (const x of v) s += Math.pow(10, x - m);
  return m + Math.log10(s);
}

/** Calls every sample from its genotype log-likelihoods; QUAL over all samples. */
export function callSite(logLiks: number[][], nAlleles: number, theta: number): SiteCall {
  const prior = genotypePriors(nAlleles, theta);
  const pairs = genotypePairs(nAlleles);
  let logP00 = 0;
  const calls: GenotypeCall[] = [];
  for (const ll of logLiks) {
    const post = ll.map((v, i) => v + prior[i]);
    const z = log10SumExp(post);
    let best = 0;
    for (let i = 1; i < post.length; i++) if (post[i] > post[best]) best = i;
    logP00 += post[0] - z;
    const others = post.filter((_, i) => i !== best);
    const logErr = log10SumExp(others) - z;
    const gq = Math.min(99, Math.max(0, Math.round(-10 * logErr)));
    const maxLl = Math.max(...ll);
    const pl = ll.map((v) => Math.min(65535, Math.round(-10 * (v - maxLl))) + 0);
    calls.push({ gt: pairs[best], gq, pl });
  }
  const qual = Math.min(999, Math.max(0, -10 * logP00));
  return { qual, calls };
}

const logFact: number[] = [0];
function lf(n: number): number {
  for (let i = logFact.length; i <= n; i++) logFact.push(logFact[i - 1] + Math.log(i));
  return logFact[n];
}

/**
 * Phred-scaled two-sided Fisher exact test of strand bias on
 * [[refFwd, refRev], [altFwd, altRev]] (GATK's FS); 0 when there is no evidence of bias.
 */
export function fisherStrand(refFwd: number, refRev: number, altFwd: number, altRev: number): number {
  const r1 = refFwd + refRev;
  const c1 = refFwd + altFwd;
  const n = r1 + altFwd + altRev;
  if (n === 0) return 0;
  const logP = (a: number) => {
    const b = r1 - a;
    const c = c1 - a;
    const d = n - r1 - c;
    return lf(r1) + lf(n - r1) + lf(c1) + lf(n - c1) - lf(n) - lf(a) - lf(b) - lf(c) - lf(d);
  };
  const observed = logP(refFwd);
  let p = 0;
  for (let a = Math.max(0, c1 + r1 - n); a <= Math.min(r1, c1); a++) {
    const lp = logP(a);
    if (lp <= observed + 1e-9) p += Math.exp(lp);
  }
  p = Math.min(1, p);
  const fs = -10 * Math.log10(p);
  return fs > 1e-6 ? Math.min(999, fs) : 0;
}

/** The JS reference of one kernel request (gc_genotype): likelihoods, then callSite. */
export function callRequest(req: GenotypeRequest): SiteCall {
  if (req.kind === 'snv') {
    const lls = req.samples.map((s) => snvLogLiks(Array.from({ length: 4 }, (_, x) => s[x]), Array.from({ length: 4 }, (_, x) => s[4 + x]), Array.from({ length: 4 }, (_, x) => s[8 + x]), 0, req.alleles));
    return callSite(lls, req.alleles.length, req.theta);
  }
  return callSite(
    req.samples.map((s) => readLogLiks(s.liks, s.caps, req.nAlleles)),
    req.nAlleles,
    req.theta,
  );
}

/** Genotypes a batch of sites in the kernel ('wasm', default) or with callRequest ('js'). */
export function genotypeBatch(reqs: readonly GenotypeRequest[], nSamples: number, engine: 'wasm' | 'js' = 'wasm'): SiteCall[] {
  if (engine === 'js') return reqs.map(callRequest);
  return genotypeSites(reqs, nSamples).map((r, i) => {
    const n = reqs[i].kind === 'snv' ? (reqs[i] as { alleles: number[] }).alleles.length : (reqs[i] as { nAlleles: number }).nAlleles;
    const pairs = genotypePairs(n);
    return { qual: r.qual, calls: r.calls.map((c) => ({ gt: pairs[c.gt], gq: c.gq, pl: c.pl })) };
  });
}
