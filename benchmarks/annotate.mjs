// Benchmark: genolake annotate (1 and 2 threads) vs Debian `bcftools csq` on the same VCF and GFF3,
// in the same run. Run `npx tsc` first (uses dist/).
//
//   node benchmarks/annotate.mjs [--genome-length 80000000] [--genes 5000] [--rate 0.02] [--reps 2] [--keep] [--level N] [--cold]
//       the issue's figure: a simulator genome (src/sim: Ensembl-style genes with UTRs, splice
//       sites and two-isoform genes) and its truth variants at a high rate (one phased sample),
//       ≥ 1M records; genolake with 1 and 2 threads, with INFO/CSQ (the default) and without
//       (--no-vep: BCSQ only, what bcftools csq writes); writes benchmarks/results/annotate.json
//       (annotate-cold.json with --cold). genolake loads the gene model it kept from its first
//       reading of the GFF3 (<gff>.genolake-model, made by the first run); one more run with 2
//       threads reads the GFF3 itself every time (--no-model-cache), as bcftools does.
//       --keep leaves the data in benchmarks/data/annotate/ (and reuses it when present).
//       Every run records wall and CPU seconds (genolake: this process, all threads; bcftools:
//       the child, from bash's `times`); output BGZF at genolake's default level.
//   node benchmarks/annotate.mjs --small [nVariants=100000]
//       the earlier synthetic mode (4 Mb random genome, 499 six-exon genes, sites-only VCF);
//       writes benchmarks/results/annotate-small.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ANNOTATE_BGZF_LEVEL, annotateVcf } from '../dist/src/annotate/annotate.js';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[i + 1] : dflt;
};
const vep = !process.env.NOVEP;
/**
 * --cold: each genolake run is the CLI in a process of its own, as bcftools is (JIT warm-up,
 * module loading and the gene model read included every time); by default the runs share
 * this process, so later ones find compiled code.
 */
const cold = flag('cold');
/** BGZF level of genolake's output (--level; default: genolake's own default). */
const level = arg('level', undefined) === undefined ? undefined : Number(arg('level', undefined));
const load = () => loadavg().map((x) => +x.toFixed(2));

/** Wall seconds of an async function, and CPU seconds of this process (all its threads) meanwhile. */
async function timed(f) {
  const t = process.hrtime.bigint();
  const c = process.cpuUsage();
  const value = await f();
  const u = process.cpuUsage(c);
  return { value, seconds: Number(process.hrtime.bigint() - t) / 1e9, cpu: (u.user + u.system) / 1e6 };
}

