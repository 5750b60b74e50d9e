/**
 * Streaming VCF annotator: reads records in order, annotates each allele against the
 * overlapping transcripts and writes INFO/BCSQ (bcftools-style) and INFO/CSQ (VEP-style).
 *
 * Haplotype mode (default): on each haplotype, alleles that change codons in common in
 * one transcript (or follow a frameshift that is not yet restored) are applied together;
 * the full annotation goes to the record of the group's first allele in transcript order,
 * the others get `@<POS>` of it; after a new stop codon, later entries are prefixed `*`.
 * Haplotypes come from GT (taken as phased, in the order written); without genotypes all
 * alleles form one haplotype. INFO/BCSQ is the union over haplotypes; with samples a
 * FORMAT/BCSQ bitmask (bit 2*i+h: entry i on haplotype h) is added.
 * Local mode (`local: true`): every record alone.
 */
import { once } from 'node:events';
import { createWriteStream, existsSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BgzfWriter, fileSink } from '../formats/bgzf.js';
import { InputError } from '../util/errors.js';
import {
  cdsEdit, codingEffect, type Change, type FetchSeq, joinTerms, place, startRetained, type Term, touchesCodingEdge, touchesStart, touchesStop, trimAllele, TxContext,
} from './consequence.js';
import { IndexedFasta } from './fasta.js';
import { type GeneModel, loadGeneModel, type Transcript } from './genemodel.js';
import { csqHeader, vepEntry } from './vep.js';

export interface AnnotateOptions {
  reference: string;
  gff?: string;
  gtf?: string;
  vcf: string;
  out: string;
  /** One record at a time (no compound consequences). */
  local?: boolean;
  /** Also write the VEP-style INFO/CSQ field (default true). */
  vep?: boolean;
  /** Preloaded gene model (else read from gff/gtf). */
  model?: GeneModel;
}

export interface AnnotateStats {
  records: number;
  annotated: number;
}

/** One VCF record in flight. */
interface Rec {
  idx: number;
  line: string;
  cols: string[];
  chrom: string;
  pos: number;
  alleles: Array<{ alt: string; ch: Change } | null>;
  /** BCSQ entries (ordered, unique). */
  bcsq: string[];
  csq: string[];
  /** Per sample, the allele index (0 = REF, -1 = missing) on each haplotype; null without genotypes. */
  gt: number[][] | null;
  /** BCSQ entries seen on each haplotype ("sample:hap"), for FORMAT/BCSQ. */
  hapEntries: Map<string, Set<string>>;
}

/** Records a BCSQ entry on a record, and on the haplotypes (of its samples) that carry allele `ai`. */
function note(r: Rec, e: string, ai: number, hap?: [number, number] | null): void {
  pushUnique(r.bcsq, e);
  if (!r.gt) return;
  const put = (s: number, h: number) => {
    const k = `${s}:${h}`;
    let set = r.hapEntries.get(k);
    if (!set) r.hapEntries.set(k, (set = new Set()));
    set.add(e);
  };
  if (hap) put(hap[0], hap[1]);
  else r.gt.forEach((g, s) => g.forEach((a, h) => a === ai + 1 && put(s, h)));
}

/** FORMAT/BCSQ: per sample, bit 2*i+h set when INFO/BCSQ entry i (i < 15) is on haplotype h. */
function formatMasks(r: Rec): string[] {
  return r.gt!.map((g, s) => {
    let m = 0;
    for (let h = 0; h < Math.min(2, g.length); h++) {
      const set = r.hapEntries.get(`${s}:${h}`);
      if (!set) continue;
      r.bcsq.forEach((e, i) => {
        if (i < 15 && set.has(e)) m |= 1 << (2 * i + h);
      });
    }
    return String(m >>> 0);
  });
}

