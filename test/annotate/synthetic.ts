/**
 * A small synthetic genome with hand-designed transcripts (both strands, UTR-only exons,
 * a lincRNA, a 5'-incomplete CDS) and variant sets aimed at the hard spots: splice sites
 * on the reverse strand, frameshifts near the stop codon, start codon deletions, UTRs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

class Lcg {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (Math.imul(this.s, 1664525) + 1013904223) >>> 0;
    return this.s / 2 ** 32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  base(): string {
    return 'ACGT'[this.int(4)];
  }
}

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
const rc = (s: string) => [...s].reverse().map((c) => COMP[c]).join('');

export interface SynTranscript {
  gene: string;
  id: string;
  biotype: 'protein_coding' | 'lincRNA';
  strand: '+' | '-';
  /** 1-based inclusive, ascending */
  exons: Array<[number, number]>;
  /** CDS segments (1-based inclusive, ascending) with GFF phase */
  cds: Array<[number, number, number]>;
  utr5: Array<[number, number]>;
  utr3: Array<[number, number]>;
}

export interface SynGenome {
  chrom: string;
  seq: string[];
  transcripts: SynTranscript[];
}

/**
 * Lays out one transcript: exon lengths in transcript order, UTR lengths, start offset.
 * Writes UTR/CDS bases (ATG + sense codons + TAA) into `seq`, GT/AG at introns.
 */
function design(
  g: SynGenome, rng: Lcg, gene: string, id: string, strand: '+' | '-', start: number,
  exonLens: number[], intronLens: number[], u5: number, u3: number, opts: { noStart?: boolean; noncoding?: boolean } = {},
): SynTranscript {
  const total = exonLens.reduce((a, b) => a + b, 0);
  // mRNA in transcript orientation
  let mrna = '';
  if (opts.noncoding) for (let i = 0; i < total; i++) mrna += rng.base();
  else {
    const cdsLen = total - u5 - u3;
    if (cdsLen % 3) throw new Error('cds length must be a multiple of 3');
    for (let i = 0; i < u5; i++) mrna += rng.base();
    let cds = opts.noStart ? '' : 'ATG';
    while (cds.length < cdsLen - 3) {
      const c = rng.base() + rng.base() + rng.base();
      if (c === 'TAA' || c === 'TAG' || c === 'TGA') continue;
      cds += c;
    }
    cds += 'TAA';
    mrna += cds;
    for (let i = 0; i < u3; i++) mrna += rng.base();
  }
  // genomic layout, 1-based; transcript order = genomic order for '+', reversed for '-'
  const segs: Array<[number, number]> = [];
  let p = start;
  const lensG = strand === '+' ? exonLens : [...exonLens].reverse();
  const intG = strand === '+' ? intronLens : [...intronLens].reverse();
  for (let i = 0; i < lensG.length; i++) {
    segs.push([p, p + lensG[i] - 1]);
    p += lensG[i] + (intG[i] ?? 0);
  }
  const genomicMrna = strand === '+' ? mrna : rc(mrna);
  let k = 0;
  for (const [b, e] of segs) for (let x = b; x <= e; x++) g.seq[x - 1] = genomicMrna[k++];
  // canonical splice sites
  for (let i = 0; i + 1 < segs.length; i++) {
    const ib = segs[i][1] + 1, ie = segs[i + 1][0] - 1;
    const donorAcc = strand === '+' ? ['G', 'T', 'A', 'G'] : ['C', 'T', 'A', 'C']; // +: GT..AG ; -: CT..AC
    g.seq[ib - 1] = donorAcc[0];
    g.seq[ib] = donorAcc[1];
    g.seq[ie - 2] = donorAcc[2];
    g.seq[ie - 1] = donorAcc[3];
  }
  // map transcript offsets to genomic segments
  const txToG = (t: number): number => {
    // t: 0-based offset in mRNA
    let off = 0;
    const order = strand === '+' ? segs : [...segs].reverse();
    for (const [b, e] of order) {
      const len = e - b + 1;
      if (t < off + len) return strand === '+' ? b + (t - off) : e - (t - off);
      off += len;
    }
    throw new Error('offset outside transcript');
  };
  const ranges = (t0: number, t1: number): Array<[number, number]> => {
    // transcript offsets [t0, t1) to genomic ascending ranges
    const out: Array<[number, number]> = [];
    for (const [b, e] of segs) {
      const pos: number[] = [];
      for (let x = b; x <= e; x++) pos.push(x);
      const inR = pos.filter((x) => {
        const t = strand === '+' ? tOf(x) : tOf(x);
        return t >= t0 && t < t1;
      });
      if (inR.length) out.push([inR[0], inR[inR.length - 1]]);
    }
    return out;
  };
  const tOf = (x: number): number => {
    let off = 0;
    const order = strand === '+' ? segs : [...segs].reverse();
    for (const [b, e] of order) {
      if (x >= b && x <= e) return off + (strand === '+' ? x - b : e - x);
      off += e - b + 1;
    }
    return -1;
  };
  void txToG;
  const tr: SynTranscript = { gene, id, biotype: opts.noncoding ? 'lincRNA' : 'protein_coding', strand, exons: segs, cds: [], utr5: [], utr3: [] };
  if (!opts.noncoding) {
    const cdsR = ranges(u5, total - u3);
    // phase: bases to skip to the next codon start, in transcript order
    const ordered = strand === '+' ? cdsR : [...cdsR].reverse();
    let done = 0;
    const withPhase = ordered.map(([b, e]) => {
      const ph = (3 - (done % 3)) % 3;
      done += e - b + 1;
      return [b, e, ph] as [number, number, number];
    });
    tr.cds = strand === '+' ? withPhase : withPhase.reverse();
    tr.utr5 = u5 ? ranges(0, u5) : [];
    tr.utr3 = u3 ? ranges(total - u3, total) : [];
  }
  g.transcripts.push(tr);
  return tr;
}

