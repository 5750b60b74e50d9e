import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The public csq conformance cases: ../shared/conformance/csq beside the checkout when it is
 * there (the maintained copy), else the copy in test/fixtures (same files, MIT/Expat data
 * from the bcftools test suite), so a bare clone tests the same cases.
 */
const SHARED_CONFORMANCE = join(import.meta.dirname, '../../../shared/conformance/csq');
export const CONFORMANCE_DIR =
  process.env.GENOLAKE_CSQ_CONFORMANCE ?? (existsSync(SHARED_CONFORMANCE) ? SHARED_CONFORMANCE : join(import.meta.dirname, '../fixtures/csq-conformance'));

export interface CsqCase {
  name: string;
  fasta: string;
  gff: string;
  vcf: string;
}

/** Every (folder, vcf) pair of the conformance suite; the GFF named like the VCF wins. */
export function conformanceCases(dir = CONFORMANCE_DIR): CsqCase[] {
  const out: CsqCase[] = [];
  if (!existsSync(dir)) return out;
  for (const d of readdirSync(dir).sort()) {
    const sub = join(dir, d);
    if (!existsSync(join(sub, `${d}.fa`))) continue;
    const files = readdirSync(sub).sort();
    for (const v of files.filter((f) => f.endsWith('.vcf'))) {
      const base = v.replace(/\.vcf$/, '');
      const gff = files.includes(`${base}.gff`) ? `${base}.gff` : files.find((f) => f.endsWith('.gff'));
      if (!gff) continue;
      out.push({ name: `${d}/${base}`, fasta: join(sub, `${d}.fa`), gff: join(sub, gff), vcf: join(sub, v) });
    }
  }
  return out;
}

/** One conformance case per distinct gene model (GFF file), in case order. */
export function conformanceModels(dir = CONFORMANCE_DIR): CsqCase[] {
  const seen = new Set<string>();
  return conformanceCases(dir).filter((c) => !seen.has(c.gff) && seen.add(c.gff));
}

export function infoMap(info: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of info.split(';')) {
    const i = kv.indexOf('=');
    if (i < 0) m.set(kv, '');
    else m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** Data lines of a VCF text: [cols]. */
export function vcfRows(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split('\t'));
}

export function bcsqSet(info: string): string[] {
  const v = infoMap(info).get('BCSQ');
  return v ? v.split(',').sort() : [];
}

/** EXP scoring: records with EXP= must carry exactly that set of BCSQ strings ('.' = none). */
export function scoreExp(outText: string): { pass: number; total: number; fails: string[] } {
  let pass = 0, total = 0;
  const fails: string[] = [];
  for (const c of vcfRows(outText)) {
    const m = infoMap(c[7]);
    const exp = m.get('EXP');
    if (exp === undefined) continue;
    total++;
    const want = exp === '.' ? [] : exp.split(',').sort();
    const got = bcsqSet(c[7]);
    if (JSON.stringify(want) === JSON.stringify(got)) pass++;
    else fails.push(`${c[0]}:${c[1]} ${c[3]}>${c[4]} expected ${want.join(',') || '.'} got ${got.join(',') || '.'}`);
  }
  return { pass, total, fails };
}


/** Runs Debian's bcftools csq; returns the output VCF text. */
export function runBcftoolsCsq(fasta: string, gff: string, vcf: string, extra: string[] = []): string {
  if (!existsSync(`${fasta}.fai`)) execFileSync('samtools', ['faidx', fasta]);
  return execFileSync('bcftools', ['csq', '-f', fasta, '-g', gff, ...extra, vcf], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 }).toString();
}

export function readText(p: string): string {
  return readFileSync(p, 'utf8');
}

/** FASTA records by name, upper case (the case files are small). */
export function readFasta(path: string): Map<string, string> {
  const seqs = new Map<string, string>();
  let name = '';
  let parts: string[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.startsWith('>')) {
      if (name) seqs.set(name, parts.join('').toUpperCase());
      name = line.slice(1).split(/\s/)[0];
      parts = [];
    } else parts.push(line.trim());
  }
  if (name) seqs.set(name, parts.join('').toUpperCase());
  return seqs;
}
