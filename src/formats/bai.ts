/**
 * BAI index (SAM spec §5.2), built incrementally while a coordinate-sorted BAM is
 * written: per reference the binning index (bin → chunks of virtual offsets), the
 * 16 kb linear index, and the pseudo-bin 37450 holding the reference's offset range
 * and its mapped/unmapped record counts; at the end n_no_coor (records without a
 * reference).
 *
 * Offsets given to `add` may be *logical* offsets from BgzfWriter.tell(); `encode`
 * takes a resolver turning them into real virtual offsets (they are monotonic, so the
 * index structure does not change).
 */
import { InputError } from '../util/errors.js';
import { rawEnd, rawFlag, rawPos, rawRefId, reg2bin } from './bam.js';

export const BAI_PSEUDO_BIN = 37450;
const LINEAR_SHIFT = 14;

interface RefIndex {
  bins: Map<number, number[]>; // flat [beg0, end0, beg1, end1, ...]
  linear: number[]; // -1 = unset
  begOff: number;
  endOff: number;
  mapped: number;
  unmapped: number;
}

export interface BaiStats {
  name?: string;
  refId: number;
  mapped: number;
  unmapped: number;
}

export class BaiBuilder {
  private refs: (RefIndex | undefined)[];
  private nNoCoor = 0;
  private lastRef = -1;
  private lastPos = -1;
  private curBin = -1;
  private curChunkBeg = -1;
  private curRef: RefIndex | undefined;
  private count = 0;
  private sawNoCoor = false;

  constructor(
    private readonly nRef: number,
    private readonly file = 'BAM',
  ) {
    this.refs = new Array(nRef).fill(undefined);
  }

  /**
   * Registers the raw record written at offsets [vBeg, vEnd). Records must come in
   * coordinate order (unplaced records, refId -1, last).
   */
  addRaw(rec: Buffer, vBeg: number, vEnd: number): void {
    const refId = rawRefId(rec);
    const pos = rawPos(rec);
    const unmapped = (rawFlag(rec) & 4) !== 0;
    this.add(refId, pos, refId >= 0 ? rawEnd(rec) : pos + 1, unmapped, vBeg, vEnd);
  }

  add(refId: number, pos: number, end: number, unmapped: boolean, vBeg: number, vEnd: number): void {
    this.count++;
    if (refId < 0) {
      this.closeChunk();
      this.sawNoCoor = true;
      this.nNoCoor++;
      return;
    }
    if (this.sawNoCoor || refId < this.lastRef || (refId === this.lastRef && pos < this.lastPos)) {
      throw new InputError('BAM_UNSORTED', `records are not coordinate-sorted (ref ${refId} pos ${pos + 1} after ref ${this.lastRef} pos ${this.lastPos + 1})`, {
        file: this.file,
        record: this.count,
      });
    }
    if (refId >= this.nRef) throw new InputError('BAM_REF', `reference id ${refId} not in header`, { file: this.file, record: this.count });
    if (refId !== this.lastRef) {
      this.closeChunk();
      this.curRef = { bins: new Map(), linear: [], begOff: vBeg, endOff: vEnd, mapped: 0, unmapped: 0 };
      this.refs[refId] = this.curRef;
      this.lastRef = refId;
    }
    const ref = this.curRef as RefIndex;
    this.lastPos = pos;
    if (unmapped) ref.unmapped++;
    else ref.mapped++;
    ref.endOff = vEnd;
    const bin = reg2bin(pos, end);
    if (bin !== this.curBin) {
      this.closeChunk();
      this.curBin = bin;
      this.curChunkBeg = vBeg;
    }
    this.curEnd = vEnd;
    // linear index: first record overlapping each 16 kb window
    const w0 = Math.max(0, pos) >> LINEAR_SHIFT;
    const w1 = (end - 1) >> LINEAR_SHIFT;
    const lin = ref.linear;
    while (lin.length <= w1) lin.push(-1);
    for (let w = w0; w <= w1; w++) if (lin[w] < 0) lin[w] = vBeg;
  }

  private curEnd = -1;

  private closeChunk(): void {
    if (this.curBin < 0 || !this.curRef) return;
    const list = this.curRef.bins.get(this.curBin);
    if (list) list.push(this.curChunkBeg, this.curEnd);
    else this.curRef.bins.set(this.curBin, [this.curChunkBeg, this.curEnd]);
    this.curBin = -1;
  }

  /** Mapped/unmapped counts per reference (what `samtools idxstats` reports). */
  stats(): { refs: BaiStats[]; noCoor: number } {
    return {
      refs: this.refs.map((r, refId) => ({ refId, mapped: r?.mapped ?? 0, unmapped: r?.unmapped ?? 0 })),
      noCoor: this.nNoCoor,
    };
  }

