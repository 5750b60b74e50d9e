/**
 * Known-variant databases: allele matching after normalisation, checked against
 * `bcftools norm -f ref -m-` (both sides) + `bcftools annotate -a db -c ID,INFO/…`.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { annotateVcf } from '../../src/annotate/annotate.js';
import { KnownMatcher, knownFromParam, normalizeAllele, parseKnownSpec, type KnownDbSpec } from '../../src/annotate/known.js';
import { register } from '../../src/cli/commands/annotate.js';
import { VcfGzWriter } from '../../src/formats/tabix.js';
import { LocalLake } from '../../src/lake/local.js';
import { experimentManifestSchema } from '../../src/manifest/experiment.js';
import { runExperiment } from '../../src/pipeline/experiment.js';
import { silentLogger } from '../../src/util/log.js';
import { openLakeSql } from '../../src/query/sql.js';
import { annotateSample } from '../../src/stages/annotate.js';
import { vcfToParquet, type ToParquetDeps } from '../../src/stages/to-parquet.js';
import { convertSlice, type SliceTask } from '../../src/variants/slice.js';
import { InputError } from '../../src/util/errors.js';
import { infoMap, readText, vcfRows } from './helpers.js';

/** Deterministic reference: random bases with a CA repeat at 400-409 and a T run at 600-606 (1-based). */
function makeReference(): Record<string, string> {
  let s = 12345;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const rand = (n: number) => Array.from({ length: n }, () => 'ACGT'[Math.floor(rnd() * 4)]).join('');
  const one = rand(1200).split('');
  const put = (pos1: number, text: string) => text.split('').forEach((c, i) => (one[pos1 - 1 + i] = c));
  put(399, 'GCACACACACAT'); // G, CA x5 (400-409), T
  put(599, 'GTTTTTTTA'); // G, T x7 (600-606), A
  return { '1': one.join(''), '2': rand(600) };
}

const REF = makeReference();
const at = (c: string, pos1: number, n = 1) => REF[c].slice(pos1 - 1, pos1 - 1 + n);
/** The k-th base (k=0..2) other than the reference base at pos1. */
const other = (c: string, pos1: number, k = 0) => 'ACGT'.replace(at(c, pos1), '')[k];

const DB_HEADER = [
  '##fileformat=VCFv4.2',
  '##contig=<ID=1,length=1200>',
  '##contig=<ID=2,length=600>',
  '##INFO=<ID=CLNSIG,Number=1,Type=String,Description="Clinical significance">',
  '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">',
  '##INFO=<ID=CLNDN,Number=.,Type=String,Description="Disease name">',
  '##INFO=<ID=RC,Number=R,Type=Integer,Description="Read counts per allele">',
  '##INFO=<ID=COMMON,Number=0,Type=Flag,Description="Common variant">',
  '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO',
];
const FIELDS = ['CLNSIG', 'AF', 'CLNDN', 'RC', 'COMMON'];

interface Case {
  what: string;
  input: [string, number, string, string][];
  db: [string, number, string, string, string, string][];
}