/** Runs a command through bash and returns the CPU seconds (user + sys) of its children, from bash's `times`. */
function childCpu(cmd, args) {
  const quoted = [cmd, ...args].map((a) => `'${String(a).replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('bash', ['-c', `${quoted} >/dev/null 2>&1 || exit 1; times`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
  const lines = r.stdout.trim().split('\n');
  const secs = (t) => { const m = /(\d+)m([\d.]+)s/.exec(t); return m ? Number(m[1]) * 60 + Number(m[2]) : NaN; };
  const [user, sys] = lines[lines.length - 1].trim().split(/\s+/);
  return secs(user) + secs(sys);
}

/** The earlier synthetic data: random 4 Mb genome, a gene every 8 kb, sites-only VCF. */
function writeSmall(dir, nVar) {
  const GENOME = 4_000_000;
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const B = 'ACGT';
  const seq = Buffer.alloc(GENOME);
  for (let i = 0; i < GENOME; i++) seq[i] = B.charCodeAt((rnd() * 4) | 0);
  // genes: every 8 kb, 6 exons of 100-200 bp, alternating strands, CDS inside exons 2..5
  const gff = ['##gff-version 3'];
  for (let g = 0, p = 1000; p + 7000 < GENOME; g++, p += 8000) {
    const strand = g % 2 ? '-' : '+';
    const exons = [];
    let q = p;
    for (let e = 0; e < 6; e++) {
      const len = 100 + ((rnd() * 100) | 0);
      exons.push([q, q + len - 1]);
      q += len + 300 + ((rnd() * 500) | 0);
    }
    const beg = exons[0][0], end = exons[5][1];
    gff.push(['c1', 'b', 'gene', beg, end, '.', strand, '.', `ID=gene:G${g};Name=G${g};biotype=protein_coding`].join('\t'));
    gff.push(['c1', 'b', 'mRNA', beg, end, '.', strand, '.', `ID=transcript:T${g};Parent=gene:G${g};biotype=protein_coding`].join('\t'));
    for (const [x, y] of exons) gff.push(['c1', 'b', 'exon', x, y, '.', strand, '.', `Parent=transcript:T${g}`].join('\t'));
    const cds = exons.slice(1, 5);
    const order = strand === '+' ? cds : [...cds].reverse();
    let done = 0;
    for (const [x, y] of order) {
      gff.push(['c1', 'b', 'CDS', x, y, '.', strand, (3 - (done % 3)) % 3, `Parent=transcript:T${g}`].join('\t'));
      done += y - x + 1;
    }
  }
  const vcf = ['##fileformat=VCFv4.2', `##contig=<ID=c1,length=${GENOME}>`, '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO'];
  let pos = 500;
  const step = Math.max(2, Math.floor((GENOME - 1000) / nVar));
  for (let i = 0; i < nVar && pos < GENOME - 20; i++, pos += 1 + ((rnd() * (2 * step - 1)) | 0)) {
    const k = rnd();
    const ref0 = String.fromCharCode(seq[pos - 1]);
    if (k < 0.8) vcf.push(`c1\t${pos}\t.\t${ref0}\t${B[(B.indexOf(ref0) + 1) % 4]}\t.\t.\t.`);
    else if (k < 0.9) vcf.push(`c1\t${pos}\t.\t${seq.subarray(pos - 1, pos + 2).toString()}\t${ref0}\t.\t.\t.`);
    else vcf.push(`c1\t${pos}\t.\t${ref0}\t${ref0}AC\t.\t.\t.`);
  }
  const fa = join(dir, 'ref.fa');
  let fasta = '>c1\n';
  for (let i = 0; i < GENOME; i += 60) fasta += seq.subarray(i, i + 60).toString() + '\n';
  writeFileSync(fa, fasta);
  writeFileSync(join(dir, 'genes.gff3'), gff.join('\n') + '\n');
  writeFileSync(join(dir, 'in.vcf'), vcf.join('\n') + '\n');
  execFileSync('samtools', ['faidx', fa]);
  return {
    fasta: fa, gff3: join(dir, 'genes.gff3'), vcf: join(dir, 'in.vcf'), records: vcf.length - 3,
    transcripts: gff.filter((l) => l.includes('\tmRNA\t')).length, genomeLength: GENOME,
  };
}

/** The simulator's genome and gene set, and its truth variants at a high rate (one phased sample). */
async function writeSim(dir, genomeLength, genes, rate) {
  const { buildReference, writeReference } = await import('../dist/src/sim/reference.js');
  const { simulateVariants, truthVcf } = await import('../dist/src/sim/variants.js');
  const ref = buildReference({ seed: 11, length: genomeLength, genes });
  const files = await writeReference(ref, dir);
  const variants = simulateVariants(ref, { seed: 12, rate });
  writeFileSync(join(dir, 'in.vcf'), truthVcf(ref, variants, 'S1'));
  const transcripts = ref.genes.reduce((n, g) => n + g.gene.transcripts.length, 0);
  const meta = { fasta: files.fasta, gff3: files.gff3, vcf: join(dir, 'in.vcf'), records: variants.length, transcripts, genes: ref.genes.length, genomeLength, contigs: ref.contigs.length };
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta, null, 2));
  return meta;
}

