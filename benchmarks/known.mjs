// Benchmark: known-variant database lookups in genolake annotate (--known) vs Debian
// `bcftools annotate -a db -c ID,INFO/AF` (with and without `bcftools norm -f ref -m-`),
// same data, same run. Run `npx tsc` first (uses dist/).
//
//   node benchmarks/known.mjs [--genome-length 10000000] [--db-step 10] [--variants 100000] [--keep]
//
// Data: a random genome with homopolymer runs; a dense dbSNP-like database (one record every
// ~db-step bases: SNVs, some multiallelic, indels in runs written right-shifted); an input
// VCF of which half the records are database variants (indels written left-aligned).
// Writes benchmarks/results/known.json.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { annotateVcf } from '../dist/src/annotate/annotate.js';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const GENOME = arg('genome-length', 10_000_000);
const DB_STEP = arg('db-step', 10);
const N_VAR = arg('variants', 100_000);
const load = () => loadavg().map((x) => +x.toFixed(2));

async function timed(f) {
  const t = process.hrtime.bigint();
  const value = await f();
  return { value, seconds: +(Number(process.hrtime.bigint() - t) / 1e9).toFixed(2) };
}
const sh = (cmd, args) => execFileSync(cmd, args, { maxBuffer: 1 << 30 }).toString();

let s = 987654321;
const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
const B = 'ACGT';
const seq = Buffer.alloc(GENOME);
for (let i = 0; i < GENOME; i++) seq[i] = B.charCodeAt((rnd() * 4) | 0);
// homopolymer runs of 6-12 every ~500 bp: indel targets with several spellings
const runs = [];
for (let p = 1000; p + 20 < GENOME; p += 400 + ((rnd() * 200) | 0)) {
  const len = 6 + ((rnd() * 7) | 0);
  const c = B.charCodeAt((rnd() * 4) | 0);
  seq[p - 1] = c === 65 ? 67 : 65; // anchor differs from the run
  for (let k = 0; k < len; k++) seq[p + k] = c;
  seq[p + len] = c === 71 ? 84 : 71; // so does the base after
  runs.push([p, len]);
}
const base = (p) => String.fromCharCode(seq[p]);
const otherBase = (p, k = 0) => B.replace(base(p), '')[k];