  /** Serialises the index; `resolve` maps offsets passed to `add` to real virtual offsets. */
  encode(resolve: (v: number) => number = (v) => v): Buffer {
    this.closeChunk();
    const parts: Buffer[] = [];
    const head = Buffer.alloc(8);
    head.write('BAI\x01', 0, 'latin1');
    head.writeInt32LE(this.nRef, 4);
    parts.push(head);
    const u64 = (b: Buffer, p: number, v: number): void => {
      b.writeBigUInt64LE(BigInt(v), p);
    };
    for (let i = 0; i < this.nRef; i++) {
      const ref = this.refs[i];
      if (!ref) {
        parts.push(Buffer.alloc(8)); // n_bin = 0, n_intv = 0
        continue;
      }
      const binIds = [...ref.bins.keys()].sort((a, b) => a - b);
      // merge adjacent chunks of a bin that touch or share a BGZF block (as htslib does)
      const merged = new Map<number, number[]>();
      let size = 4;
      for (const b of binIds) {
        const flat = ref.bins.get(b) as number[];
        const out: number[] = [];
        for (let k = 0; k < flat.length; k += 2) {
          const beg = resolve(flat[k]);
          const end = resolve(flat[k + 1]);
          const n = out.length;
          if (n > 0 && Math.floor(out[n - 1] / 65536) === Math.floor(beg / 65536)) out[n - 1] = Math.max(out[n - 1], end);
          else out.push(beg, end);
        }
        merged.set(b, out);
        size += 8 + 8 * out.length;
      }
      size += 8 + 32; // pseudo-bin
      // linear index: fill unset windows with the next set offset to the left (htslib fills with the previous)
      const lin = ref.linear.map((v) => (v < 0 ? -1 : resolve(v)));
      for (let k = 1; k < lin.length; k++) if (lin[k] < 0) lin[k] = lin[k - 1];
      for (let k = 0; k < lin.length; k++) if (lin[k] < 0) lin[k] = 0;
      size += 4 + 8 * lin.length;
      const b = Buffer.alloc(size);
      let p = 0;
      b.writeInt32LE(binIds.length + 1, p);
      p += 4;
      for (const bin of binIds) {
        const chunks = merged.get(bin) as number[];
        b.writeUInt32LE(bin, p);
        b.writeInt32LE(chunks.length / 2, p + 4);
        p += 8;
        for (const v of chunks) {
          u64(b, p, v);
          p += 8;
        }
      }
      b.writeUInt32LE(BAI_PSEUDO_BIN, p);
      b.writeInt32LE(2, p + 4);
      u64(b, p + 8, resolve(ref.begOff));
      u64(b, p + 16, resolve(ref.endOff));
      u64(b, p + 24, ref.mapped);
      u64(b, p + 32, ref.unmapped);
      p += 40;
      b.writeInt32LE(lin.length, p);
      p += 4;
      for (const v of lin) {
        u64(b, p, v);
        p += 8;
      }
      parts.push(b);
    }
    const tail = Buffer.alloc(8);
    tail.writeBigUInt64LE(BigInt(this.nNoCoor), 0);
    parts.push(tail);
    return Buffer.concat(parts);
  }
}

/** Parsed BAI, enough for checks and region queries. */
export interface BaiIndex {
  refs: {
    bins: Map<number, [number, number][]>;
    linear: number[];
    mapped?: number;
    unmapped?: number;
    begOff?: number;
    endOff?: number;
  }[];
  noCoor?: number;
}

export function decodeBai(buf: Buffer, file = 'BAI'): BaiIndex {
  if (buf.toString('latin1', 0, 4) !== 'BAI\x01') throw new InputError('BAI_MAGIC', 'not a BAI file', { file });
  const nRef = buf.readInt32LE(4);
  let p = 8;
  const u64 = (): number => {
    const v = Number(buf.readBigUInt64LE(p));
    p += 8;
    return v;
  };
  const refs: BaiIndex['refs'] = [];
  for (let i = 0; i < nRef; i++) {
    const nBin = buf.readInt32LE(p);
    p += 4;
    const r: BaiIndex['refs'][number] = { bins: new Map(), linear: [] };
    for (let b = 0; b < nBin; b++) {
      const bin = buf.readUInt32LE(p);
      const nChunk = buf.readInt32LE(p + 4);
      p += 8;
      const chunks: [number, number][] = [];
      for (let c = 0; c < nChunk; c++) chunks.push([u64(), u64()]);
      if (bin === BAI_PSEUDO_BIN) {
        r.begOff = chunks[0][0];
        r.endOff = chunks[0][1];
        r.mapped = chunks[1][0];
        r.unmapped = chunks[1][1];
      } else r.bins.set(bin, chunks);
    }
    const nIntv = buf.readInt32LE(p);
    p += 4;
    for (let k = 0; k < nIntv; k++) r.linear.push(u64());
    refs.push(r);
  }
  const noCoor = p + 8 <= buf.length ? u64() : undefined;
  return { refs, noCoor };
}
