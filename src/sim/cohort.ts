/**
 * A simulated cohort on disk: one reference, and per patient a lab-style drop archive
 * (manifest.json + paired FASTQ.gz per read group) with its truth VCF.
 *
 *   <outDir>/reference/{ref.fa, ref.fa.fai, genes.gff3, repeats.bed}
 *   <outDir>/drops/<patient>.tar.gz
 *   <outDir>/truth/<patient>.truth.vcf.gz       BGZF, phased GT (hap1|hap2)
 *   <outDir>/truth/<patient>.haplotypes.fa      only with writeHaplotypes
 *   <outDir>/cohort.json                        everything above, labels, drivers, stats
 *
 * Same options, same bytes: every random choice comes from a stream derived from the seed
 * and a label (per patient, so adding patients leaves earlier ones unchanged), archives
 * have fixed owners and times, and gzip headers carry no time stamp.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from './rng.js';
import { buildReference, writeReference, type SimReference } from './reference.js';
import { buildHaplotypes, codingIntervals, findGene, simulateVariants, truthVcf, type DriverConsequence, type DriverRequest, type TruthVariant, type VariantOptions } from './variants.js';
import { simulateReads, type ReadStats } from './reads.js';
import { writeTarGz } from './tar.js';
import { badOption, bgzf, Sink } from './io.js';
import { dropManifestSchema, type DropManifestInput } from '../manifest/drop.js';
import { writeReferenceRegistry } from '../pipeline/references.js';

export interface DriverSpec {
  /** gene Name or id; omitted: the k-th driver spec takes the k-th protein-coding gene */
  gene?: string;
  /** probability that a label=1 patient carries a HIGH-impact variant in the gene */
  probability: number;
  /** probability for a label=0 patient (default 0) */
  controlProbability?: number;
  consequence?: DriverConsequence;
}

export interface CohortOptions {
  outDir: string;
  seed?: number;
  /** number of patients (default 3) */
  patients?: number;
  /** mean depth (default 10) */
  coverage?: number;
  /** reference length in bases (default 200 000) */
  genomeLength?: number;
  contigs?: number;
  genes?: number;
  readLength?: number;
  insertMean?: number;
  insertSd?: number;
  errorRate?: number;
  /** background variant rate per base (default 0.001) */
  variantRate?: number;
  /** read groups (lanes) per patient (default 2) */
  lanes?: number;
  /** labels per patient (0/1); default: round(patients × caseFraction) cases, shuffled */
  labels?: (0 | 1)[];
  caseFraction?: number;
  drivers?: DriverSpec[];
  /** reference name written into manifests (default 'sim-demo') */
  referenceName?: string;
  /** provider id written into manifests (default 'sim-provider') */
  providerId?: string;
  /** patient id prefix (default 'SIMP') → SIMP001, SIMP002, … */
  patientPrefix?: string;
  writeHaplotypes?: boolean;
  /**
   * false: truth only — no reads, no drop archives (fast cohorts for feature-table tests;
   * `archive` and `read_groups` are then absent / empty in cohort.json). Default true.
   */
  archives?: boolean;
  /** called with a short description of each step, and read progress */
  onProgress?: (event: CohortProgress) => void;
}

export type CohortProgress =
  | { step: 'reference'; done: boolean }
  | { step: 'patient'; patient: string; index: number; of: number; phase: 'variants' | 'reads' | 'archive' | 'done'; pairs?: number; totalPairs?: number };

export interface CohortPatient {
  patient_id: string;
  sample_id: string;
  label: 0 | 1;
  provider_patient_id: string;
  /** absent when the cohort was simulated with archives: false */
  archive?: string;
  truth_vcf: string;
  haplotypes?: string;
  read_groups: { id: string; lane: number; r1: string; r2: string; pairs: number }[];
  pairs: number;
  observed_error_rate: number;
  variants: { total: number; snv: number; mnp: number; ins: number; del: number; hom: number; het: number; in_repeats: number };
  drivers: { gene: string; chrom: string; pos: number; ref: string; alt: string; consequence: DriverConsequence; gt: string }[];
}

