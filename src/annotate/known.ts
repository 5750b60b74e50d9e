/**
 * Known-variant databases (ClinVar, dbSNP, COSMIC-like): tabix-indexed VCFs read by region,
 * never loaded whole. A record of the input gets the IDs and chosen INFO fields of every
 * database record whose allele is the same variant once both sides are normalised:
 * multiallelic records split, common suffix and prefix trimmed, indels left-aligned
 * against the reference (what `bcftools norm -f ref -m-` does to both files before
 * `bcftools annotate`).
 *
 * Work goes by batches of sorted records: nearby records form one window, looked up in
 * each database once; database lines are read ahead (at least READ_AHEAD bases per tabix
 * read) and kept until the records move past them, so batches of one record cost no more
 * reads. A `KnownMatcher` is built from plain options (paths, fields, reference path), so
 * a worker thread can open its own.
 *
 * Output, per database NAME:
 *  - ID: the input's IDs plus the database IDs of every match (';'-joined, no repeats);
 *  - INFO/NAME (Flag): some ALT matched a record of NAME;
 *  - INFO/NAME_FIELD for each chosen FIELD, Type from the database header and Number:
 *    Number=A and Number=1 fields become Number=A (one value per input ALT, '.' where that
 *    ALT did not match; a Number=1 value belongs to every ALT of its database record);
 *    Number=R stays R; Flag stays Flag (set when some match has it); other Numbers ('.',
 *    fixed counts) are per record: the value of the first match in ALT order.
 *    Number=G fields are refused.
 * Header descriptions start with `[known:NAME]`, which the variants table reads into its
 * `known` column.
 * Input chromosome names missing from a database are looked up with the `chr` prefix
 * toggled (and chrM ↔ MT), so `chr1` inputs match a `1` database and back.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { TabixIndexedFile } from '@gmod/tabix';
import { InputError } from '../util/errors.js';
import { IndexedFasta } from './fasta.js';
import { checkSpec, isUrl, type KnownDbSpec } from './known-spec.js';

export { KNOWN_NAME_PATTERN, knownFromParam, parseKnownSpec, resolveKnownSpec, type KnownDbSpec } from './known-spec.js';

/** Everything a matcher needs; plain data, so it can be posted to a worker. */
export interface KnownOptions {
  databases: KnownDbSpec[];
  /** Reference FASTA the input is called against (for left-alignment). */
  reference: string;
}

export interface KnownDbStats {
  name: string;
  /** Input records with at least one matching ALT. */
  matchedRecords: number;
  /** Database records skipped because their REF differs from the reference. */
  refMismatches: number;
  /** Input chromosomes found in the database only under another name (input → database). */
  aliases: Record<string, string>;
  /** Input chromosomes the database has no records for, under any name. */
  missingChroms: string[];
}


/** Records closer than this share a window (one query per database). */
const WINDOW_GAP = 4096;
/** A window never spans more than this, so a dense database (dbSNP) stays small in memory. */
const WINDOW_SPAN = 1 << 16;
/**
 * A database read covers at least this much: the annotator hands over small batches (one
 * transcript's worth of records, or one record), and one tabix read decompresses a whole
 * BGZF block anyway, so later lookups nearby are served from memory.
 */
const READ_AHEAD = 1 << 15;
/** Indel shifting through a repeat stops here (pathological repeats only). */
const MAX_SHIFT = 100_000;

interface InfoDef {
  id: string;
  number: string;
  type: string;
  description: string;
}

/** How a chosen field is written on the output. */
type FieldMode = 'A' | 'R' | 'record' | 'flag';

interface FieldPlan {
  key: string;
  outKey: string;
  mode: FieldMode;
  /** Number=A in the database: pick the value of the matching ALT. */
  perAlt: boolean;
  def: InfoDef;
}

