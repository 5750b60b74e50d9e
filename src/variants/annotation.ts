/**
 * Reading annotations back out of an annotated VCF record, for the lake: the most severe
 * consequence per alternate allele from a VEP-style CSQ field (preferred) or from bcftools
 * csq's BCSQ field, and the keys of known-variant fields.
 *
 * The scanners work on the record's bytes and return byte ranges (no JS strings per
 * record): loading a VCF into the lake is bound by per-record work (profiled).
 */
import type { VcfHeader } from '../formats/vcf.js';

export type Impact = 'HIGH' | 'MODERATE' | 'LOW' | 'MODIFIER';

const IMPACT_RANK: Record<Impact, number> = { HIGH: 3, MODERATE: 2, LOW: 1, MODIFIER: 0 };
/** Impact names by rank. */
export const IMPACT_BY_RANK: readonly Impact[] = ['MODIFIER', 'LOW', 'MODERATE', 'HIGH'];

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

/**
 * Per alternate allele, `ANN_SLOTS` int32 values in the output array: start and end of
 * gene, transcript, consequence, impact, hgvs_c, hgvs_p in the record's buffer. A start
 * of -1 is null; an impact start of -2 - rank means the impact named by that rank (derived
 * from the consequence, not written in the record).
 */
export const ANN_SLOTS = 12;
export const ANN_GENE = 0;
export const ANN_TRANSCRIPT = 2;
export const ANN_CONSEQUENCE = 4;
export const ANN_IMPACT = 6;
export const ANN_HGVS_C = 8;
export const ANN_HGVS_P = 10;

/** The alleles of one record, as byte ranges in `buf`. */
export interface RecordAlleles {
  buf: Uint8Array;
  refStart: number;
  refEnd: number;
  /** ALT allele a spans [altStart[a], altEnd[a]). */
  altStart: Int32Array;
  altEnd: Int32Array;
  nAlts: number;
}

/** How to read annotations from records of one VCF, decided once from its header. */
export interface AnnotationScanner {
  /** INFO key holding the annotations (undefined: the VCF has none). */
  readonly key: string | undefined;
  /**
   * Fills `out` (ANN_SLOTS per allele) from the key's value, which starts at `vs` in
   * `rec.buf` and ends at the first ';' or at `limit` (the end of INFO). Returns where the
   * value ends. `vs < 0`: the record does not have the key (or has it as a flag).
   */
  scan(rec: RecordAlleles, vs: number, limit: number, out: Int32Array): number;
}

/** INFO keys copied from known-variant databases (header Description starts with "[known:"). */
export function knownKeys(header: VcfHeader): string[] {
  return [...header.info.values()].filter((d) => d.description.startsWith('[known:')).map((d) => d.id);
}

function clear(out: Int32Array, nAlts: number): void {
  for (let i = 0; i < nAlts * ANN_SLOTS; i += 2) out[i] = -1;
}

/** Rank of an impact written in a record; NaN for names that can never win (as before: `IMPACT_RANK[x] ?? 0`). */
function writtenImpactRank(buf: Uint8Array, s: number, e: number): number {
  const n = e - s;
  const c0 = buf[s];
  if (n === 4 && c0 === 72 && buf[s + 1] === 73 && buf[s + 2] === 71 && buf[s + 3] === 72) return 3; // HIGH
  if (n === 3 && c0 === 76 && buf[s + 1] === 79 && buf[s + 2] === 87) return 1; // LOW
  if (n === 8 && c0 === 77 && buf[s + 1] === 79 && buf[s + 2] === 68) {
    const c3 = buf[s + 3];
    if (c3 === 69 && buf[s + 4] === 82 && buf[s + 5] === 65 && buf[s + 6] === 84 && buf[s + 7] === 69) return 2; // MODERATE
    if (c3 === 73 && buf[s + 4] === 70 && buf[s + 5] === 73 && buf[s + 6] === 69 && buf[s + 7] === 82) return 0; // MODIFIER
  }
  const text = Buffer.from(buf.buffer, buf.byteOffset + s, n).toString('utf8');
  const r = (IMPACT_RANK as Record<string, unknown>)[text] ?? 0;
  return typeof r === 'number' ? r : NaN;
}

/**
 * impactOfConsequence on bytes, cached by the consequence's bytes (a VCF has a few dozen
 * distinct values): a hash of the bytes finds the entry without making a string.
 */
class ConsequenceImpacts {
  private readonly cache = new Map<number, { bytes: Uint8Array; rank: number }[]>();
  private size = 0;

