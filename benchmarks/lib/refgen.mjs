/**
 * A simple repeat-rich random genome for aligner tests and benchmarks (deterministic):
 * random sequence with interspersed repeat families (copies 2-15% diverged), tandem
 * repeats (period 1-60), segmental duplications (1-3% diverged) and a few N runs.
 * Writes FASTA with 60 bases per line.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';

function rng(seed) {
  let s = (seed >>> 0) || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const B = [65, 67, 71, 84];

function mutate(src, div, r) {
  const out = [];
  for (let i = 0; i < src.length; i++) {
    const x = r();
    if (x < div * 0.8) out.push(B[(B.indexOf(src[i]) + 1 + Math.floor(r() * 3)) % 4]);
    else if (x < div * 0.9) { /* deletion */ }
    else if (x < div) out.push(src[i], B[Math.floor(r() * 4)]);
    else out.push(src[i]);
  }
  return Uint8Array.from(out);
}

/** Returns the contigs as byte arrays (ASCII). */
export function makeGenome({ length = 1_000_000, seed = 7, contigs = 3 } = {}) {
  const r = rng(seed);
  const rand = (n) => Math.floor(r() * n);
  const lens = [];
  let left = length;
  for (let i = 0; i < contigs; i++) {
    const l = i === contigs - 1 ? left : Math.floor(length / contigs * (0.7 + 0.6 * r()));
    lens.push(l); left -= l;
  }
  const seqs = lens.map((l) => { const s = new Uint8Array(l); for (let i = 0; i < l; i++) s[i] = B[rand(4)]; return s; });
  const paste = (ci, at, src) => { const s = seqs[ci]; for (let i = 0; i < src.length && at + i < s.length; i++) s[at + i] = src[i]; };
  // interspersed repeat families: ~12% of the genome
  const nfam = 8;
  for (let f = 0; f < nfam; f++) {
    const flen = 300 + rand(2700);
    const cons = new Uint8Array(flen); for (let i = 0; i < flen; i++) cons[i] = B[rand(4)];
    const copies = Math.floor((length * 0.12) / nfam / flen);
    for (let c = 0; c < copies; c++) {
      const ci = rand(contigs); const at = rand(seqs[ci].length);
      const div = 0.02 + r() * 0.13;
      let cp = mutate(cons, div, r);
      if (r() < 0.5) cp = Uint8Array.from(cp).reverse().map((b) => B[3 - B.indexOf(b)]);
      paste(ci, at, cp);
    }
  }
  // tandem repeats: ~3%
  let tr = 0;
  while (tr < length * 0.03) {
    const per = 1 + rand(60); const unit = new Uint8Array(per); for (let i = 0; i < per; i++) unit[i] = B[rand(4)];
    const tl = 100 + rand(1500); const t = new Uint8Array(tl); for (let i = 0; i < tl; i++) t[i] = unit[i % per];
    const ci = rand(contigs); paste(ci, rand(seqs[ci].length), mutate(t, 0.01, r)); tr += tl;
  }
  // segmental duplications: ~4%
  let sd = 0;
  while (sd < length * 0.04) {
    const dl = 5000 + rand(15000); const ci = rand(contigs), cj = rand(contigs);
    if (seqs[ci].length <= dl) break;
    const from = rand(seqs[ci].length - dl);
    paste(cj, rand(seqs[cj].length), mutate(seqs[ci].slice(from, from + dl), 0.01 + r() * 0.02, r)); sd += dl;
  }
  // a few N runs
  for (let i = 0; i < contigs; i++) { const at = rand(seqs[i].length - 200); seqs[i].fill(78, at, at + 50 + rand(100)); }
  return seqs.map((s, i) => ({ name: `chr${i + 1}`, seq: s }));
}

export async function writeGenome(path, opts = {}) {
  const g = makeGenome(opts);
  const ws = createWriteStream(path);
  for (const c of g) {
    let chunk = `>${c.name} simulated\n`;
    for (let i = 0; i < c.seq.length; i += 60) {
      chunk += Buffer.from(c.seq.subarray(i, i + 60)).toString('latin1') + '\n';
      if (chunk.length > 1 << 16) { if (!ws.write(chunk)) await once(ws, 'drain'); chunk = ''; }
    }
    ws.write(chunk);
  }
  await new Promise((res, rej) => ws.end((e) => (e ? rej(e) : res())));
  return g.map((c) => ({ name: c.name, length: c.seq.length }));
}