const small = flag('small');
let dir;
let data;
if (small) {
  dir = mkdtempSync(join(tmpdir(), 'gl-bench-ann-'));
  data = writeSmall(dir, Number(arg('small', 100000)));
} else {
  const keep = flag('keep');
  const genomeLength = Number(arg('genome-length', 80_000_000));
  const genes = Number(arg('genes', 5000));
  const rate = Number(arg('rate', 0.02));
  dir = keep ? join(here, 'data', 'annotate') : mkdtempSync(join(tmpdir(), 'gl-bench-ann-'));
  const metaFile = join(dir, 'meta.json');
  const reuse = keep && existsSync(metaFile);
  if (reuse) {
    const { readFileSync } = await import('node:fs');
    data = JSON.parse(readFileSync(metaFile, 'utf8'));
  }
  if (!reuse || data.genomeLength !== genomeLength) {
    mkdirSync(dir, { recursive: true });
    const t = await timed(() => writeSim(dir, genomeLength, genes, rate));
    data = t.value;
    console.error(`data: ${data.records} records, ${data.transcripts} transcripts, ${genomeLength} bp (${t.seconds.toFixed(1)} s)`);
  }
}

try {
  // The machine is shared and its speed drifts from minute to minute: every genolake run is
  // paired with a bcftools run right after it (--reps rounds, default 2), and each variant's
  // ratio is also given as the median of its pairs; the best wall time of each is kept too,
  // and all times and the load averages are recorded.
  const reps = Math.max(1, Number(arg('reps', small ? 1 : 2)));
  const once = async (label, f) => {
    const before = load();
    const t = await timed(f);
    const cpu = t.value?.cpu ?? t.cpu;
    console.error(`${label}: ${t.seconds.toFixed(2)} s, ${cpu.toFixed(2)} CPU s (load ${before[0]})`);
    return { value: t.value, seconds: +t.seconds.toFixed(2), cpu: +cpu.toFixed(2), load: { before, after: load() } };
  };
  const summary = (rs) => {
    const seconds = Math.min(...rs.map((r) => r.seconds));
    const cpu = Math.min(...rs.map((r) => r.cpu));
    return {
      seconds, times: rs.map((r) => r.seconds), records_per_s: Math.round(data.records / seconds), load: rs.map((r) => r.load),
      cpu_seconds: rs.map((r) => r.cpu), cpu_s_per_1M_records: +((cpu / data.records) * 1e6).toFixed(2),
    };
  };
  const bcftoolsRun = () => once('bcftools csq', async () => ({ cpu: childCpu('bcftools', ['csq', '-f', data.fasta, '-g', data.gff3, '--threads', '1', '-Oz', '-o', join(dir, 'theirs.vcf.gz'), data.vcf]) }));
  // genolake keeps the gene model it read beside the GFF3 (<gff>.genolake-model) and loads
  // that copy while the GFF3 is unchanged, as a user annotating sample after sample does;
  // the last variant reads the GFF3 every time (--no-model-cache), as bcftools does
  rmSync(`${data.gff3}.genolake-model`, { force: true });
  const variants = (small ? [[1, vep, true]] : [[1, true, true], [2, true, true], [1, false, true], [2, false, true], [2, true, false]]).map(([threads, withVep, modelCache]) => ({
    threads, withVep, modelCache,
    name: `genolake_t${threads}${withVep ? '' : '_bcsq_only'}${modelCache ? '' : '_gff_read_each_run'}`,
    out: join(dir, `ours.t${threads}${withVep ? '' : '.novep'}${modelCache ? '' : '.nocache'}.vcf.gz`),
    flags: `--threads ${threads}${withVep ? '' : ' --no-vep'}${modelCache ? '' : ' --no-model-cache'}`,
    ours: [], theirs: [],
  }));
  for (let r = 0; r < reps; r++) {
    for (const v of variants) {
      v.ours.push(
        cold
          ? await once(`genolake annotate ${v.flags} (own process)`, async () => {
              const args = [join(here, '..', 'bin', 'genolake.js'), 'annotate', '--reference', data.fasta, '--gff', data.gff3, '--vcf', data.vcf, '--out', v.out, '--threads', String(v.threads)];
              if (!v.withVep) args.push('--no-vep');
              if (!v.modelCache) args.push('--no-model-cache');
              if (level !== undefined) args.push('--level', String(level));
              return { cpu: childCpu(process.execPath, args), annotated: null };
            })
          : await once(`genolake ${v.flags}`, () => annotateVcf({ reference: data.fasta, gff: data.gff3, vcf: data.vcf, out: v.out, vep: v.withVep, threads: v.threads, modelCache: v.modelCache, ...(level !== undefined ? { level } : {}) })),
      );
      v.theirs.push(await bcftoolsRun());
    }
  }
  const median = (xs) => {
    const a = [...xs].sort((x, y) => x - y);
    return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2;
  };
  const runs = {};
  for (const v of variants) {
    const r = summary(v.ours);
    runs[v.name] = {
      threads: v.threads, vep_csq_field: v.withVep, gene_model_copy: v.modelCache, ...r, annotated: v.ours[v.ours.length - 1].value?.annotated ?? null,
      // bcftools' time / ours in each pair (> 1: genolake faster)
      paired_ratios: v.ours.map((o, i) => +(v.theirs[i].seconds / o.seconds).toFixed(3)),
    };
  }
  if (!small) {
    // the parallel output must be the single-thread output, byte for byte
    runs.genolake_t2.identical_to_t1 = spawnSync('cmp', ['-s', join(dir, 'ours.t1.vcf.gz'), join(dir, 'ours.t2.vcf.gz')]).status === 0;
    runs.genolake_t2_bcsq_only.identical_to_t1 = spawnSync('cmp', ['-s', join(dir, 'ours.t1.novep.vcf.gz'), join(dir, 'ours.t2.novep.vcf.gz')]).status === 0;
    runs.genolake_t2_gff_read_each_run.identical_to_t1 = spawnSync('cmp', ['-s', join(dir, 'ours.t1.vcf.gz'), join(dir, 'ours.t2.nocache.vcf.gz')]).status === 0;
  }
  const b = summary(variants.flatMap((v) => v.theirs));
  const bcftools = { command: 'bcftools csq -f ref.fa -g genes.gff3 --threads 1 -Oz', ...b };
  const res = {
    date: new Date().toISOString(),
    machine: { cores: availableParallelism() },
    genolake_bgzf_level: level ?? ANNOTATE_BGZF_LEVEL,
    genolake_process: cold ? 'own process per run (CLI)' : 'this process (runs share compiled code)',
    data: {
      source: small ? 'synthetic random genome (--small)' : 'genolake simulator (buildReference + simulateVariants, one phased sample)',
      records: data.records, transcripts: data.transcripts, genome_length: data.genomeLength,
      vcf_bytes: statSync(data.vcf).size,
    },
    ...runs,
    bcftools_csq: bcftools,
  };
  // throughput relative to bcftools csq (goal ≥ 1 with 2 threads); bcsq_only writes what bcftools writes:
  // best time against best time, and the median of the pairs (each run against the bcftools run right after it)
  res.ratio_vs_bcftools = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, +(v.records_per_s / bcftools.records_per_s).toFixed(3)]));
  res.ratio_vs_bcftools_paired_median = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, +median(v.paired_ratios).toFixed(3)]));
  // CPU per record relative to bcftools csq (lower is better): what a busy machine sees
  res.cpu_ratio_vs_bcftools = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, +(v.cpu_s_per_1M_records / bcftools.cpu_s_per_1M_records).toFixed(3)]));
  console.log(JSON.stringify(res, null, 2));
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', small ? 'annotate-small.json' : cold ? 'annotate-cold.json' : 'annotate.json'), JSON.stringify(res, null, 2) + '\n');
} finally {
  if (small || !flag('keep')) rmSync(dir, { recursive: true, force: true });
}
