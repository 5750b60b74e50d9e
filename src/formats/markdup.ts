/**
 * Duplicate marking on a coordinate-sorted stream of raw BAM records, with the
 * semantics of Picard MarkDuplicates / samtools markdup:
 *
 * - a *pair* (both mates mapped, primary) is keyed by library + both mates'
 *   unclipped 5' positions and strands (ends ordered leftmost first); in each key
 *   group the pair with the highest score (sum of base qualities ≥ 15 of both mates)
 *   is kept, ties go to the lexicographically smallest read name; every other pair
 *   gets 0x400 on both mates;
 * - a *single* (unpaired, or mate unmapped) is keyed by library + its unclipped 5'
 *   position and strand; it is a duplicate if a pair has an end there, else the best
 *   single of its key is kept;
 * - secondary, supplementary, unmapped and QC-failed records are never marked
 *   (existing 0x400 bits are cleared on every record first).
 *
 * Why a coordinate-sorted stream (as samtools markdup) and not a name-grouped pass
 * (as samblaster): keeping the best-quality pair needs every candidate of a key before
 * deciding, which a name-grouped pass can only do with a table of all keys of the
 * whole file. In coordinate order every candidate of a key is seen within a fixed
 * window (`window` ≥ the largest distance between a read's position and its
 * unclipped 5' end) of the key's leftmost end, so a group can be decided once the
 * stream has moved past it and the buffer stays bounded (records of ~2 windows plus
 * the names of pairs whose second mate is still to come). The mate's CIGAR and
 * quality score come from the MC and ms tags, which `addMateTags` (samtools fixmate
 * -m equivalent) sets on the name-grouped aligner output before sorting.
 */
import type { BamHeader } from './bam.js';
import { encodeTags, rawFindTag, rawCigar, rawFlag, rawNextPos, rawNextRefId, rawPos, rawQname, rawQualOffset, rawRefId, rawTagInt, rawTagString, rawWithTags, setRawFlag, rawLSeq } from './bam.js';
import { FLAG, formatCigar, type AlignmentTag } from './sam-record.js';

export interface MarkdupOptions {
  /** Bases; must exceed the largest |pos − unclipped 5'| of any read (default 4096). */
  window?: number;
  /** Minimum base quality counted in the score (default 15, as Picard/samtools). */
  minBaseQuality?: number;
}

export interface MarkdupStats {
  /** Records examined as pair ends / singles. */
  pairedReads: number;
  singleReads: number;
  /** Records marked 0x400. */
  duplicatePairedReads: number;
  duplicateSingleReads: number;
  /** Pairs whose mate had no MC tag (mate end approximated from its position). */
  missingMateCigar: number;
}

const POS_OFFSET = 1 << 20;
/** One number per (library, unclipped 5' position, strand); exact below 2^53. */
function endCode(lib: number, p5: number, strand: number): number {
  return (lib * 4294967296 + (p5 + POS_OFFSET)) * 2 + strand;
}
function endPos(code: number): number {
  return (Math.floor(code / 2) % 4294967296) - POS_OFFSET;
}

/** Unclipped 5' position of a raw record (see unclipped5Prime), without allocating. */
export function rawUnclipped5Prime(r: Buffer, reverse: boolean): number {
  const n = r.readUInt16LE(16);
  const off = 36 + r[12];
  const pos = r.readInt32LE(8);
  if (!reverse) {
    let clip = 0;
    for (let i = 0; i < n; i++) {
      const c = r.readUInt32LE(off + 4 * i);
      const op = c & 0xf;
      if (op === 4 || op === 5) clip += c >>> 4;
      else break;
    }
    return pos - clip;
  }
  let ref = 0;
  let clip = 0;
  for (let i = 0; i < n; i++) {
    const c = r.readUInt32LE(off + 4 * i);
    const op = c & 0xf;
    if (op === 4 || op === 5) clip += c >>> 4;
    else {
      clip = 0;
      if (op === 0 || op === 2 || op === 3 || op === 7 || op === 8) ref += c >>> 4;
    }
  }
  return pos + ref - 1 + clip;
}

/** Unclipped 5' position from a CIGAR string (the MC tag), without allocating. */
export function textUnclipped5Prime(pos: number, cigar: string, reverse: boolean): number {
  let n = 0;
  let lead = 0;
  let trail = 0;
  let ref = 0;
  let seenNonClip = false;
  for (let i = 0; i < cigar.length; i++) {
    const c = cigar.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48);
      continue;
    }
    if (c === 83 || c === 72) {
      // S, H
      if (seenNonClip) trail += n;
      else lead += n;
    } else {
      seenNonClip = true;
      trail = 0;
      if (c === 77 || c === 68 || c === 78 || c === 61 || c === 88) ref += n;
    }
    n = 0;
  }
  return reverse ? pos + ref - 1 + trail : pos - lead;
}