export function buildSynthetic(seed = 7): SynGenome {
  const rng = new Lcg(seed);
  const len = 7000;
  const g: SynGenome = { chrom: 'chrS', seq: Array.from({ length: len }, () => rng.base()), transcripts: [] };
  // forward coding, 4 exons, UTRs on both ends
  design(g, rng, 'GFWD', 'TFWD', '+', 201, [90, 61, 77, 120], [150, 200, 130], 30, 45);
  // reverse coding, 4 exons; the first exon (transcript order) is UTR only
  design(g, rng, 'GREV', 'TREV', '-', 1501, [60, 83, 94, 111], [170, 140, 160], 75, 36);
  // reverse coding without UTRs, short exons near the ends
  design(g, rng, 'GREV2', 'TREV2', '-', 2901, [40, 50, 57], [120, 130], 0, 0);
  // lincRNA (UTR/exon-only, non-coding)
  design(g, rng, 'GLNC', 'TLNC', '+', 3801, [150, 120], [200], 0, 0, { noncoding: true });
  // forward coding whose 5' exon is entirely UTR
  design(g, rng, 'GUTR', 'TUTR', '+', 4501, [50, 40, 96, 72], [110, 90, 100], 95, 46);
  return g;
}

export function gff3(g: SynGenome): string {
  const L: string[] = ['##gff-version 3'];
  for (const t of g.transcripts) {
    const b = t.exons[0][0], e = t.exons[t.exons.length - 1][1];
    L.push([g.chrom, 'syn', t.biotype === 'lincRNA' ? 'lincRNA_gene' : 'gene', b, e, '.', t.strand, '.', `ID=gene:${t.gene};Name=${t.gene};biotype=${t.biotype}`].join('\t'));
    L.push([g.chrom, 'syn', t.biotype === 'lincRNA' ? 'lincRNA' : 'mRNA', b, e, '.', t.strand, '.', `ID=transcript:${t.id};Parent=gene:${t.gene};biotype=${t.biotype}`].join('\t'));
    for (const [x, y] of t.exons) L.push([g.chrom, 'syn', 'exon', x, y, '.', t.strand, '.', `Parent=transcript:${t.id}`].join('\t'));
    for (const [x, y, ph] of t.cds) L.push([g.chrom, 'syn', 'CDS', x, y, '.', t.strand, ph, `ID=CDS:${t.id}P;Parent=transcript:${t.id}`].join('\t'));
    for (const [x, y] of t.utr5) L.push([g.chrom, 'syn', 'five_prime_UTR', x, y, '.', t.strand, '.', `Parent=transcript:${t.id}`].join('\t'));
    for (const [x, y] of t.utr3) L.push([g.chrom, 'syn', 'three_prime_UTR', x, y, '.', t.strand, '.', `Parent=transcript:${t.id}`].join('\t'));
  }
  return L.join('\n') + '\n';
}

