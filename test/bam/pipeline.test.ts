/**
 * End-to-end checks of the BAM side against samtools, bwa-aligned wgsim data:
 * SAM text → records → sorted (+ duplicate-marked) BAM + BAI + qc.json.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { register as registerBam } from '../../src/cli/commands/bam.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BamFile } from '@gmod/bam';
import { decodeBai } from '../../src/formats/bai.js';
import { sortToBam, mergeSortedBams, writeSortedBam, type WriteBamResult } from '../../src/formats/bam-sort.js';
import { hasBgzfEof } from '../../src/formats/bgzf.js';
import type { QcReport } from '../../src/formats/qc.js';
import { inBatches, makeDataset, sh, viewLines, type Dataset } from './data.js';

let ds: Dataset;
let sortedOnly: WriteBamResult & { spills: number };
let full: WriteBamResult & { spills: number };
let fullPath: string;

beforeAll(async () => {
  ds = makeDataset();
  sortedOnly = await sortToBam(ds.header, inBatches(ds.records()), join(ds.dir, 'sorted.bam'), { qc: false });
  fullPath = join(ds.dir, 'full.bam');
  full = await sortToBam(ds.header, inBatches(ds.records()), fullPath, { markDuplicates: true, qcPath: join(ds.dir, 'qc.json') });
}, 120_000);

afterAll(() => {
  if (ds) rmSync(ds.dir, { recursive: true, force: true });
});

describe('sorted BAM vs samtools', () => {
  it('passes samtools quickcheck and ends with the BGZF EOF block', async () => {
    sh('samtools', ['quickcheck', '-vvv', join(ds.dir, 'sorted.bam'), fullPath]);
    expect(await hasBgzfEof(fullPath)).toBe(true);
    expect(sh('samtools', ['view', '-H', fullPath])).toMatch(/^@HD\tVN:1\.6\tSO:coordinate\n/);
  });

  it('has exactly the records of `samtools sort` of the same input, in the same order', () => {
    const ref = join(ds.dir, 'samtools-sorted.bam');
    sh('samtools', ['sort', '-o', ref, ds.sam]);
    const mine = viewLines(join(ds.dir, 'sorted.bam'));
    const theirs = viewLines(ref);
    expect(mine.length).toBe(theirs.length);
    expect(mine.length).toBeGreaterThan(10000);
    expect(mine).toEqual(theirs);
  });

  it('gives byte-identical output when a small memory budget forces spills', async () => {
    const small = join(ds.dir, 'sorted-small.bam');
    const res = await sortToBam(ds.header, inBatches(ds.records(), 333), small, { qc: false, memoryBytes: 256 * 1024 });
    expect(res.spills).toBeGreaterThan(5);
    expect(sortedOnly.spills).toBe(0);
    expect(readFileSync(small).equals(readFileSync(join(ds.dir, 'sorted.bam')))).toBe(true);
    expect(readFileSync(small + '.bai').equals(readFileSync(join(ds.dir, 'sorted.bam.bai')))).toBe(true);
  });

  it('merges sorted shard BAMs into the same records as sorting everything at once', async () => {
    const recs = ds.records();
    const shards: string[] = [];
    for (let k = 0; k < 3; k++) {
      const part = recs.filter((_, i) => Math.floor(i / 1500) % 3 === k);
      const p = join(ds.dir, `shard-${k}.bam`);
      await sortToBam(ds.header, inBatches(part), p, { qc: false, index: false });
      shards.push(p);
    }
    const { header, batches } = await mergeSortedBams(shards);
    const merged = join(ds.dir, 'merged.bam');
    await writeSortedBam(header, batches, merged);
    const ref = join(ds.dir, 'samtools-merged.bam');
    sh('samtools', ['merge', '-c', '-p', '-f', ref, ...shards]);
    expect(viewLines(merged)).toEqual(viewLines(ref));
    expect(viewLines(merged).sort()).toEqual(viewLines(join(ds.dir, 'sorted.bam')).sort());
  });
});

describe('tags and sequences survive the pipeline', () => {
  it('samtools calmd finds no NM/MD to change', () => {
    const r = spawnSync('samtools', ['calmd', fullPath, ds.ref], { encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/different (NM|MD)/);
    expect(r.stdout.split('\n').filter((l) => l && !l.startsWith('@'))).toEqual(viewLines(fullPath));
  });
});

describe('BAI', () => {
  it('agrees with samtools idxstats', () => {
    const stats = sh('samtools', ['idxstats', fullPath])
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    const idx = full.index!;
    const fromBai = decodeBai(readFileSync(fullPath + '.bai'));
    expect(stats.length).toBe(idx.refs.length + 1);
    idx.refs.forEach((r, i) => {
      expect(stats[i]).toEqual([r.name, String(r.length), String(r.mapped), String(r.unmapped)]);
      expect(fromBai.refs[i].mapped).toBe(r.mapped);
      expect(fromBai.refs[i].unmapped).toBe(r.unmapped);
    });
    expect(stats[idx.refs.length]).toEqual(['*', '0', '0', String(idx.noCoor)]);
    expect(fromBai.noCoor).toBe(idx.noCoor);
    expect(idx.noCoor).toBeGreaterThan(0);
    // idxstats without the index (counting records) agrees too
    const counted = sh('samtools', ['view', '-c', '-F', '4', fullPath, 'chrA']).trim();
    expect(counted).toBe(String(idx.refs[0].mapped));
  });

  it('answers region queries like a full scan', () => {
    const all = viewLines(fullPath).map((l) => l.split('\t'));
    for (const [ctg, beg, end] of [
      ['chrA', 1000, 1200],
      ['chrA', 16000, 17000],
      ['chrA', 29900, 30000],
      ['chrB', 1, 50],
      ['chrB', 12345, 19000],
    ] as [string, number, number][]) {
      const viaIndex = sh('samtools', ['view', '-c', '-F', '4', fullPath, `${ctg}:${beg}-${end}`]).trim();
      const expected = all.filter((f) => {
        if (f[2] !== ctg || (Number(f[1]) & 4) !== 0) return false;
        const pos = Number(f[3]);
        let span = 0;
        for (const m of f[5].matchAll(/(\d+)([MIDNSHP=X])/g)) if ('MDN=X'.includes(m[2])) span += Number(m[1]);
        return pos <= end && pos + Math.max(span, 1) - 1 >= beg;
      }).length;
      expect(Number(viaIndex)).toBe(expected);
    }
  });
});

describe('@gmod/bam', () => {
  it('reads every record through our BAI', async () => {
    const bam = new BamFile({ bamPath: fullPath, baiPath: fullPath + '.bai' });
    const header = await bam.getHeader();
    expect(header?.some((h) => h.tag === 'SQ')).toBe(true);
    const names: string[] = [];
    let total = 0;
    for (const ref of ds.header.refs) {
      const recs = await bam.getRecordsForRange(ref.name, 0, ref.length);
      total += recs.length;
      for (const r of recs) names.push(`${r.name}:${r.flags}:${r.start}`);
    }
    const placed = viewLines(fullPath).filter((l) => l.split('\t')[2] !== '*');
    expect(total).toBe(placed.length);
    expect(names.sort()).toEqual(
      placed
        .map((l) => {
          const f = l.split('\t');
          return `${f[0]}:${f[1]}:${Number(f[3]) - 1}`;
        })
        .sort(),
    );
  });
});

describe('qc.json', () => {
  it('agrees with samtools flagstat', () => {
    const qc = JSON.parse(readFileSync(join(ds.dir, 'qc.json'), 'utf8')) as QcReport;
    const fs = JSON.parse(sh('samtools', ['flagstat', '-O', 'json', fullPath]));
    expect(qc.flagstat).toEqual(fs);
    expect(qc.flagstat['QC-passed reads'].duplicates).toBeGreaterThan(500);
    expect(qc.flagstat['QC-passed reads'].singletons).toBeGreaterThan(100);
  });

  it('reports insert sizes and coverage consistent with the data', () => {
    const qc = full.qc!;
    // wgsim default insert 500 ± 50
    expect(qc.insertSize.pairs).toBeGreaterThan(4000);
    expect(qc.insertSize.median!).toBeGreaterThan(480);
    expect(qc.insertSize.median!).toBeLessThan(520);
    expect(qc.insertSize.sd!).toBeGreaterThan(35);
    expect(qc.insertSize.sd!).toBeLessThan(65);
    const hTotal = qc.insertSize.histogram.reduce((a, [, k]) => a + k, 0);
    expect(hTotal).toBe(qc.insertSize.pairs);
    // 5000 pairs × 200 bases over 50 kb ≈ 20×, minus clipping/mismatches, dups excluded
    expect(qc.coverage.overall).toBeGreaterThan(17);
    expect(qc.coverage.overall).toBeLessThan(20.5);
  });
});

describe('duplicate marking vs samtools markdup', () => {
  it('marks the same records as samtools fixmate -m | sort | markdup', () => {
    const fixed = join(ds.dir, 'fixmate.bam');
    const sorted = join(ds.dir, 'fixmate-sorted.bam');
    const md = join(ds.dir, 'samtools-markdup.bam');
    sh('samtools', ['fixmate', '-m', ds.sam, fixed]);
    sh('samtools', ['sort', '-o', sorted, fixed]);
    sh('samtools', ['markdup', sorted, md]);
    const key = (l: string): [string, boolean] => {
      const f = l.split('\t');
      const flag = Number(f[1]);
      return [`${f[0]}\t${flag & ~0x400}`, (flag & 0x400) !== 0];
    };
    const theirs = new Map(viewLines(md).map(key));
    const mine = new Map(viewLines(fullPath).map(key));
    expect(mine.size).toBe(theirs.size);
    const diff: string[] = [];
    for (const [k, d] of mine) if (theirs.get(k) !== d) diff.push(`${k} mine=${d} samtools=${theirs.get(k)}`);
    expect(diff).toEqual([]);
  });
});

describe('genolake bam (CLI module)', () => {
  it('sorts SAM text with --markdup/--qc like the library call, and views BAM as samtools does', async () => {
    const program = new Command().exitOverride();
    registerBam(program);
    const outBam = join(ds.dir, 'cli.bam');
    await program.parseAsync(['node', 'genolake', 'bam', 'sort', ds.sam, '--out', outBam, '--markdup', '--qc', join(ds.dir, 'cli-qc.json')]);
    expect(viewLines(outBam)).toEqual(viewLines(fullPath));
    expect(readFileSync(join(ds.dir, 'cli-qc.json'), 'utf8')).toBe(readFileSync(join(ds.dir, 'qc.json'), 'utf8'));
    const chunks: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string) => (chunks.push(c), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(['node', 'genolake', 'bam', 'view', outBam]);
    } finally {
      process.stdout.write = orig;
    }
    expect(chunks.join('').trimEnd().split('\n')).toEqual(viewLines(outBam));
  });

  it('reports a bad SAM line with file, line and field', async () => {
    const bad = join(ds.dir, 'bad.sam');
    const lines = readFileSync(ds.sam, 'utf8').split('\n');
    const first = lines.findIndex((l) => l.length > 0 && !l.startsWith('@'));
    const f = lines[first + 5].split('\t');
    f[5] = '12Q';
    lines[first + 5] = f.join('\t');
    writeFileSync(bad, lines.join('\n'));
    const program = new Command().exitOverride();
    registerBam(program);
    await expect(program.parseAsync(['node', 'genolake', 'bam', 'sort', bad, '--out', join(ds.dir, 'bad.bam')])).rejects.toMatchObject({
      code: 'SAM_PARSE',
      place: { file: bad, line: first + 6, field: 'CIGAR' },
    });
  });
});