  rank(buf: Uint8Array, s: number, e: number): number {
    let h = 0x811c9dc5;
    for (let i = s; i < e; i++) h = Math.imul(h ^ buf[i], 0x01000193);
    let bucket = this.cache.get(h);
    if (bucket) {
      for (const c of bucket) if (c.bytes.length === e - s && sameBytes(buf, s, e, c.bytes, 0)) return c.rank;
    }
    const bytes = new Uint8Array(buf.subarray(s, e)); // a copy: a view would keep the slice's buffer alive
    const rank = IMPACT_RANK[impactOfConsequence(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8'))];
    if (this.size >= 10_000) {
      this.cache.clear();
      this.size = 0;
      bucket = undefined;
    }
    if (!bucket) this.cache.set(h, (bucket = []));
    bucket.push({ bytes, rank });
    this.size++;
    return rank;
  }
}

/** Whether buf[s, e) equals other[o, o + e - s). */
function sameBytes(buf: Uint8Array, s: number, e: number, other: Uint8Array, o: number): boolean {
  for (let i = 0; i < e - s; i++) if (buf[s + i] !== other[o + i]) return false;
  return true;
}

function sameRange(buf: Uint8Array, s1: number, e1: number, s2: number, e2: number): boolean {
  return e1 - s1 === e2 - s2 && sameBytes(buf, s1, e1, buf, s2);
}

/** JS string length (UTF-16 units, as the string code compared) of a UTF-8 range. */
function charLength(buf: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let i = s; i < e; i++) {
    const b = buf[i];
    if ((b & 0xc0) !== 0x80) n += b >= 0xf0 ? 2 : 1;
  }
  return n;
}

/**
 * Splits the '|'-separated entry starting at `s` into field ranges (fields 0..fs.length-1
 * kept). The entry ends at ',' (next entry), ';' (next INFO key) or `limit`: returns that
 * index; the field count is left in `count[0]`. One pass over the bytes, which are the
 * bulk of an annotated record.
 */
function splitEntry(buf: Uint8Array, s: number, limit: number, fs: Int32Array, fe: Int32Array, count: Int32Array): number {
  const keep = fs.length;
  let k = 0;
  let from = s;
  let i = s;
  for (; i < limit; i++) {
    const c = buf[i];
    if (c === 124 /* | */) {
      if (k < keep) {
        fs[k] = from;
        fe[k] = i;
      }
      k++;
      from = i + 1;
    } else if (c === 44 /* , */ || c === 59 /* ; */) break;
  }
  if (k < keep) {
    fs[k] = from;
    fe[k] = i;
  }
  count[0] = k + 1;
  return i;
}

/**
 * VEP CSQ: per allele, the first entry of the highest impact among entries whose Allele
 * is this ALT (or VEP's trimmed spelling of it), or that have no Allele column.
 */
class CsqScanner implements AnnotationScanner {
  readonly key = 'CSQ';
  private readonly fs: Int32Array;
  private readonly fe: Int32Array;
  private readonly count = new Int32Array(1);
  private bestRank = new Float64Array(4);
  private vepStart = new Int32Array(4);
  private vepEnd = new Int32Array(4);
  private readonly impacts = new ConsequenceImpacts();

  constructor(
    private readonly iAllele: number,
    private readonly iCons: number,
    private readonly iImpact: number,
    private readonly iSymbol: number,
    private readonly iGene: number,
    private readonly iFeature: number,
    private readonly iHgvsc: number,
    private readonly iHgvsp: number,
  ) {
    const keep = Math.max(iAllele, iCons, iImpact, iSymbol, iGene, iFeature, iHgvsc, iHgvsp) + 1;
    this.fs = new Int32Array(keep);
    this.fe = new Int32Array(keep);
  }

