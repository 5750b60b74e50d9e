// Benchmark: genolake annotate vs Debian `bcftools csq` on a generated genome.
// Usage: node benchmarks/annotate.mjs [nVariants]   (run `npx tsc` first; uses dist/)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { annotateVcf } from '../dist/src/annotate/annotate.js';

const here = dirname(fileURLToPath(import.meta.url));
const nVar = Number(process.argv[2] ?? 100000);
const GENOME = 4_000_000;
let s = 12345;
const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
const B = 'ACGT';
const seq = Buffer.alloc(GENOME);
for (let i = 0; i < GENOME; i++) seq[i] = B.charCodeAt((rnd() * 4) | 0);

// genes: every 8 kb, 6 exons of 100-200 bp, alternating strands, CDS inside exons 2..5
const gff = ['##gff-version 3'];
for (let g = 0, p = 1000; p + 7000 < GENOME; g++, p += 8000) {
  const strand = g % 2 ? '-' : '+';
  const exons = [];
  let q = p;
  for (let e = 0; e < 6; e++) {
    const len = 100 + ((rnd() * 100) | 0);
    exons.push([q, q + len - 1]);
    q += len + 300 + ((rnd() * 500) | 0);
  }
  const beg = exons[0][0], end = exons[5][1];
  gff.push(['c1', 'b', 'gene', beg, end, '.', strand, '.', `ID=gene:G${g};Name=G${g};biotype=protein_coding`].join('\t'));
  gff.push(['c1', 'b', 'mRNA', beg, end, '.', strand, '.', `ID=transcript:T${g};Parent=gene:G${g};biotype=protein_coding`].join('\t'));
  for (const [x, y] of exons) gff.push(['c1', 'b', 'exon', x, y, '.', strand, '.', `Parent=transcript:T${g}`].join('\t'));
  // coding exons 1..4 (0-based), phases computed in transcript order
  const cds = exons.slice(1, 5);
  const order = strand === '+' ? cds : [...cds].reverse();
  let done = 0;
  for (const [x, y] of order) {
    gff.push(['c1', 'b', 'CDS', x, y, '.', strand, (3 - (done % 3)) % 3, `Parent=transcript:T${g}`].join('\t'));
    done += y - x + 1;
  }
}
const vcf = ['##fileformat=VCFv4.2', `##contig=<ID=c1,length=${GENOME}>`, '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO'];
let pos = 500;
const step = Math.max(2, Math.floor((GENOME - 1000) / nVar));
for (let i = 0; i < nVar && pos < GENOME - 20; i++, pos += 1 + ((rnd() * (2 * step - 1)) | 0)) {
  const k = rnd();
  const ref0 = String.fromCharCode(seq[pos - 1]);
  if (k < 0.8) vcf.push(`c1\t${pos}\t.\t${ref0}\t${B[(B.indexOf(ref0) + 1) % 4]}\t.\t.\t.`);
  else if (k < 0.9) vcf.push(`c1\t${pos}\t.\t${seq.subarray(pos - 1, pos + 2).toString()}\t${ref0}\t.\t.\t.`);
  else vcf.push(`c1\t${pos}\t.\t${ref0}\t${ref0}AC\t.\t.\t.`);
}
const dir = mkdtempSync(join(tmpdir(), 'gl-bench-ann-'));
try {
  const fa = join(dir, 'ref.fa');
  let fasta = '>c1\n';
  for (let i = 0; i < GENOME; i += 60) fasta += seq.subarray(i, i + 60).toString() + '\n';
  writeFileSync(fa, fasta);
  writeFileSync(join(dir, 'genes.gff3'), gff.join('\n') + '\n');
  writeFileSync(join(dir, 'in.vcf'), vcf.join('\n') + '\n');
  execFileSync('samtools', ['faidx', fa]);
  const records = vcf.length - 3;

  let t = process.hrtime.bigint();
  await annotateVcf({ reference: fa, gff: join(dir, 'genes.gff3'), vcf: join(dir, 'in.vcf'), out: join(dir, 'ours.vcf.gz'), vep: process.env.NOVEP ? false : true });
  const ours = Number(process.hrtime.bigint() - t) / 1e9;
  t = process.hrtime.bigint();
  execFileSync('bcftools', ['csq', '-f', fa, '-g', join(dir, 'genes.gff3'), '-Oz', '-o', join(dir, 'theirs.vcf.gz'), join(dir, 'in.vcf')], { stdio: 'ignore' });
  const theirs = Number(process.hrtime.bigint() - t) / 1e9;
  const res = {
    date: new Date().toISOString(),
    records,
    transcripts: gff.filter((l) => l.includes('\tmRNA\t')).length,
    genolake_s: +ours.toFixed(2),
    bcftools_csq_s: +theirs.toFixed(2),
    genolake_records_per_s: Math.round(records / ours),
    bcftools_records_per_s: Math.round(records / theirs),
  };
  console.log(JSON.stringify(res, null, 2));
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'annotate.json'), JSON.stringify(res, null, 2) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