interface OpenDb {
  spec: KnownDbSpec;
  tbx: TabixIndexedFile;
  refNames: Set<string>;
  plans: FieldPlan[];
  stats: KnownDbStats;
  /** input chromosome → database chromosome (null: absent). */
  chromOf: Map<string, string | null>;
  /** Lines of the last region read (records come sorted, so the next lookups are mostly in it). */
  cache: DbCache | null;
  /** Highest file offset of a REF-mismatch line counted so far. */
  mismatchSeen: number;
}

/** One database line in the read-ahead cache; parsed and normalised on first use. */
interface DbLine {
  /** 0-based start and end (exclusive) as tabix sees the record. */
  pos: number;
  end: number;
  line: string;
  off: number;
  cols?: string[];
  /** [normalised allele key, 0-based ALT index]. */
  norm?: Array<[string, number]>;
}

interface DbCache {
  /** Input chromosome name the lines were read for. */
  chrom: string;
  beg: number;
  end: number;
  lines: DbLine[];
  maxLen: number;
}

/** A database record that matched one input ALT. */
interface Hit {
  ids: string[];
  info: string;
  /** 1-based ALT index in the database record. */
  dbAlt: number;
  /** Line identity (file offset), to count a database record once per input record. */
  line: number;
}

/** Parses the `##INFO=<…>` lines of a VCF header. */
export function parseInfoDefs(header: string): Map<string, InfoDef> {
  const out = new Map<string, InfoDef>();
  for (const line of header.split('\n')) {
    if (!line.startsWith('##INFO=<')) continue;
    const body = line.slice(8, line.lastIndexOf('>'));
    const get = (k: string) => new RegExp(`(?:^|,)${k}=("(?:[^"\\\\]|\\\\.)*"|[^,]*)`).exec(body)?.[1];
    const id = get('ID');
    if (!id) continue;
    const desc = get('Description') ?? '""';
    out.set(id, { id, number: get('Number') ?? '.', type: get('Type') ?? 'String', description: desc.startsWith('"') ? desc.slice(1, -1) : desc });
  }
  return out;
}

/** Reference access for normalisation: one cached window, refilled when a read leaves it. */
class RefWindow {
  private chrom = '';
  private beg = 0;
  private seq = '';
  constructor(private readonly fa: IndexedFasta | null) {}

  has(chrom: string): boolean {
    return !!this.fa && this.fa.has(chrom);
  }

  /** Loads [beg, end) ahead of a batch of reads. */
  prefetch(chrom: string, beg: number, end: number): void {
    if (!this.fa || !this.fa.has(chrom)) return;
    this.chrom = chrom;
    this.beg = Math.max(0, beg);
    this.seq = this.fa.fetch(chrom, this.beg, Math.max(this.beg, end - 1));
  }

  /** Base at 0-based `pos` ('' outside the sequence). */
  base(chrom: string, pos: number): string {
    return this.slice(chrom, pos, pos + 1);
  }

  /** Sequence over [beg, end), clipped to the sequence. */
  slice(chrom: string, beg: number, end: number): string {
    if (!this.fa || beg < 0) return '';
    if (chrom !== this.chrom || beg < this.beg || end > this.beg + this.seq.length) {
      const len = this.fa.length(chrom) ?? 0;
      if (beg >= len) return '';
      this.prefetch(chrom, beg - 1024, Math.min(len, Math.max(end, beg + 65536)));
    }
    return this.seq.slice(beg - this.beg, end - this.beg);
  }
}

export interface NormAllele {
  /** 0-based position of the first REF base. */
  pos: number;
  ref: string;
  alt: string;
}

/**
 * One REF/ALT pair in its normal form: common suffix and prefix trimmed, indels shifted
 * left as far as the reference allows (the unique representation `bcftools norm` and vt
 * produce). Without the reference sequence, only trimming that keeps a base on both sides.
 */
