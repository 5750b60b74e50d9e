/**
 * VEP-style INFO/CSQ: Allele|Consequence|IMPACT|SYMBOL|Gene|Feature|BIOTYPE|HGVSc|HGVSp,
 * with Sequence Ontology term names and the impact classes of the Ensembl VEP documentation.
 * HGVS is given for coding substitutions and simple coding indels.
 */
import { type Term, termMask, translate, type TxContext } from './consequence.js';
import type { Transcript } from './genemodel.js';

export const CSQ_FIELDS = ['Allele', 'Consequence', 'IMPACT', 'SYMBOL', 'Gene', 'Feature', 'BIOTYPE', 'HGVSc', 'HGVSp'] as const;

export function csqHeader(): string {
  return `##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations (VEP-style) from genolake annotate. Format: ${CSQ_FIELDS.join('|')}">`;
}

/** Short (BCSQ) term → Sequence Ontology term. */
export const SO_TERM: Record<Term, string> = {
  intergenic: 'intergenic_variant',
  synonymous: 'synonymous_variant',
  missense: 'missense_variant',
  stop_lost: 'stop_lost',
  stop_gained: 'stop_gained',
  inframe_deletion: 'inframe_deletion',
  inframe_insertion: 'inframe_insertion',
  frameshift: 'frameshift_variant',
  splice_acceptor: 'splice_acceptor_variant',
  splice_donor: 'splice_donor_variant',
  start_lost: 'start_lost',
  splice_region: 'splice_region_variant',
  stop_retained: 'stop_retained_variant',
  '5_prime_utr': '5_prime_UTR_variant',
  '3_prime_utr': '3_prime_UTR_variant',
  non_coding: 'non_coding_transcript_exon_variant',
  intron: 'intron_variant',
  inframe_altering: 'protein_altering_variant',
  start_retained: 'start_retained_variant',
  coding_sequence: 'coding_sequence_variant',
  feature_elongation: 'feature_elongation',
  feature_truncation: 'feature_truncation',
};

/** SO terms in VEP's order of severity (most severe first) with their impact. */
const SEVERITY: Array<[string, Impact]> = [
  ['splice_acceptor_variant', 'HIGH'],
  ['splice_donor_variant', 'HIGH'],
  ['stop_gained', 'HIGH'],
  ['frameshift_variant', 'HIGH'],
  ['stop_lost', 'HIGH'],
  ['start_lost', 'HIGH'],
  ['inframe_insertion', 'MODERATE'],
  ['inframe_deletion', 'MODERATE'],
  ['missense_variant', 'MODERATE'],
  ['protein_altering_variant', 'MODERATE'],
  ['splice_region_variant', 'LOW'],
  ['start_retained_variant', 'LOW'],
  ['stop_retained_variant', 'LOW'],
  ['synonymous_variant', 'LOW'],
  ['coding_sequence_variant', 'MODIFIER'],
  ['5_prime_UTR_variant', 'MODIFIER'],
  ['3_prime_UTR_variant', 'MODIFIER'],
  ['non_coding_transcript_exon_variant', 'MODIFIER'],
  ['intron_variant', 'MODIFIER'],
  ['feature_elongation', 'MODIFIER'],
  ['feature_truncation', 'MODIFIER'],
  ['intergenic_variant', 'MODIFIER'],
];

export type Impact = 'HIGH' | 'MODERATE' | 'LOW' | 'MODIFIER';
const RANK = new Map(SEVERITY.map(([t], i) => [t, i]));
const IMPACT = new Map(SEVERITY);
const IMPACT_ORDER: Impact[] = ['HIGH', 'MODERATE', 'LOW', 'MODIFIER'];

/** Highest impact among SO terms (unknown terms count as MODIFIER). */
export function impactOf(soTerms: string[]): Impact {
  let best = 3;
  for (const t of soTerms) best = Math.min(best, IMPACT_ORDER.indexOf(IMPACT.get(t) ?? 'MODIFIER'));
  return IMPACT_ORDER[best];
}

