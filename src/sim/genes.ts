/**
 * Gene models written into the genome, and their GFF3 (Ensembl flavour, as bcftools csq
 * reads it). A model is designed in transcript orientation (5'→3'): exon and intron
 * lengths, UTRs, and a coding sequence ATG + sense codons + stop. Its bases (exons, the
 * GT..AG splice sites and a polypyrimidine tract) are then written onto the chosen strand,
 * so every model is valid against the sequence by construction.
 */
import { Rng } from './rng.js';
import { A, C, G, T, COMPLEMENT, type Interval } from './seq.js';
import { randomSequence, type Contig, type Occupancy } from './genome.js';

export type Strand = '+' | '-';
export type Biotype = 'protein_coding' | 'lincRNA';

export interface TranscriptModel {
  id: string;
  biotype: Biotype;
  /** genomic, 0-based half-open, ascending */
  exons: Interval[];
  /** genomic span of the CDS including the stop codon (protein_coding only) */
  cds?: Interval;
}

export interface GeneModel {
  id: string;
  name: string;
  chrom: string;
  strand: Strand;
  start: number;
  end: number;
  biotype: Biotype;
  transcripts: TranscriptModel[];
}

/** A designed gene plus the bases it needs written into the genome. */
export interface GenePlan {
  gene: GeneModel;
  /** [genomic position, ASCII base] pairs, already on the + strand */
  writes: { pos: number; bytes: Uint8Array }[];
}

const STOPS = ['TAA', 'TAG', 'TGA'];
const SENSE_CODONS: string[] = (() => {
  const b = 'ACGT';
  const out: string[] = [];
  for (const x of b) for (const y of b) for (const z of b) if (!STOPS.includes(x + y + z)) out.push(x + y + z);
  return out;
})();

interface Layout {
  exonLens: number[];
  intronLens: number[];
  u5: number;
  u3: number;
  /** index of an internal exon that a second isoform skips (in frame, phase 0) */
  skip?: number;
}

function sum(xs: readonly number[], from = 0, to = xs.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += xs[i];
  return s;
}

function intronLength(rng: Rng): number {
  return Math.min(8_000, 120 + rng.geometric(1 / 900));
}

function designCoding(rng: Rng, twoIsoforms: boolean): Layout {
  const nExons = twoIsoforms ? rng.range(4, 9) : rng.chance(0.08) ? 1 : rng.range(2, 10);
  let exonLens: number[];
  if (nExons === 1) exonLens = [rng.range(900, 3000)];
  else {
    exonLens = [rng.range(90, 350)];
    for (let i = 1; i < nExons - 1; i++) exonLens.push(rng.range(60, 260));
    exonLens.push(rng.range(300, 1200));
  }
  const intronLens = Array.from({ length: nExons - 1 }, () => intronLength(rng));
  const u5 = nExons === 1 ? rng.range(30, 200) : rng.range(20, exonLens[0] - 40);
  const last = exonLens[nExons - 1];
  let u3 = nExons === 1 ? rng.range(100, 400) : rng.range(60, last - 60);
  let skip: number | undefined;
  if (twoIsoforms) {
    // The skipped exon must start on a codon boundary and hold whole codons, so the
    // isoform without it keeps the frame and no codon is newly formed at the junction.
    skip = rng.range(1, nExons - 2);
    const r = (sum(exonLens, 0, skip) - u5) % 3;
    if (r !== 0) exonLens[skip - 1] += 3 - r;
    exonLens[skip] -= exonLens[skip] % 3;
  }
  u3 += (sum(exonLens) - u5 - u3) % 3; // CDS length a multiple of 3
  return { exonLens, intronLens, u5, u3, skip };
}

function designNoncoding(rng: Rng): Layout {
  const nExons = rng.range(1, 4);
  const exonLens = Array.from({ length: nExons }, () => rng.range(150, 900));
  return { exonLens, intronLens: Array.from({ length: nExons - 1 }, () => intronLength(rng)), u5: 0, u3: 0 };
}