/** GENCODE-style GTF of the same models: CDS without the stop codon, stop_codon rows, UTR rows. */
export function gtf(g: SynGenome): string {
  const L: string[] = [];
  for (const t of g.transcripts) {
    const b = t.exons[0][0], e = t.exons[t.exons.length - 1][1];
    const ga = `gene_id "${t.gene}"; gene_type "${t.biotype}"; gene_name "${t.gene}";`;
    const ta = `${ga} transcript_id "${t.id}"; transcript_type "${t.biotype}";`;
    L.push([g.chrom, 'SYN', 'gene', b, e, '.', t.strand, '.', ga].join('\t'));
    L.push([g.chrom, 'SYN', 'transcript', b, e, '.', t.strand, '.', ta].join('\t'));
    for (const [x, y] of t.exons) L.push([g.chrom, 'SYN', 'exon', x, y, '.', t.strand, '.', ta].join('\t'));
    // split the last 3 coding bases (transcript order) off as stop_codon
    const cds = t.cds.map((c) => [...c] as [number, number, number]);
    if (cds.length) {
      if (t.strand === '+') {
        const last = cds[cds.length - 1];
        L.push([g.chrom, 'SYN', 'stop_codon', last[1] - 2, last[1], '.', t.strand, 0, ta].join('\t'));
        last[1] -= 3;
      } else {
        const first = cds[0];
        L.push([g.chrom, 'SYN', 'stop_codon', first[0], first[0] + 2, '.', t.strand, 0, ta].join('\t'));
        first[0] += 3;
      }
      for (const [x, y, ph] of cds) if (y >= x) L.push([g.chrom, 'SYN', 'CDS', x, y, '.', t.strand, ph, ta].join('\t'));
    }
    for (const [x, y] of [...t.utr5, ...t.utr3]) L.push([g.chrom, 'SYN', 'UTR', x, y, '.', t.strand, '.', ta].join('\t'));
  }
  return L.join('\n') + '\n';
}

export function fasta(g: SynGenome): string {
  const s = g.seq.join('');
  let out = `>${g.chrom}\n`;
  for (let i = 0; i < s.length; i += 60) out += s.slice(i, i + 60) + '\n';
  return out;
}

export interface SynVariant {
  pos: number; // 1-based
  ref: string;
  alt: string;
  gts?: string[];
}

const other = (b: string) => ({ A: 'C', C: 'G', G: 'T', T: 'A' })[b as 'A']!;

/** Dense probes for local-mode comparison: every kind of hard spot, overlapping is fine. */
export function denseVariants(g: SynGenome): SynVariant[] {
  const seq = g.seq;
  const at = (p: number) => seq[p - 1];
  const vs: SynVariant[] = [];
  const snv = (p: number) => vs.push({ pos: p, ref: at(p), alt: other(at(p)) });
  const del = (p: number, n: number) => vs.push({ pos: p, ref: seq.slice(p - 1, p + n).join(''), alt: at(p) });
  const ins = (p: number, s: string) => vs.push({ pos: p, ref: at(p), alt: at(p) + s });
  for (const t of g.transcripts) {
    // splice sites, both strands: every offset -10..+10 around each exon boundary
    for (let i = 0; i < t.exons.length; i++) {
      for (const edge of [t.exons[i][0], t.exons[i][1]]) {
        for (let d = -10; d <= 10; d++) {
          const p = edge + d;
          snv(p);
          del(p, 1);
          del(p, 3);
          ins(p, 'A');
          ins(p, 'GGC');
        }
      }
    }
    if (!t.cds.length) {
      for (let p = t.exons[0][0]; p <= t.exons[0][1]; p += 7) snv(p);
      continue;
    }
    const lo = t.cds[0][0], hi = t.cds[t.cds.length - 1][1];
    const [start, stop] = t.strand === '+' ? [lo, hi - 2] : [hi - 2, lo];
    // start codon: deletions covering it, SNVs in it
    for (let d = -4; d <= 4; d++) {
      del(start + d, 3);
      del(start + d, 1);
      del(start + d, 6);
      snv(start + 1 + d);
    }
    // frameshifts and stop changes near the stop codon
    for (let d = -18; d <= 6; d++) {
      del(stop + d, 1);
      del(stop + d, 2);
      ins(stop + d, 'T');
      ins(stop + d, 'TA');
      snv(stop + d);
    }
    // a walk through the CDS and UTRs
    for (let p = t.exons[0][0]; p <= t.exons[t.exons.length - 1][1]; p += 11) snv(p);
  }
  vs.sort((a, b) => a.pos - b.pos || a.ref.length - b.ref.length || (a.alt < b.alt ? -1 : a.alt > b.alt ? 1 : 0));
  return dedupe(vs);
}

