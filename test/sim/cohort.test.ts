import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { simulateCohort, type CohortSummary } from '../../src/sim/cohort.js';
import { dropManifestSchema } from '../../src/manifest/drop.js';
import { register } from '../../src/cli/commands/simulate.js';
import { InputError } from '../../src/util/errors.js';
import { ReferenceRegistry } from '../../src/pipeline/references.js';

function run(cmd: string, args: string[], cwd: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function listFiles(root: string, dir = root): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(root, p)));
    else out.push(relative(root, p));
  }
  return out.sort();
}

const small = { seed: 7, patients: 4, genomeLength: 100_000, coverage: 4, drivers: [{ probability: 1, controlProbability: 0 }] };

describe('simulateCohort', () => {
  let base: string;
  let summary: CohortSummary;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'gl-sim-cohort-'));
    summary = await simulateCohort({ outDir: join(base, 'a'), ...small });
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('writes the layout cohort.json describes', async () => {
    const files = await listFiles(join(base, 'a'));
    const expected = [
      'cohort.json',
      'reference/genes.gff3',
      'reference/ref.fa',
      'reference/ref.fa.fai',
      'reference/repeats.bed',
      'references.json',
      ...summary.patients.flatMap((p) => [p.archive!, p.truth_vcf]),
    ].sort();
    expect(files).toEqual(expected);
    // The reference registry resolves the manifests' reference name to these files.
    const registry = await ReferenceRegistry.open(join(base, 'a', 'references.json'));
    expect(await registry.resolve(summary.reference.name, 'reference')).toEqual({
      fasta: join(base, 'a', 'reference/ref.fa'),
      genes: join(base, 'a', 'reference/genes.gff3'),
    });
    const onDisk = JSON.parse(await readFile(join(base, 'a', 'cohort.json'), 'utf8'));
    expect(onDisk).toEqual(JSON.parse(JSON.stringify(summary)));
    expect(summary.patients.map((p) => p.patient_id)).toEqual(['SIMP001', 'SIMP002', 'SIMP003', 'SIMP004']);
  });

  it('is byte-identical for the same seed and different for another', async () => {
    await simulateCohort({ outDir: join(base, 'b'), ...small });
    await simulateCohort({ outDir: join(base, 'c'), ...small, seed: 8 });
    const files = await listFiles(join(base, 'a'));
    for (const f of files) {
      const [x, y] = [await readFile(join(base, 'a', f)), await readFile(join(base, 'b', f))];
      expect(Buffer.compare(x, y), f).toBe(0);
    }
    const [p, q] = [await readFile(join(base, 'a', 'drops/SIMP001.tar.gz')), await readFile(join(base, 'c', 'drops/SIMP001.tar.gz'))];
    expect(Buffer.compare(p, q)).not.toBe(0);
  });

  it('packs a valid drop manifest and paired FASTQ per read group, with fixed owners and times', async () => {
    const p = summary.patients[0];
    const x = join(base, 'x');
    await rm(x, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(x));
    const list = run('tar', ['-tvzf', join(base, 'a', p.archive!)], x);
    expect(list.code, list.stderr).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines.every((l) => l.includes('root/root') && l.includes('1970-01-01'))).toBe(true);
    expect(run('tar', ['-xzf', join(base, 'a', p.archive!)], x).code).toBe(0);
    const manifest = dropManifestSchema.parse(JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8')));
    expect(manifest).toMatchObject({ schema_version: 1, kind: 'drop', patient_id: p.patient_id, sample_id: p.sample_id, platform: 'ILLUMINA', read_length: 150, paired: true, reference: 'sim-demo' });
    expect(manifest.provider).toEqual({ provider_id: 'sim-provider', patient_id: p.provider_patient_id });
    expect(manifest.read_groups.map((g) => g.id)).toEqual(p.read_groups.map((g) => g.id));
    expect((await listFiles(x)).sort()).toEqual(['manifest.json', ...manifest.read_groups.flatMap((g) => [g.r1, g.r2!])].sort());
    for (const g of manifest.read_groups) {
      const n = Number(run('sh', ['-c', `gzip -dc '${g.r1}' | wc -l`], x).stdout.trim());
      expect(n / 4).toBe(p.read_groups.find((r) => r.id === g.id)!.pairs);
      expect((await stat(join(x, g.r2!))).size).toBeGreaterThan(0);
    }
  });

  it('plants drivers in label=1 patients only (probability 1 vs 0)', async () => {
    expect(summary.patients.filter((p) => p.label === 1).length).toBe(2);
    const gene = summary.drivers[0].gene;
    for (const p of summary.patients) {
      expect(p.drivers.map((d) => d.gene)).toEqual(p.label === 1 ? [gene] : []);
      const vcf = run('bcftools', ['view', '-H', '-i', 'INFO/DRIVER!="."', p.truth_vcf], join(base, 'a'));
      expect(vcf.code, vcf.stderr).toBe(0);
      expect(vcf.stdout.trim() === '' ? 0 : vcf.stdout.trim().split('\n').length).toBe(p.label === 1 ? 1 : 0);
    }
  });

  it('makes truth-only cohorts with a driver signal (no reads)', async () => {
    const c = await simulateCohort({ outDir: join(base, 'truth-only'), seed: 3, patients: 40, genomeLength: 100_000, archives: false, caseFraction: 0.25, drivers: [{ gene: summary.drivers[0].gene, probability: 0.8, controlProbability: 0.1, consequence: 'stop_gained' }] });
    expect(await listFiles(join(base, 'truth-only'))).toEqual(['cohort.json', ...c.patients.map((p) => p.truth_vcf), 'reference/genes.gff3', 'reference/ref.fa', 'reference/ref.fa.fai', 'reference/repeats.bed', 'references.json'].sort());
    const cases = c.patients.filter((p) => p.label === 1);
    const controls = c.patients.filter((p) => p.label === 0);
    expect(cases.length).toBe(10);
    const carriers = (ps: typeof cases) => ps.filter((p) => p.drivers.length > 0).length;
    expect(carriers(cases)).toBeGreaterThanOrEqual(5);
    expect(carriers(controls)).toBeLessThanOrEqual(8);
    expect(carriers(cases) / cases.length).toBeGreaterThan(carriers(controls) / controls.length + 0.4);
    for (const p of c.patients) {
      expect(p.archive).toBeUndefined();
      for (const d of p.drivers) expect(d).toMatchObject({ gene: summary.drivers[0].gene, consequence: 'stop_gained' });
    }
  });

  it('rejects bad options as input errors', async () => {
    await expect(simulateCohort({ outDir: join(base, 'bad'), genomeLength: 1000 })).rejects.toBeInstanceOf(InputError);
    await expect(simulateCohort({ outDir: join(base, 'bad'), genomeLength: 100_000, drivers: [{ gene: 'NOPE', probability: 1 }] })).rejects.toThrow(/NOPE/);
  });

  it('runs as `genolake simulate`', async () => {
    const program = new Command('genolake').exitOverride();
    register(program);
    const out = join(base, 'cli');
    const write = process.stdout.write;
    let printed = '';
    process.stdout.write = ((s: string) => ((printed += s), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(['simulate', '--out', out, '--seed', '7', '--patients', '2', '--genome-length', '100k', '--coverage', '2', '--lanes', '1', '--haplotypes', '--driver', ':1:0.5'], { from: 'user' });
    } finally {
      process.stdout.write = write;
    }
    expect(printed).toContain('simulated 2 patients');
    const c = JSON.parse(await readFile(join(out, 'cohort.json'), 'utf8')) as CohortSummary;
    expect(c.patients.length).toBe(2);
    expect(c.patients[0].read_groups.length).toBe(1);
    expect(c.reference.length).toBe(100_000);
    expect(c.drivers).toEqual([{ gene: expect.stringMatching(/^SIM\d+$/), probability: 1, control_probability: 0.5, consequence: 'mixed' }]);
    // haplotype FASTA: two records per contig, lengths shifted by the indels of each haplotype
    const fa = await readFile(join(out, c.patients[0].haplotypes!), 'latin1');
    const names = fa.split('\n').filter((l) => l.startsWith('>'));
    expect(names).toEqual(c.reference.contigs.flatMap((k) => [`>${k.name}.hap1`, `>${k.name}.hap2`]));
    const faidx = run('samtools', ['faidx', c.patients[0].haplotypes!], out);
    expect(faidx.code, faidx.stderr).toBe(0);
    const lens = (await readFile(join(out, `${c.patients[0].haplotypes!}.fai`), 'utf8')).trim().split('\n').map((l) => Number(l.split('\t')[1]));
    c.reference.contigs.forEach((k, i) => {
      expect(Math.abs(lens[2 * i] - k.length)).toBeLessThan(500);
      expect(Math.abs(lens[2 * i + 1] - k.length)).toBeLessThan(500);
    });
  });
});
