#!/usr/bin/env node
// Speed of genolake's data simulator on a benchmark-sized genome, against wgsim (Debian
// package samtools) as the peer for the read simulation, in the same run:
//   1. buildReference + writeReference of a --genome-length (default 20 Mb) reference
//   2. truth variants + haplotypes for one patient
//   3. simulateReads of --coverage (default 5x) 2x150 pairs to gzip FASTQ (level 1)
//      vs  wgsim -N <same pairs> -1 150 -2 150 -d 350 -s 50 ref.fa r1.fq r2.fq
//          followed by gzip -1 of both files (wgsim writes plain FASTQ)
// Needs a built dist/ (`npx tsc`). Writes benchmarks/results/simulate.json.
//
//   node benchmarks/simulate.mjs [--genome-length 20000000] [--coverage 5]
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const dataDir = join(here, 'data', 'simulate');

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

const genomeLength = Number(arg('genome-length', '20000000'));
const coverage = Number(arg('coverage', '5'));
const dist = (p) => pathToFileURL(join(root, 'dist', p)).href;
const { buildReference, writeReference } = await import(dist('src/sim/reference.js'));
const { simulateVariants, buildHaplotypes } = await import(dist('src/sim/variants.js'));
const { simulateReads } = await import(dist('src/sim/reads.js'));

rmSync(dataDir, { recursive: true, force: true });
mkdirSync(dataDir, { recursive: true });
const loadBefore = loadavg();
/** Wall seconds, and CPU seconds (user + sys) of this process, all threads. */
const timed = async (f) => {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const value = await f();
  const c = process.cpuUsage(c0);
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (c.user + c.system) / 1e6 };
};
/** CPU seconds (user + sys) of a child, from GNU time. */
function runTimed(cmd, args) {
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const [u, s] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return u + s;
}

const ref = await timed(() => buildReference({ seed: 1, length: genomeLength }));
const refWrite = await timed(() => writeReference(ref.value, join(dataDir, 'reference')));
const vars = await timed(() => simulateVariants(ref.value, { seed: 2 }));
const haps = await timed(() => buildHaplotypes(ref.value, vars.value));
const r1 = join(dataDir, 'gl_R1.fastq.gz');
const r2 = join(dataDir, 'gl_R2.fastq.gz');
const reads = await timed(() => simulateReads(haps.value, [{ r1, r2 }], { seed: 3, coverage }));
const pairs = reads.value.pairs;

const fa = join(dataDir, 'reference', 'ref.fa');
const w1 = join(dataDir, 'wgsim_R1.fq');
const w2 = join(dataDir, 'wgsim_R2.fq');
let peerCpu = 0;
const peer = await timed(() => {
  peerCpu += runTimed('wgsim', ['-S', '3', '-N', String(pairs), '-1', '150', '-2', '150', '-d', '350', '-s', '50', fa, w1, w2]);
  peerCpu += runTimed('gzip', ['-1', '-f', w1, w2]);
});

const result = {
  benchmark: 'simulate',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, availableParallelism: availableParallelism(), model: cpus()[0]?.model, memGB: totalmem() / 2 ** 30, loadavgBefore: loadBefore, loadavgAfter: loadavg() },
  node: process.version,
  zlib: process.versions.zlib,
  genomeLength,
  coverage,
  pairs,
  seconds: {
    buildReference: ref.seconds,
    writeReference: refWrite.seconds,
    variants: vars.seconds,
    haplotypes: haps.seconds,
    genolakeReads: reads.seconds,
    wgsimPlusGzip: peer.seconds,
  },
  cpuSeconds: { buildReference: ref.cpuSeconds, genolakeReads: reads.cpuSeconds, wgsimPlusGzip: peerCpu },
  basesPerSecond: { genolakeReads: (2 * 150 * pairs) / reads.seconds, wgsimPlusGzip: (2 * 150 * pairs) / peer.seconds },
  bytes: {
    genolakeR1: statSync(r1).size,
    wgsimR1: statSync(`${w1}.gz`).size,
  },
  variants: vars.value.length,
  observedErrorRate: reads.value.observedErrorRate,
  note: 'seconds = wall, cpuSeconds = user+sys (genolake: whole process incl. zlib threads; peer: wgsim + gzip -1). Single process each; wgsim also simulates its own mutations; the machine is shared, so figures vary between runs.',
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'simulate.json'), `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(result.seconds)}\n${JSON.stringify(result.cpuSeconds)}\n${JSON.stringify(result.basesPerSecond)}\n`);
rmSync(dataDir, { recursive: true, force: true });
