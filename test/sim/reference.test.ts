import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildReference, writeReference, type SimReference } from '../../src/sim/reference.js';
import { cdsPositions } from '../../src/sim/genes.js';
import { COMPLEMENT } from '../../src/sim/seq.js';
import { codingIntervals, findGene, simulateVariants, truthVcf } from '../../src/sim/variants.js';
import { codingGeneNames } from '../../src/sim/cohort.js';

const STOPS = new Set(['TAA', 'TAG', 'TGA']);

function run(cmd: string, args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The coding sequence of a transcript read off the genome, 5'→3'. */
function cdsOf(ref: SimReference, chrom: string, strand: '+' | '-', positions: number[]): string {
  const seq = ref.contigs.find((c) => c.name === chrom)!.seq;
  return positions.map((p) => String.fromCharCode(strand === '+' ? seq[p] : COMPLEMENT[seq[p]])).join('');
}

describe('simulated reference', () => {
  let dir: string;
  let ref: SimReference;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-sim-ref-'));
    ref = buildReference({ seed: 42, length: 400_000, genes: 20 });
    await writeReference(ref, dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const again = buildReference({ seed: 42, length: 400_000, genes: 20 });
    expect(again.contigs.map((c) => c.name)).toEqual(ref.contigs.map((c) => c.name));
    ref.contigs.forEach((c, i) => expect(Buffer.compare(Buffer.from(c.seq), Buffer.from(again.contigs[i].seq))).toBe(0));
    const other = buildReference({ seed: 43, length: 400_000, genes: 20 });
    expect(Buffer.compare(Buffer.from(other.contigs[0].seq), Buffer.from(ref.contigs[0].seq))).not.toBe(0);
  });

  it('writes a 60-column FASTA whose .fai matches samtools faidx', async () => {
    const fa = await readFile(join(dir, 'ref.fa'), 'latin1');
    const lines = fa.split('\n');
    expect(lines.filter((l) => !l.startsWith('>') && l.length > 60)).toEqual([]);
    expect(lines.filter((l) => l.startsWith('>'))).toEqual(ref.contigs.map((c) => `>${c.name}`));
    const r = run('samtools', ['faidx', 'ref.fa', '-o', 'check.fai'], dir);
    expect(r.code).toBe(0);
    expect(await readFile(join(dir, 'ref.fa.fai'), 'utf8')).toBe(await readFile(join(dir, 'check.fai'), 'utf8'));
    const total = ref.contigs.reduce((s, c) => s + c.seq.length, 0);
    expect(total).toBe(400_000);
  });

  it('has repeats, segmental duplications and N gaps in repeats.bed', async () => {
    const bed = (await readFile(join(dir, 'repeats.bed'), 'utf8')).trim().split('\n').map((l) => l.split('\t'));
    const classes = new Set(bed.map((r) => r[6]));
    for (const c of ['SINE', 'LINE', 'DNA', 'microsatellite', 'homopolymer', 'segdup', 'gap']) expect(classes).toContain(c);
    for (const r of bed.filter((x) => x[6] === 'gap')) {
      const seq = ref.contigs.find((c) => c.name === r[0])!.seq;
      expect(seq.subarray(Number(r[1]), Number(r[2])).every((b) => b === 78)).toBe(true);
    }
  });

  it('codes proteins: ATG … stop, no internal stop, on both strands; and has lincRNAs', () => {
    const coding = ref.genes.map((p) => p.gene).filter((g) => g.biotype === 'protein_coding');
    expect(new Set(coding.map((g) => g.strand))).toEqual(new Set(['+', '-']));
    expect(ref.genes.some((p) => p.gene.biotype === 'lincRNA')).toBe(true);
    expect(coding.length).toBeGreaterThanOrEqual(10);
    for (const g of coding) {
      for (const t of g.transcripts) {
        const cds = cdsOf(ref, g.chrom, g.strand, cdsPositions(t, g.strand));
        expect(cds.length % 3, `${t.id} length`).toBe(0);
        expect(cds.slice(0, 3), `${t.id} start`).toBe('ATG');
        expect(STOPS.has(cds.slice(-3)), `${t.id} stop`).toBe(true);
        for (let i = 0; i < cds.length - 3; i += 3) expect(STOPS.has(cds.slice(i, i + 3)), `${t.id} codon ${i / 3}`).toBe(false);
      }
    }
  });

  it('writes an Ensembl-style GFF3 that bcftools csq reads without warnings', async () => {
    const gff = await readFile(join(dir, 'genes.gff3'), 'utf8');
    expect(gff).toMatch(/\tgene\t.*ID=gene:SIMG\d+;Name=SIM\d+;biotype=protein_coding/);
    expect(gff).toMatch(/\tmRNA\t.*ID=transcript:SIMT\d+;Parent=gene:SIMG\d+;.*biotype=protein_coding/);
    for (const type of ['exon', 'CDS', 'five_prime_UTR', 'three_prime_UTR']) expect(gff).toContain(`\t${type}\t`);
    // drivers in four genes plus background variants everywhere
    const genes = codingGeneNames(ref).slice(0, 4);
    // (background variants stay out of the driver genes' exons, as in a cohort, so no
    // other variant on the same haplotype changes the drivers' consequence)
    const avoid = genes.flatMap((g) => codingIntervals(findGene(ref, g)!));
    const variants = simulateVariants(ref, { seed: 9, rate: 0.003, avoid, drivers: genes.map((gene, i) => ({ gene, consequence: i % 2 ? 'frameshift' : 'stop_gained' })) });
    await writeFile(join(dir, 'truth.vcf'), truthVcf(ref, variants, 'S1'));
    const r = run('bcftools', ['csq', '-f', 'ref.fa', '-g', 'genes.gff3', '-Ov', '-o', 'csq.vcf', 'truth.vcf'], dir);
    expect(r.code, r.stderr).toBe(0);
    const complaints = r.stderr.split('\n').filter((l) => /warn|error|skipping|ignor/i.test(l));
    expect(complaints).toEqual([]);
    const out = await readFile(join(dir, 'csq.vcf'), 'utf8');
    const drivers = out.split('\n').filter((l) => l.includes('DRIVER='));
    expect(drivers.length).toBe(4);
    for (const l of drivers) {
      const gene = /DRIVER=([^;\t]+)/.exec(l)![1];
      const want = /DRIVER_CSQ=([^;\t]+)/.exec(l)![1];
      expect(l, l).toMatch(new RegExp(`BCSQ=([^\\t]*,)?${want}\\|${gene}\\|`));
    }
    // background variants were annotated too: coding consequences on both strands
    expect(out).toMatch(/BCSQ=missense\|[^|]+\|[^|]+\|protein_coding\|\+/);
    expect(out).toMatch(/BCSQ=missense\|[^|]+\|[^|]+\|protein_coding\|-/);
  });
});