const AA3: Record<string, string> = {
  A: 'Ala', R: 'Arg', N: 'Asn', D: 'Asp', C: 'Cys', Q: 'Gln', E: 'Glu', G: 'Gly', H: 'His', I: 'Ile', L: 'Leu', K: 'Lys',
  M: 'Met', F: 'Phe', P: 'Pro', S: 'Ser', T: 'Thr', W: 'Trp', Y: 'Tyr', V: 'Val', '*': 'Ter', X: 'Xaa',
};
const three = (s: string) => {
  let o = '';
  for (const c of s) o += AA3[c] ?? 'Xaa';
  return o;
};

/** HGVS p. from a BCSQ amino-acid change (`56R>56C`, `145L`, `3GLGLW>3W`, frameshifts). */
export function hgvsp(txId: string, aa: string, so: string[], next = ''): string {
  const m = /^(\d+)([A-Z*]+)(?:>(\d+)([A-Z*]*))?$/.exec(aa);
  if (!m) return '';
  const n = Number(m[1]);
  const ref = m[2];
  const alt = m[4];
  if (alt === undefined) return `${txId}:p.${three(ref[0])}${n}=`;
  if (so.includes('frameshift_variant')) {
    // first changed residue
    let i = 0;
    while (i < ref.length && i < alt.length && ref[i] === alt[i]) i++;
    if (i >= ref.length) return '';
    const stop = alt.indexOf('*', i);
    // no stop in the new frame before the transcript ends: HGVS writes fsTer?
    const tail = stop >= 0 ? `fsTer${stop - i + 1}` : 'fsTer?';
    return `${txId}:p.${three(ref[i])}${n + i}${i < alt.length ? three(alt[i]) : ''}${tail}`;
  }
  if (ref.length === 1 && alt.length === 1) {
    if (so.includes('start_lost')) return `${txId}:p.Met1?`;
    return `${txId}:p.${three(ref)}${n}${three(alt)}`;
  }
  // in-frame: trim shared ends
  let b = 0;
  while (b < ref.length && b < alt.length && ref[b] === alt[b]) b++;
  let e = 0;
  while (e < ref.length - b && e < alt.length - b && ref[ref.length - 1 - e] === alt[alt.length - 1 - e]) e++;
  const r = ref.slice(b, ref.length - e), a = alt.slice(b, alt.length - e);
  const p = n + b;
  if (!r.length && a.length && b > 0) {
    const after = ref[b] ?? next;
    if (!after) return '';
    return `${txId}:p.${three(ref[b - 1])}${p - 1}_${three(after)}${p}ins${three(a)}`;
  }
  if (r.length && !a.length) return `${txId}:p.${three(r[0])}${p}${r.length > 1 ? `_${three(r[r.length - 1])}${p + r.length - 1}` : ''}del`;
  if (r.length && a.length) {
    if (a[0] === '*' && r.length >= 1) return `${txId}:p.${three(r[0])}${p}Ter`;
    return `${txId}:p.${three(r[0])}${p}${r.length > 1 ? `_${three(r[r.length - 1])}${p + r.length - 1}` : ''}delins${three(a)}`;
  }
  return '';
}

/** HGVS c. of a CDS edit ([c1, c2) replaced by ins, transcript orientation); '' when the CDS is 5'-incomplete. */
export function hgvsc(ctx: TxContext, edit: { c1: number; c2: number; ins: string }): string {
  if (ctx.phase !== 0 || edit.c1 < 0) return '';
  const id = ctx.tx.id;
  const R = ctx.cds;
  // trim bases shared by REF and ALT (VCF anchor bases), transcript orientation
  let c1 = edit.c1, c2 = edit.c2, ins = edit.ins;
  while (c1 < c2 && ins.length && R[c1] === ins[0]) {
    c1++;
    ins = ins.slice(1);
  }
  while (c1 < c2 && ins.length && R[c2 - 1] === ins[ins.length - 1]) {
    c2--;
    ins = ins.slice(0, -1);
  }
  edit = { c1, c2, ins };
  const del = R.slice(edit.c1, edit.c2);
  if (del.length === 1 && edit.ins.length === 1) return `${id}:c.${edit.c1 + 1}${del}>${edit.ins}`;
  if (!del.length) {
    const n = edit.ins.length;
    if (edit.c1 >= n && R.slice(edit.c1 - n, edit.c1) === edit.ins) {
      return n === 1 ? `${id}:c.${edit.c1}dup` : `${id}:c.${edit.c1 - n + 1}_${edit.c1}dup`;
    }
    return `${id}:c.${edit.c1}_${edit.c1 + 1}ins${edit.ins}`;
  }
  const range = del.length === 1 ? `${edit.c1 + 1}` : `${edit.c1 + 1}_${edit.c2}`;
  return edit.ins.length ? `${id}:c.${range}delins${edit.ins}` : `${id}:c.${range}del`;
}

