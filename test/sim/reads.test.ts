import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildReference, writeReference, type SimReference } from '../../src/sim/reference.js';
import { COMPLEMENT } from '../../src/sim/seq.js';
import { buildHaplotypes, simulateVariants, truthVcf } from '../../src/sim/variants.js';
import { bgzf } from '../../src/sim/io.js';
import { writeFile } from 'node:fs/promises';
import { calibrateQualities, simulateReads } from '../../src/sim/reads.js';

function run(cmd: string, args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Fq {
  name: string;
  seq: string;
  qual: string;
}

async function readFq(path: string): Promise<Fq[]> {
  const lines = gunzipSync(await readFile(path)).toString('latin1').split('\n');
  const out: Fq[] = [];
  for (let i = 0; i + 3 < lines.length; i += 4) {
    expect(lines[i][0]).toBe('@');
    expect(lines[i + 2]).toBe('+');
    out.push({ name: lines[i].slice(1), seq: lines[i + 1], qual: lines[i + 3] });
  }
  return out;
}

const PROB = Array.from({ length: 128 }, (_, c) => 10 ** (-(c - 33) / 10));
const NAME = /^(\S+)_(\d+)_(\d+)_(\d+):(\d+):(\d+)_(\d+):(\d+):(\d+)_([0-9a-f]+)\/([12])$/;

describe('read simulator', () => {
  let dir: string;
  let ref: SimReference;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-sim-reads-'));
    ref = buildReference({ seed: 11, length: 200_000 });
    await writeReference(ref, dir);
  });
  afterAll(async () => {
    if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
  });

  it('calibrates the quality profile to the requested mean error', () => {
    for (const rate of [0.001, 0.005, 0.02]) {
      const { table } = calibrateQualities(150, rate);
      let s = 0;
      for (const row of table) for (const q of row) s += 10 ** (-q / 10);
      expect(s / (150 * 8)).toBeGreaterThan(rate * 0.9);
      expect(s / (150 * 8)).toBeLessThan(rate * 1.1);
      // qualities fall along the read
      const mean = (row: Uint8Array) => row.reduce((a, b) => a + b, 0) / row.length;
      expect(mean(table[10])).toBeGreaterThan(mean(table[149]));
    }
  });

  it('writes wgsim-style names, honest qualities and the configured error rate', async () => {
    // no variants: every mismatch against the reference is a sequencing error
    const haps = buildHaplotypes(ref, []);
    const files = { r1: join(dir, 'e_R1.fastq.gz'), r2: join(dir, 'e_R2.fastq.gz') };
    const rate = 0.01;
    const stats = await simulateReads(haps, [files], { seed: 3, pairs: 3000, errorRate: rate, readLength: 100 });
    const [r1, r2] = [await readFq(files.r1), await readFq(files.r2)];
    expect(r1.length).toBe(3000);
    expect(r2.length).toBe(3000);
    let mismatches = 0;
    let bases = 0;
    let expected = 0;
    let forwardR1 = 0;
    const bandExpected = [0, 0, 0];
    const bandSeen = [0, 0, 0];
    let checkedBands = 0;
    const inserts: number[] = [];
    const seqOf = new Map(ref.contigs.map((c) => [c.name, c.seq]));
    const slice = (chrom: string, start0: number, len: number, rc: boolean): string => {
      const s = Buffer.from(seqOf.get(chrom)!.subarray(start0, start0 + len));
      if (rc) {
        s.reverse();
        for (let i = 0; i < s.length; i++) s[i] = COMPLEMENT[s[i]];
      }
      return s.toString('latin1');
    };
    const diff = (a: string, b: string) => {
      let n = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
      return n;
    };
    r1.forEach((a, i) => {
      const b = r2[i];
      const m = NAME.exec(a.name)!;
      expect(m, a.name).not.toBeNull();
      expect(b.name).toBe(a.name.replace(/\/1$/, '/2'));
      expect(a.seq).not.toContain('N');
      const [chrom, left, right] = [m[1], Number(m[2]), Number(m[3])];
      inserts.push(right - left + 1);
      const fwd = slice(chrom, left - 1, 100, false);
      const rev = slice(chrom, right - 100, 100, true);
      // read 1 forward at the left end and read 2 reverse at the right end, or the other way round
      const d1 = diff(a.seq, fwd) + diff(b.seq, rev);
      const d2 = diff(a.seq, rev) + diff(b.seq, fwd);
      const [e1, e2] = d1 <= d2 ? [diff(a.seq, fwd), diff(b.seq, rev)] : [diff(a.seq, rev), diff(b.seq, fwd)];
      if (d1 <= d2) forwardR1++;
      expect([e1, e2], a.name).toEqual([Number(m[4]), Number(m[7])]);
      mismatches += e1 + e2;
      bases += 200;
      for (const qs of [a.qual, b.qual]) for (let k = 0; k < qs.length; k++) expected += PROB[qs.charCodeAt(k)];
      // per quality band: errors seen vs errors the qualities promise
      const pairs: [Fq, string][] = d1 <= d2 ? [[a, fwd], [b, rev]] : [[a, rev], [b, fwd]];
      for (const [read, truth] of pairs) {
        for (let k = 0; k < read.seq.length; k++) {
          const q = read.qual.charCodeAt(k) - 33;
          const band = q < 20 ? 0 : q < 30 ? 1 : 2;
          bandExpected[band] += PROB[q + 33];
          if (read.seq[k] !== truth[k]) bandSeen[band]++;
        }
      }
    });
    for (let band = 0; band < 3; band++) {
      if (bandExpected[band] < 150) continue;
      checkedBands++;
      expect(bandSeen[band] / bandExpected[band], `quality band ${band}`).toBeGreaterThan(0.8);
      expect(bandSeen[band] / bandExpected[band], `quality band ${band}`).toBeLessThan(1.25);
    }
    expect(checkedBands).toBeGreaterThanOrEqual(2);
    const observed = mismatches / bases;
    expect(observed).toBeGreaterThan(rate * 0.9);
    expect(observed).toBeLessThan(rate * 1.1);
    expect(observed / (expected / bases)).toBeGreaterThan(0.9);
    expect(observed / (expected / bases)).toBeLessThan(1.1);
    expect(stats.errors).toBe(mismatches);
    expect(forwardR1 / 3000).toBeGreaterThan(0.45);
    expect(forwardR1 / 3000).toBeLessThan(0.55);
    const mean = inserts.reduce((s, x) => s + x, 0) / inserts.length;
    const sd = Math.sqrt(inserts.reduce((s, x) => s + (x - mean) ** 2, 0) / inserts.length);
    expect(Math.abs(mean - 350)).toBeLessThan(5);
    expect(Math.abs(sd - 50)).toBeLessThan(5);
  });

  it('is deterministic for a seed', async () => {
    const haps = buildHaplotypes(ref, simulateVariants(ref, { seed: 1 }));
    const a = { r1: join(dir, 'a_R1.fastq.gz'), r2: join(dir, 'a_R2.fastq.gz') };
    const b = { r1: join(dir, 'b_R1.fastq.gz'), r2: join(dir, 'b_R2.fastq.gz') };
    const c = { r1: join(dir, 'c_R1.fastq.gz'), r2: join(dir, 'c_R2.fastq.gz') };
    await simulateReads(haps, [a], { seed: 8, pairs: 500 });
    await simulateReads(haps, [b], { seed: 8, pairs: 500 });
    await simulateReads(haps, [c], { seed: 9, pairs: 500 });
    expect(Buffer.compare(await readFile(a.r1), await readFile(b.r1))).toBe(0);
    expect(Buffer.compare(await readFile(a.r2), await readFile(b.r2))).toBe(0);
    expect(Buffer.compare(await readFile(a.r1), await readFile(c.r1))).not.toBe(0);
  });

  it('maps with bwa mem (≥ 99 % mapped) and wgsim_eval.pl alneval scores the names', async () => {
    const variants = simulateVariants(ref, { seed: 21 });
    const haps = buildHaplotypes(ref, variants);
    const groups = [
      { r1: join(dir, 'L1_R1.fastq.gz'), r2: join(dir, 'L1_R2.fastq.gz') },
      { r1: join(dir, 'L2_R1.fastq.gz'), r2: join(dir, 'L2_R2.fastq.gz') },
    ];
    const stats = await simulateReads(haps, groups, { seed: 4, coverage: 8 });
    expect(stats.pairs).toBe(Math.round((8 * 200_000) / 300));
    expect(stats.pairsPerGroup.reduce((s, x) => s + x, 0)).toBe(stats.pairs);
    expect(run('bwa', ['index', 'ref.fa'], dir).code).toBe(0);
    const sam = run('bwa', ['mem', '-t', '2', '-o', 'L1.sam', 'ref.fa', 'L1_R1.fastq.gz', 'L1_R2.fastq.gz'], dir);
    expect(sam.code, sam.stderr).toBe(0);
    const flagstat = run('samtools', ['flagstat', '-O', 'tsv', 'L1.sam'], dir).stdout;
    const pct = Number(/^([\d.]+)%\t[^\t]+\tprimary mapped %/m.exec(flagstat)![1]);
    expect(pct).toBeGreaterThanOrEqual(99);
    // both strands: about half of read 1s are reverse
    const recs = (await readFile(join(dir, 'L1.sam'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('@')).map((l) => l.split('\t'));
    const read1 = recs.filter((t) => (Number(t[1]) & 0x40) && !(Number(t[1]) & 0x900));
    const rev = read1.filter((t) => Number(t[1]) & 0x10).length / read1.length;
    expect(rev).toBeGreaterThan(0.45);
    expect(rev).toBeLessThan(0.55);
    const ev = run('wgsim_eval.pl', ['alneval', 'L1.sam'], dir);
    expect(ev.code, ev.stderr).toBe(0);
    const rows = ev.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
    const last = rows[rows.length - 1];
    // columns: mapq bin, wrong, '/', count in bin, cumulative count, cumulative wrong fraction
    expect(last.length).toBe(6);
    expect(Number(last[4])).toBe(read1.length * 2 - recs.filter((t) => Number(t[1]) & 0x4 && !(Number(t[1]) & 0x900)).length);
    expect(Number(last[5])).toBeLessThan(0.01);
  });

  it('reads carry the truth: bcftools calls on a bwa alignment recover the truth alleles', async () => {
    const sub = join(dir, 'calls');
    const small = buildReference({ seed: 4, length: 100_000 });
    await writeReference(small, sub);
    const variants = simulateVariants(small, { seed: 5, rate: 0.002 });
    await writeFile(join(sub, 'truth.vcf.gz'), bgzf(truthVcf(small, variants, 'S1')));
    await simulateReads(buildHaplotypes(small, variants), [{ r1: join(sub, 'R1.fq.gz'), r2: join(sub, 'R2.fq.gz') }], { seed: 6, coverage: 25 });
    const sh = (script: string) => {
      const r = run('sh', ['-c', `set -e\n${script}`], sub);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    sh(`bwa index ref.fa 2>/dev/null
bwa mem -t 2 ref.fa R1.fq.gz R2.fq.gz 2>/dev/null | samtools sort -o a.bam - 2>/dev/null
samtools index a.bam
bcftools mpileup -f ref.fa a.bam 2>/dev/null | bcftools call -mv -Oz -o calls.vcf.gz 2>/dev/null
for f in truth calls; do bcftools norm -a -f ref.fa $f.vcf.gz -Oz -o $f.atom.vcf.gz 2>/dev/null; tabix -p vcf $f.atom.vcf.gz; done
bcftools isec -p isec truth.atom.vcf.gz calls.atom.vcf.gz`);
    const count = (f: string) => sh(`grep -vc '^#' isec/${f} || true`).trim();
    const [missed, extra, shared] = [Number(count('0000.vcf')), Number(count('0001.vcf')), Number(count('0002.vcf'))];
    // MNPs are compared base by base (atomised); a few alleles at contig ends or in
    // segmental duplications may be missed
    expect(shared / (shared + missed)).toBeGreaterThan(0.95);
    expect(extra / (shared + extra)).toBeLessThan(0.02);
  });
});
