#!/usr/bin/env node
// `npm run bench [-- name ...]`: builds, then runs benchmarks/<name>.mjs one after the other
// (never in parallel: they compare against a peer on the same cores). Each writes
// benchmarks/results/<name>.json; this prints where.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const all = readdirSync(here).filter((f) => f.endsWith('.mjs')).map((f) => f.replace(/\.mjs$/, '')).sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')} (have: ${all.join(', ')})\n`);
  process.exit(2);
}
const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
let failed = 0;
for (const name of wanted.length ? wanted : all) {
  process.stderr.write(`\n== benchmark ${name}\n`);
  const r = spawnSync(process.execPath, [join(here, `${name}.mjs`)], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`benchmark ${name} failed (exit ${r.status})\n`);
  } else process.stderr.write(`results: benchmarks/results/${name}.json\n`);
}
process.exit(failed ? 1 : 0);
