#!/usr/bin/env node
/**
 * Aligner benchmark: genolake vs `bwa mem -t 2` on the same wgsim pairs.
 *
 *   node benchmarks/align.mjs [--pairs 200000] [--genome 20000000] [--threads 2] [--split-part-bases N]
 *
 * Generates (once, cached in benchmarks/data/align/) a repeat-rich genome
 * (benchmarks/lib/refgen.mjs: interspersed repeat families, tandem repeats, segmental
 * duplications) and wgsim 2x150 pairs (-e 0.005 -r 0.001 -R 0.15); builds both indexes,
 * aligns with both tools under /usr/bin/time (wall time and peak RSS), scores both SAMs
 * with wgsim_eval.pl alneval and writes benchmarks/results/align.json. With
 * --split-part-bases N it also builds the index split into parts of at most N bases,
 * aligns with it and records its cost and whether its SAM equals the single-part one.
 * Runs against the built dist/ (npm run build first).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeGenome } from './lib/refgen.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};

// child mode: run one genolake step in this process (so /usr/bin/time sees it)
if (args[0] === '--child') {
  const [, step, ...rest] = args;
  if (step === 'index') {
    const { buildIndex } = await import(join(root, 'dist/src/align/index-file.js'));
    await buildIndex(rest[0], rest[1], undefined, rest[2] ? { maxPartBases: Number(rest[2]) } : {});
  } else if (step === 'stage') {
    // The align stage of `genolake run`: reads → sorted, duplicate-marked, indexed BAM + qc.json.
    const [indexDir, fq1, fq2, lakeDir, nThreads] = rest;
    const { LocalLake } = await import(join(root, 'dist/src/lake/local.js'));
    const { createPool } = await import(join(root, 'dist/src/engine/pool.js'));
    const { alignSample } = await import(join(root, 'dist/src/stages/align.js'));
    const { copyFileSync, mkdirSync: mk } = await import('node:fs');
    const lake = new LocalLake(lakeDir);
    mk(join(lakeDir, 'in'), { recursive: true });
    copyFileSync(fq1, join(lakeDir, 'in', 'r1.fq'));
    copyFileSync(fq2, join(lakeDir, 'in', 'r2.fq'));
    const pool = createPool({ threads: Number(nThreads) });
    try {
      const shards = {
        readsPerShard: 0, totalReads: 0, totalBases: 0, gzipLevel: 0,
        readGroups: [{ id: 'rg1', paired: true }],
        shards: [{ index: 0, readGroup: 'rg1', firstRecord: 1, reads: 0, bases: 0, r1: { key: 'in/r1.fq' }, r2: { key: 'in/r2.fq' } }],
      };
      const r = await alignSample({ shards, indexDir, outPrefix: 'out/', sampleId: 'S1' }, { lake, pool });
      process.stderr.write(`${JSON.stringify(r)}\n`);
    } finally {
      await pool.close();
    }
  } else {
    const { alignToSam } = await import(join(root, 'dist/src/align/align.js'));
    const s = await alignToSam({ indexDir: rest[0], r1: rest[1], r2: rest[2], out: rest[3], threads: Number(rest[4]) });
    process.stderr.write(`${JSON.stringify(s)}\n`);
  }
  process.exit(0);
}

const pairs = opt('pairs', 200_000);
const genome = opt('genome', 20_000_000);
const threads = opt('threads', 2);
const data = join(root, 'benchmarks', 'data', 'align');
mkdirSync(data, { recursive: true });
const fa = join(data, `ref-${genome}.fa`);
const r1 = join(data, `r1-${genome}-${pairs}.fq`);
const r2 = join(data, `r2-${genome}-${pairs}.fq`);

function timed(cmd, argv, stdoutFile) {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M %U %S', cmd, ...argv], {
    encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', stdoutFile ? 'pipe' : 'ignore', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
  if (stdoutFile) writeFileSync(stdoutFile, r.stdout);
  const m = /TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wallS: Number(m[1]), peakRssMB: Math.round(Number(m[2]) / 1024), cpuS: Number(m[3]) + Number(m[4]), stderr: r.stderr };
}

function alneval(sam) {
  const out = execFileSync('wgsim_eval.pl', ['alneval', sam], { encoding: 'utf8', maxBuffer: 1 << 28 });
  let mapped20 = 0, wrong20 = 0, total = 0;
  const rows = [];
  for (const line of out.trim().split('\n')) {
    const m = /^(\d+)x\s+(\d+)\s*\/\s*(\d+)\s+(\d+)/.exec(line);
    if (!m) continue;
    rows.push(line.trim());
    total = Number(m[4]);
    if (Number(m[1]) >= 2) { mapped20 = Number(m[4]); wrong20 += Number(m[2]); }
  }
  return { mapped20, wrong20, wrongRate20: wrong20 / mapped20, total, table: rows };
}

const t0 = Date.now();
if (!existsSync(fa)) {
  console.error(`generating ${genome} bp genome…`);
  await writeGenome(fa, { length: genome, seed: 2026, contigs: 6 });
}
if (!existsSync(r2)) {
  console.error(`simulating ${pairs} pairs…`);
  execFileSync('wgsim', ['-S', '42', '-N', String(pairs), '-1', '150', '-2', '150', '-e', '0.005', '-r', '0.001', '-R', '0.15', fa, r1, r2], { stdio: 'ignore' });
}
const reads = 2 * pairs;
const gIdx = join(data, `glidx-${genome}`);
console.error('genolake index…');
const gIndex = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', 'index', fa, gIdx]);
console.error('bwa index…');
const bwaFa = join(data, `bwa-${genome}.fa`);
if (!existsSync(bwaFa)) execFileSync('cp', [fa, bwaFa]);
const bIndex = timed('bwa', ['index', bwaFa]);

const gSam = join(data, 'genolake.sam');
const gSam1 = join(data, 'genolake-1t.sam');
const bSam = join(data, 'bwa.sam');
const splitBases = opt('split-part-bases', 0);
console.error(`genolake align, ${threads} threads…`);
const gAlign = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', 'align', gIdx, r1, r2, gSam, String(threads)]);
console.error('genolake align, 1 thread…');
const gAlign1 = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', 'align', gIdx, r1, r2, gSam1, '1']);
let split;
if (splitBases > 0) {
  const sIdx = join(data, `glidx-${genome}-split${splitBases}`);
  console.error(`genolake index, parts of at most ${splitBases} bases…`);
  const sIndex = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', 'index', fa, sIdx, String(splitBases)]);
  const sSam = join(data, 'genolake-split.sam');
  console.error(`genolake align on the split index, ${threads} threads…`);
  const sAlign = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', 'align', sIdx, r1, r2, sSam, String(threads)]);
  const body = (f) => execFileSync('grep', ['-v', '^@PG', f], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const { readFileSync } = await import('node:fs');
  const manifest = readFileSync(join(sIdx, 'genolake.idx'));
  const parts = (manifest.toString('latin1').match(/genolake\.part\d+\.idx/g) ?? []).length;
  split = {
    maxPartBases: splitBases, parts,
    index: { wallS: sIndex.wallS, cpuS: sIndex.cpuS, peakRssMB: sIndex.peakRssMB },
    align: { threads, wallS: sAlign.wallS, cpuS: sAlign.cpuS, peakRssMB: sAlign.peakRssMB },
    samEqualsSingle: body(sSam) === body(gSam),
  };
}
console.error(`bwa mem -t ${threads}…`);
const bAlign = timed('bwa', ['mem', '-t', String(threads), bwaFa, r1, r2], bSam);

// Whole stage: reads → coordinate-sorted, duplicate-marked, indexed BAM.
console.error(`genolake align stage (align, sort, markdup, index), ${threads} threads…`);
const stageLake = join(data, 'stage-lake');
execFileSync('rm', ['-rf', stageLake]);
const gStage = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', 'stage', gIdx, r1, r2, stageLake, String(threads)]);
console.error(`bwa mem -t ${threads} | samtools fixmate -m | samtools sort | samtools markdup; samtools index…`);
const peerBam = join(data, 'peer.bam');
const peerCmd = `bwa mem -t ${threads} ${bwaFa} ${r1} ${r2} 2>/dev/null | samtools fixmate -m -@${threads - 1} - - | samtools sort -@${threads - 1} -m 512M - | samtools markdup -@${threads - 1} - ${peerBam} && samtools index ${peerBam}`;
const pStage = timed('bash', ['-o', 'pipefail', '-c', peerCmd]);
execFileSync('samtools', ['quickcheck', join(stageLake, 'out', 'sample.bam')]);

const gEval = alneval(gSam);
const bEval = alneval(bSam);
const result = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, note: 'shared machine: other jobs were running; wall times are noisy, CPU seconds less so' },
  input: { genomeBp: genome, pairs, reads, readLength: 150, wgsim: '-e 0.005 -r 0.001 -R 0.15', threads },
  index: {
    genolake: { wallS: gIndex.wallS, cpuS: gIndex.cpuS, peakRssMB: gIndex.peakRssMB, kind: 'minimizers k=19 w=10' },
    bwa: { wallS: bIndex.wallS, cpuS: bIndex.cpuS, peakRssMB: bIndex.peakRssMB, kind: 'FM-index (bwa index)' },
  },
  align: {
    genolake: { threads, wallS: gAlign.wallS, cpuS: gAlign.cpuS, readsPerS: Math.round(reads / gAlign.wallS), readsPerCpuS: Math.round(reads / gAlign.cpuS), peakRssMB: gAlign.peakRssMB, ...gEval },
    genolake1Thread: { threads: 1, wallS: gAlign1.wallS, cpuS: gAlign1.cpuS, readsPerS: Math.round(reads / gAlign1.wallS), peakRssMB: gAlign1.peakRssMB },
    bwa: { threads, wallS: bAlign.wallS, cpuS: bAlign.cpuS, readsPerS: Math.round(reads / bAlign.wallS), readsPerCpuS: Math.round(reads / bAlign.cpuS), peakRssMB: bAlign.peakRssMB, ...bEval },
  },
  stage: {
    what: 'reads → coordinate-sorted, duplicate-marked, indexed BAM',
    genolake: { threads, wallS: gStage.wallS, cpuS: gStage.cpuS, peakRssMB: gStage.peakRssMB },
    peer: { command: peerCmd.replace(data + '/', ''), wallS: pStage.wallS, cpuS: pStage.cpuS, peakRssMB: pStage.peakRssMB, note: 'peak RSS of the largest process in the pipe' },
  },
};
if (split) result.split = { ...split, cpuRatioToSingle: +(split.align.cpuS / result.align.genolake.cpuS).toFixed(2) };
const a = result.align;
result.goals = {
  wrongRateAtQ20NotAboveBwa: a.genolake.wrongRate20 <= a.bwa.wrongRate20,
  mappedAtQ20AtLeast998OfBwa: a.genolake.mapped20 >= 0.998 * a.bwa.mapped20,
  mappedAtQ20RatioToBwa: +(a.genolake.mapped20 / a.bwa.mapped20).toFixed(4),
  throughputRatioToBwa: +(a.genolake.readsPerS / a.bwa.readsPerS).toFixed(3),
  cpuThroughputRatioToBwa: +(a.genolake.readsPerCpuS / a.bwa.readsPerCpuS).toFixed(3),
  peakRssRatioToBwa: +(a.genolake.peakRssMB / a.bwa.peakRssMB).toFixed(2),
  peakRss2vs1Thread: +(a.genolake.peakRssMB / a.genolake1Thread.peakRssMB).toFixed(2),
  indexBuildRatioToBwa: +(result.index.genolake.wallS / result.index.bwa.wallS).toFixed(2),
  stageThroughputRatioToPeer: +(result.stage.peer.wallS / result.stage.genolake.wallS).toFixed(2),
  stageCpuThroughputRatioToPeer: +(result.stage.peer.cpuS / result.stage.genolake.cpuS).toFixed(2),
};
result.totalBenchmarkS = Math.round((Date.now() - t0) / 1000);
mkdirSync(join(root, 'benchmarks', 'results'), { recursive: true });
writeFileSync(join(root, 'benchmarks', 'results', 'align.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify({ index: result.index, align: { genolake: { ...a.genolake, table: undefined }, genolake1Thread: a.genolake1Thread, bwa: { ...a.bwa, table: undefined } }, goals: result.goals }, null, 2));
