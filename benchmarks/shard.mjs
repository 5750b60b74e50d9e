#!/usr/bin/env node
// Validate+shard throughput of genolake's shard stage on a >= 1 GB gzip FASTQ pair, with 1
// and 2 pool threads, against the coreutils peer in the same run:
//   zcat R1 | split -l 1000000 --filter='gzip -1 > $FILE.gz'   (and the same for R2)
// run once with the two mates one after the other and once with both at the same time.
// Peak RSS is measured on each genolake run (a child process, /usr/bin/time -v and
// process.resourceUsage().maxRSS) and must stay under 500 MB.
//
// Data (benchmarks/data/shard/, gitignored): a ~50 MB gzip pair of simulated 2x150 reads
// (seeded, so the same bytes on every machine) concatenated as gzip members until the
// pair holds >= --target-gb (default 1) GB of gzip. Needs a built dist/ (`npx tsc`).
//
//   node benchmarks/shard.mjs [--target-gb 1] [--repeat 1] [--reads-per-shard 250000]
//
// Writes benchmarks/results/shard.json.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createGzip } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const dataDir = join(here, 'data', 'shard');
const lakeRoot = join(dataDir, 'lake');
const snapDir = join(dataDir, 'snap');
const RSS_LIMIT_MB = 500;

/**
 * Copies dist/ and package.json to benchmarks/data/shard/snap/ so the runs use one fixed
 * build even if dist/ is rebuilt while they run; workerPath() finds the snapshot's
 * workers (it resolves from the package.json above the module), and node_modules are
 * still found by walking up to the repository root.
 */