/** Sum of base qualities ≥ minQ (Picard's SUM_OF_BASE_QUALITIES, samtools' score). */
export function rawQualityScore(r: Buffer, minQ = 15): number {
  const lSeq = rawLSeq(r);
  const off = rawQualOffset(r);
  if (lSeq === 0 || r[off] === 0xff) return 0;
  let s = 0;
  for (let i = 0; i < lSeq; i++) {
    const q = r[off + i];
    if (q >= minQ) s += q;
  }
  return s;
}

/** Library of each read group (@RG ID → LB, or '' when absent). */
export function libraries(header: BamHeader): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of header.text.split('\n')) {
    if (!line.startsWith('@RG\t')) continue;
    let id = '';
    let lb = '';
    for (const f of line.split('\t')) {
      if (f.startsWith('ID:')) id = f.slice(3);
      else if (f.startsWith('LB:')) lb = f.slice(3);
    }
    m.set(id, lb);
  }
  return m;
}

interface Decision {
  dup: boolean;
  decided: boolean;
}

interface Candidate {
  decision: Decision;
  score: number;
  name: string;
}

interface Group {
  /** First end (the anchor): reference and end code. */
  tid: number;
  code: number;
  /** Second end of a pair group (tidB -1 for single groups). */
  tidB: number;
  codeB: number;
  anchor: number;
  members: Candidate[];
  pairs: boolean;
  /** For single groups: the pair-end key that makes them duplicates. */
  endKey: number;
}

interface QueueItem {
  rec: Buffer;
  decision: Decision | undefined;
}


