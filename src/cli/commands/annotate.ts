/**
 * `genolake annotate`: variant consequences (INFO/BCSQ, bcftools-style, and INFO/CSQ,
 * VEP-style) from a reference FASTA and a GFF3 or GTF gene model.
 */
import type { Command } from 'commander';
import { annotateVcf } from '../../annotate/annotate.js';
import { InputError } from '../../util/errors.js';
import { out } from './common.js';

interface AnnotateFlags {
  reference: string;
  gff?: string;
  gtf?: string;
  vcf: string;
  out: string;
  local?: boolean;
  vep: boolean;
}

export function register(program: Command): void {
  program
    .command('annotate')
    .description('annotate variant consequences (INFO/BCSQ and VEP-style INFO/CSQ); .gz output is BGZF')
    .requiredOption('--reference <fasta>', 'reference FASTA (a .fai next to it is used when present)')
    .option('--gff <file>', 'Ensembl-style GFF3 gene model (.gff3 or .gff3.gz)')
    .option('--gtf <file>', 'GENCODE/Ensembl GTF gene model (.gtf or .gtf.gz)')
    .requiredOption('--vcf <file>', 'input VCF (plain, gzip or BGZF), sorted by position')
    .requiredOption('--out <file>', 'output VCF (.vcf, or .vcf.gz for BGZF)')
    .option('--local', 'one record at a time: no compound (same-haplotype) consequences')
    .option('--no-vep', 'do not write the VEP-style INFO/CSQ field')
    .action(async (flags: AnnotateFlags) => {
      if (!!flags.gff === !!flags.gtf) throw new InputError('bad_usage', 'give exactly one of --gff or --gtf');
      const stats = await annotateVcf({
        reference: flags.reference,
        gff: flags.gff,
        gtf: flags.gtf,
        vcf: flags.vcf,
        out: flags.out,
        local: !!flags.local,
        vep: flags.vep,
      });
      out(`annotated ${stats.annotated} of ${stats.records} records → ${flags.out}`);
    });
}
