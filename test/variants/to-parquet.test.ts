import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parquetToTable } from '../../src/formats/parquet.js';
import { LocalLake } from '../../src/lake/local.js';
import { openLake } from '../../src/lake/open.js';
import { startS3Server } from '../helpers/s3server.js';
import type { Lake } from '../../src/lake/types.js';
import { openLakeSql } from '../../src/query/sql.js';
import { vcfToParquet, type ToParquetDeps } from '../../src/stages/to-parquet.js';
import { convertSlice, type SliceTask } from '../../src/variants/slice.js';
import { VARIANTS_SCHEMA } from '../../src/variants/schema.js';

/** In-process runner: the worker body called directly (the pool path is covered in the engine tests). */
const inline: ToParquetDeps['runTask'] = async <P, R>(_w: string, _k: string, p: P) => (await convertSlice(p as unknown as SliceTask)) as unknown as R;

const CSQ_FORMAT = 'Allele|Consequence|IMPACT|SYMBOL|Gene|Feature|BIOTYPE|HGVSc|HGVSp';

/** A deterministic VCF: 3 contigs, 2 samples, multiallelic sites, CSQ on some records. */
function makeVcf(records: number, seed = 7): string {
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const bases = 'ACGT';
  const lines = [
    '##fileformat=VCFv4.2',
    '##reference=simref-1',
    '##contig=<ID=chr1,length=10000000>',
    '##contig=<ID=chr2,length=10000000>',
    '##contig=<ID=chrM,length=20000>',
    '##FILTER=<ID=LowQual,Description="Low quality">',
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    `##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations. Format: ${CSQ_FORMAT}">`,
    '##INFO=<ID=CLNSIG,Number=.,Type=String,Description="[known:clinvar] clinical significance">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
    '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
    '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tTUMOR\tNORMAL',
  ];
  const per = [Math.floor(records * 0.6), records - Math.floor(records * 0.6) - 5, 5];
  ['chr1', 'chr2', 'chrM'].forEach((chrom, ci) => {
    let pos = 100;
    for (let i = 0; i < per[ci]; i++) {
      pos += 1 + Math.floor(rnd() * 300);
      const ref = bases[Math.floor(rnd() * 4)];
      const multi = rnd() < 0.1;
      const alt1 = bases[(bases.indexOf(ref) + 1) % 4];
      const alts = multi ? [alt1, `${ref}TT`] : [alt1];
      const gts = multi ? ['1/2', '0/1'] : [rnd() < 0.5 ? '0/1' : '1|1', rnd() < 0.8 ? '0/0' : './.'];
      const ad = (g: string) => (g === './.' ? '.' : alts.map((_, k) => 3 + k).concat([]).reduce((s, v) => `${s},${v}`, '10'));
      const info = [`DP=${20 + i % 30}`];
      if (i % 3 === 0) info.push(`CSQ=${alt1}|missense_variant|MODERATE|GENE${i % 7}|ENSG${i % 7}|ENST${i % 7}|protein_coding|c.${i}A>G|p.Lys${i}Arg,${alt1}|intron_variant|MODIFIER|GENE${i % 7}|ENSG${i % 7}|ENST9${i % 7}|protein_coding||`);
      if (i % 11 === 0) info.push('CLNSIG=Pathogenic');
      const id = i % 5 === 0 ? `rs${1000 + i}` : '.';
      const filter = i % 13 === 0 ? 'LowQual' : 'PASS';
      lines.push([chrom, pos, id, ref, alts.join(','), (30 + (i % 50)).toFixed(1), filter, info.join(';'), 'GT:DP:AD:GQ', ...gts.map((g) => `${g}:${25}:${ad(g)}:${40 + (i % 9)}`)].join('\t'));
    }
  });
  return `${lines.join('\n')}\n`;
}

/** Expected (chrom,pos,ref,alt,gt,sample) keys, from the text by an independent reading. */
function expectedAlleles(vcf: string): string[] {
  const out: string[] = [];
  const lines = vcf.split('\n').filter((l) => l && !l.startsWith('#'));
  const samples = ['TUMOR', 'NORMAL'];
  for (const l of lines) {
    const f = l.split('\t');
    const alts = f[4].split(',');
    for (let s = 0; s < samples.length; s++) {
      const gt = f[9 + s].split(':')[0];
      for (const alt of alts) out.push([f[0], f[1], f[3], alt, gt, samples[s]].join('\t'));
    }
  }
  return out.sort();
}

