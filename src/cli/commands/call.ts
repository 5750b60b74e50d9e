/**
 * `genolake call --reference ref.fa --bam in.bam [--bam more.bam] [--regions targets.bed]
 * --threads N --out out.vcf.gz`: region-parallel variant calling into a bgzipped VCF 4.3
 * with a .tbi written by genolake (see src/call/).
 */
import { InvalidArgumentError, type Command } from 'commander';
import { callVariants } from '../../call/call.js';
import { readBed } from '../../call/regions.js';
import { out, positiveInt, threadsOption } from './common.js';

function nonNegInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer >= 0, got ${JSON.stringify(v)}`);
  return n;
}

function num(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function register(program: Command): void {
  const cmd = program
    .command('call')
    .description('call SNVs and indels from coordinate-sorted, indexed BAMs (one per sample) into a bgzipped, tabix-indexed VCF')
    .requiredOption('--reference <ref.fa>', 'reference FASTA (.fai used or built)')
    .requiredOption('--bam <in.bam>', 'coordinate-sorted BAM with .bai; repeat for several samples', collect, [] as string[])
    .requiredOption('--out <out.vcf.gz>', 'output VCF (BGZF); the index goes to <out>.tbi')
    .option('--regions <targets.bed>', 'call only inside these intervals (BED, 0-based half-open)')
    .option('--min-mapq <n>', 'minimum mapping quality', nonNegInt, 20)
    .option('--min-baseq <n>', 'minimum base quality', nonNegInt, 13)
    .option('--min-qual <q>', 'do not write sites below this QUAL (bcftools users filter QUAL<20 the same way)', num, 20)
    .option('--low-qual <q>', 'FILTER LowQual below this QUAL', num, 20)
    .option('--min-depth <n>', 'FILTER LowDepth below this INFO DP', positiveInt, 4)
    .option('--max-strand-bias <fs>', 'FILTER StrandBias above this INFO FS (phred Fisher strand test)', num, 60);
  threadsOption(cmd).action(
    async (o: {
      reference: string;
      bam: string[];
      out: string;
      regions?: string;
      minMapq: number;
      minBaseq: number;
      minQual: number;
      lowQual: number;
      minDepth: number;
      maxStrandBias: number;
      threads: number;
    }) => {
      const t0 = Date.now();
      const res = await callVariants({
        reference: o.reference,
        bams: o.bam,
        out: o.out,
        targets: o.regions ? readBed(o.regions) : undefined,
        threads: o.threads,
        options: { minMapQ: o.minMapq, minBaseQ: o.minBaseq, minQual: o.minQual, lowQual: o.lowQual, minDepth: o.minDepth, maxStrandBias: o.maxStrandBias },
        commandLine: ['genolake', ...process.argv.slice(2)].join(' '),
      });
      out(
        `call: ${res.records} records (${res.snvs} SNVs, ${res.indels} indels) from ${res.samples.length} sample(s) in ${res.regions} regions, ` +
          `${((Date.now() - t0) / 1000).toFixed(1)} s -> ${res.out} (+ .tbi)`,
      );
    },
  );
}