export function normalizeAllele(pos: number, ref: string, alt: string, base: ((p: number) => string) | null): NormAllele {
  if (base) {
    for (let guard = 0; guard < MAX_SHIFT; guard++) {
      let changed = false;
      if (ref.length && alt.length && ref[ref.length - 1] === alt[alt.length - 1]) {
        ref = ref.slice(0, -1);
        alt = alt.slice(0, -1);
        changed = true;
      }
      if (!ref.length || !alt.length) {
        const b = pos > 0 ? base(pos - 1) : '';
        if (!b) {
          // at the sequence start: pad on the right instead (VCF allows it there)
          const n = base(pos + Math.max(ref.length, 0));
          ref += n;
          alt += n;
          break;
        }
        pos--;
        ref = b + ref;
        alt = b + alt;
        changed = true;
      }
      if (!changed) break;
    }
  } else {
    while (ref.length > 1 && alt.length > 1 && ref[ref.length - 1] === alt[alt.length - 1]) {
      ref = ref.slice(0, -1);
      alt = alt.slice(0, -1);
    }
  }
  let k = 0;
  while (ref.length - k >= 2 && alt.length - k >= 2 && ref[k] === alt[k]) k++;
  return { pos: pos + k, ref: ref.slice(k), alt: alt.slice(k) };
}

/** End (exclusive) of the right-most placement of a normalised indel: how far to look for other spellings of it. */
function rightEnd(n: NormAllele, base: ((p: number) => string) | null): number {
  let end = n.pos + n.ref.length;
  if (!base || n.ref[0] !== n.alt[0] || (n.ref.length > 1) === (n.alt.length > 1)) return end;
  if (n.ref.length > 1) {
    // deletion of [q, q+len): slides while the base after it equals its first base
    const len = n.ref.length - 1;
    let q = n.pos + 1;
    for (let g = 0; g < MAX_SHIFT; g++) {
      const a = base(q), b = base(q + len);
      if (!a || a !== b) break;
      q++;
    }
    end = q + len;
  } else {
    // insertion after q: slides while the next base equals the inserted sequence's first base (rotating it)
    let ins = n.alt.slice(1);
    let q = n.pos;
    for (let g = 0; g < MAX_SHIFT; g++) {
      const b = base(q + 1);
      if (!b || b !== ins[0]) break;
      ins = ins.slice(1) + ins[0];
      q++;
    }
    end = q + 2;
  }
  return end;
}

const usableAllele = (a: string) => a !== '' && a !== '.' && a !== '*' && /^[ACGTN]+$/.test(a);

/** Chromosome names to try in a database for an input chromosome, in order. */
function chromCandidates(c: string): string[] {
  const out = [c];
  if (/^chr/i.test(c)) out.push(c.slice(3));
  else out.push(`chr${c}`);
  if (/^(chr)?MT?$/i.test(c)) out.push('MT', 'chrM', 'M', 'chrMT');
  return out;
}

/** Opens and checks every database (names, files, indexes, fields); the matcher's first step. */
async function openAll(specs: KnownDbSpec[]): Promise<OpenDb[]> {
  const names = new Set<string>();
  const outKeys = new Map<string, string>();
  const dbs: OpenDb[] = [];
  for (const spec of specs) {
    checkSpec(spec);
    if (names.has(spec.name)) throw new InputError('bad_known_name', `known-variant database name ${spec.name} is given twice`, { file: spec.path });
    names.add(spec.name);
    dbs.push(await openDb(spec));
  }
  for (const db of dbs) {
    for (const k of [db.spec.name, ...db.plans.map((p) => p.outKey)]) {
      const other = outKeys.get(k);
      if (other !== undefined) throw new InputError('bad_known_name', `INFO key ${k} of database ${db.spec.name} clashes with database ${other}; choose other names`, { file: db.spec.path });
      outKeys.set(k, db.spec.name);
    }
  }
  return dbs;
}

/**
 * Checks databases up front (file, index, header, fields) without a reference: a pipeline
 * calls it before its first stage, so a typo fails in seconds, not after alignment.
 */
export async function checkKnownDatabases(specs: KnownDbSpec[]): Promise<void> {
  await openAll(specs);
}