const dir = mkdtempSync(join(tmpdir(), 'gl-bench-known-'));
try {
  const fa = join(dir, 'ref.fa');
  const lines = ['>1'];
  for (let i = 0; i < GENOME; i += 60) lines.push(seq.toString('latin1', i, Math.min(GENOME, i + 60)));
  writeFileSync(fa, lines.join('\n') + '\n');
  sh('samtools', ['faidx', fa]);
  const gff = join(dir, 'empty.gff3');
  writeFileSync(gff, '##gff-version 3\n');

  // database: SNVs (10% with two ALTs) on a grid, plus an insertion in every run, written right-shifted
  const db = [];
  let id = 0;
  const runAt = new Map(runs.map(([p, len]) => [p, len]));
  for (let p = 500; p < GENOME - 20; p += Math.max(1, DB_STEP - 3 + ((rnd() * 6) | 0))) {
    const alts = rnd() < 0.1 ? `${otherBase(p, 0)},${otherBase(p, 1)}` : otherBase(p, (rnd() * 3) | 0);
    const af = alts.includes(',') ? '0.01,0.02' : (rnd() / 2).toFixed(4);
    db.push([p, `1\t${p + 1}\trs${++id}\t${base(p)}\t${alts}\t.\t.\tAF=${af};VC=SNV`]);
  }
  for (const [p, len] of runs) {
    const last = p + len - 1; // right-shifted insertion of one run base
    db.push([last, `1\t${last + 1}\trs${++id}\t${base(last)}\t${base(last)}${base(last)}\t.\t.\tAF=0.1;VC=INS`]);
  }
  db.sort((a, b) => a[0] - b[0]);
  const dbHeader = ['##fileformat=VCFv4.2', `##contig=<ID=1,length=${GENOME}>`, '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">', '##INFO=<ID=VC,Number=1,Type=String,Description="Variant class">', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO'];
  writeFileSync(join(dir, 'db.vcf'), [...dbHeader, ...db.map((x) => x[1])].join('\n') + '\n');
  sh('bgzip', ['-f', join(dir, 'db.vcf')]);
  sh('tabix', ['-p', 'vcf', join(dir, 'db.vcf.gz')]);
  const dbGz = join(dir, 'db.vcf.gz');

  // input: half database SNVs, a share of the run insertions written left-aligned, the rest novel SNVs
  const input = new Map();
  const dbSnvs = db.filter((x) => x[1].endsWith('VC=SNV'));
  while (input.size < N_VAR / 2) {
    const [p, line] = dbSnvs[(rnd() * dbSnvs.length) | 0];
    const c = line.split('\t');
    input.set(p, `1\t${p + 1}\t.\t${c[3]}\t${c[4].split(',')[0]}\t50\tPASS\tDP=30`);
  }
  for (const [p] of runs.slice(0, Math.min(runs.length, N_VAR / 10))) {
    const a = p - 1;
    if (!input.has(a)) input.set(a, `1\t${a + 1}\t.\t${base(a)}\t${base(a)}${base(p)}\t50\tPASS\tDP=30`);
  }
  while (input.size < N_VAR) {
    const p = 500 + ((rnd() * (GENOME - 1000)) | 0);
    if (!input.has(p)) input.set(p, `1\t${p + 1}\t.\t${base(p)}\t${otherBase(p, 2)}\t50\tPASS\tDP=30`);
  }
  const inLines = [...input.entries()].sort((a, b) => a[0] - b[0]).map((x) => x[1]);
  const vcf = join(dir, 'in.vcf');
  writeFileSync(vcf, ['##fileformat=VCFv4.2', `##contig=<ID=1,length=${GENOME}>`, '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO', ...inLines].join('\n') + '\n');
  sh('bgzip', ['-k', '-f', vcf]);
  sh('tabix', ['-p', 'vcf', `${vcf}.gz`]);

  const known = [{ name: 'dbsnp', path: dbGz, fields: ['AF', 'VC'] }];
  const matched = (text) => text.split('\n').filter((l) => l && l[0] !== '#' && l.split('\t')[2] !== '.').length;
  const out = (n) => join(dir, `${n}.vcf`);
  const runs_ = {};
  runs_.genolakeNoKnown = await timed(() => annotateVcf({ reference: fa, gff, vcf, out: out('a'), vep: false }));
  runs_.genolakeKnown1 = await timed(() => annotateVcf({ reference: fa, gff, vcf, out: out('b'), vep: false, known }));
  runs_.genolakeKnown2 = await timed(() => annotateVcf({ reference: fa, gff, vcf, out: out('c'), vep: false, known, threads: 2 }));
  const oursMatched = matched(sh('cat', [out('b')]));
  runs_.bcftoolsAnnotate = await timed(() => sh('bcftools', ['annotate', '-a', dbGz, '-c', 'ID,INFO/AF,INFO/VC', '-o', out('d'), `${vcf}.gz`]));
  const bcfPlainMatched = matched(sh('cat', [out('d')]));
  runs_.bcftoolsNormDb = await timed(() => {
    sh('bcftools', ['norm', '-f', fa, '-m-', '-Oz', '-o', join(dir, 'db.norm.vcf.gz'), dbGz]);
    return sh('tabix', ['-f', '-p', 'vcf', join(dir, 'db.norm.vcf.gz')]);
  });
  runs_.bcftoolsNormInputAnnotate = await timed(() => {
    sh('bcftools', ['norm', '-f', fa, '-m-', '-Oz', '-o', join(dir, 'in.norm.vcf.gz'), `${vcf}.gz`]);
    sh('tabix', ['-f', '-p', 'vcf', join(dir, 'in.norm.vcf.gz')]);
    return sh('bcftools', ['annotate', '-a', join(dir, 'db.norm.vcf.gz'), '-c', 'ID,INFO/AF,INFO/VC', '-o', out('e'), join(dir, 'in.norm.vcf.gz')]);
  });
  const bcfNormMatched = matched(sh('cat', [out('e')]));
  const result = {
    date: new Date().toISOString(),
    data: { genomeLength: GENOME, dbRecords: db.length, inputRecords: inLines.length },
    seconds: Object.fromEntries(Object.entries(runs_).map(([k, v]) => [k, v.seconds])),
    matchedRecords: { genolake: oursMatched, bcftoolsAnnotate: bcfPlainMatched, bcftoolsNormAnnotate: bcfNormMatched },
    loadAfter: load(),
    bcftools: sh('bcftools', ['--version']).split('\n')[0],
  };
  writeFileSync(join(here, 'results', 'known.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify(result, null, 2));
} finally {
  if (argv.includes('--keep')) console.log(`data kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