  scan(rec: RecordAlleles, vs: number, limit: number, out: Int32Array): number {
    const { buf, nAlts } = rec;
    clear(out, nAlts);
    if (vs < 0) return vs;
    // An empty value has no entries (as before: '' split nothing).
    if (vs === limit || buf[vs] === 59) return vs;
    if (this.bestRank.length < nAlts) {
      this.bestRank = new Float64Array(nAlts * 2);
      this.vepStart = new Int32Array(nAlts * 2);
      this.vepEnd = new Int32Array(nAlts * 2);
    }
    // VEP's Allele: the ALT with the first base dropped when REF and ALT share it ('-' if nothing is left).
    const refChars = rec.refEnd - rec.refStart;
    for (let a = 0; a < nAlts; a++) {
      this.bestRank[a] = -1;
      const as = rec.altStart[a];
      const ae = rec.altEnd[a];
      const altChars = charLength(buf, as, ae);
      if (refChars !== altChars && buf[rec.refStart] === buf[as]) {
        if (altChars === 1) {
          this.vepStart[a] = -2; // '-'
          this.vepEnd[a] = -2;
        } else {
          this.vepStart[a] = as + 1;
          this.vepEnd[a] = ae;
        }
      } else {
        this.vepStart[a] = as;
        this.vepEnd[a] = ae;
      }
    }
    const { fs, fe, count, iAllele, iCons, iImpact, iSymbol, iGene, iFeature, iHgvsc, iHgvsp } = this;
    let stop = vs - 1;
    do {
      stop = splitEntry(buf, stop + 1, limit, fs, fe, count);
      const n = count[0];
      let rank: number;
      let impS: number;
      let impE = -1;
      if (iImpact >= 0 && iImpact < n && fe[iImpact] > fs[iImpact]) {
        impS = fs[iImpact];
        impE = fe[iImpact];
        rank = writtenImpactRank(buf, impS, impE);
      } else if (iCons >= 0 && iCons < n && fe[iCons] > fs[iCons]) {
        rank = this.impacts.rank(buf, fs[iCons], fe[iCons]);
        impS = -2 - rank;
      } else continue; // no impact: rank -1 never beats the initial -1 (continue goes to the while test)
      for (let a = 0; a < nAlts; a++) {
        if (!(rank > this.bestRank[a])) continue;
        if (iAllele >= 0 && iAllele < n) {
          const s = fs[iAllele];
          const e = fe[iAllele];
          const alt = sameRange(buf, s, e, rec.altStart[a], rec.altEnd[a]);
          const vep =
            this.vepStart[a] === -2 ? e - s === 1 && buf[s] === 45 /* - */ : sameRange(buf, s, e, this.vepStart[a], this.vepEnd[a]);
          if (!alt && !vep) continue;
        }
        this.bestRank[a] = rank;
        const o = a * ANN_SLOTS;
        if (iSymbol >= 0 && iSymbol < n && fe[iSymbol] > fs[iSymbol]) {
          out[o + ANN_GENE] = fs[iSymbol];
          out[o + ANN_GENE + 1] = fe[iSymbol];
        } else if (iGene >= 0 && iGene < n && fe[iGene] > fs[iGene]) {
          out[o + ANN_GENE] = fs[iGene];
          out[o + ANN_GENE + 1] = fe[iGene];
        } else out[o + ANN_GENE] = -1;
        this.put(out, o + ANN_TRANSCRIPT, iFeature, n);
        this.put(out, o + ANN_CONSEQUENCE, iCons, n);
        out[o + ANN_IMPACT] = impS;
        out[o + ANN_IMPACT + 1] = impE;
        this.put(out, o + ANN_HGVS_C, iHgvsc, n);
        this.put(out, o + ANN_HGVS_P, iHgvsp, n);
      }
    } while (stop < limit && buf[stop] === 44);
    return stop;
  }

  private put(out: Int32Array, at: number, k: number, n: number): void {
    if (k >= 0 && k < n && this.fe[k] > this.fs[k]) {
      out[at] = this.fs[k];
      out[at + 1] = this.fe[k];
    } else out[at] = -1;
  }
}

/**
 * bcftools csq's BCSQ: consequence|gene|transcript|biotype|strand|amino_acid_change|dna_change.
 * No allele column, so every alternate allele gets the most severe entry of the record.
 */
class BcsqScanner implements AnnotationScanner {
  readonly key = 'BCSQ';
  private readonly fs = new Int32Array(7);
  private readonly fe = new Int32Array(7);
  private readonly count = new Int32Array(1);
  private readonly impacts = new ConsequenceImpacts();

  scan(rec: RecordAlleles, vs: number, limit: number, out: Int32Array): number {
    const { buf, nAlts } = rec;
    clear(out, nAlts);
    if (vs < 0) return vs;
    if (vs === limit || buf[vs] === 59) return vs;
    const { fs, fe, count } = this;
    let bestRank = -1;
    let stop = vs - 1;
    do {
      stop = splitEntry(buf, stop + 1, limit, fs, fe, count);
      const n = count[0];
      if (fe[0] <= fs[0] || buf[fs[0]] === 64 /* @ */) continue;
      const rank = this.impacts.rank(buf, fs[0], fe[0]);
      if (rank <= bestRank) continue;
      bestRank = rank;
      const field = (at: number, k: number) => {
        if (k < n && fe[k] > fs[k]) {
          out[at] = fs[k];
          out[at + 1] = fe[k];
        } else out[at] = -1;
      };
      field(ANN_GENE, 1);
      field(ANN_TRANSCRIPT, 2);
      field(ANN_CONSEQUENCE, 0);
      out[ANN_IMPACT] = -2 - rank;
      field(ANN_HGVS_C, 6);
      field(ANN_HGVS_P, 5);
    } while (stop < limit && buf[stop] === 44);
    for (let a = 1; a < nAlts; a++) out.copyWithin(a * ANN_SLOTS, 0, ANN_SLOTS);
    return stop;
  }
}

class NoAnnotations implements AnnotationScanner {
  readonly key = undefined;
  scan(rec: RecordAlleles, vs: number, _limit: number, out: Int32Array): number {
    clear(out, rec.nAlts);
    return vs;
  }
}

export function annotationScanner(header: VcfHeader): AnnotationScanner {
  const csq = header.info.get('CSQ');
  const fmt = csq && /Format:\s*([^"]+)$/.exec(csq.description);
  if (fmt) {
    const names = fmt[1].trim().split('|');
    const col = (n: string) => names.indexOf(n);
    return new CsqScanner(col('Allele'), col('Consequence'), col('IMPACT'), col('SYMBOL'), col('Gene'), col('Feature'), col('HGVSc'), col('HGVSp'));
  }
  if (header.info.has('BCSQ')) return new BcsqScanner();
  return new NoAnnotations();
}