function codingSequence(length: number, rng: Rng): Uint8Array {
  const codons = length / 3;
  let s = 'ATG';
  for (let i = 1; i < codons - 1; i++) s += rng.pick(SENSE_CODONS);
  s += rng.pick(STOPS);
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

/** Exon intervals in transcript-orientation span coordinates. */
function exonSpans(l: Layout): Interval[] {
  const out: Interval[] = [];
  let p = 0;
  l.exonLens.forEach((len, i) => {
    out.push({ start: p, end: p + len });
    p += len + (l.intronLens[i] ?? 0);
  });
  return out;
}

/**
 * Design `count` genes and place them on free stretches (2 kb apart, away from gaps and
 * contig ends). Reserves the whole gene span in `layout`.
 */
export function planGenes(contigs: readonly Contig[], layout: Occupancy, count: number, rng: Rng): GenePlan[] {
  const plans: GenePlan[] = [];
  const weights = contigs.map((c) => c.seq.length);
  let tx = 0;
  for (let i = 0; i < count; i++) {
    const coding = rng.chance(0.85);
    const twoIsoforms = coding && rng.chance(0.25);
    const l = coding ? designCoding(rng, twoIsoforms) : designNoncoding(rng);
    const spans = exonSpans(l);
    const span = spans[spans.length - 1].end;
    let placed: { contig: Contig; start: number } | undefined;
    for (let attempt = 0; attempt < 80 && !placed; attempt++) {
      const contig = contigs[rng.weighted(weights)];
      if (contig.seq.length < span + 20_000) continue;
      const start = rng.range(5_000, contig.seq.length - span - 5_000);
      if (layout.isFree(contig.name, start - 2_000, start + span + 2_000)) placed = { contig, start };
    }
    if (!placed) continue;
    const { contig, start } = placed;
    layout.take(contig.name, start - 1_000, start + span + 1_000);
    const strand: Strand = rng.chance(0.5) ? '+' : '-';
    const num = String(plans.length + 1);
    const id = `SIMG${num.padStart(11, '0')}`;
    const name = `SIM${num.padStart(3, '0')}`;
    const toGenomic = (iv: Interval): Interval =>
      strand === '+' ? { start: start + iv.start, end: start + iv.end } : { start: start + span - iv.end, end: start + span - iv.start };

    // Transcript-orientation sequence of the span: exons get designed bases, introns
    // only their splice signals (the rest keeps the genome's repeats and GC).
    const body = new Uint8Array(span); // 0 = leave genome base
    const exonTotal = sum(l.exonLens);
    const mature = new Uint8Array(exonTotal);
    if (coding) {
      mature.set(randomSequence(l.u5, 0.55, rng), 0);
      mature.set(codingSequence(exonTotal - l.u5 - l.u3, rng), l.u5);
      mature.set(randomSequence(l.u3, 0.42, rng), exonTotal - l.u3);
    } else {
      mature.set(randomSequence(exonTotal, 0.46, rng));
    }
    let m = 0;
    spans.forEach((e, k) => {
      body.set(mature.subarray(m, m + (e.end - e.start)), e.start);
      m += e.end - e.start;
      if (k < spans.length - 1) {
        const iStart = e.end;
        const iEnd = spans[k + 1].start;
        body[iStart] = G;
        body[iStart + 1] = T;
        for (let p = iEnd - 16; p < iEnd - 2; p++) body[p] = rng.chance(0.5) ? C : T;
        body[iEnd - 2] = A;
        body[iEnd - 1] = G;
      }
    });
    const writes: GenePlan['writes'] = [];
    for (let p = 0; p < span; ) {
      if (!body[p]) {
        p++;
        continue;
      }
      let q = p;
      while (q < span && body[q]) q++;
      const piece = body.slice(p, q);
      if (strand === '+') writes.push({ pos: start + p, bytes: piece });
      else {
        const rc = new Uint8Array(piece.length);
        for (let k = 0; k < piece.length; k++) rc[k] = COMPLEMENT[piece[piece.length - 1 - k]];
        writes.push({ pos: start + span - q, bytes: rc });
      }
      p = q;
    }

    const cdsSpan: Interval | undefined = coding ? { start: spans[0].start + l.u5, end: spans[spans.length - 1].end - l.u3 } : undefined;
    const makeTx = (exons: Interval[]): TranscriptModel => {
      tx++;
      return {
        id: `SIMT${String(tx).padStart(11, '0')}`,
        biotype: coding ? 'protein_coding' : 'lincRNA',
        exons: exons.map(toGenomic).sort((a, b) => a.start - b.start),
        cds: cdsSpan ? toGenomic(cdsSpan) : undefined,
      };
    };
    const transcripts = [makeTx(spans)];
    if (l.skip !== undefined) transcripts.push(makeTx(spans.filter((_, k) => k !== l.skip)));
    plans.push({
      gene: { id, name, chrom: contig.name, strand, start, end: start + span, biotype: coding ? 'protein_coding' : 'lincRNA', transcripts },
      writes,
    });
  }
  return plans;
}

export function writeGenes(contigs: readonly Contig[], plans: readonly GenePlan[]): void {
  const byName = new Map(contigs.map((c) => [c.name, c]));
  for (const p of plans) for (const w of p.writes) byName.get(p.gene.chrom)!.seq.set(w.bytes, w.pos);
}

/** Genomic positions of every CDS base of a transcript, in transcript (5'→3') order. */
export function cdsPositions(t: TranscriptModel, strand: Strand): number[] {
  if (!t.cds) return [];
  const out: number[] = [];
  for (const e of t.exons) {
    const s = Math.max(e.start, t.cds.start);
    const end = Math.min(e.end, t.cds.end);
    for (let p = s; p < end; p++) out.push(p);
  }
  return strand === '+' ? out : out.reverse();
}

/** Exon (and splice-site) intervals of all genes, for layers that must not overwrite them. */
export function protectedIntervals(plans: readonly GenePlan[]): { chrom: string; start: number; end: number }[] {
  const out: { chrom: string; start: number; end: number }[] = [];
  for (const p of plans) for (const w of p.writes) out.push({ chrom: p.gene.chrom, start: w.pos - 20, end: w.pos + w.bytes.length + 20 });
  return out;
}

type GffRow = [string, string, number, number, Strand, string, string];

/** GFF3 lines for the genes, Ensembl style (gene/mRNA/exon/CDS/UTR with phases). */
export function gff3Lines(contigs: readonly Contig[], plans: readonly GenePlan[]): string[] {
  const lines = ['##gff-version 3'];
  for (const c of contigs) lines.push(`##sequence-region ${c.name} 1 ${c.seq.length}`);
  const genes = plans.map((p) => p.gene).sort((a, b) => contigs.findIndex((c) => c.name === a.chrom) - contigs.findIndex((c) => c.name === b.chrom) || a.start - b.start);
  const fmt = (r: GffRow): string => [r[0], 'genolake_sim', r[1], r[2] + 1, r[3], '.', r[4], r[5], r[6]].join('\t');
  for (const g of genes) {
    lines.push('###');
    lines.push(fmt([g.chrom, 'gene', g.start, g.end, g.strand, '.', `ID=gene:${g.id};Name=${g.name};biotype=${g.biotype};gene_id=${g.id}`]));
    g.transcripts.forEach((t, ti) => {
      const tStart = t.exons[0].start;
      const tEnd = t.exons[t.exons.length - 1].end;
      const type = t.biotype === 'protein_coding' ? 'mRNA' : 'lnc_RNA';
      lines.push(fmt([g.chrom, type, tStart, tEnd, g.strand, '.', `ID=transcript:${t.id};Parent=gene:${g.id};Name=${g.name}-${201 + ti};biotype=${t.biotype};transcript_id=${t.id}`]));
      const rows: GffRow[] = [];
      const n = t.exons.length;
      t.exons.forEach((e, k) => {
        const rank = g.strand === '+' ? k + 1 : n - k;
        rows.push([g.chrom, 'exon', e.start, e.end, g.strand, '.', `Parent=transcript:${t.id};Name=${t.id}.E${rank};rank=${rank}`]);
      });
      if (t.cds) {
        const cds = t.cds;
        const pieces = t.exons
          .map((e) => ({ start: Math.max(e.start, cds.start), end: Math.min(e.end, cds.end) }))
          .filter((iv) => iv.start < iv.end);
        // Phase: bases to skip at this piece's 5' end to reach a codon start.
        const ordered = g.strand === '+' ? pieces : [...pieces].reverse();
        let done = 0;
        const phase = new Map<Interval, number>();
        for (const pc of ordered) {
          phase.set(pc, (3 - (done % 3)) % 3);
          done += pc.end - pc.start;
        }
        const pid = t.id.replace('SIMT', 'SIMP');
        for (const pc of pieces) rows.push([g.chrom, 'CDS', pc.start, pc.end, g.strand, String(phase.get(pc)), `ID=CDS:${pid};Parent=transcript:${t.id};protein_id=${pid}`]);
        for (const e of t.exons) {
          const left = { start: e.start, end: Math.min(e.end, cds.start) };
          const right = { start: Math.max(e.start, cds.end), end: e.end };
          const leftType = g.strand === '+' ? 'five_prime_UTR' : 'three_prime_UTR';
          const rightType = g.strand === '+' ? 'three_prime_UTR' : 'five_prime_UTR';
          if (left.start < left.end) rows.push([g.chrom, leftType, left.start, left.end, g.strand, '.', `Parent=transcript:${t.id}`]);
          if (right.start < right.end) rows.push([g.chrom, rightType, right.start, right.end, g.strand, '.', `Parent=transcript:${t.id}`]);
        }
      }
      rows.sort((a, b) => a[2] - b[2] || a[3] - b[3]);
      for (const r of rows) lines.push(fmt(r));
    });
  }
  return lines;
}
