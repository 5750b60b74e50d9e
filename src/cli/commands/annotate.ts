/**
 * `genolake annotate`: variant consequences (INFO/BCSQ, bcftools-style, and INFO/CSQ,
 * VEP-style) from a reference FASTA and a GFF3 or GTF gene model; IDs and INFO fields from
 * known-variant databases (`--known`, see src/annotate/known.ts).
 */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { parseKnownSpec, type KnownDbSpec } from '../../annotate/known-spec.js';
import { InputError } from '../../util/errors.js';
import { out, threadsOption } from './common.js';

/** Below this input size the default thread count is 1. */
const SMALL_VCF_BYTES = 2 << 20;

interface AnnotateFlags {
  reference: string;
  gff?: string;
  gtf?: string;
  vcf: string;
  out: string;
  local?: boolean;
  vep: boolean;
  known: KnownDbSpec[];
  threads: number;
  level?: number;
  writeIndex?: boolean;
  modelCache: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command('annotate')
    .description('annotate variant consequences (INFO/BCSQ and VEP-style INFO/CSQ); .gz output is BGZF')
    .requiredOption('--reference <fasta>', 'reference FASTA (a .fai next to it is used when present)')
    .option('--gff <file>', 'Ensembl-style GFF3 gene model (.gff3 or .gff3.gz)')
    .option('--gtf <file>', 'GENCODE/Ensembl GTF gene model (.gtf or .gtf.gz)')
    .requiredOption('--vcf <file>', 'input VCF (plain, gzip or BGZF), sorted by position')
    .requiredOption('--out <file>', 'output VCF (.vcf, or .vcf.gz for BGZF)')
    .option('--local', 'one record at a time: no compound (same-haplotype) consequences')
    .option('--no-vep', 'do not write the VEP-style INFO/CSQ field')
    .option('--level <n>', 'BGZF compression level of a .gz output (zlib 0-9; default 5)', (v: string) => Number(v))
    .option('-W, --write-index', 'also write <out>.tbi (tabix index; .gz output only)')
    .option('--no-model-cache', 'read the gene model file every time (default: keep what is read next to it as <file>.genolake-model, used while the file is unchanged)')
    .option(
      '--known <NAME=db.vcf.gz[:FIELD,…]>',
      'known-variant database (tabix-indexed VCF, path or http(s) URL): ID and INFO/NAME_FIELD copied on allele match after normalisation; repeatable',
      (v: string, acc: KnownDbSpec[]) => [...acc, parseKnownSpec(v)],
      [] as KnownDbSpec[],
    );
  threadsOption(cmd).action(async (flags: AnnotateFlags) => {
    if (!!flags.gff === !!flags.gtf) throw new InputError('bad_usage', 'give exactly one of --gff or --gtf');
    if (flags.writeIndex && !/\.(gz|bgz)$/i.test(flags.out)) throw new InputError('bad_usage', `--write-index needs a BGZF output (.vcf.gz), not ${flags.out}`);
    // starting worker threads costs more than a small file takes: the default is one thread then (same output)
    let threads = flags.threads;
    if (cmd.getOptionValueSource('threads') === 'default' && existsSync(flags.vcf) && statSync(flags.vcf).size < SMALL_VCF_BYTES) threads = 1;
    const { annotateVcf } = await import('../../annotate/annotate.js');
    const stats = await annotateVcf({
      reference: flags.reference,
      gff: flags.gff,
      gtf: flags.gtf,
      vcf: flags.vcf,
      out: flags.out,
      local: !!flags.local,
      vep: flags.vep,
      modelCache: flags.modelCache,
      known: flags.known,
      threads,
      ...(flags.level !== undefined ? { level: flags.level } : {}),
    });
    if (flags.writeIndex) {
      const { indexBgzfVcf } = await import('../../formats/tabix.js');
      await indexBgzfVcf(flags.out);
    }
    out(`annotated ${stats.annotated} of ${stats.records} records → ${flags.out}${flags.writeIndex ? ' (+ .tbi)' : ''}`);
    for (const k of stats.known ?? []) {
      const alias = Object.entries(k.aliases).map(([a, b]) => `${a} as ${b}`);
      out(`  ${k.name}: ${k.matchedRecords} records matched${alias.length ? `; chromosomes read as ${alias.join(', ')}` : ''}`);
      if (k.missingChroms.length) out(`  ${k.name}: no records for chromosome(s) ${k.missingChroms.join(', ')}`);
      if (k.refMismatches) out(`  ${k.name}: ${k.refMismatches} database records skipped, their REF differs from the reference (another genome build?)`);
    }
  });
}