export interface CohortSummary {
  schema_version: 1;
  kind: 'sim-cohort';
  seed: number;
  options: Record<string, unknown>;
  reference: {
    name: string;
    fasta: string;
    fai: string;
    gff3: string;
    repeats_bed: string;
    length: number;
    contigs: { name: string; length: number }[];
    genes: { id: string; name: string; biotype: string; chrom: string; start: number; end: number; strand: string; transcripts: number }[];
  };
  drivers: { gene: string; probability: number; control_probability: number; consequence: DriverConsequence | 'mixed' }[];
  patients: CohortPatient[];
}

/** The protein-coding gene names of a reference, in name order. */
export function codingGeneNames(ref: SimReference): string[] {
  return ref.genes
    .map((p) => p.gene)
    .filter((g) => g.biotype === 'protein_coding')
    .map((g) => g.name)
    .sort();
}

function counts(vs: readonly TruthVariant[]): CohortPatient['variants'] {
  const c = { total: vs.length, snv: 0, mnp: 0, ins: 0, del: 0, hom: 0, het: 0, in_repeats: 0 };
  for (const v of vs) {
    c[v.kind.toLowerCase() as 'snv' | 'mnp' | 'ins' | 'del']++;
    if (v.gt[0] === 1 && v.gt[1] === 1) c.hom++;
    else c.het++;
    if (v.repeat) c.in_repeats++;
  }
  return c;
}

async function writeHaplotypeFasta(path: string, haps: ReturnType<typeof buildHaplotypes>): Promise<void> {
  const s = new Sink(path);
  for (const h of haps) {
    await s.write(`>${h.chrom}.hap${h.index}\n`);
    for (let p = 0; p < h.seq.length; p += 60) {
      s.put(h.seq.subarray(p, Math.min(h.seq.length, p + 60)));
      await s.write('\n');
    }
  }
  await s.close();
}

