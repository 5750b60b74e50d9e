#!/usr/bin/env node
// BAM side benchmark: sort + index (and sort + markdup + index + qc) of ~2M records,
// genolake (dist/, in a child process) vs Debian samtools in the same run.
//
//   node benchmarks/bam.mjs [--records N] [--mem MB] [--keep]
//
// Input: a synthetic name-grouped, unsorted BAM as an aligner writes it (150 bp pairs
// on a random 30 Mb genome, insert 400 ± 40, 5% duplicate pairs, 2% unmapped pairs),
// written once with genolake's own writer and read by both sides.
// Peer: `samtools sort -@2 -m <mem/2>M` + `samtools index` (and, for the markdup variant,
// `samtools fixmate -m -@2 | samtools sort -@2 | samtools markdup -@2` + `samtools index`).
// Both run under /usr/bin/time (wall seconds, max RSS). Writes benchmarks/results/bam.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const dist = (p) => pathToFileURL(join(root, 'dist', 'src', 'formats', p)).href;

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};

if (args[0] === '--child') {
  // child: genolake side, timed by the parent
  const [, mode, input, out, memMB] = args;
  const { BamReader } = await import(dist('bam.js'));
  const { sortToBam } = await import(dist('bam-sort.js'));
  const t0 = performance.now();
  const reader = await BamReader.open(input);
  const res = await sortToBam(reader.header, reader.batches(), out, {
    memoryBytes: Number(memMB) * 1024 * 1024,
    tmpDir: dirname(out),
    threads: 4,
    index: true,
    qc: mode === 'markdup',
    markDuplicates: mode === 'markdup',
    qcPath: mode === 'markdup' ? `${out}.qc.json` : undefined,
  });
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ seconds, records: res.records, spills: res.spills, markdup: res.markdup ?? null }) + '\n');
  process.exit(0);
}

const nRecords = Number(opt('--records', 2_000_000));
const memMB = Number(opt('--mem', 768));
const keep = args.includes('--keep');
const work = mkdtempSync(join(os.tmpdir(), 'genolake-bench-bam-'));

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function makeInput(path) {
  const { BamWriter, makeHeader } = await import(dist('bam.js'));
  const { parseCigar } = await import(dist('sam-record.js'));
  const rnd = rng(42);
  const refs = [
    { name: 'chr1', length: 14_000_000 },
    { name: 'chr2', length: 10_000_000 },
    { name: 'chr3', length: 6_000_000 },
  ];
  const genome = refs.map((r) => {
    const b = Buffer.allocUnsafe(r.length);
    for (let i = 0; i < r.length; i++) b[i] = 'ACGT'.charCodeAt(Math.floor(rnd() * 4));
    return b.toString('latin1');
  });
  const quals = Array.from({ length: 64 }, () => Uint8Array.from({ length: 150 }, (_, i) => Math.max(2, Math.min(41, Math.round(38 - i / 20 - rnd() * 12)))));
  const header = makeHeader(refs, { extraLines: ['@RG\tID:rg1\tSM:bench\tLB:lib1', '@PG\tID:bench\tPN:genolake-bench'] });
  const w = await BamWriter.toFile(path, header, { level: 1, threads: 4 });
  const cig = parseCigar('150M');
  const L = 150;
  let n = 0;
  let pairNo = 0;
  let prev = null;
  while (n < nRecords) {
    const name = `bench:${pairNo++}`;
    let tid;
    let p1;
    let ins;
    if (prev && rnd() < 0.05) ({ tid, p1, ins } = prev);
    else {
      const x = rnd() * 30_000_000;
      tid = x < 14e6 ? 0 : x < 24e6 ? 1 : 2;
      ins = Math.round(400 + (rnd() + rnd() + rnd() - 1.5) * 80);
      p1 = Math.floor(rnd() * (refs[tid].length - ins - 1));
    }
    prev = { tid, p1, ins };
    const unmapped = rnd() < 0.02;
    const p2 = p1 + ins - L;
    const s1 = genome[tid].slice(p1, p1 + L);
    const s2 = genome[tid].slice(p2, p2 + L);
    const q1 = quals[Math.floor(rnd() * 64)];
    const q2 = quals[Math.floor(rnd() * 64)];
    const tags = (mate) => [
      { tag: 'NM', type: 'i', value: 0 },
      { tag: 'MD', type: 'Z', value: '150' },
      ...(mate ? [{ tag: 'MC', type: 'Z', value: '150M' }] : []),
      { tag: 'AS', type: 'i', value: 150 },
      { tag: 'XS', type: 'i', value: 0 },
      { tag: 'RG', type: 'Z', value: 'rg1' },
    ];
    if (unmapped) {
      const none = new Uint32Array(0);
      w.write({ qname: name, flag: 77, refId: -1, pos: -1, mapq: 0, cigar: none, nextRefId: -1, nextPos: -1, tlen: 0, seq: s1, qual: q1, tags: [{ tag: 'AS', type: 'i', value: 0 }, { tag: 'RG', type: 'Z', value: 'rg1' }] });
      w.write({ qname: name, flag: 141, refId: -1, pos: -1, mapq: 0, cigar: none, nextRefId: -1, nextPos: -1, tlen: 0, seq: s2, qual: q2, tags: [{ tag: 'AS', type: 'i', value: 0 }, { tag: 'RG', type: 'Z', value: 'rg1' }] });
    } else {
      w.write({ qname: name, flag: 99, refId: tid, pos: p1, mapq: 60, cigar: cig, nextRefId: tid, nextPos: p2, tlen: ins, seq: s1, qual: q1, tags: tags(true) });
      w.write({ qname: name, flag: 147, refId: tid, pos: p2, mapq: 60, cigar: cig, nextRefId: tid, nextPos: p1, tlen: -ins, seq: s2, qual: q2, tags: tags(true) });
    }
    n += 2;
    if (w.needsDrain) await w.drain();
  }
  await w.close();
  return n;
}

