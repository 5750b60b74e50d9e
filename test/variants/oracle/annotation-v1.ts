/**
 * Reading annotations back out of an annotated VCF record, for the lake: the most severe
 * consequence per alternate allele from a VEP-style CSQ field (preferred) or from bcftools
 * csq's BCSQ field, and known-variant fields.
 */
import { infoValue, type VcfHeader } from '../../../src/formats/vcf.js';

// The impact table and impactOfConsequence are data, not the logic under test: shared with src.
import { impactOfConsequence, type Impact } from '../../../src/variants/annotation.js';
export { impactOfConsequence, type Impact };
const IMPACT_RANK: Record<Impact, number> = { HIGH: 3, MODERATE: 2, LOW: 1, MODIFIER: 0 };

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
