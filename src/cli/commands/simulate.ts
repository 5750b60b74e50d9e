/**
 * `genolake simulate`: write a deterministic demo/test cohort — a simulated reference,
 * one drop archive per patient (manifest + paired FASTQ.gz), truth VCFs, cohort.json.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { CohortProgress, DriverSpec } from '../../sim/cohort.js';

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > Number.MAX_SAFE_INTEGER) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n < 1) throw new InvalidArgumentError(`expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

/** Genome length: a plain integer or with a k/M suffix (200k, 20M). */
function baseCount(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a length such as 200000, 200k or 20M, got ${JSON.stringify(value)}`);
  const n = Math.round(Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1e3 : 1e6));
  if (n < 50_000) throw new InvalidArgumentError(`genome length must be at least 50000, got ${JSON.stringify(value)}`);
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative number, got ${JSON.stringify(value)}`);
  return n;
}

/** `--driver GENE:P[:Q]` (GENE may be empty for "the next protein-coding gene"). */
function driverSpec(value: string, previous: DriverSpec[] = []): DriverSpec[] {
  const parts = value.split(':');
  const p = Number(parts[1]);
  const q = parts[2] === undefined ? 0 : Number(parts[2]);
  if (parts.length < 2 || parts.length > 3 || !(p >= 0 && p <= 1) || !(q >= 0 && q <= 1)) {
    throw new InvalidArgumentError(`expected GENE:P or GENE:P:Q with probabilities in [0, 1], got ${JSON.stringify(value)}`);
  }
  return [...previous, { gene: parts[0] === '' ? undefined : parts[0], probability: p, controlProbability: q }];
}

interface SimulateFlags {
  out: string;
  seed: number;
  patients: number;
  genomeLength: number;
  coverage: number;
  readLength: number;
  lanes: number;
  errorRate: number;
  variantRate: number;
  driver?: DriverSpec[];
  haplotypes?: boolean;
  archives?: boolean;
  progress?: boolean;
}

export function register(program: Command): void {
  program
    .command('simulate')
    .description('write a simulated cohort: reference, per-patient drop archives (FASTQ + manifest) and truth VCFs')
    .requiredOption('--out <dir>', 'output directory (created if needed)')
    .option('--seed <n>', 'random seed; the same seed gives byte-identical output', nonNegativeInt, 1)
    .option('--patients <n>', 'number of patients', positiveInt, 3)
    .option('--genome-length <bp>', 'reference length (e.g. 200k, 20M)', baseCount, 200_000)
    .option('--coverage <x>', 'mean read depth', nonNegativeNumber, 10)
    .option('--read-length <n>', 'read length of each mate', positiveInt, 150)
    .option('--lanes <n>', 'read groups (lanes) per patient', positiveInt, 2)
    .option('--error-rate <p>', 'mean per-base sequencing error rate', nonNegativeNumber, 0.002)
    .option('--variant-rate <p>', 'background variants per base', nonNegativeNumber, 0.001)
    .option('--driver <gene:p[:q]>', 'plant HIGH-impact variants in GENE in label=1 patients with probability p (label=0: q); repeatable', driverSpec)
    .option('--haplotypes', 'also write each patient\'s haplotype FASTA under truth/')
    .option('--no-archives', 'truth only: reference and truth VCFs, no reads or drop archives')
    .option('--no-progress', 'no progress lines on stderr')
    .action(async (flags: SimulateFlags) => {
      const tty = flags.progress !== false && process.stderr.isTTY === true;
      let lastDraw = 0;
      const onProgress = (e: CohortProgress): void => {
        if (!tty) return;
        let line: string;
        if (e.step === 'reference') line = e.done ? 'reference written' : 'building reference…';
        else if (e.phase === 'reads' && e.totalPairs) {
          const now = Date.now();
          if (e.pairs !== e.totalPairs && now - lastDraw < 200) return;
          lastDraw = now;
          line = `patient ${e.index + 1}/${e.of} ${e.patient}: reads ${Math.floor((100 * (e.pairs ?? 0)) / e.totalPairs)}%`;
        } else line = `patient ${e.index + 1}/${e.of} ${e.patient}: ${e.phase}`;
        process.stderr.write(`\r\x1b[2K${line}`);
      };
      const { simulateCohort } = await import('../../sim/cohort.js');
      const summary = await simulateCohort({
        outDir: flags.out,
        seed: flags.seed,
        patients: flags.patients,
        genomeLength: flags.genomeLength,
        coverage: flags.coverage,
        readLength: flags.readLength,
        lanes: flags.lanes,
        errorRate: flags.errorRate,
        variantRate: flags.variantRate,
        drivers: flags.driver,
        writeHaplotypes: flags.haplotypes === true,
        archives: flags.archives !== false,
        onProgress,
      });
      if (tty) process.stderr.write('\r\x1b[2K');
      const pairs = summary.patients.reduce((s, p) => s + p.pairs, 0);
      process.stdout.write(
        `simulated ${summary.patients.length} patients on a ${summary.reference.length.toLocaleString('en-US')} bp reference ` +
          `(${summary.reference.contigs.length} contigs, ${summary.reference.genes.length} genes), ${pairs.toLocaleString('en-US')} read pairs\n` +
          `  ${flags.out}/cohort.json\n  ${flags.out}/reference/ref.fa\n` +
          summary.patients.map((p) => `  ${flags.out}/${p.archive ?? p.truth_vcf}  label=${p.label}  variants=${p.variants.total}${p.drivers.length ? `  drivers=${p.drivers.map((d) => d.gene).join(',')}` : ''}\n`).join(''),
      );
    });
}