/** The case set: input records and database records (chrom, pos, [id,] ref, alt[, info]). */
function cases(): Case[] {
  const b = (p: number, k = 0) => other('1', p, k);
  return [
    { what: 'SNV, exact match', input: [['1', 100, at('1', 100), b(100)]], db: [['1', 100, 'rs100', at('1', 100), b(100), 'CLNSIG=Pathogenic;AF=0.01;CLNDN=Disease_A;RC=10,2;COMMON']] },
    { what: 'other ALT at the same position', input: [['1', 150, at('1', 150), b(150, 0)]], db: [['1', 150, 'rs150', at('1', 150), b(150, 1), 'CLNSIG=Benign;AF=0.5']] },
    {
      what: 'multiallelic database record, biallelic input',
      input: [['1', 200, at('1', 200), b(200, 1)]],
      db: [['1', 200, 'rs200', at('1', 200), `${b(200, 0)},${b(200, 1)}`, 'CLNSIG=Conflicting;AF=0.1,0.2;RC=5,1,2']],
    },
    {
      what: 'multiallelic input, biallelic database record',
      input: [['1', 250, at('1', 250), `${b(250, 0)},${b(250, 1)}`]],
      db: [['1', 250, 'rs250', at('1', 250), b(250, 1), 'CLNSIG=Likely_benign;AF=0.3;CLNDN=Disease_B;RC=7,3;COMMON']],
    },
    { what: 'deletion in a CA repeat, right-shifted in the database', input: [['1', 399, 'GCA', 'G']], db: [['1', 407, 'rs399', 'ACA', 'A', 'CLNSIG=Pathogenic;AF=0.05']] },
    { what: 'insertion in a T run, right-shifted in the database', input: [['1', 599, 'G', 'GT']], db: [['1', 606, 'rs599', 'T', 'TT', 'AF=0.07;CLNDN=Disease_C']] },
    { what: 'deletion padded on the right in the database', input: [['1', 599, 'GT', 'G']], db: [['1', 599, 'rs600', 'GTT', 'GT', 'AF=0.08']] },
    {
      what: 'multiallelic on both sides, ALTs in another order',
      input: [['1', 700, at('1', 700), `${b(700, 2)},${b(700, 0)}`]],
      db: [['1', 700, 'rs700', at('1', 700), `${b(700, 0)},${b(700, 1)},${b(700, 2)}`, 'CLNSIG=Uncertain;AF=0.11,0.12,0.13;RC=9,1,2,3']],
    },
    { what: 'deletion right-shifted in the input, left-aligned in the database', input: [['1', 604, 'TTT', 'T']], db: [['1', 599, 'rs601', 'GTT', 'G', 'CLNSIG=Benign;AF=0.09']] },
    {
      what: 'SNV written with context bases in the database',
      input: [['1', 800, at('1', 800), b(800)]],
      db: [['1', 799, 'rs800', at('1', 799, 3), at('1', 799) + b(800) + at('1', 801), 'CLNSIG=Pathogenic;AF=0.02;COMMON']],
    },
    { what: 'chromosome absent from the database', input: [['2', 50, at('2', 50), other('2', 50)]], db: [] },
  ];
}