function digest(keys: string[]): string {
  return createHash('sha256').update(keys.join('\n')).digest('hex');
}

async function lakeKeys(lake: Lake, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of lake.list(prefix)) keys.push(o.key);
  return keys;
}

describe('VCF → Parquet variant lake', () => {
  let dir: string;
  let vcfText: string;
  let vcfGz: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-parquet-'));
    vcfText = makeVcf(6000);
    await writeFile(join(dir, 'calls.vcf'), vcfText);
    execFileSync('bgzip', ['-f', '-k', join(dir, 'calls.vcf')]);
    vcfGz = join(dir, 'calls.vcf.gz');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads every allele of every sample; DuckDB over the hive partitions returns exactly the VCF', async () => {
    const lake = new LocalLake(join(dir, 'lake1'));
    // Small slices: the 6000-record file is cut into many BGZF slices, like a large one.
    const res = await vcfToParquet({ vcfPath: vcfGz, patientId: 'P001', runId: 'r1', sliceBytes: 20_000 }, { lake, runTask: inline });
    const expected = expectedAlleles(vcfText);
    expect(res.records).toBe(6000);
    expect(res.rows).toBe(expected.length);
    // bcftools agrees on the record count.
    const n = execFileSync('bcftools', ['view', '-H', vcfGz]).toString().trim().split('\n').length;
    expect(res.records).toBe(n);
    expect(new Set(res.files.map((f) => f.chrom))).toEqual(new Set(['chr1', 'chr2', 'chrM']));
    expect(res.files.length).toBeGreaterThan(3);

    const sql = await openLakeSql(lake);
    try {
      const rows = await sql.query(`SELECT chrom, pos, ref, alt, gt, sample_id FROM variants WHERE patient_id = 'P001'`);
      const got = rows.map((r) => [r.chrom, r.pos, r.ref, r.alt, r.gt, r.sample_id].join('\t')).sort();
      expect(got.length).toBe(expected.length);
      expect(digest(got)).toBe(digest(expected));
      const [ann] = await sql.query(
        `SELECT count(*) AS n, count(DISTINCT gene) AS genes, min(impact) AS imp FROM variants WHERE consequence = 'missense_variant'`,
      );
      expect(Number(ann.n)).toBeGreaterThan(0);
      expect(ann.imp).toBe('MODERATE');
      const [k] = await sql.query(`SELECT count(*) AS n FROM variants WHERE known LIKE '%Pathogenic%'`);
      expect(Number(k.n)).toBeGreaterThan(0);
      // Multiallelic split: alt_count counts this allele only.
      const multi = await sql.query(`SELECT alt, alt_count, ad_alt FROM variants WHERE gt = '1/2' AND sample_id = 'TUMOR' ORDER BY chrom, pos, alt LIMIT 2`);
      expect(multi.map((m) => m.alt_count)).toEqual([1, 1]);
    } finally {
      sql.close();
    }
  });

  it('writes the documented schema, sorted by position, and reads back what was written', async () => {
    const lake = new LocalLake(join(dir, 'lake2'));
    const res = await vcfToParquet({ vcfPath: vcfGz, patientId: 'P2', runId: 'r1', samples: [{ column: 'TUMOR', sampleId: 'S-T' }] }, { lake, runTask: inline });
    const f = res.files.find((x) => x.chrom === 'chr1')!;
    const table = parquetToTable(await readFile(lake.localPath(f.key)!));
    expect(table.schema.fields.map((x) => x.name)).toEqual(VARIANTS_SCHEMA.fields.map((x) => x.name));
    expect(table.schema.fields.map((x) => String(x.type))).toEqual(VARIANTS_SCHEMA.fields.map((x) => String(x.type)));
    const pos = table.getChild('pos')!.toArray() as BigInt64Array;
    for (let i = 1; i < pos.length; i++) expect(pos[i] >= pos[i - 1]).toBe(true);
    expect(new Set(table.getChild('sample_id')!.toArray())).toEqual(new Set(['S-T']));
    expect(table.getChild('reference')!.get(0)).toBe('simref-1');
    // The first chr1 record of the text, row for row.
    const first = vcfText.split('\n').find((l) => l.startsWith('chr1\t'))!.split('\t');
    expect(Number(pos[0])).toBe(Number(first[1]));
    expect(table.getChild('ref')!.get(0)).toBe(first[3]);
    expect(table.getChild('gt')!.get(0)).toBe(first[9].split(':')[0]);
  });

  it('is idempotent: a second load of the same run replaces its rows; other runs coexist', async () => {
    const lake = new LocalLake(join(dir, 'lake3'));
    const deps = { lake, runTask: inline };
    await vcfToParquet({ vcfPath: vcfGz, patientId: 'P3', runId: 'r1', sliceBytes: 30_000 }, deps);
    const first = await lakeKeys(lake, 'curated/');
    const again = await vcfToParquet({ vcfPath: vcfGz, patientId: 'P3', runId: 'r1', sliceBytes: 30_000 }, deps);
    expect(await lakeKeys(lake, 'curated/')).toEqual(first);
    expect(again.removed).toEqual([]);
    // Fewer, bigger slices: the old parts of this run go, none survive beside the new ones.
    const coarse = await vcfToParquet({ vcfPath: vcfGz, patientId: 'P3', runId: 'r1', sliceBytes: 1 << 30 }, deps);
    expect(coarse.removed.length).toBeGreaterThan(0);
    await vcfToParquet({ vcfPath: vcfGz, patientId: 'P3', runId: 'r2' }, deps);
    const sql = await openLakeSql(lake);
    try {
      const counts = await sql.query(`SELECT run_id, count(*) AS n FROM variants GROUP BY run_id ORDER BY run_id`);
      const n = expectedAlleles(vcfText).length;
      expect(counts).toEqual([
        { run_id: 'r1', n },
        { run_id: 'r2', n },
      ]);
    } finally {
      sql.close();
    }
    expect((await lakeKeys(lake)).some((k) => k.includes('_staging'))).toBe(false);
  });

  it('plain, gzip and BGZF inputs give the same rows', async () => {
    const lake = new LocalLake(join(dir, 'lake4'));
    execFileSync('sh', ['-c', `gzip -c ${join(dir, 'calls.vcf')} > ${join(dir, 'calls.plain.gz')}`]);
    const a = await vcfToParquet({ vcfPath: join(dir, 'calls.vcf'), patientId: 'A', runId: 'r' }, { lake, runTask: inline });
    const b = await vcfToParquet({ vcfPath: join(dir, 'calls.plain.gz'), patientId: 'B', runId: 'r' }, { lake, runTask: inline });
    const c = await vcfToParquet({ vcfPath: vcfGz, patientId: 'C', runId: 'r', sliceBytes: 10_000 }, { lake, runTask: inline });
    // One slice of the whole file: it is inflated a window of blocks at a time, so lines
    // cross the windows' seams (the file has more blocks than a window).
    const d = await vcfToParquet({ vcfPath: vcfGz, patientId: 'D', runId: 'r', sliceBytes: 1 << 30 }, { lake, runTask: inline });
    expect(d.files.length).toBe(3);
    expect(a.rows).toBe(b.rows);
    expect(b.rows).toBe(c.rows);
    expect(c.rows).toBe(d.rows);
    const sql = await openLakeSql(lake);
    try {
      const per = await sql.query(
        `SELECT patient_id, md5(string_agg(concat_ws(':', chrom, pos, ref, alt, gt, sample_id, dp, ad_alt, gq, gene, impact), ',' ORDER BY chrom, pos, alt, sample_id)) AS h FROM variants GROUP BY patient_id ORDER BY patient_id`,
      );
      expect(per).toHaveLength(4);
      expect(new Set(per.map((p) => p.h)).size).toBe(1);
    } finally {
      sql.close();
    }
  });

  it('an S3 lake: the load publishes there, and SQL reads it through the local mirror, stale files dropped', async () => {
    const s3 = await startS3Server();
    try {
      const lake = await openLake(s3.config('lake'));
      const cacheDir = join(dir, 's3-cache');
      await vcfToParquet({ vcfPath: vcfGz, patientId: 'P9', runId: 'r1', sliceBytes: 40_000 }, { lake, runTask: inline });
      const expected = expectedAlleles(vcfText);
      let sql = await openLakeSql(lake, { cacheDir });
      try {
        const [n] = await sql.query("SELECT count(*) AS n FROM variants WHERE patient_id = 'P9'");
        expect(Number(n.n)).toBe(expected.length);
      } finally {
        sql.close();
      }
      // Reload with other slices: the mirror must follow the lake (old parts gone), not add to it.
      await vcfToParquet({ vcfPath: vcfGz, patientId: 'P9', runId: 'r1', sliceBytes: 1 << 30 }, { lake, runTask: inline });
      sql = await openLakeSql(lake, { cacheDir });
      try {
        const [n] = await sql.query('SELECT count(*) AS n FROM variants');
        expect(Number(n.n)).toBe(expected.length);
      } finally {
        sql.close();
      }
    } finally {
      await s3.close();
    }
  });

  describe('bad VCFs fail naming the record, and publish nothing', () => {
    const cases: [string, (text: string) => string, RegExp, Record<string, unknown>][] = [
      [
        'a malformed POS',
        (t) => t.replace(/\nchr2\t(\d+)\t/, '\nchr2\tabc\t'),
        /POS must be a positive integer/,
        { code: 'VCF_BAD_RECORD', place: expect.objectContaining({ record: 3601, field: 'POS' }) },
      ],
      [
        'a missing sample column',
        (t) => {
          const lines = t.split('\n');
          const i = lines.findIndex((l) => l.startsWith('chr1\t')) + 4999;
          lines[i] = lines[i].split('\t').slice(0, 10).join('\t');
          return lines.join('\n');
        },
        /has 10 columns, the header declares 11 \(2 sample\(s\)\)/,
        { code: 'VCF_BAD_RECORD', place: expect.objectContaining({ record: 5000, field: 'samples' }) },
      ],
      [
        'an unsorted record',
        (t) => {
          const lines = t.split('\n');
          const i = lines.findIndex((l) => l.startsWith('chr1\t')) + 99;
          const f = lines[i].split('\t');
          f[1] = '1';
          lines[i] = f.join('\t');
          return lines.join('\n');
        },
        /comes after position \d+: the VCF is not sorted/,
        { code: 'VCF_UNSORTED', place: expect.objectContaining({ record: 100 }) },
      ],
    ];
    for (const [name, mutate, message, shape] of cases) {
      it(name, async () => {
        const path = join(dir, `bad-${name.replace(/\W+/g, '_')}.vcf`);
        await writeFile(path, mutate(vcfText));
        execFileSync('bgzip', ['-f', path]);
        const lake = new LocalLake(join(dir, `lake-bad-${name.replace(/\W+/g, '_')}`));
        const err = await vcfToParquet({ vcfPath: `${path}.gz`, patientId: 'P', runId: 'r', sliceBytes: 15_000 }, { lake, runTask: inline }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeDefined();
        expect((err as Error).message).toMatch(message);
        expect(err).toMatchObject(shape);
        expect(await lakeKeys(lake)).toEqual([]);
      });
    }

    it('a truncated BGZF file', async () => {
      const bytes = await readFile(vcfGz);
      const path = join(dir, 'truncated.vcf.gz');
      await writeFile(path, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      const lake = new LocalLake(join(dir, 'lake-trunc'));
      await expect(vcfToParquet({ vcfPath: path, patientId: 'P', runId: 'r' }, { lake, runTask: inline })).rejects.toMatchObject({
        code: 'BGZF_TRUNCATED',
        place: { file: path },
      });
      expect(await lakeKeys(lake)).toEqual([]);
    });

    it('a sample that is not in the VCF', async () => {
      const lake = new LocalLake(join(dir, 'lake-sample'));
      await expect(
        vcfToParquet({ vcfPath: vcfGz, patientId: 'P', runId: 'r', samples: [{ column: 'BLOOD' }] }, { lake, runTask: inline }),
      ).rejects.toThrow(/sample BLOOD is not in the VCF \(its samples: TUMOR, NORMAL;/);
      expect(await lakeKeys(lake)).toEqual([]);
    });
  });
});
