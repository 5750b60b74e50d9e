/**
 * `genolake bam sort <in.sam|in.bam> --out out.bam [--markdup] [--qc qc.json]`: the BAM
 * side of the pipeline on its own (coordinate sort with bounded memory, optional
 * duplicate marking, BAI, qc.json). `genolake bam view <in.bam> [--header]`: SAM text.
 */
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import { sortToBam } from '../../formats/bam-sort.js';
import { BamReader, decodeRecord, formatSamLine, openSam } from '../../formats/bam.js';
import { out, positiveInt } from './common.js';

async function isBgzf(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

function level(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 9) throw new Error(`expected a zlib level 0-9, got ${JSON.stringify(v)}`);
  return n;
}

export function register(program: Command): void {
  const bam = program.command('bam').description('BAM tools: sort / mark duplicates / index, view');
  bam
    .command('sort')
    .description('coordinate-sort SAM or BAM records into an indexed BAM (+ duplicate marking, qc.json)')
    .argument('<input>', 'SAM text or BAM (name-grouped when --markdup)')
    .requiredOption('--out <file.bam>', 'output BAM; the index goes to <file.bam>.bai')
    .option('--markdup', 'mark duplicates (pairs by both 5\' ends and orientation, best base-quality sum kept)', false)
    .option('--qc <qc.json>', 'write flagstat counts, insert sizes and coverage')
    .option('--memory <MiB>', 'memory for records before spilling sorted runs', positiveInt, 512)
    .option('--level <0-9>', 'zlib level of the output', level, 6)
    .option('--tmp <dir>', 'directory for spilled runs')
    .option('--no-index', 'do not write the .bai')
    .action(async (input: string, o: { out: string; markdup: boolean; qc?: string; memory: number; level: number; tmp?: string; index: boolean }) => {
      const t0 = Date.now();
      const src = (await isBgzf(input))
        ? await BamReader.open(input).then((r) => ({ header: r.header, batches: r.batches() }))
        : await openSam(input);
      const res = await sortToBam(src.header, src.batches, o.out, {
        memoryBytes: o.memory * 1024 * 1024,
        tmpDir: o.tmp,
        level: o.level,
        index: o.index,
        markDuplicates: o.markdup,
        qc: Boolean(o.qc),
        qcPath: o.qc,
      });
      const dups = res.markdup ? `, ${res.markdup.duplicatePairedReads + res.markdup.duplicateSingleReads} duplicates` : '';
      out(`bam sort: ${res.records} records${dups}, ${res.spills} spilled runs, ${((Date.now() - t0) / 1000).toFixed(1)} s -> ${o.out}`);
    });
  bam
    .command('view')
    .description('print a BAM as SAM text')
    .argument('<input.bam>')
    .option('--header', 'print the header too', false)
    .action(async (input: string, o: { header: boolean }) => {
      const r = await BamReader.open(input);
      if (o.header) process.stdout.write(r.header.text);
      const names = r.header.refs.map((x) => x.name);
      for await (const batch of r.batches()) {
        const text = batch.map((b) => formatSamLine(decodeRecord(b), names)).join('\n') + '\n';
        if (!process.stdout.write(text)) await new Promise((res) => process.stdout.once('drain', res));
      }
    });
}