/** Simulate a whole cohort into `outDir` (created if needed); returns what cohort.json holds. */
export async function simulateCohort(opts: CohortOptions): Promise<CohortSummary> {
  const seed = opts.seed ?? 1;
  const nPatients = opts.patients ?? 3;
  const genomeLength = opts.genomeLength ?? 200_000;
  const coverage = opts.coverage ?? 10;
  const readLength = opts.readLength ?? 150;
  const lanes = opts.lanes ?? 2;
  const referenceName = opts.referenceName ?? 'sim-demo';
  const providerId = opts.providerId ?? 'sim-provider';
  const prefix = opts.patientPrefix ?? 'SIMP';
  if (!Number.isInteger(seed) || seed < 0) throw badOption(`seed must be a non-negative integer (got ${seed})`);
  if (!Number.isInteger(nPatients) || nPatients < 1 || nPatients > 9999) throw badOption(`patients must be an integer within [1, 9999] (got ${nPatients})`);
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > 16) throw badOption(`lanes must be an integer within [1, 16] (got ${lanes})`);
  if (!(coverage >= 0 && coverage <= 1000)) throw badOption(`coverage must be within [0, 1000] (got ${coverage})`);
  if (opts.labels && opts.labels.length !== nPatients) throw badOption(`labels has ${opts.labels.length} entries for ${nPatients} patients`);

  const out = opts.outDir;
  const refDir = join(out, 'reference');
  const dropDir = join(out, 'drops');
  const truthDir = join(out, 'truth');
  await Promise.all([refDir, truthDir, ...(opts.archives === false ? [] : [dropDir])].map((d) => mkdir(d, { recursive: true })));

  opts.onProgress?.({ step: 'reference', done: false });
  const ref = buildReference({ seed, length: genomeLength, contigs: opts.contigs, genes: opts.genes });
  await writeReference(ref, refDir);
  opts.onProgress?.({ step: 'reference', done: true });

  // Drivers: resolve genes, then labels and who carries what.
  const coding = codingGeneNames(ref);
  const drivers = (opts.drivers ?? []).map((d, k) => {
    const name = d.gene ?? coding[k];
    const gene = name === undefined ? undefined : findGene(ref, name);
    if (!gene) throw badOption(d.gene ? `driver gene ${JSON.stringify(d.gene)} is not in the simulated reference (genes: ${coding.join(', ')})` : `not enough protein-coding genes for ${opts.drivers!.length} drivers`);
    if (gene.biotype !== 'protein_coding') throw badOption(`driver gene ${name} is ${gene.biotype}, not protein_coding`);
    for (const p of [d.probability, d.controlProbability ?? 0]) if (!(p >= 0 && p <= 1)) throw badOption(`driver probabilities must be within [0, 1] (got ${p})`);
    return { gene, spec: d };
  });
  const crng = Rng.derive(seed, 'cohort');
  let labels: (0 | 1)[];
  if (opts.labels) labels = opts.labels.slice();
  else {
    const cases = Math.round(nPatients * (opts.caseFraction ?? 0.5));
    labels = crng.shuffle(Array.from({ length: nPatients }, (_, i) => (i < cases ? 1 : 0)));
  }
  const avoid = drivers.flatMap((d) => codingIntervals(d.gene));

  const patients: CohortPatient[] = [];
  for (let i = 0; i < nPatients; i++) {
    const pid = `${prefix}${String(i + 1).padStart(3, '0')}`;
    const sampleId = `${pid}-S1`;
    const prng = Rng.derive(seed, `patient:${pid}`);
    const variantSeed = prng.u32();
    const readSeed = prng.u32();
    const dchoice = Rng.derive(seed, `drivers:${pid}`);
    const label = labels[i];
    const requests: DriverRequest[] = [];
    for (const d of drivers) {
      const p = label === 1 ? d.spec.probability : (d.spec.controlProbability ?? 0);
      if (dchoice.chance(p)) requests.push({ gene: d.gene.name, consequence: d.spec.consequence });
    }
    const report = (phase: 'variants' | 'reads' | 'archive' | 'done', pairs?: number, totalPairs?: number): void =>
      opts.onProgress?.({ step: 'patient', patient: pid, index: i, of: nPatients, phase, pairs, totalPairs });

    report('variants');
    const vopts: VariantOptions = { seed: variantSeed, rate: opts.variantRate, drivers: requests, avoid };
    const variants = simulateVariants(ref, vopts);
    const truthRel = `truth/${pid}.truth.vcf.gz`;
    await writeFile(join(out, truthRel), bgzf(truthVcf(ref, variants, sampleId, '../reference/ref.fa')));
    const haps = opts.archives !== false || opts.writeHaplotypes ? buildHaplotypes(ref, variants) : [];
    let hapRel: string | undefined;
    if (opts.writeHaplotypes) {
      hapRel = `truth/${pid}.haplotypes.fa`;
      await writeHaplotypeFasta(join(out, hapRel), haps);
    }

    const writeDrop = async (): Promise<{ archiveRel: string; stats: ReadStats }> => {
      report('reads');
      const work = join(dropDir, `.work-${pid}`);
      await rm(work, { recursive: true, force: true });
      await mkdir(work, { recursive: true });
      const readStats: ReadStats = await simulateReads(
        haps,
        groups.map((g) => ({ r1: join(work, g.r1), r2: join(work, g.r2) })),
        {
          seed: readSeed,
          coverage,
          readLength,
          insertMean: opts.insertMean,
          insertSd: opts.insertSd,
          errorRate: opts.errorRate,
          onProgress: (done, total) => report('reads', done, total),
        },
      );

      report('archive');
      const manifest: DropManifestInput = {
        schema_version: 1,
        kind: 'drop',
        patient_id: pid,
        sample_id: sampleId,
        provider: { provider_id: providerId, patient_id: providerPatientId },
        reference: referenceName,
        platform: 'ILLUMINA',
        read_length: readLength,
        paired: true,
        read_groups: groups.map((g) => ({ id: g.id, lane: g.lane, library: `${sampleId}-lib1`, platform_unit: `SIMFC${String(seed % 100000).padStart(5, '0')}.${g.lane}`, r1: g.r1, r2: g.r2 })),
      };
      dropManifestSchema.parse(manifest); // never write a manifest the ingest stage would refuse
      const rel = `drops/${pid}.tar.gz`;
      const tmp = join(dropDir, `.${pid}.tar.gz.partial`);
      await writeTarGz(tmp, [
        { name: 'manifest.json', data: `${JSON.stringify(manifest, null, 2)}\n` },
        ...groups.flatMap((g) => [
          { name: g.r1, path: join(work, g.r1) },
          { name: g.r2, path: join(work, g.r2) },
        ]),
      ]);
      await rename(tmp, join(out, rel));
      await rm(work, { recursive: true, force: true });
      return { archiveRel: rel, stats: readStats };
    };
    let archiveRel: string | undefined;
    let stats: ReadStats = { pairs: 0, pairsPerGroup: [], bases: 0, errors: 0, observedErrorRate: 0, expectedErrorRate: 0 };
    const groups = Array.from({ length: lanes }, (_, k) => {
      const id = `${sampleId}.L${k + 1}`;
      return { id, lane: k + 1, r1: `${id}_R1.fastq.gz`, r2: `${id}_R2.fastq.gz` };
    });
    const providerPatientId = `${providerId}-${pid}`;
    if (opts.archives !== false) {
      ({ archiveRel, stats } = await writeDrop());
    }
    patients.push({
      patient_id: pid,
      sample_id: sampleId,
      label,
      provider_patient_id: providerPatientId,
      ...(archiveRel ? { archive: archiveRel } : {}),
      truth_vcf: truthRel,
      ...(hapRel ? { haplotypes: hapRel } : {}),
      read_groups: archiveRel ? groups.map((g, k) => ({ ...g, pairs: stats.pairsPerGroup[k] })) : [],
      pairs: stats.pairs,
      observed_error_rate: Number(stats.observedErrorRate.toFixed(6)),
      variants: counts(variants),
      drivers: variants
        .filter((v) => v.driver)
        .map((v) => ({ gene: v.driver!.gene, chrom: v.chrom, pos: v.pos, ref: v.ref, alt: v.alt, consequence: v.driver!.consequence, gt: `${v.gt[0]}|${v.gt[1]}` })),
    });
    report('done');
  }

  const summary: CohortSummary = {
    schema_version: 1,
    kind: 'sim-cohort',
    seed,
    options: {
      patients: nPatients,
      genome_length: genomeLength,
      contigs: ref.contigs.length,
      genes: ref.genes.length,
      coverage,
      read_length: readLength,
      insert_mean: opts.insertMean ?? 350,
      insert_sd: opts.insertSd ?? 50,
      error_rate: opts.errorRate ?? 0.002,
      variant_rate: opts.variantRate ?? 0.001,
      lanes,
      archives: opts.archives !== false,
    },
    reference: {
      name: referenceName,
      fasta: 'reference/ref.fa',
      fai: 'reference/ref.fa.fai',
      gff3: 'reference/genes.gff3',
      repeats_bed: 'reference/repeats.bed',
      length: genomeLength,
      contigs: ref.contigs.map((c) => ({ name: c.name, length: c.seq.length })),
      genes: ref.genes.map(({ gene: g }) => ({ id: g.id, name: g.name, biotype: g.biotype, chrom: g.chrom, start: g.start + 1, end: g.end, strand: g.strand, transcripts: g.transcripts.length })),
    },
    drivers: drivers.map((d) => ({ gene: d.gene.name, probability: d.spec.probability, control_probability: d.spec.controlProbability ?? 0, consequence: d.spec.consequence ?? 'mixed' })),
    patients,
  };
  await writeFile(join(out, 'cohort.json'), `${JSON.stringify(summary, null, 2)}\n`);
  // The reference registry that resolves the manifests' reference name (experiments use it).
  await writeReferenceRegistry(join(out, 'references.json'), {
    [referenceName]: { fasta: join(out, summary.reference.fasta), genes: join(out, summary.reference.gff3) },
  });
  return summary;
}