/** Min-heap of groups by (tid, anchor). */
class GroupHeap {
  private a: Group[] = [];
  get size(): number {
    return this.a.length;
  }
  private less(x: Group, y: Group): boolean {
    return x.tid < y.tid || (x.tid === y.tid && x.anchor < y.anchor);
  }
  push(g: Group): void {
    const a = this.a;
    a.push(g);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  peek(): Group | undefined {
    return this.a[0];
  }
  pop(): Group | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop() as Group;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m])) m = l;
        if (r < a.length && this.less(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Streaming duplicate marker. Feed coordinate-sorted raw records with `push`, take
 * records whose fate is decided with `take` (same order as pushed), call `finish`
 * then `take` at the end. Marks in place (sets the FLAG bytes).
 */
export class DuplicateMarker {
  readonly stats: MarkdupStats = { pairedReads: 0, singleReads: 0, duplicatePairedReads: 0, duplicateSingleReads: 0, missingMateCigar: 0 };
  private readonly window: number;
  private readonly minQ: number;
  private readonly libs: Map<string, string>;
  private queue: QueueItem[] = [];
  private qhead = 0;
  /** Open groups: refId → end code of the first end → groups starting there. */
  private groups = new Map<number, Map<number, Group[]>>();
  private heap = new GroupHeap();
  /** First-seen mates waiting for their second mate: qname → decision. */
  private waiting = new Map<string, Decision>();
  /** Pair ends per reference: key → 5' position (for singles that hit a pair end). */
  private pairEnds = new Map<number, Map<number, number>>();
  /** Library name → small index; `libIndex` is -1 when all reads share one library. */
  private libIndex = new Map<string, number>();
  private curTid = -1;
  private curPos = -1;
  private sincePrune = 0;

  constructor(header: BamHeader, opts: MarkdupOptions = {}) {
    this.window = opts.window ?? 4096;
    this.minQ = opts.minBaseQuality ?? 15;
    this.libs = libraries(header);
    const names = [...new Set(['', ...this.libs.values()])];
    if (new Set(this.libs.values()).size > 1) names.forEach((n, i) => this.libIndex.set(n, i));
  }

  private library(r: Buffer): number {
    if (this.libIndex.size === 0) return 0;
    const rg = rawTagString(r, 'RG');
    return this.libIndex.get(rg === undefined ? '' : (this.libs.get(rg) ?? '')) ?? 0;
  }

  push(r: Buffer): void {
    let flag = rawFlag(r);
    if (flag & FLAG.DUPLICATE) {
      flag &= ~FLAG.DUPLICATE;
      setRawFlag(r, flag);
    }
    const tid = rawRefId(r);
    const pos = rawPos(r);
    if (tid >= 0 && (tid !== this.curTid || pos !== this.curPos)) {
      this.curTid = tid;
      this.curPos = pos;
      this.resolveUpTo(tid, pos);
    }
    if (flag & (FLAG.SECONDARY | FLAG.SUPPLEMENTARY | FLAG.UNMAPPED | FLAG.QCFAIL) || tid < 0) {
      this.queue.push({ rec: r, decision: undefined });
      return;
    }
    const paired = (flag & FLAG.PAIRED) !== 0 && (flag & FLAG.MATE_UNMAPPED) === 0 && rawNextRefId(r) >= 0;
    const qname = rawQname(r);
    if (paired) {
      this.stats.pairedReads++;
      const seen = this.waiting.get(qname);
      if (seen) {
        this.waiting.delete(qname);
        this.queue.push({ rec: r, decision: seen });
        return;
      }
      const decision: Decision = { dup: false, decided: false };
      this.waiting.set(qname, decision);
      this.queue.push({ rec: r, decision });
      const lib = this.library(r);
      const rev = (flag & FLAG.REVERSE) !== 0;
      const p5 = rawUnclipped5Prime(r, rev);
      const mtid = rawNextRefId(r);
      const mrev = (flag & FLAG.MATE_REVERSE) !== 0;
      const mc = rawTagString(r, 'MC');
      let m5: number;
      if (mc !== undefined && mc !== '*') m5 = textUnclipped5Prime(rawNextPos(r), mc, mrev);
      else {
        this.stats.missingMateCigar++;
        m5 = rawNextPos(r);
      }
      const ms = rawTagInt(r, 'ms') ?? 0;
      const score = rawQualityScore(r, this.minQ) + ms;
      let a: [number, number, number] = [tid, p5, rev ? 1 : 0];
      let b: [number, number, number] = [mtid, m5, mrev ? 1 : 0];
      if (b[0] < a[0] || (b[0] === a[0] && (b[1] < a[1] || (b[1] === a[1] && b[2] < a[2])))) [a, b] = [b, a];
      const ca = endCode(lib, a[1], a[2]);
      const cb = endCode(lib, b[1], b[2]);
      this.addEnd(a[0], ca);
      this.addEnd(b[0], cb);
      this.addCandidate(a[0], ca, b[0], cb, a[1], true, { decision, score, name: qname });
    } else {
      this.stats.singleReads++;
      const decision: Decision = { dup: false, decided: false };
      this.queue.push({ rec: r, decision });
      const lib = this.library(r);
      const rev = (flag & FLAG.REVERSE) !== 0;
      const p5 = rawUnclipped5Prime(r, rev);
      const endKey = endCode(lib, p5, rev ? 1 : 0);
      this.addCandidate(tid, endKey, -1, 0, p5, false, { decision, score: rawQualityScore(r, this.minQ), name: qname });
    }
    if (++this.sincePrune >= 50000) this.prune();
  }

  private addEnd(tid: number, code: number): void {
    let m = this.pairEnds.get(tid);
    if (!m) this.pairEnds.set(tid, (m = new Map()));
    m.set(code, endPos(code));
  }

  private addCandidate(tid: number, code: number, tidB: number, codeB: number, anchor: number, pairs: boolean, c: Candidate): void {
    let byCode = this.groups.get(tid);
    if (!byCode) this.groups.set(tid, (byCode = new Map()));
    let list = byCode.get(code);
    if (!list) byCode.set(code, (list = []));
    let g: Group | undefined;
    for (const x of list) {
      if (x.pairs === pairs && x.tidB === tidB && x.codeB === codeB) {
        g = x;
        break;
      }
    }
    if (!g) {
      g = { tid, code, tidB, codeB, anchor, members: [], pairs, endKey: code };
      list.push(g);
      this.heap.push(g);
    }
    g.members.push(c);
  }

  /** Decides every group that can no longer receive members when the stream is at (tid, pos). */
  private resolveUpTo(tid: number, pos: number): void {
    for (;;) {
      const g = this.heap.peek();
      if (!g || (g.tid === tid && g.anchor + this.window >= pos) || g.tid > tid) break;
      this.heap.pop();
      this.decide(g);
    }
  }

  private decide(g: Group): void {
    const byCode = this.groups.get(g.tid) as Map<number, Group[]>;
    const list = byCode.get(g.code) as Group[];
    if (list.length === 1) {
      byCode.delete(g.code);
      if (byCode.size === 0) this.groups.delete(g.tid);
    } else list.splice(list.indexOf(g), 1);
    const m = g.members;
    let hitsPair = false;
    if (!g.pairs) hitsPair = this.pairEnds.get(g.tid)?.has(g.endKey) ?? false;
    let best = -1;
    if (!hitsPair) {
      best = 0;
      for (let i = 1; i < m.length; i++) {
        if (m[i].score > m[best].score || (m[i].score === m[best].score && m[i].name < m[best].name)) best = i;
      }
    }
    for (let i = 0; i < m.length; i++) {
      m[i].decision.decided = true;
      if (i !== best) {
        m[i].decision.dup = true;
        if (g.pairs) this.stats.duplicatePairedReads += 2;
        else this.stats.duplicateSingleReads++;
      }
    }
  }

  private prune(): void {
    this.sincePrune = 0;
    for (const [tid, m] of this.pairEnds) {
      if (tid < this.curTid) {
        this.pairEnds.delete(tid);
        continue;
      }
      if (tid > this.curTid) continue;
      const limit = this.curPos - 3 * this.window;
      for (const [k, p] of m) if (p < limit) m.delete(k);
    }
  }

  /** Records whose duplicate status is final, in input order. */
  take(): Buffer[] {
    const out: Buffer[] = [];
    const q = this.queue;
    let i = this.qhead;
    while (i < q.length) {
      const it = q[i];
      if (it.decision !== undefined && !it.decision.decided) break;
      if (it.decision?.dup) setRawFlag(it.rec, rawFlag(it.rec) | FLAG.DUPLICATE);
      out.push(it.rec);
      i++;
    }
    if (i > 4096 && i * 2 > q.length) {
      this.queue = q.slice(i);
      this.qhead = 0;
    } else this.qhead = i;
    return out;
  }

  /** Ends the stream: decides all open groups. */
  finish(): void {
    for (let g = this.heap.pop(); g; g = this.heap.pop()) this.decide(g);
    // mates that never came (e.g. mate filtered out): their own group decided them already
    this.waiting.clear();
  }

  /** Records buffered right now (for tests of the bounded buffer). */
  get buffered(): number {
    return this.queue.length - this.qhead;
  }
}


/** Marks duplicates on a stream of coordinate-sorted record batches. */
export async function* markDuplicates(
  header: BamHeader,
  batches: AsyncIterable<Buffer[]>,
  opts: MarkdupOptions = {},
  onStats?: (s: MarkdupStats) => void,
): AsyncGenerator<Buffer[]> {
  const md = new DuplicateMarker(header, opts);
  for await (const batch of batches) {
    for (const r of batch) md.push(r);
    const out = md.take();
    if (out.length) yield out;
  }
  md.finish();
  const out = md.take();
  if (out.length) yield out;
  onStats?.(md.stats);
}

/**
 * samtools fixmate -m equivalent for a name-grouped stream (mates adjacent, as the
 * aligner writes them): on both primary mates of a pair sets MC (mate CIGAR, when the
 * mate is mapped) and ms (mate's quality score). Other records pass unchanged.
 */
export async function* addMateTags(batches: AsyncIterable<Buffer[]>, opts: { minBaseQuality?: number } = {}): AsyncGenerator<Buffer[]> {
  const minQ = opts.minBaseQuality ?? 15;
  let group: Buffer[] = [];
  let first: Buffer | undefined;
  const flush = (out: Buffer[]): void => {
    if (group.length === 0) return;
    let r1 = -1;
    let r2 = -1;
    for (let i = 0; i < group.length; i++) {
      const f = rawFlag(group[i]);
      if (!(f & FLAG.PAIRED) || f & (FLAG.SECONDARY | FLAG.SUPPLEMENTARY)) continue;
      if (f & FLAG.READ1) r1 = i;
      else if (f & FLAG.READ2) r2 = i;
    }
    if (r1 >= 0 && r2 >= 0) {
      const a = group[r1];
      const b = group[r2];
      group[r1] = withMateTags(a, b, minQ);
      group[r2] = withMateTags(b, a, minQ);
    }
    for (const r of group) out.push(r);
    group = [];
  };
  for await (const batch of batches) {
    const out: Buffer[] = [];
    for (const r of batch) {
      if (!first || r[12] !== first[12] || r.compare(first, 36, 36 + first[12], 36, 36 + r[12]) !== 0) {
        flush(out);
        first = r;
      }
      group.push(r);
    }
    if (out.length) yield out;
  }
  const out: Buffer[] = [];
  flush(out);
  if (out.length) yield out;
}

/** `rec` with MC (mate's CIGAR, if the mate is mapped) and ms (mate's score) set. */
function withMateTags(rec: Buffer, mate: Buffer, minQ: number): Buffer {
  const mateMapped = !(rawFlag(mate) & FLAG.UNMAPPED);
  const mc = mateMapped ? formatCigar(rawCigar(mate)) : undefined;
  const ms = rawQualityScore(mate, minQ);
  const hasMs = rawFindTag(rec, 'ms') >= 0;
  const curMc = rawTagString(rec, 'MC');
  if (!hasMs && curMc === mc) {
    // common case (aligner already wrote MC): append ms only
    const tail = encodeTags([{ tag: 'ms', type: 'i', value: ms }]);
    const out = Buffer.allocUnsafe(rec.length + tail.length);
    rec.copy(out, 0);
    tail.copy(out, rec.length);
    out.writeInt32LE(out.length - 4, 0);
    return out;
  }
  const tags: AlignmentTag[] = [];
  if (mc !== undefined) tags.push({ tag: 'MC', type: 'Z', value: mc });
  tags.push({ tag: 'ms', type: 'i', value: ms });
  return rawWithTags(rec, tags);
}