export class KnownMatcher {
  private constructor(
    private readonly dbs: OpenDb[],
    private readonly ref: RefWindow,
    private readonly ownFasta: IndexedFasta | null,
  ) {}

  /**
   * Opens every database: checks its file and index, reads its header, checks the chosen
   * fields against its ##INFO lines. `shared.fasta` reuses an open reference.
   */
  static async open(opts: KnownOptions, shared: { fasta?: IndexedFasta } = {}): Promise<KnownMatcher> {
    const dbs = await openAll(opts.databases);
    const fasta = shared.fasta ?? (await IndexedFasta.open(opts.reference));
    return new KnownMatcher(dbs, new RefWindow(fasta), shared.fasta ? null : fasta);
  }

  /** ##INFO lines for the output header. */
  headerLines(): string[] {
    const out: string[] = [];
    for (const db of this.dbs) {
      // "[known:NAME]" marks the keys for the variants table's `known` column (src/variants/annotation.ts)
      const tag = `[known:${db.spec.name}]`;
      const file = basename(db.spec.path);
      out.push(`##INFO=<ID=${db.spec.name},Number=0,Type=Flag,Description="${tag} Some ALT matches a record of ${file}">`);
      for (const p of db.plans) {
        const number = p.mode === 'A' ? 'A' : p.mode === 'R' ? 'R' : p.mode === 'flag' ? '0' : p.def.number;
        out.push(`##INFO=<ID=${p.outKey},Number=${number},Type=${p.def.type},Description="${tag} ${p.def.description} (${p.key} of ${file})">`);
      }
    }
    return out;
  }

  /** The input header line defines a key this matcher writes (so it is replaced, not duplicated). */
  replacesHeaderLine(line: string): boolean {
    if (!line.startsWith('##INFO=<ID=')) return false;
    const id = line.slice(11, line.indexOf(',', 11));
    return this.dbs.some((db) => id === db.spec.name || db.plans.some((p) => p.outKey === id));
  }

  stats(): KnownDbStats[] {
    return this.dbs.map((d) => ({ ...d.stats, aliases: { ...d.stats.aliases }, missingChroms: [...d.stats.missingChroms] }));
  }

  close(): void {
    this.ownFasta?.close();
  }

