#!/usr/bin/env node
// Ingest benchmark: a drop archive (tar of two FASTQ.gz mates + manifest, and the same as
// .tar.gz) ingested into a local lake by genolake (dist/, child process under
// /usr/bin/time), against the peer doing the same work with Debian tools in the same run:
// `sha256sum archive && tar -xf archive -C dir && cp archive dir/` (hash, unpack, keep original).
//
//   node benchmarks/ingest.mjs [--mb 200] [--keep]
//
// Writes benchmarks/results/ingest.json (wall seconds, MB/s of archive, max RSS).
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createGzip, constants as zc } from 'node:zlib';
import { once } from 'node:events';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};

if (args[0] === '--child') {
  const { LocalLake } = await import(pathToFileURL(join(root, 'dist/src/lake/local.js')).href);
  const { ingestArchive } = await import(pathToFileURL(join(root, 'dist/src/stages/ingest.js')).href);
  const t0 = performance.now();
  const r = await ingestArchive(new LocalLake(args[2]), args[1]);
  process.stdout.write(JSON.stringify({ seconds: (performance.now() - t0) / 1000, runId: r.runId, duplicate: r.duplicate }) + '\n');
  process.exit(0);
}

const mb = Number(opt('--mb', '200'));
const work = mkdtempSync(join(os.tmpdir(), 'genolake-bench-ingest-'));

/** Writes a gzip FASTQ of roughly `bytes` compressed size; deterministic. */
async function writeFastqGz(path, bytes, mate) {
  const gz = createGzip({ level: 1 });
  const out = createWriteStream(path);
  gz.pipe(out);
  let x = 12345 + mate;
  const bases = 'ACGT';
  const qual = 'FFFFFFF:FF,FFFFF:FFFFF';
  let i = 0;
  while (out.bytesWritten < bytes) {
    let chunk = '';
    for (let k = 0; k < 2000; k++, i++) {
      let seq = '';
      let q = '';
      for (let j = 0; j < 150; j++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        seq += bases[(x >>> 16) & 3];
        q += qual[(x >>> 20) % qual.length];
      }
      chunk += `@sim:${i}/${mate}\n${seq}\n+\n${q}\n`;
    }
    if (!gz.write(chunk)) await once(gz, 'drain');
    await new Promise((r) => setImmediate(r));
  }
  gz.end();
  await once(out, 'finish');
  return i;
}

const dropDir = join(work, 'drop');
mkdirSync(dropDir);
await writeFastqGz(join(dropDir, 'S_R1.fastq.gz'), (mb * 1024 * 1024) / 2, 1);
await writeFastqGz(join(dropDir, 'S_R2.fastq.gz'), (mb * 1024 * 1024) / 2, 2);
writeFileSync(
  join(dropDir, 'manifest.json'),
  JSON.stringify({
    schema_version: 1, patient_id: 'B1', sample_id: 'B1S', provider: { provider_id: 'bench', patient_id: 'b' },
    reference: 'sim-demo', platform: 'ILLUMINA', read_length: 150, paired: true,
    read_groups: [{ id: 'rg1', r1: 'S_R1.fastq.gz', r2: 'S_R2.fastq.gz' }],
  }),
);
const sh = (cmd) => {
  const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  return r;
};
sh(`cd ${dropDir} && tar -cf ${work}/drop.tar manifest.json S_R1.fastq.gz S_R2.fastq.gz && gzip -1 -c ${work}/drop.tar > ${work}/drop.tar.gz`);

/** Runs `cmd` under /usr/bin/time -v: wall seconds and max RSS (MB). */
function timed(cmd) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', 'bash', '-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
  const [wall, rss] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { wall, rssMB: Math.round(rss / 1024), stdout: r.stdout };
}

const results = { benchmark: 'ingest', machine: { cpus: os.cpus().length, node: process.version }, cases: [] };
for (const name of ['drop.tar', 'drop.tar.gz']) {
  const archive = join(work, name);
  const size = statSync(archive).size;
  const lake = join(work, `lake-${name}`);
  const g = timed(`node ${JSON.stringify(fileURLToPath(import.meta.url))} --child ${archive} ${lake}`);
  const out = join(work, `peer-${name}`);
  mkdirSync(out);
  const p = timed(`sha256sum ${archive} >/dev/null && tar -xf ${archive} -C ${out} && cp ${archive} ${out}/`);
  const again = timed(`node ${JSON.stringify(fileURLToPath(import.meta.url))} --child ${archive} ${lake}`);
  const row = {
    archive: name,
    archiveMB: +(size / 1048576).toFixed(1),
    genolake: { seconds: g.wall, MBps: +(size / 1048576 / g.wall).toFixed(1), maxRssMB: g.rssMB },
    peer: { seconds: p.wall, MBps: +(size / 1048576 / p.wall).toFixed(1), maxRssMB: p.rssMB },
    duplicateDrop: { seconds: again.wall, duplicate: JSON.parse(again.stdout).duplicate },
  };
  results.cases.push(row);
  console.log(JSON.stringify(row));
}
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'ingest.json'), `${JSON.stringify(results, null, 2)}\n`);
if (!args.includes('--keep')) rmSync(work, { recursive: true, force: true });
