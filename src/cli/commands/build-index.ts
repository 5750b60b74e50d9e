/** `genolake index <ref.fa> --out DIR`: validates the FASTA, writes DIR/<ref>.fai and the aligner's index. */
import type { Command } from 'commander';
import { buildIndex } from '../../align/index-file.js';
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
    .action(async (ref: string, o: { out: string; kmer: number; window: number }) => {
      const t0 = Date.now();
      const r = await buildIndex(ref, o.out, { k: o.kmer, w: o.window });
      const bases = r.contigs.reduce((s, c) => s + c.length, 0);
      out(`index: ${r.contigs.length} contigs, ${bases} bp, k=${o.kmer} w=${o.window} -> ${r.indexFile} (${r.header.blobBytes} bytes), ${r.faiFile} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });
}
