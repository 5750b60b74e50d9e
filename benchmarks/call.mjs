// Benchmark: genolake call (2 threads) vs Debian `bcftools mpileup -f ref | bcftools call -mv`
// on the same BAM: a simulated sample (simulateCohort, genome with repeats, 2x150 reads),
// aligned with bwa mem + samtools sort. Accuracy vs the simulator's truth VCF with
// src/call/compare.ts (alleles after normalisation; bcftools output split + left-aligned).
// Usage: node benchmarks/call.mjs [genomeLength=5000000] [coverage=30] [--keep DIR]   (run `npx tsc` first)
// --keep DIR: simulate and align into DIR once, and reuse it on later runs.
import { execFileSync, execSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { callVariants } from '../dist/src/call/call.js';
import { compareCalls, readVcfLines } from '../dist/src/call/compare.js';
import { simulateCohort } from '../dist/src/sim/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const positional = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--keep');
const keepAt = process.argv.indexOf('--keep');
const keep = keepAt > 0 ? process.argv[keepAt + 1] : undefined;
const genomeLength = Number(positional[0] ?? 5_000_000);
const coverage = Number(positional[1] ?? 30);
const dir = keep ?? mkdtempSync(join(tmpdir(), 'gl-bench-call-'));
mkdirSync(dir, { recursive: true });
const cpuSince = (c0) => {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
};
const sh = (cmd) => execSync(cmd, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 }).toString();
const loadavgAtStart = loadavg().map((x) => +x.toFixed(2));
try {
  // Same options, same bytes: a kept directory is reused as it is.
  const sim = await simulateCohort({ outDir: join(dir, 'sim'), seed: 5, patients: 1, coverage, genomeLength, lanes: 1 });
  const ref = join(dir, 'sim', sim.reference.fasta);
  const truth = join(dir, 'sim', sim.patients[0].truth_vcf);
  mkdirSync(join(dir, 'fq'), { recursive: true });
  execFileSync('tar', ['xzf', join(dir, 'sim', sim.patients[0].archive), '-C', join(dir, 'fq')]);
  const rg = sim.patients[0].read_groups[0];
  if (!existsSync(join(dir, 's.bam.bai'))) {
    sh(`bwa index ${ref}`);
    sh(`bwa mem -t 2 -R '@RG\\tID:L1\\tSM:S1' ${ref} fq/${rg.r1} fq/${rg.r2} 2>/dev/null | samtools sort -o s.bam - && samtools index s.bam`);
  }
  // the same reads aligned by genolake's own aligner (index, align, sort + BAI)
  const gl = `node ${join(here, '..', 'bin', 'genolake.js')}`;
  if (!existsSync(join(dir, 'g.bam.bai'))) {
    sh(`${gl} index ${ref} --out gidx >/dev/null && ${gl} align --index gidx --r1 fq/${rg.r1} --r2 fq/${rg.r2} --rg L1:S1 --out g.sam --threads 2 >/dev/null && ${gl} bam sort g.sam --out g.bam >/dev/null && rm g.sam`);
  }

  const truthLines = readVcfLines(truth);
  const r4 = (a) => ({ ...a, precision: +a.precision.toFixed(4), recall: +a.recall.toFixed(4), f1: +a.f1.toFixed(4) });
  const cmp = (file, opts) => {
    const c = compareCalls(truthLines, readVcfLines(file), opts);
    return { snv: r4(c.snv), indel: r4(c.indel) };
  };
  const byAligner = {};
  for (const [aligner, name] of [['bwa mem', 's.bam'], ['genolake align', 'g.bam']]) {
    const bam = join(dir, name);
    let t0 = performance.now();
    // CPU seconds too (all threads of this process; the shell's user + sys for bcftools'
    // pipeline): on a shared machine they move much less with the load than wall time
    let cpu0 = process.cpuUsage();
    const res = await callVariants({ reference: ref, bams: [bam], out: join(dir, 'gl.vcf.gz'), threads: 2 });
    const glSec = (performance.now() - t0) / 1000;
    const glCpu = cpuSince(cpu0);
    t0 = performance.now();
    cpu0 = process.cpuUsage();
    await callVariants({ reference: ref, bams: [bam], out: join(dir, 'gl1.vcf.gz'), threads: 1 });
    const gl1Sec = (performance.now() - t0) / 1000;
    const gl1Cpu = cpuSince(cpu0);
    t0 = performance.now();
    const bc = spawnSync('bash', ['-c', `TIMEFORMAT='%U %S'; time (bcftools mpileup -f ${ref} ${name} 2>/dev/null | bcftools call -mv -Oz -o bc.vcf.gz 2>/dev/null)`], { cwd: dir, encoding: 'utf8' });
    const bcSec = (performance.now() - t0) / 1000;
    if (bc.status !== 0) throw new Error(`bcftools failed: ${bc.stderr}`);
    const bcCpu = bc.stderr.trim().split('\n').pop().split(' ').map(Number).reduce((a, b) => a + b, 0);
    sh(`bcftools norm -m -any -f ${ref} bc.vcf.gz -o bcn.vcf 2>/dev/null`);
    byAligner[aligner] = {
      genolake1Thread: { threads: 1, seconds: +gl1Sec.toFixed(2), cpuSeconds: +gl1Cpu.toFixed(2) },
      genolake: { threads: 2, seconds: +glSec.toFixed(2), cpuSeconds: +glCpu.toFixed(2), regions: res.regions, records: res.records, all: cmp(join(dir, 'gl.vcf.gz')), pass: cmp(join(dir, 'gl.vcf.gz'), { passOnly: true }) },
      bcftools: { command: 'bcftools mpileup -f ref in.bam | bcftools call -mv', threads: 1, seconds: +bcSec.toFixed(2), cpuSeconds: +bcCpu.toFixed(2), ...cmp(join(dir, 'bcn.vcf')) },
      timeRatio: +(glSec / bcSec).toFixed(3),
      cpuRatio: +(glCpu / bcCpu).toFixed(3),
    };
    const b = byAligner[aligner];
    b.goals = {
      snvF1AtLeastBcftools: b.genolake.all.snv.f1 >= b.bcftools.snv.f1,
      indelF1WithinOnePointOfBcftools: b.genolake.all.indel.f1 >= b.bcftools.indel.f1 - 0.01,
      wallTimeAtMostHalfOfBcftools: b.timeRatio <= 0.5,
    };
  }
  const result = {
    date: new Date().toISOString(),
    data: { genomeLength, coverage, readLength: 150, pairs: sim.patients[0].pairs, truth: sim.patients[0].variants },
    machine: { loadavgAtStart, loadavgAtEnd: loadavg().map((x) => +x.toFixed(2)) },
    byAligner,
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'call.json'), JSON.stringify(result, null, 2) + '\n');
} finally {
  if (!keep) rmSync(dir, { recursive: true, force: true });
}
