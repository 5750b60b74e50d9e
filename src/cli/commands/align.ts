/** `genolake align --index DIR --r1 F [--r2 F] [--rg ID:SM] --threads N --out out.sam`. */
import { InvalidArgumentError, type Command } from 'commander';
import { alignToSam } from '../../align/align.js';
import { DEFAULT_PARAMS, type AlignParams } from '../../align/kernel.js';
import type { ReadGroup } from '../../align/record.js';
import { out, threadsOption } from './common.js';

function readGroup(v: string): ReadGroup {
  const m = /^([^:\s]+):([^:\s]+)$/.exec(v);
  if (!m) throw new InvalidArgumentError(`expected ID:SAMPLE, got ${JSON.stringify(v)}`);
  return { id: m[1], sample: m[2] };
}

function param(v: string, prev: Partial<AlignParams>): Partial<AlignParams> {
  const m = /^(\w+)=(\d+)$/.exec(v);
  if (!m || !(m[1] in DEFAULT_PARAMS)) throw new InvalidArgumentError(`expected NAME=INT with NAME one of ${Object.keys(DEFAULT_PARAMS).join(', ')}`);
  return { ...prev, [m[1]]: Number(m[2]) };
}

export function register(program: Command): void {
  const cmd = program
    .command('align')
    .description('align single or paired FASTQ reads to an index built by `genolake index` (SAM output)')
    .requiredOption('--index <dir>', 'index directory')
    .requiredOption('--r1 <fastq>', 'reads (mate 1)')
    .option('--r2 <fastq>', 'mate 2 (paired-end)')
    .option('--rg <ID:SM>', 'read group', readGroup)
    .option('--param <name=int>', 'aligner parameter (repeatable), e.g. minScore=30 band=16', param, {})
    .option('-M, --split-as-secondary', 'mark the shorter part of a chimeric read secondary, not supplementary (as bwa mem -M, for Picard/GATK 3)')
    .option('-a, --all-hits', 'also output the other alignments of a read over the same part of it as secondary records (FLAG 0x100, MAPQ 0, SEQ *), as bwa mem -a')
    .requiredOption('--out <file.sam>', 'output SAM');
  threadsOption(cmd).action(async (o: { index: string; r1: string; r2?: string; rg?: ReadGroup; param: Partial<AlignParams>; splitAsSecondary?: boolean; allHits?: boolean; out: string; threads: number }) => {
    const t0 = Date.now();
    const s = await alignToSam({
      indexDir: o.index,
      r1: o.r1,
      r2: o.r2,
      readGroup: o.rg,
      params: o.allHits ? { ...o.param, allHits: 1 } : o.param,
      splitAsSecondary: !!o.splitAsSecondary,
      threads: o.threads,
      out: o.out,
      commandLine: ['genolake', ...process.argv.slice(2)].join(' '),
    });
    out(`align: ${s.reads} reads, ${s.mapped} mapped, ${s.properPairs} in proper pairs, insert size ${s.isizeMean}±${s.isizeSd}, ${s.rescued} rescued, ${((Date.now() - t0) / 1000).toFixed(1)} s -> ${o.out}`);
  });
}
