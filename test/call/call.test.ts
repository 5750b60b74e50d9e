/**
 * Variant calling end to end on a simulated sample (150 kb genome with repeats, 25×
 * 2×150 reads from simulateCohort, aligned with Debian's bwa mem + samtools sort), with
 * Debian's bcftools and tabix as black-box checks of the VCF and the .tbi.
 * Needs the build (npm run build) for the pool test: workers run from dist/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callVariants, readBamHeader } from '../../src/call/call.js';
import { compareCalls, readVcfLines } from '../../src/call/compare.js';
import { planRegions } from '../../src/call/regions.js';
import { simulateCohort } from '../../src/sim/index.js';
import { createPool } from '../../src/engine/pool.js';
import { LocalLake } from '../../src/lake/local.js';
import { S3Lake } from '../../src/lake/s3.js';
import type { Lake } from '../../src/lake/types.js';
import { callSample } from '../../src/stages/call.js';
import { startS3Server } from '../helpers/s3server.js';

const dir = mkdtempSync(join(tmpdir(), 'gl-call-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let ref = '';
let bam = '';
let truth = '';
let refs: { name: string; length: number }[] = [];

function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd ?? dir, encoding: 'utf8', maxBuffer: 1 << 28, stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(async () => {
  const sim = await simulateCohort({ outDir: join(dir, 'sim'), seed: 11, patients: 1, coverage: 25, genomeLength: 150_000, lanes: 1 });
  ref = join(dir, 'sim', sim.reference.fasta);
  truth = join(dir, 'sim', sim.patients[0].truth_vcf);
  mkdirSync(join(dir, 'fq'));
  sh('tar', ['xzf', join(dir, 'sim', sim.patients[0].archive!), '-C', join(dir, 'fq')]);
  const rg = sim.patients[0].read_groups[0];
  sh('bwa', ['index', ref]);
  const sam = join(dir, 'aln.sam');
  writeFileSync(sam, sh('bwa', ['mem', '-t', '2', '-R', '@RG\\tID:L1\\tSM:S1', ref, join(dir, 'fq', rg.r1), join(dir, 'fq', rg.r2)]));
  bam = join(dir, 's.bam');
  sh('samtools', ['sort', '-o', bam, sam]);
  sh('samtools', ['index', bam]);
  refs = (await readBamHeader(bam)).refs;
}, 120_000);

describe('genolake call', () => {
  let out = '';
  beforeAll(async () => {
    out = join(dir, 'calls.vcf.gz');
    await callVariants({ reference: ref, bams: [bam], out, commandLine: 'genolake call (test)' });
  }, 120_000);

  it('writes a VCF 4.3 that bcftools view reads without warnings', () => {
    const r = spawnSync('bcftools', ['view', out], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^##fileformat=VCFv4\.3\n/);
    for (const c of refs) expect(r.stdout).toContain(`##contig=<ID=${c.name},length=${c.length}>`);
    expect(r.stdout).toContain('##genolake_callCommand=genolake call (test)');
    expect(r.stdout).toMatch(/\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n/);
    expect(readVcfLines(out).length).toBeGreaterThan(100);
  });

  it('is left-aligned and normalised: bcftools norm -c e -f ref changes nothing', () => {
    const r = spawnSync('bcftools', ['norm', '-c', 'e', '-f', ref, out], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(r.status).toBe(0);
    const n = readVcfLines(out).length;
    // e.g. "Lines   total/split/realigned/skipped:\t167/0/0/0": nothing split, realigned or skipped
    const m = /total\/split\/(?:joined\/)?realigned\/skipped:\s*(\d+)\/0\/(?:0\/)?0\/0$/.exec(r.stderr.trim());
    expect(m?.[1], r.stderr).toBe(String(n));
    const normed = r.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(normed).toEqual(readVcfLines(out));
  });

  it('answers tabix region queries on its own .tbi with the records it wrote', () => {
    expect(sh('tabix', ['-l', out]).split('\n').filter(Boolean)).toEqual(refs.map((r) => r.name).filter((n) => readVcfLines(out).some((l) => l.startsWith(`${n}\t`))));
    const lines = readVcfLines(out);
    for (const [c, s, e] of [
      [refs[0].name, 1, 20_000],
      [refs[0].name, 15_000, 40_000],
      [refs[1].name, 1, refs[1].length],
      [refs[refs.length - 1].name, 5_000, 6_000],
    ] as [string, number, number][]) {
      const want = lines.filter((l) => {
        const f = l.split('\t');
        return f[0] === c && Number(f[1]) <= e && Number(f[1]) + f[3].length - 1 >= s;
      });
      expect(sh('tabix', [out, `${c}:${s}-${e}`]).split('\n').filter(Boolean)).toEqual(want);
    }
  });

  it('the WebAssembly evidence and genotype kernels equal the JS references, array for array, and so does the VCF', async () => {
    const { buildPileup, readRegionRecords } = await import('../../src/call/pileup.js');
    const { decodeBai } = await import('../../src/formats/bai.js');
    const { IndexedFasta } = await import('../../src/annotate/fasta.js');
    const bai = decodeBai(readFileSync(`${bam}.bai`), `${bam}.bai`);
    const fa = await IndexedFasta.open(ref);
    try {
      let bases = 0;
      for (const [refId, r] of refs.entries()) {
        const start = Math.min(1000, r.length >> 1);
        const end = r.length;
        const records = await readRegionRecords(bam, bai, refId, Math.max(0, start - 500), end + 500);
        const refOff = Math.max(0, start - 500);
        const refSeq = fa.fetch(r.name, refOff, end + 500);
        const w = buildPileup(records, start, end, refSeq, refOff, { baseKernel: 'wasm' }, bam);
        const j = buildPileup(records, start, end, refSeq, refOff, { baseKernel: 'js' }, bam);
        for (const k of ['count', 'forward', 's1', 's2', 's3', 'depth', 'mq2'] as const) {
          expect(w[k].length, k).toBe(j[k].length);
          expect(Buffer.from(w[k].buffer, w[k].byteOffset, w[k].byteLength).equals(Buffer.from(j[k].buffer, j[k].byteOffset, j[k].byteLength)), `${r.name} ${k}`).toBe(true);
        }
        expect([...w.indels.keys()]).toEqual([...j.indels.keys()]);
        for (let x = 0; x < j.count.length; x++) bases += j.count[x];
      }
      expect(bases).toBeGreaterThan(100_000);
    } finally {
      fa.close();
    }
    const viaJs = join(dir, 'js.vcf.gz');
    await callVariants({ reference: ref, bams: [bam], out: viaJs, options: { baseKernel: 'js', genotypeKernel: 'js' } });
    expect(readVcfLines(viaJs)).toEqual(readVcfLines(out));
  });

  it('region-parallel on the pool equals a one-region-per-contig call, record for record', async () => {
    const par = join(dir, 'par.vcf.gz');
    const small = planRegions(refs, { threads: 2, minSize: 7_000, maxSize: 7_000 });
    expect(small.length).toBeGreaterThan(refs.length * 3);
    await callVariants({ reference: ref, bams: [bam], out: par, threads: 2, regions: small });
    const one = join(dir, 'one.vcf.gz');
    await callVariants({ reference: ref, bams: [bam], out: one, regions: refs.map((r, i) => ({ chrom: r.name, refId: i, start: 0, end: r.length })) });
    expect(readVcfLines(par)).toEqual(readVcfLines(one));
    expect(readVcfLines(one)).toEqual(readVcfLines(out));
  });

  it('finds the simulated SNVs and indels (precision / recall vs the truth VCF)', () => {
    const cmp = compareCalls(readVcfLines(truth), readVcfLines(out));
    // measured on this data: SNV 137/137 found, no false call; indels 31/32, no false call
    expect(cmp.snv.recall).toBeGreaterThanOrEqual(0.97);
    expect(cmp.snv.precision).toBeGreaterThanOrEqual(0.97);
    expect(cmp.indel.recall).toBeGreaterThanOrEqual(0.85);
    expect(cmp.indel.precision).toBeGreaterThanOrEqual(0.9);
    // peer on the same BAM (reported, and we ask for SNV F1 at least as good)
    const bc = join(dir, 'bc.vcf');
    writeFileSync(bc, execFileSync('sh', ['-c', `bcftools mpileup -f '${ref}' '${bam}' 2>/dev/null | bcftools call -mv 2>/dev/null | bcftools norm -m -any -f '${ref}' 2>/dev/null`], { encoding: 'utf8', maxBuffer: 1 << 26 }));
    const peer = compareCalls(readVcfLines(truth), readVcfLines(bc));
    console.log(JSON.stringify({ genolake: cmp, bcftools: peer }));
    expect(cmp.snv.f1).toBeGreaterThanOrEqual(peer.snv.f1 - 1e-9);
  });

  it('calls only inside the targets of a BED', async () => {
    const bed = join(dir, 't.bed');
    writeFileSync(bed, `${refs[0].name}\t10000\t30000\n${refs[1].name}\t0\t5000\n`);
    const { readBed } = await import('../../src/call/regions.js');
    const t = join(dir, 't.vcf.gz');
    await callVariants({ reference: ref, bams: [bam], out: t, targets: readBed(bed) });
    const inside = (l: string) => {
      const f = l.split('\t');
      const p = Number(f[1]) - 1;
      return (f[0] === refs[0].name && p >= 10000 && p < 30000) || (f[0] === refs[1].name && p < 5000);
    };
    const got = readVcfLines(t);
    expect(got.length).toBeGreaterThan(0);
    expect(got).toEqual(readVcfLines(out).filter(inside));
  });

  it('rejects a BAM without index, an unsorted BAM and contigs that do not match the reference', async () => {
    const noIdx = join(dir, 'noidx.bam');
    copyFileSync(bam, noIdx);
    await expect(callVariants({ reference: ref, bams: [noIdx], out: join(dir, 'x.vcf.gz') })).rejects.toMatchObject({ code: 'BAM_NO_INDEX' });
    const byName = join(dir, 'byname.bam');
    sh('samtools', ['sort', '-n', '-o', byName, bam]);
    await expect(callVariants({ reference: ref, bams: [byName], out: join(dir, 'x.vcf.gz') })).rejects.toMatchObject({ code: 'BAM_UNSORTED' });
    const other = join(dir, 'other.fa');
    writeFileSync(other, `>${refs[0].name}\n${'ACGT'.repeat(100)}\n`);
    await expect(callVariants({ reference: other, bams: [bam], out: join(dir, 'x.vcf.gz') })).rejects.toMatchObject({ code: 'CONTIG_MISMATCH' });
  });

  it('the call stage publishes calls.vcf.gz + .tbi from a BAM in a local or an S3 lake', async () => {
    const server = await startS3Server();
    const pool = createPool({ threads: 2 });
    const s3 = new S3Lake(server.config('calltest'));
    try {
      const lakes: Lake[] = [new LocalLake(join(dir, 'lake')), s3];
      for (const lake of lakes) {
        const key = 'staged/patient_id=P1/sample_id=S1/run_id=R1/alignment/sample.bam';
        await lake.put(key, readFileSync(bam));
        await lake.put(`${key}.bai`, readFileSync(`${bam}.bai`));
        const prefix = 'staged/patient_id=P1/sample_id=S1/run_id=R1/calls/';
        const res = await callSample({ bamKeys: [key], reference: ref, outPrefix: prefix }, { lake, pool });
        expect(res.vcf).toBe(`${prefix}calls.vcf.gz`);
        expect(await lake.isPublished(prefix)).toBe(true);
        const got = join(dir, `stage-${lake === s3 ? 's3' : 'local'}.vcf.gz`);
        writeFileSync(got, await lake.getBuffer(res.vcf));
        writeFileSync(`${got}.tbi`, await lake.getBuffer(res.tbi));
        expect(readVcfLines(got)).toEqual(readVcfLines(out));
        expect(sh('tabix', [got, `${refs[0].name}:1-30000`])).toBe(sh('tabix', [out, `${refs[0].name}:1-30000`]));
        expect(JSON.parse((await lake.getBuffer(`${prefix}call.json`)).toString()).records).toBe(readVcfLines(out).length);
      }
    } finally {
      await pool.close();
      s3.destroy();
      await server.close();
    }
  });

  it('an empty BAM gives a valid VCF with a header and no records, and an empty .tbi', async () => {
    const empty = join(dir, 'empty.bam');
    writeFileSync(empty, execFileSync('samtools', ['view', '-H', '-b', bam]));
    sh('samtools', ['index', empty]);
    const e = join(dir, 'empty.vcf.gz');
    const res = await callVariants({ reference: ref, bams: [empty], out: e });
    expect(res.records).toBe(0);
    const r = spawnSync('bcftools', ['view', '-H', e], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('');
    expect(sh('tabix', ['-l', e])).toBe('');
    expect(sh('tabix', [e, `${refs[0].name}:1-1000`])).toBe('');
  });

  it('genolake call (the CLI command) writes the VCF and its index', async () => {
    const { Command } = await import('commander');
    const { register } = await import('../../src/cli/commands/call.js');
    const program = new Command().exitOverride();
    register(program);
    const cli = join(dir, 'cli.vcf.gz');
    const written: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(['call', '--reference', ref, '--bam', bam, '--out', cli, '--threads', '1'], { from: 'user' });
    } finally {
      process.stdout.write = orig;
    }
    expect(written.join('')).toMatch(/^call: \d+ records \(\d+ SNVs, \d+ indels\) from 1 sample\(s\)/);
    expect(readVcfLines(cli)).toEqual(readVcfLines(out));
    expect(sh('bcftools', ['view', '-h', cli])).toMatch(/\n##genolake_callCommand=genolake.*\n/);
  });

  it('calls several samples jointly: one column per sample, genotypes per sample', async () => {
    // a second "sample": the same reads under another SM, with half of the reads dropped
    const other = join(dir, 'other.bam');
    const sam = sh('samtools', ['view', '-h', '-s', '7.5', bam]).replace(/SM:S1/g, 'SM:S2');
    writeFileSync(join(dir, 'other.sam'), sam);
    sh('samtools', ['view', '-b', '-o', other, join(dir, 'other.sam')]);
    sh('samtools', ['index', other]);
    const joint = join(dir, 'joint.vcf.gz');
    const res = await callVariants({ reference: ref, bams: [bam, other], out: joint, threads: 2 });
    expect(res.samples).toEqual(['S1', 'S2']);
    const r = spawnSync('bcftools', ['view', joint], { encoding: 'utf8', maxBuffer: 1 << 26 });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/\tFORMAT\tS1\tS2\n/);
    const lines = readVcfLines(joint);
    for (const l of lines) expect(l.split('\t')).toHaveLength(11);
    // every single-sample call is found jointly, and S1's genotype is mostly the same
    const gt = (l: string, col: number) => l.split('\t')[col].split(':')[0];
    const jointBySite = new Map(lines.map((l) => [l.split('\t').slice(0, 5).join(':'), l]));
    let same = 0;
    const single = readVcfLines(out);
    for (const l of single) {
      const j = jointBySite.get(l.split('\t').slice(0, 5).join(':'));
      expect(j, l).toBeDefined();
      if (gt(j!, 9) === gt(l, 9)) same++;
    }
    expect(same / single.length).toBeGreaterThan(0.97);
    expect(compareCalls(readVcfLines(truth), lines.map((l) => l.split('\t').slice(0, 9).concat(l.split('\t')[10]).join('\t'))).snv.recall).toBeGreaterThan(0.8);
  });
});