function dedupe(vs: SynVariant[]): SynVariant[] {
  const seen = new Set<string>();
  return vs.filter((v) => {
    const k = `${v.pos}:${v.ref}:${v.alt}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Sparse variants (non-overlapping) for haplotype-aware comparisons; optional phased samples. */
export function sparseVariants(g: SynGenome, seed: number, nsamples = 0): SynVariant[] {
  const rng = new Lcg(seed);
  const seq = g.seq;
  const vs: SynVariant[] = [];
  let p = 150;
  while (p < seq.length - 20) {
    const k = rng.int(10);
    const ref0 = seq[p - 1];
    let v: SynVariant;
    if (k < 5) v = { pos: p, ref: ref0, alt: other(ref0) };
    else if (k < 7) {
      const n = 1 + rng.int(4);
      v = { pos: p, ref: seq.slice(p - 1, p + n).join(''), alt: ref0 };
    } else if (k < 9) v = { pos: p, ref: ref0, alt: ref0 + ['A', 'CG', 'TTA', 'GACT'][rng.int(4)] };
    else v = { pos: p, ref: seq.slice(p - 1, p + 1).join(''), alt: other(ref0) + other(seq[p]) };
    if (nsamples) {
      v.gts = [];
      for (let s = 0; s < nsamples; s++) v.gts.push(['0|1', '1|0', '1|1', '0|1'][rng.int(4)]);
    }
    vs.push(v);
    p += v.ref.length + 1 + rng.int(12);
  }
  return vs;
}

export function writeVcf(path: string, chrom: string, len: number, vs: SynVariant[], samples: string[] = []): void {
  const L = ['##fileformat=VCFv4.2', `##contig=<ID=${chrom},length=${len}>`];
  if (samples.length) L.push('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">');
  L.push(['#CHROM', 'POS', 'ID', 'REF', 'ALT', 'QUAL', 'FILTER', 'INFO', ...(samples.length ? ['FORMAT', ...samples] : [])].join('\t'));
  for (const v of vs) L.push([chrom, v.pos, '.', v.ref, v.alt, '.', '.', '.', ...(samples.length ? ['GT', ...(v.gts ?? [])] : [])].join('\t'));
  writeFileSync(path, L.join('\n') + '\n');
}

export function writeSynthetic(dir: string, g: SynGenome): { fa: string; gff: string; gtf: string } {
  const fa = join(dir, 'syn.fa');
  const gffPath = join(dir, 'syn.gff3');
  const gtfPath = join(dir, 'syn.gtf');
  writeFileSync(fa, fasta(g));
  writeFileSync(gffPath, gff3(g));
  writeFileSync(gtfPath, gtf(g));
  return { fa, gff: gffPath, gtf: gtfPath };
}

/**
 * The synthetic design (seed 3) on two contigs, chr… and chrT (gene ids prefixed X on the
 * second), written as DIR/ref.fa and DIR/genes.gff3: work can be cut at the contig boundary.
 */
export function writeTwoContigs(dir: string): { g: SynGenome; g2: SynGenome } {
  const g = buildSynthetic(3);
  const g2 = { ...g, chrom: 'chrT' };
  writeFileSync(join(dir, 'ref.fa'), fasta(g) + fasta(g2));
  writeFileSync(join(dir, 'genes.gff3'), gff3(g) + gff3(g2).replace('##gff-version 3\n', '').replace(/(ID|Parent)=(gene|transcript):/g, '$1=$2:X'));
  return { g, g2 };
}