/** SO terms of a set of BCSQ terms, most severe first, with their impact; few distinct sets occur, so they are kept. */
const soCache = new Map<number, { so: string[]; text: string; impact: Impact }>();
function soTermsOf(terms: Iterable<Term>): { so: string[]; text: string; impact: Impact } {
  // the result depends on the set of terms only
  const key = termMask(terms);
  let got = soCache.get(key);
  if (!got) {
    const so = [...new Set([...terms].map((t) => SO_TERM[t]))].sort((a, b) => (RANK.get(a) ?? 99) - (RANK.get(b) ?? 99));
    got = { so, text: so.join('&'), impact: impactOf(so) };
    soCache.set(key, got);
  }
  return got;
}

/** VEP's allele: the ALT without the shared leading base for indels. */
export function vepAllele(alt: string, ref: string): string {
  return ref.length !== alt.length && ref[0] === alt[0] ? alt.slice(1) || '-' : alt;
}

/**
 * What follows the allele in a CSQ entry without HGVS (`|Consequence|IMPACT|…|BIOTYPE||`),
 * escaped as `vepEntry` escapes: `vepAllele(alt, ref) + vepTail(terms, tx)` is the entry of a
 * base allele, so callers can keep it per transcript.
 */
export function vepTail(terms: Iterable<Term>, tx: Transcript): string {
  const { text: soText, impact } = soTermsOf(terms);
  const e = ['', soText, impact, tx.geneName, tx.geneId, tx.id, tx.biotype, '', ''].join('|');
  return e.indexOf('=') < 0 ? e : e.replace(/=/g, '%3D');
}

/** One CSQ entry. `coding` carries the allele's own CDS edit and amino-acid change when it is coding. */
export function vepEntry(
  alt: string, terms: Iterable<Term>, tx: Transcript, coding: { ctx: TxContext; edit: { c1: number; c2: number; ins: string }; aa: string } | null,
  _pos: number, ref: string, _ai: number,
): string {
  const { so, text: soText, impact } = soTermsOf(terms);
  // VEP allele: the ALT without the shared leading base for indels
  let allele = alt;
  if (ref.length !== alt.length && ref[0] === alt[0]) allele = alt.slice(1) || '-';
  const hc = coding ? hgvsc(coding.ctx, coding.edit) : '';
  let next = '';
  if (coding && hc) {
    const m = /^(\d+)([A-Z*]+)/.exec(coding.aa);
    if (m) next = translate(coding.ctx.cds.slice((Number(m[1]) - 1 + m[2].length) * 3, (Number(m[1]) + m[2].length) * 3));
  }
  const hp = coding && hc ? hgvsp(tx.id, coding.aa, so, next) : '';
  // the fields joined by '|' with '=' escaped: the transcript's fields are kept joined and escaped, the rest is checked here
  const e = allele + '|' + soText + '|' + impact + txFieldsOf(tx) + hc + '|' + hp;
  return allele.indexOf('=') < 0 && hc.indexOf('=') < 0 && hp.indexOf('=') < 0 ? e : e.replace(/=/g, '%3D');
}

const txFields = new WeakMap<Transcript, string>();
/** `|SYMBOL|Gene|Feature|BIOTYPE|` of a transcript, '=' escaped. */
function txFieldsOf(tx: Transcript): string {
  let f = txFields.get(tx);
  if (f === undefined) {
    f = ['', tx.geneName, tx.geneId, tx.id, tx.biotype, ''].join('|').replace(/=/g, '%3D');
    txFields.set(tx, f);
  }
  return f;
}