  /**
   * Annotates a batch of sorted VCF records in place: `rows[i]` are the columns of one
   * record; column 3 (ID) and 8 (INFO) are rewritten. Nearby records share one query per database.
   */
  async annotateRows(rows: string[][]): Promise<void> {
    if (!this.dbs.length || !rows.length) return;
    interface Win {
      chrom: string;
      lo: number;
      hi: number;
      /** normalised allele key → [row, 0-based ALT index] */
      want: Map<string, Array<[number, number]>>;
    }
    const wins: Win[] = [];
    let cur: Win | null = null;
    const base = (chrom: string) => (this.ref.has(chrom) ? (p: number) => this.ref.base(chrom, p) : null);
    for (let r = 0; r < rows.length; r++) {
      const c = rows[r];
      const chrom = c[0];
      const pos = Number(c[1]) - 1;
      const ref = c[3].toUpperCase();
      if (!usableAllele(ref) || c[4] === '.') continue;
      const b = base(chrom);
      let lo = pos, hi = pos + ref.length;
      const keys: Array<[string, number]> = [];
      c[4].split(',').forEach((a0, ai) => {
        const alt = a0.toUpperCase();
        if (!usableAllele(alt) || alt === ref) return;
        const n = normalizeAllele(pos, ref, alt, b);
        keys.push([`${n.pos}:${n.ref}:${n.alt}`, ai]);
        lo = Math.min(lo, n.pos);
        hi = Math.max(hi, rightEnd(n, b));
      });
      if (!keys.length) continue;
      lo = Math.max(0, lo - 1);
      hi += 1;
      if (!cur || cur.chrom !== chrom || lo > cur.hi + WINDOW_GAP || Math.max(hi, cur.hi) - cur.lo > WINDOW_SPAN) {
        cur = { chrom, lo, hi, want: new Map() };
        wins.push(cur);
      }
      cur.lo = Math.min(cur.lo, lo);
      cur.hi = Math.max(cur.hi, hi);
      for (const [k, ai] of keys) {
        let l = cur.want.get(k);
        if (!l) cur.want.set(k, (l = []));
        l.push([r, ai]);
      }
    }
    // hits[db][row] → per input ALT, the matching database records
    const hits: Array<Map<number, Hit[][]>> = this.dbs.map(() => new Map());
    for (const w of wins) {
      await Promise.all(this.dbs.map((db, d) => this.queryWindow(db, w, hits[d], rows)));
    }
    for (let r = 0; r < rows.length; r++) {
      if (!hits.some((h) => h.has(r))) continue;
      const c = rows[r];
      const nAlt = c[4].split(',').length;
      const ids = c[2] === '.' || c[2] === '' ? [] : c[2].split(';');
      let info = c[7];
      this.dbs.forEach((db, d) => {
        const perAlt = hits[d].get(r);
        if (!perAlt) return;
        db.stats.matchedRecords++;
        for (const hs of perAlt) for (const h of hs ?? []) for (const id of h.ids) if (!ids.includes(id)) ids.push(id);
        info = putInfo(info, db.spec.name, null);
        for (const p of db.plans) {
          const v = fieldValue(p, perAlt, nAlt);
          if (v !== null) info = putInfo(info, p.outKey, p.mode === 'flag' ? null : v);
        }
      });
      if (ids.length) c[2] = ids.join(';');
      c[7] = info;
    }
  }

  /** Database lines overlapping [lo, hi) of `chrom`, from the read-ahead cache (refilled from the file when it does not cover them). */
  private async dbLines(db: OpenDb, chrom: string, dbChrom: string, lo: number, hi: number): Promise<DbCache> {
    const c = db.cache;
    if (c && c.chrom === chrom && c.beg <= lo && hi <= c.end) return c;
    const beg = lo, end = Math.max(hi, lo + READ_AHEAD);
    const lines: DbLine[] = [];
    let maxLen = 1;
    try {
      await db.tbx.getLines(dbChrom, beg, end, (line, off, b, e) => {
        lines.push({ pos: b, end: e, line, off });
        if (e - b > maxLen) maxLen = e - b;
      });
    } catch (e) {
      throw new InputError('bad_known_db', `cannot read known-variant database ${db.spec.name} at ${dbChrom}:${beg + 1}-${end}: ${(e as Error).message}`, { file: db.spec.path }, { cause: e });
    }
    const got: DbCache = { chrom, beg, end, lines, maxLen };
    db.cache = got;
    return got;
  }

  /** Normalised alleles of a database line, once ([] when unusable, e.g. its REF is not the reference's). */
  private normOf(db: OpenDb, chrom: string, d: DbLine, b: ((p: number) => string) | null): Array<[string, number]> {
    if (d.norm) return d.norm;
    d.norm = [];
    const c = (d.cols = d.line.split('\t', 8));
    if (c.length < 8) return d.norm;
    const ref = c[3].toUpperCase();
    if (!usableAllele(ref)) return d.norm;
    if (b) {
      const real = this.ref.slice(chrom, d.pos, d.pos + ref.length);
      let bad = real.length !== ref.length;
      for (let i = 0; !bad && i < ref.length; i++) bad = ref[i] !== 'N' && real[i] !== 'N' && ref[i] !== real[i];
      if (bad) {
        // a line may be read again with a later cache fill: count it once
        if (d.off > db.mismatchSeen) db.stats.refMismatches++;
        db.mismatchSeen = Math.max(db.mismatchSeen, d.off);
        return d.norm;
      }
    }
    const alts = c[4].split(',');
    for (let j = 0; j < alts.length; j++) {
      const alt = alts[j].toUpperCase();
      if (!usableAllele(alt) || alt === ref) continue;
      const n = normalizeAllele(d.pos, ref, alt, b);
      d.norm.push([`${n.pos}:${n.ref}:${n.alt}`, j]);
    }
    return d.norm;
  }