function timed(cmd, argv, opts = {}) {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M %U %S', cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  const line = r.stderr.trim().split('\n').filter((l) => l.startsWith('TIME ')).pop();
  const [, wall, rssKB, user, sys] = line.split(' ');
  return { wallSeconds: Number(wall), maxRssMB: Number(rssKB) / 1024, cpuSeconds: Number(user) + Number(sys), stdout: r.stdout };
}

function viewDigest(bam) {
  const r = spawnSync('bash', ['-c', `samtools view ${bam} | md5sum`], { encoding: 'utf8' });
  return r.stdout.split(' ')[0];
}

const sh = (c) => spawnSync('bash', ['-c', c], { encoding: 'utf8' }).stdout.trim();

const loadBefore = os.loadavg();
process.stderr.write(`generating ${nRecords} records in ${work}\n`);
const input = join(work, 'input.bam');
const records = await makeInput(input);
const inputBytes = statSync(input).size;

const results = {};
for (const mode of ['sort', 'markdup']) {
  process.stderr.write(`[${mode}] genolake\n`);
  const gOut = join(work, `genolake-${mode}.bam`);
  const g = timed(process.execPath, [fileURLToPath(import.meta.url), '--child', mode, input, gOut, String(memMB)]);
  const gInfo = JSON.parse(g.stdout.trim().split('\n').pop());
  process.stderr.write(`[${mode}] samtools\n`);
  const sOut = join(work, `samtools-${mode}.bam`);
  const half = Math.floor(memMB / 2);
  const script =
    mode === 'sort'
      ? `samtools sort -@2 -m ${half}M -T ${work}/st -o ${sOut} ${input} && samtools index ${sOut}`
      : `samtools fixmate -@2 -m ${input} - | samtools sort -@2 -m ${half}M -T ${work}/st - | samtools markdup -@2 - ${sOut} && samtools index ${sOut}`;
  const s = timed('bash', ['-c', script]);
  const same = mode === 'sort' ? viewDigest(gOut) === viewDigest(sOut) : null;
  const dups = (bam) => Number(sh(`samtools view -c -f 1024 ${bam}`));
  const check = sh(`samtools quickcheck ${gOut} && echo ok`);
  results[mode] = {
    genolake: {
      wallSeconds: g.wallSeconds,
      pipelineSeconds: gInfo.seconds,
      cpuSeconds: g.cpuSeconds,
      maxRssMB: g.maxRssMB,
      recordsPerSecond: records / g.wallSeconds,
      spills: gInfo.spills,
      bamBytes: statSync(gOut).size,
      duplicates: mode === 'markdup' ? dups(gOut) : undefined,
      quickcheck: check === 'ok',
    },
    samtools: {
      wallSeconds: s.wallSeconds,
      cpuSeconds: s.cpuSeconds,
      maxRssMB: s.maxRssMB,
      recordsPerSecond: records / s.wallSeconds,
      bamBytes: statSync(sOut).size,
      duplicates: mode === 'markdup' ? dups(sOut) : undefined,
    },
    speedVsSamtools: s.wallSeconds / g.wallSeconds,
    identicalRecords: same,
  };
  process.stderr.write(JSON.stringify(results[mode]) + '\n');
}

const out = {
  benchmark: 'bam',
  date: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memGB: os.totalmem() / 2 ** 30, loadavgBefore: loadBefore, loadavgAfter: os.loadavg() },
  node: process.version,
  samtools: sh('samtools --version | head -1'),
  input: { records, bytes: inputBytes, readLength: 150, genomeMb: 30, order: 'name-grouped, unsorted (aligner order)' },
  memoryBudgetMB: memMB,
  note:
    'wall seconds and max RSS from /usr/bin/time of the whole process (genolake: node child incl. start-up; peer: bash pipeline). ' +
    'sort = sort + BAI; markdup = mate tags + sort + duplicate marking + BAI (+ qc.json for genolake). genolake BGZF level 6 (zlib), samtools default level. ' +
    'The machine is shared with other jobs, so figures vary between runs.',
  results,
};
mkdirSync(join(here, 'results'), { recursive: true });
writeFileSync(join(here, 'results', 'bam.json'), JSON.stringify(out, null, 2) + '\n');
process.stderr.write(JSON.stringify(out, null, 2) + '\n');
if (!keep) rmSync(work, { recursive: true, force: true });
