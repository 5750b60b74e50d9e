/**
 * Reading annotations back out of an annotated VCF record, for the lake: the most severe
 * consequence per alternate allele from a VEP-style CSQ field (preferred) or from bcftools
 * csq's BCSQ field, and known-variant fields.
 */
import { infoValue, type VcfHeader } from '../formats/vcf.js';

export type Impact = 'HIGH' | 'MODERATE' | 'LOW' | 'MODIFIER';

const IMPACT_RANK: Record<Impact, number> = { HIGH: 3, MODERATE: 2, LOW: 1, MODIFIER: 0 };

/** Ensembl VEP impact classes of Sequence Ontology terms (and bcftools csq's spellings). */
const TERM_IMPACT: Record<string, Impact> = {
  transcript_ablation: 'HIGH',
  splice_acceptor_variant: 'HIGH',
  splice_acceptor: 'HIGH',
  splice_donor_variant: 'HIGH',
  splice_donor: 'HIGH',
  stop_gained: 'HIGH',
  frameshift_variant: 'HIGH',
  frameshift: 'HIGH',
  stop_lost: 'HIGH',
  start_lost: 'HIGH',
  transcript_amplification: 'HIGH',
  inframe_insertion: 'MODERATE',
  inframe_deletion: 'MODERATE',
  inframe_altering: 'MODERATE',
  missense_variant: 'MODERATE',
  missense: 'MODERATE',
  protein_altering_variant: 'MODERATE',
  splice_region_variant: 'LOW',
  splice_region: 'LOW',
  incomplete_terminal_codon_variant: 'LOW',
  start_retained_variant: 'LOW',
  start_retained: 'LOW',
  stop_retained_variant: 'LOW',
  stop_retained: 'LOW',
  synonymous_variant: 'LOW',
  synonymous: 'LOW',
  coding_sequence_variant: 'MODIFIER',
  coding_sequence: 'MODIFIER',
  '5_prime_UTR_variant': 'MODIFIER',
  '5_prime_utr': 'MODIFIER',
  '3_prime_UTR_variant': 'MODIFIER',
  '3_prime_utr': 'MODIFIER',
  non_coding_transcript_exon_variant: 'MODIFIER',
  non_coding: 'MODIFIER',
  intron_variant: 'MODIFIER',
  intron: 'MODIFIER',
  upstream_gene_variant: 'MODIFIER',
  downstream_gene_variant: 'MODIFIER',
  intergenic_variant: 'MODIFIER',
  intergenic: 'MODIFIER',
  feature_elongation: 'MODIFIER',
  feature_truncation: 'MODIFIER',
};

/** The impact of a consequence (terms joined with '&'): the highest of its terms. */
export function impactOfConsequence(consequence: string): Impact {
  let best: Impact = 'MODIFIER';
  for (const raw of consequence.split('&')) {
    const term = raw.replace(/^\*/, '');
    const imp = TERM_IMPACT[term] ?? TERM_IMPACT[term.toLowerCase()] ?? 'MODIFIER';
    if (IMPACT_RANK[imp] > IMPACT_RANK[best]) best = imp;
  }
  return best;
}

export interface AlleleAnnotation {
  gene: string | null;
  transcript: string | null;
  consequence: string | null;
  impact: Impact | null;
  hgvs_c: string | null;
  hgvs_p: string | null;
}

export const NO_ANNOTATION: AlleleAnnotation = { gene: null, transcript: null, consequence: null, impact: null, hgvs_c: null, hgvs_p: null };

/** How to read annotations from records of one VCF, decided once from its header. */
export interface AnnotationReader {
  /** Annotation of alternate allele `altIndex` (0-based) of a record. */
  forAllele(info: string, ref: string, alts: readonly string[], altIndex: number): AlleleAnnotation;
  /** INFO keys copied from known-variant databases (header Description starts with "[known:"). */
  knownKeys: string[];
}

/** VEP's Allele field: the alternate allele with the first base dropped when REF and ALT share it. */
function vepAllele(ref: string, alt: string): string {
  if (ref.length !== alt.length && ref[0] === alt[0]) return alt.length === 1 ? '-' : alt.slice(1);
  return alt;
}

function nonEmpty(s: string | undefined): string | null {
  return s === undefined || s === '' ? null : s;
}

function infoStrings(info: string, key: string): string[] {
  const v = infoValue(info, key);
  return v ? v.split(',') : [];
}

export function annotationReader(header: VcfHeader): AnnotationReader {
  const knownKeys = [...header.info.values()].filter((d) => d.description.startsWith('[known:')).map((d) => d.id);
  const csq = header.info.get('CSQ');
  const fmt = csq && /Format:\s*([^"]+)$/.exec(csq.description);
  if (fmt) {
    const names = fmt[1].trim().split('|');
    const col = (n: string) => names.indexOf(n);
    const [iAllele, iCons, iImpact, iSymbol, iGene, iFeature, iHgvsc, iHgvsp] = [
      col('Allele'),
      col('Consequence'),
      col('IMPACT'),
      col('SYMBOL'),
      col('Gene'),
      col('Feature'),
      col('HGVSc'),
      col('HGVSp'),
    ];
    return {
      knownKeys,
      forAllele(info, ref, alts, altIndex) {
        const want = alts[altIndex];
        const wantVep = vepAllele(ref, want);
        let best: AlleleAnnotation | undefined;
        let bestRank = -1;
        for (const entry of infoStrings(info, 'CSQ')) {
          const f = entry.split('|');
          const allele = iAllele >= 0 ? f[iAllele] : undefined;
          if (allele !== undefined && allele !== want && allele !== wantVep) continue;
          const consequence = nonEmpty(f[iCons]);
          const impact = (nonEmpty(f[iImpact]) as Impact | null) ?? (consequence ? impactOfConsequence(consequence) : null);
          const rank = impact ? IMPACT_RANK[impact] ?? 0 : -1;
          if (rank > bestRank) {
            bestRank = rank;
            best = {
              gene: nonEmpty(f[iSymbol]) ?? nonEmpty(f[iGene]),
              transcript: nonEmpty(f[iFeature]),
              consequence,
              impact,
              hgvs_c: nonEmpty(f[iHgvsc]),
              hgvs_p: nonEmpty(f[iHgvsp]),
            };
          }
        }
        return best ?? NO_ANNOTATION;
      },
    };
  }
  if (header.info.has('BCSQ')) {
    // consequence|gene|transcript|biotype|strand|amino_acid_change|dna_change; no allele column,
    // so every alternate allele gets the most severe entry of the record.
    return {
      knownKeys,
      forAllele(info) {
        let best: AlleleAnnotation | undefined;
        let bestRank = -1;
        for (const entry of infoStrings(info, 'BCSQ')) {
          const f = entry.split('|');
          const consequence = nonEmpty(f[0]);
          if (!consequence || consequence.startsWith('@')) continue;
          const impact = impactOfConsequence(consequence);
          const rank = IMPACT_RANK[impact];
          if (rank > bestRank) {
            bestRank = rank;
            best = {
              gene: nonEmpty(f[1]),
              transcript: nonEmpty(f[2]),
              consequence,
              impact,
              hgvs_c: nonEmpty(f[6]),
              hgvs_p: nonEmpty(f[5]),
            };
          }
        }
        return best ?? NO_ANNOTATION;
      },
    };
  }
  return { knownKeys, forAllele: () => NO_ANNOTATION };
}
