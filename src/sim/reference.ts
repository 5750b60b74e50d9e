/**
 * The simulated reference genome: `buildReference` makes it in memory (deterministic for
 * a seed), `writeReference` streams ref.fa (+ .fai), genes.gff3 and repeats.bed to disk.
 *
 * Layer order matters because later layers
 * overwrite bases. Gaps, genes and duplication targets are *planned* first (so nothing
 * else lands on them), then repeats are painted around the exons, then gene bases,
 * duplication copies and N runs are written.
 */
import { Rng } from './rng.js';
import {
  Occupancy,
  applyGaps,
  applySegdups,
  contigLengths,
  makeRepeatFamilies,
  paintIsochores,
  placeInterspersedRepeats,
  placeTandemRepeats,
  planGaps,
  planSegdups,
  type Contig,
  type PlacedFeature,
  type SegDup,
} from './genome.js';
import { gff3Lines, planGenes, protectedIntervals, writeGenes, type GenePlan } from './genes.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Sink, badOption } from './io.js';

export interface ReferenceOptions {
  seed: number;
  /** total bases over all contigs (≥ 50 000) */
  length: number;
  /** number of contigs (default: 1 per 40 kb, between 1 and 24) */
  contigs?: number;
  /** number of genes to place (default: 1 per 25 kb, at least 4); ~15 % are lincRNA */
  genes?: number;
  /** contig name prefix (default 'chr') */
  contigPrefix?: string;
}

export interface SimReference {
  contigs: Contig[];
  genes: GenePlan[];
  segdups: SegDup[];
  /** everything placed, sorted by contig then start (isochores included) */
  features: PlacedFeature[];
}

export function defaultContigs(length: number): number {
  return Math.max(1, Math.min(24, Math.round(length / 40_000)));
}

export function defaultGenes(length: number): number {
  return Math.max(4, Math.round(length / 25_000));
}

/** Build the whole reference in memory (1 byte per base; 20 Mb takes about a second). */
export function buildReference(options: ReferenceOptions): SimReference {
  if (!Number.isInteger(options.length) || options.length < 50_000) throw badOption(`reference length must be an integer ≥ 50000 (got ${options.length})`);
  const nContigs = options.contigs ?? defaultContigs(options.length);
  if (!Number.isInteger(nContigs) || nContigs < 1 || options.length / nContigs < 25_000) throw badOption(`contigs must be ≥ 1 and leave ≥ 25 kb per contig (got ${nContigs})`);
  const opts = { seed: options.seed, genomeSize: options.length, contigs: nContigs, genes: options.genes ?? defaultGenes(options.length) };
  const prefix = options.contigPrefix ?? 'chr';
  const lens = contigLengths(opts.genomeSize, opts.contigs);
  const contigs: Contig[] = [];
  const features: PlacedFeature[] = [];
  lens.forEach((len, i) => {
    const name = `${prefix}${i + 1}`;
    const { seq, blocks } = paintIsochores(name, len, Rng.derive(opts.seed, `isochores:${name}`));
    contigs.push({ name, seq });
    features.push(...blocks);
  });

  const layout = new Occupancy(contigs);
  const gaps = planGaps(contigs, layout, Rng.derive(opts.seed, 'gaps'));
  const genes = planGenes(contigs, layout, opts.genes, Rng.derive(opts.seed, 'genes'));
  const mb = opts.genomeSize / 1e6;
  const segdups = planSegdups(contigs, layout, Math.max(3, Math.round(1.5 * mb)), Rng.derive(opts.seed, 'segdups'));

  // What repeats may not overwrite: gaps, duplication targets, exons and splice signals.
  const paint = new Occupancy(contigs);
  contigs.forEach((c, i) => gaps[i].forEach((g) => paint.take(c.name, g.start - 50, g.end + 50)));
  for (const d of segdups) paint.take(d.dstChrom, d.dstStart, d.dstStart + d.length);
  for (const iv of protectedIntervals(genes)) paint.take(iv.chrom, iv.start, iv.end);

  features.push(...placeInterspersedRepeats(contigs, paint, makeRepeatFamilies(Rng.derive(opts.seed, 'families')), Rng.derive(opts.seed, 'repeats')));
  features.push(...placeTandemRepeats(contigs, paint, Rng.derive(opts.seed, 'tandem')));
  writeGenes(contigs, genes);
  features.push(...applySegdups(contigs, segdups, Rng.derive(opts.seed, 'segdup-copies')));
  features.push(...applyGaps(contigs, gaps));

  const order = new Map(contigs.map((c, i) => [c.name, i]));
  features.sort((a, b) => order.get(a.chrom)! - order.get(b.chrom)! || a.start - b.start || a.end - b.end || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { contigs, genes, segdups, features };
}

export interface ReferenceFiles {
  dir: string;
  fasta: string;
  fai: string;
  gff3: string;
  repeatsBed: string;
}

/** BED rows of everything placed except isochores: BED6 + class + details. */
export function repeatsBedLines(ref: SimReference): string[] {
  return ref.features.filter((f) => f.cls !== 'isochore').map((f) => `${f.chrom}\t${f.start}\t${f.end}\t${f.name}\t0\t${f.strand}\t${f.cls}\t${f.info}`);
}

/**
 * Write ref.fa (60 bases per line), ref.fa.fai (same numbers `samtools faidx` writes),
 * genes.gff3 and repeats.bed into `dir`, streaming.
 */
export async function writeReference(ref: SimReference, dir: string, opts: { lineWidth?: number } = {}): Promise<ReferenceFiles> {
  await mkdir(dir, { recursive: true });
  const width = opts.lineWidth ?? 60;
  const files: ReferenceFiles = {
    dir,
    fasta: join(dir, 'ref.fa'),
    fai: join(dir, 'ref.fa.fai'),
    gff3: join(dir, 'genes.gff3'),
    repeatsBed: join(dir, 'repeats.bed'),
  };
  const fa = new Sink(files.fasta);
  const fai: string[] = [];
  let offset = 0;
  for (const c of ref.contigs) {
    const header = `>${c.name}\n`;
    await fa.write(header);
    offset += header.length;
    fai.push(`${c.name}\t${c.seq.length}\t${offset}\t${width}\t${width + 1}\n`);
    const line = Buffer.allocUnsafe(width + 1);
    for (let p = 0; p < c.seq.length; p += width) {
      const n = Math.min(width, c.seq.length - p);
      line.set(c.seq.subarray(p, p + n), 0);
      line[n] = 10;
      await fa.write(line.subarray(0, n + 1));
      offset += n + 1;
    }
  }
  await fa.close();
  await writeFile(files.fai, fai.join(''));
  await writeLines(files.gff3, gff3Lines(ref.contigs, ref.genes));
  await writeLines(files.repeatsBed, repeatsBedLines(ref));
  return files;
}

async function writeLines(path: string, lines: readonly string[]): Promise<void> {
  const s = new Sink(path);
  for (const l of lines) await s.write(`${l}\n`);
  await s.close();
}
