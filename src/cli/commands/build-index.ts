/**
 * `genolake index <ref.fa> --out DIR [--max-part-bases N]`: validates the FASTA, writes
 * DIR/<ref>.fai and the aligner's index (split into parts, by whole contigs, when the
 * reference is over N bases).
 */
import type { Command } from 'commander';
import { buildIndex, DEFAULT_MAX_PART_BASES } from '../../align/index-file.js';
import { DEFAULT_INDEX_PARAMS } from '../../align/kernel.js';
import { out, positiveInt } from './common.js';

export function register(program: Command): void {
  program
    .command('index')
    .description('validate a reference FASTA and build its .fai and the aligner index')
    .argument('<ref.fa>', 'reference FASTA (plain text)')
    .requiredOption('--out <dir>', 'output directory')
    .option('-k, --kmer <k>', 'minimizer k-mer length (odd, 5..31)', positiveInt, DEFAULT_INDEX_PARAMS.k)
    .option('-w, --window <w>', 'minimizer window (1..64)', positiveInt, DEFAULT_INDEX_PARAMS.w)
    .option('--max-part-bases <n>', 'most bases per index part (whole contigs; a larger reference is split into parts, each aligned against); small values are for tests and experiments', positiveInt, DEFAULT_MAX_PART_BASES)
    .action(async (ref: string, o: { out: string; kmer: number; window: number; maxPartBases: number }) => {
      const t0 = Date.now();
      const r = await buildIndex(ref, o.out, { k: o.kmer, w: o.window }, { maxPartBases: o.maxPartBases });
      const bases = r.contigs.reduce((s, c) => s + c.length, 0);
      const size = r.header.parts
        ? `${r.header.parts.length} parts, ${r.header.parts.reduce((s, p) => s + p.blobBytes, 0)} bytes`
        : `${r.header.blobBytes} bytes`;
      out(`index: ${r.contigs.length} contigs, ${bases} bp, k=${o.kmer} w=${o.window} -> ${r.indexFile} (${size}), ${r.faiFile} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
}