/** Haplotypes of a chunk as [sample, haplotype]; [null] (one haplotype carrying everything) without genotypes. */
function haplotypes(chunk: Rec[]): Array<[number, number] | null> {
  let ns = 0, ploidy = 0;
  for (const r of chunk) {
    if (!r.gt) continue;
    ns = Math.max(ns, r.gt.length);
    for (const g of r.gt) ploidy = Math.max(ploidy, g.length);
  }
  if (!ns) return [null];
  const out: Array<[number, number]> = [];
  for (let s = 0; s < ns; s++) for (let h = 0; h < ploidy; h++) out.push([s, h]);
  return out;
}

/** The allele is carried by some haplotype (always, without genotypes). */
function carried(r: Rec, ai: number): boolean {
  return !r.gt || r.gt.some((g) => g.includes(ai + 1));
}

/** A coding hit waiting for haplotype grouping. */
interface Hit {
  rec: Rec;
  ai: number;
  ctx: TxContext;
  edit: { c1: number; c2: number; ins: string };
  k1: number;
  k2: number;
  delta: number;
  spliceMerged: Set<Term>;
}

const CHUNK_MAX = 20000;

export async function annotateVcf(opts: AnnotateOptions): Promise<AnnotateStats> {
  if (!!opts.gff === !!opts.gtf && !opts.model) throw new InputError('bad_usage', 'give exactly one of --gff or --gtf');
  if (!existsSync(opts.vcf)) throw new InputError('missing_file', 'VCF not found', { file: opts.vcf });
  const model = opts.model ?? (await loadGeneModel((opts.gff ?? opts.gtf)!, opts.gtf ? 'gtf' : 'gff3'));
  const fa = await IndexedFasta.open(opts.reference);
  const tmp = join(dirname(opts.out), `.tmp-${process.pid}-${Date.now()}-${basename(opts.out)}`);
  const writer = await openWriter(tmp, /\.(gz|bgz)$/i.test(opts.out));
  const withVep = opts.vep !== false;
  const stats: AnnotateStats = { records: 0, annotated: 0 };
  const ctxCache = new Map<Transcript, TxContext>();
  // reference reads go through a window cache (records are sorted, so reads are local)
  let win = { chrom: '', beg: 0, seq: '' };
  const fetch = (c: string, b: number, e: number): string => {
    if (c !== win.chrom || b < win.beg || e >= win.beg + win.seq.length) {
      if (e - b > 1 << 18) return fa.fetch(c, b, e);
      const wb = Math.max(0, b - 4096);
      win = { chrom: c, beg: wb, seq: fa.fetch(c, wb, wb + (1 << 20)) };
      if (e >= win.beg + win.seq.length) return fa.fetch(c, b, e);
    }
    return win.seq.slice(b - win.beg, e + 1 - win.beg);
  };
  const ctxOf = (t: Transcript) => {
    let c = ctxCache.get(t);
    if (!c) {
      c = new TxContext(t, fetch);
      ctxCache.set(t, c);
    }
    return c;
  };
  const { lineBatches } = await import('./vcf.js');
  let chunk: Rec[] = [];
  let chunkChrom = '';
  let chunkReach = -1;
  let lastChrom = '';
  let lastPos = -1;
  const seenChroms = new Set<string>();
  let lineNo = 0;
  let recNo = 0;
  let headerDone = false;

  const flush = async () => {
    if (!chunk.length) return;
    annotateChunk(chunk, model, ctxOf, !!opts.local, withVep, fetch);
    let text = '';
    for (const r of chunk) {
      if (r.bcsq.length || r.csq.length) stats.annotated++;
      let info = r.cols[7];
      if (r.bcsq.length) info = setInfoKey(info, 'BCSQ', r.bcsq.join(','));
      if (withVep && r.csq.length) info = setInfoKey(info, 'CSQ', r.csq.join(','));
      r.cols[7] = info;
      if (r.gt && r.bcsq.length) {
        const masks = formatMasks(r);
        r.cols[8] += ':BCSQ';
        for (let i = 0; i < masks.length; i++) r.cols[9 + i] += `:${masks[i]}`;
      }
      text += r.cols.join('\t') + '\n';
    }
    await writer.write(text);
    ctxCache.clear();
    chunk = [];
  };

  try {
    for await (const batch of lineBatches(opts.vcf)) {
      for (const line of batch) {
        lineNo++;
        if (!headerDone) {
          if (line.startsWith('##')) {
            if (!/^##(INFO=<ID=(BCSQ|CSQ)|FORMAT=<ID=BCSQ),/.test(line)) await writer.write(line + '\n');
            continue;
          }
          if (line.startsWith('#CHROM')) {
            await writer.write('##INFO=<ID=BCSQ,Number=.,Type=String,Description="Local consequence annotation from genolake annotate. Format: Consequence|gene|transcript|biotype|strand|amino_acid_change|dna_change">\n');
            if (line.split('\t').length > 9) await writer.write('##FORMAT=<ID=BCSQ,Number=.,Type=Integer,Description="Bitmask of indexes to INFO/BCSQ, with interleaved haplotypes (bit 2*i+h: entry i on haplotype h)">\n');
            if (withVep) await writer.write(csqHeader() + '\n');
            await writer.write(line + '\n');
            headerDone = true;
            continue;
          }
          throw new InputError('bad_vcf', 'missing #CHROM header line', { file: opts.vcf, line: lineNo });
        }
        if (!line) continue;
        recNo++;
        const cols = line.split('\t');
        const rec = parseRec(cols, line, recNo, lineNo, opts.vcf, fa, fetch);
        stats.records++;
        if (rec.chrom === lastChrom && rec.pos < lastPos) {
          throw new InputError('unsorted_vcf', `records are not sorted: POS ${rec.pos + 1} after ${lastPos + 1}`, { file: opts.vcf, record: recNo, line: lineNo, field: 'POS' });
        }
        if (rec.chrom !== lastChrom) {
          if (seenChroms.has(rec.chrom)) throw new InputError('unsorted_vcf', `records of ${rec.chrom} are not contiguous`, { file: opts.vcf, record: recNo, line: lineNo, field: 'CHROM' });
          seenChroms.add(rec.chrom);
        }
        lastChrom = rec.chrom;
        lastPos = rec.pos;
        if (chunk.length && (rec.chrom !== chunkChrom || rec.pos > chunkReach || chunk.length >= CHUNK_MAX)) await flush();
        if (!chunk.length) {
          chunkChrom = rec.chrom;
          chunkReach = -1;
        }
        chunk.push(rec);
        const end = rec.pos + rec.cols[3].length;
        chunkReach = Math.max(chunkReach, end);
        for (const t of model.overlapping(rec.chrom, rec.pos, end)) chunkReach = Math.max(chunkReach, t.end);
      }
    }
    if (!headerDone) throw new InputError('bad_vcf', 'missing #CHROM header line', { file: opts.vcf });
    await flush();
    await writer.close();
    renameSync(tmp, opts.out);
  } catch (e) {
    await writer.close().catch(() => undefined);
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    fa.close();
  }
  return stats;
}

function parseRec(cols: string[], line: string, idx: number, lineNo: number, file: string, fa: IndexedFasta, fetch: FetchSeq): Rec {
  if (cols.length < 8) throw new InputError('bad_vcf', `expected at least 8 columns, found ${cols.length}`, { file, record: idx, line: lineNo });
  const pos1 = Number(cols[1]);
  if (!Number.isInteger(pos1) || pos1 < 1) throw new InputError('bad_vcf', `bad POS ${JSON.stringify(cols[1])}`, { file, record: idx, line: lineNo, field: 'POS' });
  const ref = cols[3].toUpperCase();
  if (!/^[ACGTN]+$/.test(ref)) throw new InputError('bad_vcf', `bad REF ${JSON.stringify(cols[3])}`, { file, record: idx, line: lineNo, field: 'REF' });
  const chrom = cols[0];
  const pos = pos1 - 1;
  const alleles: Rec['alleles'] = [];
  if (fa.has(chrom)) {
    const real = fetch(chrom, pos, pos + ref.length - 1);
    for (let i = 0; i < real.length; i++) {
      if (ref[i] !== 'N' && real[i] !== 'N' && ref[i] !== real[i]) {
        throw new InputError('ref_mismatch', `REF ${cols[3]} does not match the reference (${real}) at ${chrom}:${pos1}`, { file, record: idx, line: lineNo, field: 'REF' });
      }
    }
    for (const a0 of cols[4] === '.' ? [] : cols[4].split(',')) {
      if (/^<(INS|DUP|DEL)/.test(a0)) {
        alleles.push({ alt: a0, ch: { beg: pos, end: pos, ins: '' } });
        continue;
      }
      const a = a0.toUpperCase();
      if (!/^[ACGTN]+$/.test(a) || a === ref) {
        alleles.push(null);
        continue;
      }
      alleles.push({ alt: a, ch: trimAllele(pos, ref, a) });
    }
  }
  let gt: number[][] | null = null;
  if (cols.length > 9 && /^GT(:|$)/.test(cols[8])) {
    gt = [];
    for (let i = 9; i < cols.length; i++) {
      const v = cols[i].split(':')[0];
      const a = v.split(/[|/]/).map((x) => (x === '.' ? -1 : Number(x)));
      if (a.some((x) => !Number.isInteger(x) || x > alleles.length)) {
        throw new InputError('bad_vcf', `bad genotype ${JSON.stringify(v)}`, { file, record: idx, line: lineNo, field: 'GT' });
      }
      gt.push(a);
    }
  }
  return { idx, line, cols, chrom, pos, alleles, bcsq: [], csq: [], gt, hapEntries: new Map() };
}

function setInfoKey(info: string, key: string, value: string): string {
  const parts = info === '.' || info === '' ? [] : info.split(';').filter((kv) => kv !== key && !kv.startsWith(`${key}=`));
  parts.push(`${key}=${value}`);
  return parts.join(';');
}

interface TextWriter {
  write(s: string): Promise<void>;
  close(): Promise<void>;
}

async function openWriter(path: string, bgzf: boolean): Promise<TextWriter> {
  if (bgzf) {
    const w = new BgzfWriter(await fileSink(path));
    return {
      async write(s) {
        w.write(Buffer.from(s, 'latin1'));
        if (w.needsDrain) await w.drain();
      },
      close: () => w.close(),
    };
  }
  const ws = createWriteStream(path);
  let closed = false;
  return {
    async write(s) {
      if (!ws.write(s, 'latin1')) await once(ws, 'drain');
    },
    async close() {
      if (closed) return;
      closed = true;
      ws.end();
      await once(ws, 'finish');
    },
  };
}

const pushUnique = (a: string[], s: string) => {
  if (!a.includes(s)) a.push(s);
};

function entry(terms: Iterable<Term>, tx: Transcript, opt: { geneLevel?: boolean; strand?: boolean; aa?: string; dna?: string } = {}): string {
  const f = [joinTerms(terms), tx.geneName, opt.geneLevel ? '' : tx.id, tx.biotype];
  if (opt.strand || opt.aa !== undefined) f.push(tx.strand);
  if (opt.aa !== undefined) f.push(opt.aa, opt.dna ?? '');
  return f.join('|');
}

const dnaOf = (r: Rec, ai: number) => `${r.pos + 1}${r.cols[3].toUpperCase()}>${r.alleles[ai]!.alt}`;

/** Annotates all records of a chunk (records that may share transcripts). */
function annotateChunk(chunk: Rec[], model: GeneModel, ctxOf: (t: Transcript) => TxContext, local: boolean, vep: boolean, fetch: FetchSeq): void {
  const hits = new Map<Transcript, Hit[]>();
  for (const r of chunk) {
    const ref = r.cols[3].toUpperCase();
    r.alleles.forEach((a, ai) => {
      if (!a || !carried(r, ai)) return;
      if (a.alt[0] === '<') {
        symbolic(r, a.alt, ai);
        return;
      }
      const alt = a.alt;
      const pureIns = ref.length === 1 && alt.length > 1 && alt[0] === ref[0];
      // structural change: insertion point, or the whole REF span
      const pureDel = alt.length === 1 && ref.length > 1 && alt[0] === ref[0];
      const ch: Change = pureIns ? { beg: r.pos + 1, end: r.pos, ins: alt.slice(1) } : pureDel ? { beg: r.pos + 1, end: r.pos + ref.length - 1, ins: '' } : { beg: r.pos, end: r.pos + ref.length - 1, ins: alt };
      const tr = trimAllele(r.pos, ref, alt);
      const lo = Math.min(tr.beg, tr.end), hi = Math.max(tr.beg, tr.end);
      for (const tx of model.overlapping(r.chrom, lo, hi)) {
        if (tr.end < tr.beg && (tr.beg <= tx.beg || tr.beg > tx.end)) continue;
        const pl = place(tx, ch);
        const add = (terms: Set<Term>, o: { geneLevel?: boolean; strand?: boolean } = {}) => {
          note(r, entry(terms, tx, o), ai);
          if (vep) pushUnique(r.csq, vepEntry(alt, [...terms], tx, null, r.pos, ref, ai));
        };
        if (!tx.coding) {
          // non-coding transcripts: one gene-level term anywhere in the transcript span
          add(new Set<Term>(['non_coding']), { geneLevel: true });
          continue;
        }
        const ctx = ctxOf(tx);
        const t = new Set<Term>(pl.splice);
        if (pl.outside) {
          if (pl.coding && ctx.cds.length % 3 === 0 && touchesStop(ctx, tr)) {
            let n = 0;
            if (tr.end >= tr.beg) for (const c of tx.cds) n += Math.max(0, Math.min(c.end, tr.end) - Math.max(c.beg, tr.beg) + 1);
            t.add('stop_lost');
            t.add(n % 3 ? 'frameshift' : 'inframe_deletion');
            add(t, { strand: true });
          } else {
            if (pl.exonic) t.add(pl.coding ? 'coding_sequence' : pl.utr5 ? '5_prime_utr' : '3_prime_utr');
            add(t);
          }
          continue;
        }
        if (pl.coding) {
          const isIndel = ref.length !== alt.length;
          const edit = cdsEdit(ctx, r.pos, ref, alt);
          if (edit && isIndel && ctx.hasStart && touchesStart(ctx, tr) && startRetained(ctx, tr, fetch)) {
            add(new Set<Term>(['start_retained']), { strand: true });
            continue;
          }
          if (edit && isIndel && ctx.hasStart && touchesStart(ctx, pureIns ? { beg: r.pos, end: r.pos, ins: alt } : tr)) {
            // an indel in the start codon: the start is lost (what follows is not translated from it)
            add(new Set<Term>(['start_lost', ...pl.splice]), { strand: true });
            continue;
          }
          if (edit && !(isIndel && !pureIns && touchesCodingEdge(tx, tr))) {
            const delta = edit.ins.length - (edit.c2 - edit.c1);
            const k1 = Math.floor(Math.max(0, edit.c1) / 3);
            const k2 = Math.floor((edit.c2 - 1) / 3);
            const h: Hit = { rec: r, ai, ctx, edit, k1, k2, delta, spliceMerged: pl.splice };
            let l = hits.get(tx);
            if (!l) hits.set(tx, (l = []));
            l.push(h);
            continue;
          }
          if (ref.length === alt.length) {
            // substitution reaching past the coding sequence: its coding part, then the rest
            const seg = tx.cds.find((c) => c.end >= tr.beg && c.beg <= tr.end)!;
            const a0 = Math.max(seg.beg, r.pos), b0 = Math.min(seg.end, r.pos + ref.length - 1);
            const e = cdsEdit(ctx, a0, ref.slice(a0 - r.pos, b0 - r.pos + 1), alt.slice(a0 - r.pos, b0 - r.pos + 1));
            const eff = e ? codingEffect(ctx, [e]) : null;
            if (eff) add(eff.terms, { strand: true });
            const rest = new Set<Term>(pl.splice);
            if (pl.utr5) rest.add('5_prime_utr');
            if (pl.utr3) rest.add('3_prime_utr');
            if (rest.size) add(rest);
            continue;
          }
          // coarse effect (crosses a coding edge, or an indel at an exon edge)
          if (touchesStart(ctx, tr) && ctx.hasStart) {
            if (startRetained(ctx, tr, fetch)) {
              add(new Set<Term>(['start_retained']), { strand: true });
              continue;
            }
            t.add('start_lost');
          }
          let n = 0;
          if (tr.end >= tr.beg) for (const c of tx.cds) n += Math.max(0, Math.min(c.end, tr.end) - Math.max(c.beg, tr.beg) + 1);
          const insCoding = tr.end < tr.beg ? (tx.cds.some((c) => tr.beg - 1 >= c.beg && tr.beg <= c.end) ? tr.ins.length : 0) : tr.ins.length;
          const d = insCoding - n;
          if (d % 3 !== 0) t.add('frameshift');
          else if (d < 0) t.add('inframe_deletion');
          else if (d > 0) t.add('inframe_insertion');
          else if (n > 0 && !t.has('start_lost')) t.add('coding_sequence');
          if (ctx.hasStop && touchesStop(ctx, tr)) t.add('stop_lost');
          if (!t.size) t.add(pl.utr5 ? '5_prime_utr' : pl.utr3 ? '3_prime_utr' : 'coding_sequence');
          add(t);
        } else if (pl.exonic) {
          if (pl.utr5) t.add('5_prime_utr');
          if (pl.utr3) t.add('3_prime_utr');
          if (!pl.utr5 && !pl.utr3) t.add('coding_sequence');
          add(t);
        } else if (t.size) add(t);
        else add(new Set<Term>(['intron']), { geneLevel: true });
      }
    });
  }
  function symbolic(r: Rec, alt: string, ai: number): void {
    const isIns = /^<(INS|DUP)/.test(alt);
    const isDel = /^<DEL/.test(alt);
    if (!isIns && !isDel) return;
    const m = /(?:^|;)END=(\d+)/.exec(r.cols[7]);
    const end = m ? Number(m[1]) - 1 : r.pos;
    const ch: Change = isIns ? { beg: r.pos + 1, end: r.pos, ins: '' } : { beg: r.pos + 1, end: Math.max(r.pos + 1, end), ins: '' };
    const lo = Math.min(ch.beg, ch.end), hi = Math.max(ch.beg, ch.end);
    for (const tx of model.overlapping(r.chrom, lo, hi)) {
      if (ch.end < ch.beg && (ch.beg <= tx.beg || ch.beg > tx.end)) continue;
      const pl = place(tx, ch);
      const t = new Set<Term>(pl.splice);
      if (isIns) {
        if (pl.coding) t.add('coding_sequence');
        else if (pl.exonic && !tx.coding) t.add('non_coding');
        else if (pl.utr5) t.add('5_prime_utr');
        else if (pl.utr3) t.add('3_prime_utr');
        t.add('feature_elongation');
      } else t.add('feature_truncation');
      note(r, entry(t, tx), ai);
      if (vep) pushUnique(r.csq, vepEntry(alt, [...t], tx, null, r.pos, r.cols[3], ai));
    }
  }

  // coding hits: per haplotype, group per transcript by shared codons / open frameshifts
  const haps = haplotypes(chunk);
  for (const [tx, all] of hits) {
    all.sort((a, b) => a.edit.c1 - b.edit.c1 || a.rec.idx - b.rec.idx);
    const memo = new Map<string, Array<[Rec, string, number]>>();
    for (const hap of haps) {
      const hs = hap ? all.filter((h) => h.rec.gt !== null && h.rec.gt[hap[0]]?.[hap[1]] === h.ai + 1) : all;
      if (!hs.length) continue;
      const key = hs.map((h) => all.indexOf(h)).join(',');
      let got = memo.get(key);
      if (!got) memo.set(key, (got = emitGroups(tx, hs)));
      for (const [r, e, ai] of got) note(r, e, ai, hap);
    }
  }

  function emitGroups(tx: Transcript, hs: Hit[]): Array<[Rec, string, number]> {
    const emitted: Array<[Rec, string, number]> = [];
    const groups: Hit[][] = [];
    if (local) for (const h of hs) groups.push([h]);
    else {
      let cur: Hit[] = [];
      let reach = -1;
      let frame = 0;
      for (const h of hs) {
        if (cur.length && h.k1 <= reach && h.edit.c1 >= cur[cur.length - 1].edit.c2) {
          cur.push(h);
        } else {
          if (cur.length) groups.push(cur);
          cur = [h];
          frame = 0;
          reach = -1;
        }
        frame += h.delta;
        // an open frameshift reaches to the end; once the frame is restored the group ends at this codon
        reach = frame % 3 !== 0 ? Infinity : reach === Infinity ? h.k2 : Math.max(reach, h.k2);
      }
      if (cur.length) groups.push(cur);
    }
    // downstream groups: protein positions shift by upstream in-frame indels; after a new stop, prefix '*'
    let shiftNt = 0;
    let afterStop = false;
    for (const g of groups) {
      const ctx = g[0].ctx;
      const eff = codingEffect(ctx, g.map((h) => h.edit), local ? 0 : Math.floor(shiftNt / 3));
      if (!eff) continue;
      const star = !local && afterStop ? '*' : '';
      if (!local) {
        shiftNt += g.reduce((n, h) => n + h.delta, 0);
        if (eff.terms.has('stop_gained')) afterStop = true;
      }
      const owner = g[0];
      const byRec = [...g].sort((a, b) => a.rec.idx - b.rec.idx || a.ai - b.ai);
      const dna = byRec.map((h) => dnaOf(h.rec, h.ai)).join('+');
      const splice = new Set<Term>();
      for (const h of g) for (const s of h.spliceMerged) splice.add(s);
      const terms = new Set<Term>(eff.terms);
      const mergeSplice = terms.has('start_lost') || terms.has('stop_lost') || terms.has('stop_retained');
      if (mergeSplice) for (const s of splice) terms.add(s);
      emitted.push([owner.rec, star + entry(terms, tx, { aa: eff.aa, dna }), owner.ai]);
      for (const h of g) {
        if (h.rec !== owner.rec) emitted.push([h.rec, `@${owner.rec.pos + 1}`, h.ai]);
        if (!mergeSplice && h.spliceMerged.size) emitted.push([h.rec, entry(h.spliceMerged, tx), h.ai]);
        if (vep) {
          // CSQ is per allele: its own effect on the transcript
          const single = g.length === 1 ? eff : codingEffect(ctx, [h.edit]);
          const own = new Set<Term>(single?.terms ?? terms);
          for (const s of h.spliceMerged) own.add(s);
          pushUnique(h.rec.csq, vepEntry(h.rec.alleles[h.ai]!.alt, [...own], tx, { ctx, edit: h.edit, aa: single?.aa ?? eff.aa }, h.rec.pos, h.rec.cols[3], h.ai));
        }
      }
    }
    return emitted;
  }
}