  private async queryWindow(db: OpenDb, w: { chrom: string; lo: number; hi: number; want: Map<string, Array<[number, number]>> }, hits: Map<number, Hit[][]>, rows: string[][]): Promise<void> {
    const dbChrom = this.dbChrom(db, w.chrom);
    if (dbChrom === null) return;
    const b = this.ref.has(w.chrom) ? (p: number) => this.ref.base(w.chrom, p) : null;
    const cache = await this.dbLines(db, w.chrom, dbChrom, w.lo, w.hi);
    const lines = cache.lines;
    // first line that can reach lo: lines are sorted by start, none longer than maxLen
    let i0 = 0, i1 = lines.length;
    while (i0 < i1) {
      const m = (i0 + i1) >> 1;
      if (lines[m].pos < w.lo - cache.maxLen) i0 = m + 1;
      else i1 = m;
    }
    for (let i = i0; i < lines.length && lines[i].pos < w.hi; i++) {
      const d = lines[i];
      if (d.end <= w.lo) continue;
      for (const [key, j] of this.normOf(db, w.chrom, d, b)) {
        const want = w.want.get(key);
        if (!want) continue;
        const c = d.cols!;
        for (const [r, ai] of want) {
          let perAlt = hits.get(r);
          if (!perAlt) hits.set(r, (perAlt = Array.from({ length: rows[r][4].split(',').length }, () => [])));
          if (perAlt[ai].some((h) => h.line === d.off)) continue;
          perAlt[ai].push({ ids: c[2] === '.' || !c[2] ? [] : c[2].split(';'), info: c[7], dbAlt: j + 1, line: d.off });
        }
      }
    }
  }

  private dbChrom(db: OpenDb, chrom: string): string | null {
    let got = db.chromOf.get(chrom);
    if (got !== undefined) return got;
    got = chromCandidates(chrom).find((n) => db.refNames.has(n)) ?? null;
    db.chromOf.set(chrom, got);
    if (got === null) db.stats.missingChroms.push(chrom);
    else if (got !== chrom) db.stats.aliases[chrom] = got;
    return got;
  }
}

/** Sets an INFO key (a flag when `value` is null), replacing any earlier value. */
function putInfo(info: string, key: string, value: string | null): string {
  const parts = info === '.' || info === '' ? [] : info.split(';').filter((kv) => kv !== key && !kv.startsWith(`${key}=`));
  parts.push(value === null ? key : `${key}=${value}`);
  return parts.join(';');
}

/** Value of one INFO key in an INFO column; undefined when absent, '' for a flag. */
function infoValue(info: string, key: string): string | undefined {
  if (info === '.' || !info.includes(key)) return undefined;
  for (const kv of info.split(';')) {
    if (kv === key) return '';
    if (kv.length > key.length && kv.startsWith(key) && kv[key.length] === '=') return kv.slice(key.length + 1);
  }
  return undefined;
}