function writeInputs(dir: string, cs: Case[]): { input: string; dbText: string } {
  const recs = cs.flatMap((c) => c.input).sort((x, y) => x[0].localeCompare(y[0]) || x[1] - y[1]);
  // RID / AIX tag records and ALTs so bcftools' split, normalised records can be traced back
  const lines = [
    '##fileformat=VCFv4.2',
    '##contig=<ID=1,length=1200>',
    '##contig=<ID=2,length=600>',
    '##INFO=<ID=RID,Number=1,Type=Integer,Description="Input record">',
    '##INFO=<ID=AIX,Number=A,Type=Integer,Description="Input ALT index">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1',
    ...recs.map(([c, p, r, a], i) => [c, p, '.', r, a, '.', '.', `RID=${i + 1};AIX=${a.split(',').map((_, k) => k + 1).join(',')}`, 'GT', a.includes(',') ? '1/2' : '0/1'].join('\t')),
  ];
  const input = join(dir, 'in.vcf');
  writeFileSync(input, lines.join('\n') + '\n');
  const dbRecs = cs.flatMap((c) => c.db).sort((x, y) => x[0].localeCompare(y[0]) || x[1] - y[1]);
  const dbText = [...DB_HEADER, ...dbRecs.map(([c, p, id, r, a, info]) => [c, p, id, r, a, '.', '.', info].join('\t'))].join('\n') + '\n';
  return { input, dbText };
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** bgzip + tabix with the Debian tools. */
function htsIndex(vcfText: string, path: string): string {
  writeFileSync(path.replace(/\.gz$/, ''), vcfText);
  sh('bgzip', ['-f', path.replace(/\.gz$/, '')]);
  sh('tabix', ['-f', '-p', 'vcf', path]);
  return path;
}

describe('known-variant databases', () => {
  let dir: string;
  let fa: string, gff: string, input: string, db: string, dbOwn: string, inputGz: string;
  const cs = cases();
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gl-known-'));
    fa = join(dir, 'ref.fa');
    writeFileSync(fa, Object.entries(REF).map(([n, s]) => `>${n}\n${s.replace(/(.{60})/g, '$1\n')}\n`).join('').replace(/\n\n/g, '\n'));
    gff = join(dir, 'empty.gff3');
    writeFileSync(gff, '##gff-version 3\n');
    const w = writeInputs(dir, cs);
    input = w.input;
    db = htsIndex(w.dbText, join(dir, 'db.vcf.gz'));
    // the same database through our own BGZF + tabix writer
    dbOwn = join(dir, 'db-own.vcf.gz');
    const ow = await VcfGzWriter.create(dbOwn);
    const lines = w.dbText.split('\n').filter(Boolean);
    await ow.writeHeader(lines.filter((l) => l.startsWith('#')).join('\n') + '\n');
    for (const l of lines.filter((x) => !x.startsWith('#'))) await ow.writeRecord(l);
    await ow.close();
    inputGz = join(dir, 'in-own.vcf.gz');
    const iw = await VcfGzWriter.create(inputGz);
    const inLines = readText(input).split('\n').filter(Boolean);
    await iw.writeHeader(inLines.filter((l) => l.startsWith('#')).join('\n') + '\n');
    for (const l of inLines.filter((x) => !x.startsWith('#'))) await iw.writeRecord(l);
    await iw.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = async (known: KnownDbSpec[], out = join(dir, `out-${Math.random().toString(36).slice(2)}.vcf`), vcf = input) => {
    const stats = await annotateVcf({ reference: fa, gff, vcf, out, vep: false, known });
    return { stats, text: readText(out), out };
  };

  it('normalises alleles like bcftools norm (trim, left-align)', () => {
    const base = (p: number) => REF['1'][p] ?? '';
    // CA deletion written at the right end of the repeat → anchored before it
    expect(normalizeAllele(406, 'ACA', 'A', base)).toEqual({ pos: 398, ref: 'GCA', alt: 'G' });
    // T insertion at the end of the run → anchored on the G before it
    expect(normalizeAllele(605, 'T', 'TT', base)).toEqual({ pos: 598, ref: 'G', alt: 'GT' });
    // padded SNV → bare SNV
    const r = REF['1'];
    expect(normalizeAllele(99, r.slice(99, 102), other('1', 100) + r.slice(100, 102), base)).toEqual({ pos: 99, ref: r[99], alt: other('1', 100) });
  });

  it('agrees with bcftools norm -m- + bcftools annotate on every case', async () => {
    const { text, stats } = await run([{ name: 'db', path: db, fields: FIELDS }]);
    // oracle: both sides split and normalised, then annotated by bcftools
    const inNorm = join(dir, 'in.norm.vcf.gz');
    const dbNorm = join(dir, 'db.norm.vcf.gz');
    sh('bcftools', ['norm', '-f', fa, '-m-', '-Oz', '-o', inNorm, input]);
    sh('bcftools', ['norm', '-f', fa, '-m-', '-Oz', '-o', dbNorm, db]);
    sh('tabix', ['-f', '-p', 'vcf', dbNorm]);
    sh('tabix', ['-f', '-p', 'vcf', inNorm]);
    const oracle = sh('bcftools', ['annotate', '-a', dbNorm, '-c', `ID,${FIELDS.map((f) => `INFO/${f}`).join(',')}`, inNorm]);
    const mine = vcfRows(text);
    const theirs = vcfRows(oracle);
    expect(mine.length).toBe(cs.flatMap((c) => c.input).length);
    let matchedAlts = 0;
    for (const row of mine) {
      const m = infoMap(row[7]);
      const rid = m.get('RID');
      const split = theirs.filter((t) => infoMap(t[7]).get('RID') === rid);
      const nAlt = row[4].split(',').length;
      expect(split.length, `record ${row[0]}:${row[1]}`).toBe(nAlt);
      const byAlt = (i: number) => split.find((t) => infoMap(t[7]).get('AIX') === String(i + 1))!;
      // ID: the union of what bcftools put on the split records
      const wantIds = [...new Set(split.flatMap((t) => (t[2] === '.' ? [] : t[2].split(';'))))];
      expect(row[2] === '.' ? [] : row[2].split(';'), `ID of ${row[0]}:${row[1]}`).toEqual(wantIds);
      // Number=1 and Number=A → one value per input ALT
      for (const f of ['CLNSIG', 'AF']) {
        const want = Array.from({ length: nAlt }, (_, i) => infoMap(byAlt(i)[7]).get(f) ?? '.');
        const got = m.get(`db_${f}`);
        expect(got ?? Array(nAlt).fill('.').join(','), `${f} of ${row[0]}:${row[1]}`).toBe(want.join(','));
      }
      // Number=R: REF value, then one per ALT
      const rWant = Array.from({ length: nAlt }, (_, i) => infoMap(byAlt(i)[7]).get('RC')?.split(','));
      const refRc = rWant.find(Boolean)?.[0];
      expect(m.get('db_RC'), `RC of ${row[0]}:${row[1]}`).toBe(refRc === undefined ? undefined : [refRc, ...rWant.map((v) => v?.[1] ?? '.')].join(','));
      // Number=.: the first match's value; Flag: any match
      const dn = split.map((t) => infoMap(t[7]).get('CLNDN')).find((v) => v !== undefined);
      expect(m.get('db_CLNDN')).toBe(dn);
      expect(m.has('db_COMMON')).toBe(split.some((t) => infoMap(t[7]).has('COMMON')));
      const anyMatch = split.some((t) => t[2] !== '.');
      expect(m.has('db'), `db flag of ${row[0]}:${row[1]}`).toBe(anyMatch);
      matchedAlts += split.filter((t) => t[2] !== '.').length;
    }
    // the case set is not vacuous: 10 ALTs of 9 records match, the rest do not
    expect(matchedAlts).toBe(10);
    expect(stats.known).toEqual([{ name: 'db', matchedRecords: 9, refMismatches: 0, aliases: {}, missingChroms: ['2'] }]);
    // header lines come from the database's own definitions
    expect(text).toContain('##INFO=<ID=db_CLNSIG,Number=A,Type=String,Description="[known:db] Clinical significance (CLNSIG of db.vcf.gz)">');
    expect(text).toContain('##INFO=<ID=db_AF,Number=A,Type=Float,');
    expect(text).toContain('##INFO=<ID=db_RC,Number=R,Type=Integer,');
    expect(text).toContain('##INFO=<ID=db_CLNDN,Number=.,Type=String,');
    expect(text).toContain('##INFO=<ID=db_COMMON,Number=0,Type=Flag,');
    expect(text).toContain('##INFO=<ID=db,Number=0,Type=Flag,');
    // htslib accepts the output header and values
    const gz = join(dir, 'check.vcf');
    writeFileSync(gz, text);
    expect(sh('bcftools', ['view', '-H', gz]).split('\n').filter(Boolean).length).toBe(mine.length);
  });

  it('reads a database indexed by our own tabix writer the same way', async () => {
    const a = await run([{ name: 'db', path: db, fields: FIELDS }]);
    const b = await run([{ name: 'db', path: dbOwn, fields: FIELDS }]);
    expect(b.text.replace(/db-own\.vcf\.gz/g, 'db.vcf.gz')).toBe(a.text);
  });

  it('gives the same output when annotation runs in worker threads (matcher built from plain options)', async () => {
    // workers load dist/workers/annotate.js: run `npx tsc` first
    const spec = [{ name: 'db', path: db, fields: FIELDS }];
    const one = await run(spec);
    const out = join(dir, 'pooled.vcf');
    const stats = await annotateVcf({ reference: fa, gff, vcf: input, out, vep: false, known: spec, threads: 2 });
    expect(readText(out)).toBe(one.text);
    expect(stats.known).toEqual(one.stats.known);
  });

  it('reads a database over HTTP by range requests, and names a missing remote index', async () => {
    const served: string[] = [];
    const server = createServer((req, res) => {
      const file = join(dir, decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/^\//, ''));
      let body: Buffer;
      try {
        body = readFileSync(file);
      } catch {
        res.writeHead(404).end();
        return;
      }
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      served.push(`${file.endsWith('.tbi') ? 'index' : 'data'} ${m ? 'range' : 'whole'}`);
      if (!m) {
        res.writeHead(200, { 'content-length': body.length }).end(body);
        return;
      }
      const beg = Number(m[1]);
      const end = Math.min(body.length - 1, m[2] ? Number(m[2]) : body.length - 1);
      res.writeHead(206, { 'content-range': `bytes ${beg}-${end}/${body.length}`, 'content-length': end - beg + 1 }).end(body.subarray(beg, end + 1));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const local = await run([{ name: 'db', path: db, fields: FIELDS }]);
      const remote = await run([{ name: 'db', path: `${url}/db.vcf.gz`, fields: FIELDS }]);
      expect(remote.text).toBe(local.text);
      // the data file is only ever read by ranges (the small index may come whole)
      expect(served.filter((x) => x.startsWith('data')).length).toBeGreaterThan(0);
      expect(served.filter((x) => x.startsWith('data')).every((x) => x === 'data range')).toBe(true);
      copyFileSync(db, join(dir, 'remote-noidx.vcf.gz'));
      await expect(run([{ name: 'db', path: `${url}/remote-noidx.vcf.gz`, fields: [] }])).rejects.toThrow(/cannot read known-variant database db or its index http:.*remote-noidx\.vcf\.gz\.tbi.*404/);
    } finally {
      server.close();
    }
  });

  it('keeps existing IDs, adds each database, and maps chr-prefixed names', async () => {
    // a second database spelled with chr names, holding one of the same variants under another ID
    const p = 100;
    const chrDb = htsIndex(
      [
        '##fileformat=VCFv4.2',
        '##contig=<ID=chr1,length=1200>',
        '##INFO=<ID=GENE,Number=1,Type=String,Description="Gene">',
        '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO',
        `chr1\t${p}\tCOSV1;rs100\t${at('1', p)}\t${other('1', p)}\t.\t.\tGENE=G1`,
      ].join('\n') + '\n',
      join(dir, 'cosmic.vcf.gz'),
    );
    const vcf = join(dir, 'ids.vcf');
    writeFileSync(vcf, ['##fileformat=VCFv4.2', '#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO', `1\t${p}\tmine\t${at('1', p)}\t${other('1', p)}\t.\t.\tDP=3`].join('\n') + '\n');
    const { text, stats } = await run(
      [
        { name: 'clinvar', path: db, fields: ['CLNSIG'] },
        { name: 'cosmic', path: chrDb, fields: ['GENE'] },
      ],
      undefined,
      vcf,
    );
    const [row] = vcfRows(text);
    expect(row[2]).toBe('mine;rs100;COSV1');
    expect(row[7]).toBe('DP=3;clinvar;clinvar_CLNSIG=Pathogenic;cosmic;cosmic_GENE=G1');
    expect(stats.known![1].aliases).toEqual({ '1': 'chr1' });
  });

  it('rejects a database without an index, an undeclared field, a bad name', async () => {
    const noIdx = join(dir, 'noidx.vcf.gz');
    copyFileSync(db, noIdx);
    const err = async (spec: KnownDbSpec) => {
      try {
        await run([spec]);
      } catch (e) {
        return e as InputError;
      }
      throw new Error('expected an error');
    };
    const e1 = await err({ name: 'db', path: noIdx, fields: [] });
    expect(e1).toBeInstanceOf(InputError);
    expect(e1.code).toBe('missing_index');
    expect(e1.place.file).toBe(noIdx);
    expect(e1.message).toContain('tabix -p vcf');
    const e2 = await err({ name: 'db', path: db, fields: ['CLNSIGG'] });
    expect(e2.code).toBe('bad_known_field');
    expect(e2.place).toMatchObject({ file: db, field: 'CLNSIGG' });
    expect(e2.message).toMatch(/declares no INFO field CLNSIGG.*CLNSIG, AF/);
    expect((await err({ name: '1db', path: db, fields: [] })).code).toBe('bad_known_name');
    expect((await err({ name: 'db-x', path: db, fields: [] })).code).toBe('bad_known_name');
    expect((await err({ name: 'db', path: join(dir, 'absent.vcf.gz'), fields: [] })).code).toBe('missing_file');
    // nothing half-written is left behind
    expect(readdirSync(dir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('parses NAME=path[:FIELD,…] (URLs keep their colons)', () => {
    expect(parseKnownSpec('clinvar=/d/clinvar.vcf.gz:CLNSIG,INFO/CLNDN')).toEqual({ name: 'clinvar', path: '/d/clinvar.vcf.gz', fields: ['CLNSIG', 'CLNDN'] });
    expect(parseKnownSpec('dbsnp=dbsnp.vcf.gz')).toEqual({ name: 'dbsnp', path: 'dbsnp.vcf.gz', fields: [] });
    expect(parseKnownSpec('g=https://h:8080/g.vcf.gz:AF')).toEqual({ name: 'g', path: 'https://h:8080/g.vcf.gz', fields: ['AF'] });
    expect(parseKnownSpec('g=https://h:8080/g.vcf.gz')).toEqual({ name: 'g', path: 'https://h:8080/g.vcf.gz', fields: [] });
    expect(() => parseKnownSpec('nodb')).toThrow(InputError);
    expect(() => parseKnownSpec('x=db.vcf.gz:')).toThrow(/empty field list/);
  });

  it('queries each database once per window of nearby records', async () => {
    const m = await KnownMatcher.open({ databases: [{ name: 'db', path: db, fields: ['AF'] }], reference: fa });
    try {
      const rows = vcfRows(readText(input));
      let queries = 0;
      const tbx = (m as unknown as { dbs: Array<{ tbx: { getLines: (...a: unknown[]) => Promise<void> } }> }).dbs[0].tbx;
      const orig = tbx.getLines.bind(tbx);
      tbx.getLines = (...a: unknown[]) => {
        queries++;
        return orig(...a);
      };
      await m.annotateRows(rows);
      // chr1 records span 100-800 (one window); chr2 is absent from the database (no query)
      expect(queries).toBe(1);
      expect(rows.filter((r) => r[7].includes('db_AF=')).length).toBe(9);
    } finally {
      m.close();
    }
  });

  it('the annotate stage carries the databases into the lake output', async () => {
    const lake = new LocalLake(join(dir, 'lake'));
    await lake.put('calls/calls.vcf.gz', readFileSync(inputGz));
    const r = await annotateSample({ vcfKey: 'calls/calls.vcf.gz', reference: fa, genes: gff, known: [{ name: 'clinvar', path: db, fields: ['CLNSIG'] }], outPrefix: 'annotated/' }, { lake });
    expect(r.known?.[0]).toMatchObject({ name: 'clinvar', matchedRecords: 9, missingChroms: ['2'] });
    const rows = vcfRows(sh('bcftools', ['view', '-r', '1:100', lake.localPath(r.vcf)]));
    expect(rows.map((x) => [x[2], infoMap(x[7]).get('clinvar_CLNSIG')])).toEqual([['rs100', 'Pathogenic']]);
    // and on into the variants table: ID and the `known` column
    const inline: ToParquetDeps['runTask'] = async <P, R>(_w: string, _k: string, p: P) => (await convertSlice(p as unknown as SliceTask)) as unknown as R;
    await vcfToParquet({ vcfPath: lake.localPath(r.vcf)!, patientId: 'P1', runId: 'r1' }, { lake, runTask: inline });
    const sql = await openLakeSql(lake);
    try {
      const got = await sql.query(`SELECT pos, alt, id, known FROM variants WHERE known IS NOT NULL ORDER BY pos, alt`);
      // every allele row of the 9 matched records (two of them have two ALTs)
      expect(got.length).toBe(11);
      const snv = got.find((x) => Number(x.pos) === 100)!;
      expect(snv.id).toBe('rs100');
      expect(JSON.parse(String(snv.known))).toEqual({ clinvar: true, clinvar_CLNSIG: ['Pathogenic'] });
    } finally {
      await sql.close();
    }
  });

  it('reads databases from a manifest parameter, paths relative to the manifest', () => {
    expect(knownFromParam(['clinvar=dbs/c.vcf.gz:CLNSIG'], 'stages.annotate.params.known', '/m')).toEqual([{ name: 'clinvar', path: '/m/dbs/c.vcf.gz', fields: ['CLNSIG'] }]);
    expect(() => knownFromParam([3], 'stages.annotate.params.known', '/m')).toThrow(/must be a list/);
    expect(() => knownFromParam(['a-b=x.vcf.gz'], 'stages.annotate.params.known', '/m')).toThrow(/stages.annotate.params.known\[0\]: known-variant database name "a-b"/);
  });

  it('an experiment manifest names databases in stages.annotate.params.known, checked before any run', async () => {
    const lake = new LocalLake(join(dir, 'lake-exp'));
    const manifest = (known: string[]) =>
      experimentManifestSchema.parse({
        schema_version: 1,
        kind: 'experiment',
        experiment_id: 'known-check',
        inputs: [{ lake_path: 'raw/patient_id=P1/run_id=r0000000000000000/' }],
        reference: { fasta: fa },
        stages: { annotate: { params: { known } } },
      });
    const opts = { lake, threads: 1, manifestDir: dir, log: silentLogger(), progress: false };
    // relative to the manifest's folder; a missing database fails first, naming the field
    await expect(runExperiment(manifest(['clinvar=absent.vcf.gz:CLNSIG']), opts)).rejects.toMatchObject({
      code: 'missing_file',
      place: { file: join(dir, 'absent.vcf.gz'), field: 'stages.annotate.params.known' },
    });
    await expect(runExperiment(manifest(['clinvar=db.vcf.gz:NOPE']), opts)).rejects.toMatchObject({ code: 'bad_known_field' });
    // good databases pass; the run then stops at the (absent) input
    await expect(runExperiment(manifest(['clinvar=db.vcf.gz:CLNSIG,AF']), opts)).rejects.toMatchObject({ code: 'LAKE_INPUT_MISSING' });
    expect(() => manifest(['no name'])).toThrow(/NAME=db.vcf.gz/);
  });

  it('runs from the CLI with repeated --known', async () => {
    const out = join(dir, 'cli.vcf.gz');
    const program = new Command().exitOverride();
    register(program);
    await program.parseAsync(['node', 'genolake', 'annotate', '--reference', fa, '--gff', gff, '--vcf', input, '--out', out, '--known', `clinvar=${db}:CLNSIG,AF`, '--known', `dbsnp=${dbOwn}`]);
    const text = sh('bcftools', ['view', out]);
    expect(text).toContain('##INFO=<ID=clinvar_CLNSIG,Number=A,');
    expect(text).toContain('##INFO=<ID=dbsnp,Number=0,Type=Flag,');
    const rows = vcfRows(text);
    const snv = rows.find((r) => r[1] === '100')!;
    expect(snv[2]).toBe('rs100');
    expect(rows.filter((r) => infoMap(r[7]).has('clinvar')).length).toBe(9);
    expect(infoMap(snv[7]).get('clinvar_CLNSIG')).toBe('Pathogenic');
    expect(infoMap(snv[7]).has('dbsnp')).toBe(true);
    const bad = new Command().exitOverride();
    register(bad);
    await expect(bad.parseAsync(['node', 'genolake', 'annotate', '--reference', fa, '--gff', gff, '--vcf', input, '--out', join(dir, 'bad.vcf'), '--known', `clinvar=${db}:NOPE`])).rejects.toThrow(/declares no INFO field NOPE/);
  });
});
