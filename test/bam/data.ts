/**
 * Test data for the BAM side: a random 50 kb two-contig genome, `wgsim -N 5000`
 * pairs plus deliberate duplicates (copies of 400 pairs under new names with
 * perturbed qualities) and orphans (200 pairs whose read 2 is replaced by random
 * sequence, so its mate is unmapped) and 100 unmapped pairs (both reads random), aligned with Debian's `bwa mem`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecord, parseSamHeader, parseSamLine, type BamHeader } from '../../src/formats/bam.js';

export interface Dataset {
  dir: string;
  ref: string;
  sam: string;
  header: BamHeader;
  /** Raw records in bwa's output order (name-grouped). */
  records: () => Buffer[];
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string | Buffer } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 30, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
}

export function makeDataset(): Dataset {
  const dir = mkdtempSync(join(tmpdir(), 'genolake-bam-'));
  const rnd = rng(20261123);
  const contig = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += 'ACGT'[Math.floor(rnd() * 4)];
    return s;
  };
  const wrap = (s: string): string => s.match(/.{1,60}/g)!.join('\n');
  const ref = join(dir, 'ref.fa');
  writeFileSync(ref, `>chrA\n${wrap(contig(30000))}\n>chrB\n${wrap(contig(20000))}\n`);
  sh('wgsim', ['-N', '5000', '-1', '100', '-2', '100', '-S', '11', '-e', '0.01', '-r', '0.001', '-R', '0.15', ref, join(dir, 'w1.fq'), join(dir, 'w2.fq')]);
  const q1 = readFileSync(join(dir, 'w1.fq'), 'utf8').trimEnd().split('\n');
  const q2 = readFileSync(join(dir, 'w2.fq'), 'utf8').trimEnd().split('\n');
  const out1: string[] = [];
  const out2: string[] = [];
  const nPairs = q1.length / 4;
  for (let i = 0; i < nPairs; i++) {
    const a = q1.slice(4 * i, 4 * i + 4);
    const b = q2.slice(4 * i, 4 * i + 4);
    if (i % 25 === 7) {
      // orphan: read 2 becomes random sequence
      b[1] = contig(b[1].length);
    } else if (i % 50 === 11) {
      // unmapped pair: both reads random
      a[1] = contig(a[1].length);
      b[1] = contig(b[1].length);
    }
    out1.push(...a);
    out2.push(...b);
    if (i % 12 === 3) {
      // duplicate pair: same sequence, new name, qualities shifted (so scores differ)
      for (let k = 1; k <= (i % 24 === 3 ? 2 : 1); k++) {
        const shift = (q: string, d: number): string => [...q].map((c) => String.fromCharCode(Math.max(35, Math.min(73, c.charCodeAt(0) + d)))).join('');
        const d = ((i + k) % 3) - 1; // -1, 0 or +1: some ties
        out1.push(`${a[0].replace(/\/1$/, '')}_dup${k}/1`, a[1], '+', shift(a[3], d));
        out2.push(`${b[0].replace(/\/2$/, '')}_dup${k}/2`, b[1], '+', shift(b[3], d));
      }
    }
  }
  writeFileSync(join(dir, 'r1.fq'), out1.join('\n') + '\n');
  writeFileSync(join(dir, 'r2.fq'), out2.join('\n') + '\n');
  sh('bwa', ['index', ref]);
  const sam = join(dir, 'aln.sam');
  writeFileSync(sam, sh('bwa', ['mem', '-t', '1', '-v', '1', '-R', '@RG\\tID:rg1\\tSM:s1\\tLB:lib1', ref, join(dir, 'r1.fq'), join(dir, 'r2.fq')]));
  const text = readFileSync(sam, 'utf8');
  const lines = text.split('\n');
  const headerLines = lines.filter((l) => l.startsWith('@'));
  const header = parseSamHeader(headerLines.join('\n') + '\n', sam);
  const refIds = new Map(header.refs.map((r, i) => [r.name, i]));
  const records = (): Buffer[] => {
    const out: Buffer[] = [];
    lines.forEach((l, i) => {
      if (l.length === 0 || l.startsWith('@')) return;
      out.push(encodeRecord(parseSamLine(l, refIds, { file: sam, line: i + 1 })));
    });
    return out;
  };
  return { dir, ref, sam, header, records };
}

/** Record lines of `samtools view` (no header). */
export function viewLines(bam: string, extra: string[] = []): string[] {
  return sh('samtools', ['view', ...extra, bam]).split('\n').filter((l) => l.length > 0);
}

export async function* inBatches(recs: Buffer[], size = 1000): AsyncGenerator<Buffer[]> {
  for (let i = 0; i < recs.length; i += size) yield recs.slice(i, i + size);
}