/** The output value of one field for one input record; null when nothing is known. */
function fieldValue(p: FieldPlan, perAlt: Hit[][], nAlt: number): string | null {
  const pick = (h: Hit, idx: number): string | undefined => {
    const v = infoValue(h.info, p.key);
    if (v === undefined || v === '' || v === '.') return undefined;
    if (p.mode === 'record' || (p.mode === 'A' && !p.perAlt)) return v;
    const parts = v.split(',');
    const x = parts[idx];
    return x === undefined || x === '.' || x === '' ? undefined : x;
  };
  if (p.mode === 'flag') return perAlt.some((hs) => hs.some((h) => infoValue(h.info, p.key) !== undefined)) ? '' : null;
  if (p.mode === 'record') {
    for (const hs of perAlt) for (const h of hs) {
      const v = pick(h, 0);
      if (v !== undefined) return v;
    }
    return null;
  }
  const vals: string[] = [];
  let any = false;
  for (let ai = 0; ai < nAlt; ai++) {
    let v: string | undefined;
    for (const h of perAlt[ai] ?? []) if ((v = pick(h, p.mode === 'R' ? h.dbAlt : h.dbAlt - 1)) !== undefined) break;
    if (v !== undefined) any = true;
    vals.push(v ?? '.');
  }
  if (!any) return null;
  if (p.mode === 'R') {
    let refV: string | undefined;
    for (const hs of perAlt) for (const h of hs) if (refV === undefined) refV = pick(h, 0);
    vals.unshift(refV ?? '.');
  }
  return vals.join(',');
}

async function openDb(spec: KnownDbSpec): Promise<OpenDb> {
  const remote = isUrl(spec.path);
  let tbx: TabixIndexedFile;
  if (remote) {
    tbx = new TabixIndexedFile({ url: spec.path, tbiUrl: `${spec.path}.tbi` });
  } else {
    if (!existsSync(spec.path)) throw new InputError('missing_file', `known-variant database ${spec.name} not found`, { file: spec.path });
    if (existsSync(`${spec.path}.tbi`)) tbx = new TabixIndexedFile({ path: spec.path, tbiPath: `${spec.path}.tbi` });
    else if (existsSync(`${spec.path}.csi`)) tbx = new TabixIndexedFile({ path: spec.path, csiPath: `${spec.path}.csi` });
    else {
      throw new InputError('missing_index', `known-variant database ${spec.name} has no tabix index (${spec.path}.tbi); make one with \`tabix -p vcf ${spec.path}\` (the file must be BGZF-compressed and sorted)`, { file: spec.path });
    }
  }
  let header: string;
  let refNames: string[];
  let format: string;
  try {
    format = (await tbx.getMetadata()).format;
    header = await tbx.getHeader();
    refNames = await tbx.getReferenceSequenceNames();
  } catch (e) {
    const what = remote ? `${spec.name} or its index ${spec.path}.tbi` : spec.name;
    throw new InputError('bad_known_db', `cannot read known-variant database ${what} (a BGZF VCF with a tabix index is needed): ${(e as Error).message}`, { file: spec.path }, { cause: e });
  }
  if (format !== 'VCF' || !header.startsWith('##fileformat=VCF')) {
    throw new InputError('bad_known_db', `known-variant database ${spec.name} is not an indexed VCF (index format ${format})`, { file: spec.path });
  }
  const defs = parseInfoDefs(header);
  const plans: FieldPlan[] = [];
  for (const key of [...new Set(spec.fields)]) {
    const def = defs.get(key);
    if (!def) {
      const known = [...defs.keys()];
      throw new InputError('bad_known_field', `known-variant database ${spec.name} declares no INFO field ${key} (its INFO fields: ${known.slice(0, 30).join(', ') || 'none'}${known.length > 30 ? ', …' : ''})`, { file: spec.path, field: key });
    }
    let mode: FieldMode;
    if (def.type === 'Flag') mode = 'flag';
    else if (def.number === 'A' || def.number === '1') mode = 'A';
    else if (def.number === 'R') mode = 'R';
    else if (def.number === 'G') throw new InputError('bad_known_field', `known-variant database ${spec.name}: INFO field ${key} has Number=G (per genotype), which cannot be carried over to other records`, { file: spec.path, field: key });
    else mode = 'record';
    plans.push({ key, outKey: `${spec.name}_${key}`, mode, perAlt: def.number === 'A', def });
  }
  return {
    spec,
    tbx,
    refNames: new Set(refNames),
    plans,
    chromOf: new Map(),
    cache: null,
    mismatchSeen: -1,
    stats: { name: spec.name, matchedRecords: 0, refMismatches: 0, aliases: {}, missingChroms: [] },
  };
}