function snapshotDist() {
  rmSync(snapDir, { recursive: true, force: true });
  mkdirSync(snapDir, { recursive: true });
  cpSync(join(root, 'dist'), join(snapDir, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(snapDir, 'package.json'));
}

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

// ---------------------------------------------------------------------------------------
// Child mode: one genolake shard run, timed from inside (the parent also wraps it in
// /usr/bin/time -v).
if (process.argv[2] === '--child') {
  const [threads, r1, r2, out, readsPerShard] = process.argv.slice(3);
  // A private copy of dist/ (see snapshotDist): other builds may rewrite dist/ meanwhile.
  const dist = (p) => pathToFileURL(join(snapDir, 'dist', p)).href;
  const { shardReads } = await import(dist('src/stages/shard.js'));
  const { createPool } = await import(dist('src/engine/pool.js'));
  const { LocalLake } = await import(dist('src/lake/local.js'));
  const lake = new LocalLake(lakeRoot);
  const pool = createPool({ threads: Number(threads) });
  // The engine's runTasks contract: settle only when every task has settled.
  const runTasks = async (worker, tasks) => {
    const s = await Promise.allSettled(tasks.map((t) => pool.run(worker, t.payload)));
    const bad = s.find((x) => x.status === 'rejected');
    if (bad) throw bad.reason;
    return s.map((x) => x.value);
  };
  let peakSampled = 0;
  const sampler = setInterval(() => (peakSampled = Math.max(peakSampled, process.memoryUsage.rss())), 200);
  const t0 = process.hrtime.bigint();
  const index = await shardReads(
    { readGroups: [{ id: 'bench', r1, r2 }], outPrefix: out, readsPerShard: Number(readsPerShard) },
    { lake, runTasks },
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(sampler);
  await pool.close();
  const ru = process.resourceUsage();
  process.stdout.write(
    `${JSON.stringify({
      seconds,
      pairs: index.totalReads,
      bases: index.totalBases,
      shards: index.shards.length,
      outputBytes: index.shards.reduce((n, s) => n + s.r1.bytes + (s.r2?.bytes ?? 0), 0),
      maxRssMB: ru.maxRSS / 1024,
      sampledPeakRssMB: peakSampled / 2 ** 20,
      cpuSeconds: (ru.userCPUTime + ru.systemCPUTime) / 1e6,
    })}\n`,
  );
  process.exit(0);
}

// ---------------------------------------------------------------------------------------
// Data: simulated reads from a random genome, Illumina-like qualities.

/** xorshift32 → [0, 1) */
function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

async function makeBasePair(pairs, r1Path, r2Path) {
  const rnd = rng(20261123);
  // 4 Mbp genome with GC content drifting between regions.
  const G = 4_000_000;
  const genome = Buffer.allocUnsafe(G);
  let gc = 0.45;
  for (let i = 0; i < G; i++) {
    if ((i & 4095) === 0) gc = Math.min(0.65, Math.max(0.3, gc + (rnd() - 0.5) * 0.1));
    const u = rnd();
    genome[i] = u < gc ? (u < gc / 2 ? 67 : 71) : u < gc + (1 - gc) / 2 ? 65 : 84;
  }
  const comp = new Uint8Array(256);
  comp[65] = 84;
  comp[84] = 65;
  comp[67] = 71;
  comp[71] = 67;
  const L = 150;
  const outs = [r1Path, r2Path].map((p) => {
    const gz = createGzip({ level: 6 });
    const done = pipeline(gz, createWriteStream(p));
    return { gz, done };
  });
  const CH = 4 << 20;
  const bufs = [Buffer.allocUnsafe(CH + 1024), Buffer.allocUnsafe(CH + 1024)];
  const w = [0, 0];
  const flush = async (m) => {
    const chunk = Buffer.from(bufs[m].subarray(0, w[m]));
    w[m] = 0;
    if (!outs[m].gz.write(chunk)) await once(outs[m].gz, 'drain');
  };
  for (let n = 0; n < pairs; n++) {
    const tile = 1101 + ((n / 40000) | 0);
    const x = 1000 + ((rnd() * 30000) | 0);
    const y = 1000 + ((rnd() * 30000) | 0);
    const insert = Math.max(L, Math.round(400 + (rnd() + rnd() + rnd() - 1.5) * 80));
    const pos = (rnd() * (G - insert - 1)) | 0;
    const fwd = rnd() < 0.5;
    for (let m = 0; m < 2; m++) {
      const b = bufs[m];
      let o = w[m];
      o += b.write(`@GL:7:HBENCHXX:1:${tile}:${x}:${y} ${m + 1}:N:0:ACGTACGT+TTGACCAA\n`, o, 'latin1');
      // Mate 1 reads the fragment's forward strand from its start, mate 2 the reverse
      // strand from its end (swapped for a reverse fragment).
      const readFwd = (m === 0) === fwd;
      const s0 = o;
      for (let i = 0; i < L; i++) {
        const base = readFwd ? genome[pos + i] : comp[genome[pos + insert - 1 - i]];
        b[o++] = base;
      }
      b[o++] = 10;
      b[o++] = 43;
      b[o++] = 10;
      // Quality: high at the start, decaying with position, noisy; errors where it is low.
      let q = 36 + rnd() * 4;
      for (let i = 0; i < L; i++) {
        q += (rnd() - 0.55) * 1.6;
        if (q > 41) q = 41;
        if (q < 2) q = 2;
        const qi = rnd() < 0.01 ? 2 + ((rnd() * 10) | 0) : Math.round(q);
        if (qi < 10 && rnd() < 0.3) b[s0 + i] = 'ACGT'.charCodeAt((rnd() * 4) | 0);
        if (rnd() < 0.0005) b[s0 + i] = 78;
        b[o++] = 33 + qi;
      }
      b[o++] = 10;
      w[m] = o;
      if (o >= CH) await flush(m);
    }
  }
  for (let m = 0; m < 2; m++) {
    await flush(m);
    outs[m].gz.end();
    await outs[m].done;
  }
}

async function concatCopies(src, dst, copies) {
  const out = createWriteStream(dst);
  for (let i = 0; i < copies; i++) {
    for await (const chunk of createReadStream(src, { highWaterMark: 1 << 20 })) {
      if (!out.write(chunk)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
}

async function prepareData(targetBytes, basePairs) {
  mkdirSync(join(lakeRoot, 'in'), { recursive: true });
  const base1 = join(dataDir, 'base_R1.fastq.gz');
  const base2 = join(dataDir, 'base_R2.fastq.gz');
  const metaFile = join(dataDir, 'data.json');
  const meta = existsSync(metaFile) ? JSON.parse(readFileSync(metaFile, 'utf8')) : {};
  if (meta.basePairs !== basePairs || !existsSync(base1) || !existsSync(base2)) {
    process.stderr.write(`generating ${basePairs} simulated 2x150 pairs...\n`);
    const t = Date.now();
    await makeBasePair(basePairs, base1, base2);
    process.stderr.write(`  done in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
    Object.assign(meta, { basePairs, copies: 0 });
  }
  const baseBytes = statSync(base1).size + statSync(base2).size;
  const copies = Math.ceil(targetBytes / baseBytes);
  const big1 = join(lakeRoot, 'in', 'big_R1.fastq.gz');
  const big2 = join(lakeRoot, 'in', 'big_R2.fastq.gz');
  if (meta.copies !== copies || !existsSync(big1) || !existsSync(big2)) {
    process.stderr.write(`concatenating ${copies} copies of each mate (gzip members)...\n`);
    await concatCopies(base1, big1, copies);
    await concatCopies(base2, big2, copies);
    meta.copies = copies;
  }
  writeFileSync(metaFile, `${JSON.stringify(meta)}\n`);
  // Uncompressed size of one copy, for MB/s of FASTQ text.
  if (meta.baseRaw === undefined) {
    const sizeOf = (f) => Number(spawnSync('sh', ['-c', `zcat '${f}' | wc -c`], { encoding: 'utf8' }).stdout.trim());
    meta.baseRaw = sizeOf(base1) + sizeOf(base2);
    writeFileSync(metaFile, `${JSON.stringify(meta)}\n`);
  }
  return {
    r1: 'in/big_R1.fastq.gz',
    r2: 'in/big_R2.fastq.gz',
    paths: [big1, big2],
    gzBytes: statSync(big1).size + statSync(big2).size,
    rawBytes: meta.baseRaw * copies,
    pairs: basePairs * copies,
    copies,
    baseBytes,
  };
}

// ---------------------------------------------------------------------------------------
// Runs

/** Runs argv under /usr/bin/time -v; returns wall seconds, peak RSS (MB), CPU seconds, stdout. */
async function timed(argv, env = {}) {
  const child = spawn('/usr/bin/time', ['-v', ...argv], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const t0 = process.hrtime.bigint();
  const [code] = await once(child, 'close');
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (code !== 0) throw new Error(`${argv.join(' ')} exited ${code}:\n${err.slice(-3000)}`);
  const num = (re) => Number(re.exec(err)?.[1]);
  return {
    wall,
    maxRssMB: num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024,
    cpuSeconds: num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/),
    stdout: out,
  };
}

function sh(cmd) {
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
}

async function genolakeRun(data, threads, readsPerShard) {
  const out = `out/t${threads}/`;
  rmSync(join(lakeRoot, 'out'), { recursive: true, force: true });
  const t = await timed([process.execPath, join(here, 'shard.mjs'), '--child', String(threads), data.r1, data.r2, out, String(readsPerShard)]);
  const inner = JSON.parse(t.stdout.trim().split('\n').at(-1));
  if (inner.pairs !== data.pairs) throw new Error(`genolake sharded ${inner.pairs} pairs, expected ${data.pairs}`);
  rmSync(join(lakeRoot, 'out'), { recursive: true, force: true });
  return {
    tool: 'genolake',
    threads,
    seconds: inner.seconds,
    processSeconds: t.wall,
    pairsPerSecond: data.pairs / inner.seconds,
    readsPerSecond: (2 * data.pairs) / inner.seconds,
    gzMBps: data.gzBytes / 1e6 / inner.seconds,
    fastqMBps: data.rawBytes / 1e6 / inner.seconds,
    shards: inner.shards,
    outputBytes: inner.outputBytes,
    cpuSeconds: t.cpuSeconds,
    gzMBPerCpuSecond: data.gzBytes / 1e6 / t.cpuSeconds,
    peakRssMB: Math.max(t.maxRssMB, inner.maxRssMB),
    peakRssMBTimeV: t.maxRssMB,
    peakRssMBResourceUsage: inner.maxRssMB,
    peakRssMBSampled: inner.sampledPeakRssMB,
  };
}

async function peerRun(data, parallel, readsPerShard) {
  const outDir = join(dataDir, 'peer-out');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const lines = readsPerShard * 4;
  const one = (p, m) => `zcat '${p}' | split -l ${lines} -a 5 -d --filter='gzip -1 > $FILE.gz' - '${outDir}/${m}.shard-'`;
  const script = parallel
    ? `${one(data.paths[0], 'R1')} & ${one(data.paths[1], 'R2')} & wait`
    : `${one(data.paths[0], 'R1')} && ${one(data.paths[1], 'R2')}`;
  const t = await timed(['bash', '-c', `set -o pipefail; ${script}`]);
  const files = spawnSync('sh', ['-c', `ls '${outDir}' | wc -l; cat '${outDir}'/* | wc -c`], { encoding: 'utf8' }).stdout.trim().split('\n');
  rmSync(outDir, { recursive: true, force: true });
  return {
    tool: 'peer: zcat | split -l | gzip -1',
    mates: parallel ? 'R1 and R2 at the same time' : 'R1 then R2',
    command: one('R?.fastq.gz', 'R?'),
    seconds: t.wall,
    pairsPerSecond: data.pairs / t.wall,
    readsPerSecond: (2 * data.pairs) / t.wall,
    gzMBps: data.gzBytes / 1e6 / t.wall,
    fastqMBps: data.rawBytes / 1e6 / t.wall,
    shards: Number(files[0]),
    outputBytes: Number(files[1]),
    cpuSeconds: t.cpuSeconds,
    gzMBPerCpuSecond: data.gzBytes / 1e6 / t.cpuSeconds,
    peakRssMB: t.maxRssMB,
  };
}

const targetGB = Number(arg('target-gb', '1'));
const repeat = Number(arg('repeat', '1'));
const readsPerShard = Number(arg('reads-per-shard', '250000'));
const basePairs = Number(arg('base-pairs', '330000'));
if (!existsSync(join(root, 'dist', 'src', 'stages', 'shard.js'))) {
  process.stderr.write('dist/ is not built: run `npx tsc -p tsconfig.json` first\n');
  process.exit(2);
}
snapshotDist();
const data = await prepareData(targetGB * 1e9, basePairs);
process.stderr.write(
  `input: ${data.pairs} pairs, ${(data.gzBytes / 1e9).toFixed(2)} GB gzip (${(data.rawBytes / 1e9).toFixed(2)} GB FASTQ), ${data.copies} members of ${(data.baseBytes / 2e6).toFixed(1)} MB per mate\n`,
);
// Warm the page cache so the first run does not pay for the disk.
sh(`cat '${data.paths[0]}' '${data.paths[1]}' > /dev/null`);

const runs = [];
const log = (r) => {
  r.loadavg1After = loadavg()[0];
  runs.push(r);
  process.stderr.write(
    `${r.tool}${r.threads ? ` threads=${r.threads}` : ` (${r.mates})`}: ${r.seconds.toFixed(1)} s, ${r.gzMBps.toFixed(1)} MB/s gzip, ${(r.readsPerSecond / 1e6).toFixed(2)} M reads/s, cpu ${r.cpuSeconds.toFixed(1)} s, peak RSS ${r.peakRssMB.toFixed(0)} MB, load ${loadavg()[0].toFixed(1)}\n`,
  );
};
const loadBefore = loadavg();
for (let i = 0; i < repeat; i++) {
  log(await genolakeRun(data, 1, readsPerShard));
  log(await genolakeRun(data, 2, readsPerShard));
  log(await peerRun(data, false, readsPerShard));
  log(await peerRun(data, true, readsPerShard));
}
const best = (pred) => runs.filter(pred).reduce((a, b) => (b.seconds < a.seconds ? b : a));
const g1 = best((r) => r.threads === 1);
const g2 = best((r) => r.threads === 2);
const pSeq = best((r) => r.mates === 'R1 then R2');
const pPar = best((r) => r.mates === 'R1 and R2 at the same time');
const peakRss = Math.max(...runs.filter((r) => r.tool === 'genolake').map((r) => r.peakRssMB));
const summary = {
  genolake1ThreadGzMBps: g1.gzMBps,
  genolake2ThreadsGzMBps: g2.gzMBps,
  genolake1ThreadReadsPerSecond: g1.readsPerSecond,
  genolake2ThreadsReadsPerSecond: g2.readsPerSecond,
  speedup1to2: g1.seconds / g2.seconds,
  peerSequentialGzMBps: pSeq.gzMBps,
  peerParallelGzMBps: pPar.gzMBps,
  genolake2ThreadsVsPeerParallel: pPar.seconds / g2.seconds,
  genolake1ThreadVsPeerSequential: pSeq.seconds / g1.seconds,
  // CPU cost (user+sys of the process tree) is far less sensitive to other load on a
  // shared machine than wall time.
  genolakeCpuSecondsPerGB: g2.cpuSeconds / (data.gzBytes / 1e9),
  peerCpuSecondsPerGB: pPar.cpuSeconds / (data.gzBytes / 1e9),
  peakRssMB: peakRss,
  peakRssUnderLimit: peakRss < RSS_LIMIT_MB,
};
const result = {
  benchmark: 'shard',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, availableParallelism: availableParallelism(), model: cpus()[0]?.model, memGB: totalmem() / 2 ** 30, loadavgBefore: loadBefore, loadavgAfter: loadavg() },
  node: process.version,
  zlib: process.versions.zlib,
  input: { pairs: data.pairs, gzBytes: data.gzBytes, fastqBytes: data.rawBytes, gzipMembersPerMate: data.copies, readLength: 150 },
  readsPerShard,
  note: 'seconds are wall time of the whole stage (genolake: shardReads in a child process, excluding node start-up; peer: the bash pipeline). Best of --repeat. cpuSeconds = user+sys of the process tree. The machine is shared, so figures vary between runs.',
  summary,
  runs,
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'shard.json'), `${JSON.stringify(result, null, 2)}\n`);
process.stderr.write(`${JSON.stringify(summary, null, 2)}\n`);
if (!summary.peakRssUnderLimit) {
  process.stderr.write(`peak RSS ${peakRss.toFixed(0)} MB exceeds ${RSS_LIMIT_MB} MB\n`);
  process.exit(1);
}
