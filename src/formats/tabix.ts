/**
 * Tabix (.tbi) index for a BGZF-compressed, position-sorted VCF, built while the file is
 * written (tabix format spec): a UCSC binning index (bins of the 0-based half-open record
 * interval, each a list of virtual-offset chunks) plus a linear index (for each 16 kb
 * window, the smallest virtual offset of a record overlapping it), per reference, with
 * the pseudo-bin 37450 holding the reference's offset range and record counts. The index
 * itself is BGZF-compressed.
 *
 * `TabixBuilder.add` takes *logical* virtual offsets from `BgzfWriter.tell()`; `build`
 * resolves them once every block is written (after `BgzfWriter.close()`).
 * `VcfGzWriter` ties the two together: header, records, then `out.vcf.gz` + `out.vcf.gz.tbi`.
 * `indexBgzfVcf` indexes a BGZF VCF another writer compressed, by reading it once.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { reg2bin } from './bam.js';
import { BgzfWriter, bgzfCompress, fileSink, readBgzfBlocks, type BgzfWriterOptions } from './bgzf.js';
import { GenolakeError, InputError } from '../util/errors.js';
import { parseVcfHeader, VcfRecordParser } from './vcf.js';

export const TABIX_PSEUDO_BIN = 37450;
const LINEAR_SHIFT = 14;
/** Tabix preset for VCF: format 2, seq col 1, begin col 2, end col 0, meta '#', skip 0. */
const VCF_PRESET = { format: 2, colSeq: 1, colBeg: 2, colEnd: 0, meta: '#'.charCodeAt(0), skip: 0 };

interface RefIndex {
  name: string;
  /** bin → chunks [beg, end) of logical virtual offsets. */
  bins: Map<number, [number, number][]>;
  /** window → smallest logical offset of a record overlapping it (-1: none). */
  linear: number[];
  firstOff: number;
  lastOff: number;
  records: number;
}

export class TabixBuilder {
  private readonly refs: RefIndex[] = [];
  private readonly seen = new Set<string>();
  private cur: RefIndex | undefined;
  private lastBeg = -1;

  /**
   * Adds one record: reference `name`, 0-based half-open [beg, end), and the logical
   * virtual offsets of its first byte and one past its last byte (newline included).
   */
  add(name: string, beg: number, end: number, vBeg: number, vEnd: number): void {
    if (!this.cur || this.cur.name !== name) {
      if (this.seen.has(name)) {
        throw new GenolakeError('TABIX_UNSORTED', `records of ${name} are not contiguous: the file is not sorted by position`);
      }
      this.seen.add(name);
      this.cur = { name, bins: new Map(), linear: [], firstOff: vBeg, lastOff: vEnd, records: 0 };
      this.refs.push(this.cur);
      this.lastBeg = -1;
    }
    if (beg < this.lastBeg) throw new GenolakeError('TABIX_UNSORTED', `${name}:${beg + 1} comes after ${name}:${this.lastBeg + 1}: not sorted`);
    this.lastBeg = beg;
    const r = this.cur;
    if (end <= beg) end = beg + 1;
    const bin = reg2bin(beg, end);
    let chunks = r.bins.get(bin);
    if (!chunks) r.bins.set(bin, (chunks = []));
    const last = chunks[chunks.length - 1];
    if (last && last[1] === vBeg) last[1] = vEnd;
    else chunks.push([vBeg, vEnd]);
    const w0 = beg >> LINEAR_SHIFT;
    const w1 = (end - 1) >> LINEAR_SHIFT;
    while (r.linear.length <= w1) r.linear.push(-1);
    for (let w = w0; w <= w1; w++) if (r.linear[w] < 0) r.linear[w] = vBeg;
    r.lastOff = vEnd;
    r.records++;
  }

  /** Reference names in file order. */
  get names(): string[] {
    return this.refs.map((r) => r.name);
  }

  /** The uncompressed index; `resolve` maps logical to real virtual offsets. */
  build(resolve: (logical: number) => number = (v) => v): Buffer {
    const parts: Buffer[] = [];
    const i32 = (v: number) => {
      const b = Buffer.allocUnsafe(4);
      b.writeInt32LE(v);
      parts.push(b);
    };
    const u32 = (v: number) => {
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32LE(v);
      parts.push(b);
    };
    const u64 = (v: number) => {
      const b = Buffer.allocUnsafe(8);
      b.writeBigUInt64LE(BigInt(v));
      parts.push(b);
    };
    parts.push(Buffer.from('TBI\x01', 'latin1'));
    i32(this.refs.length);
    i32(VCF_PRESET.format);
    i32(VCF_PRESET.colSeq);
    i32(VCF_PRESET.colBeg);
    i32(VCF_PRESET.colEnd);
    i32(VCF_PRESET.meta);
    i32(VCF_PRESET.skip);
    const names = Buffer.from(this.refs.map((r) => `${r.name}\0`).join(''), 'utf8');
    i32(names.length);
    parts.push(names);
    for (const r of this.refs) {
      const bins = [...r.bins.keys()].sort((a, b) => a - b);
      i32(bins.length + 1);
      for (const bin of bins) {
        const chunks = r.bins.get(bin)!;
        u32(bin);
        i32(chunks.length);
        for (const [b, e] of chunks) {
          u64(resolve(b));
          u64(resolve(e));
        }
      }
      u32(TABIX_PSEUDO_BIN);
      i32(2);
      u64(resolve(r.firstOff));
      u64(resolve(r.lastOff));
      u64(r.records);
      u64(0);
      // empty windows take the offset of the previous non-empty one
      const lin: number[] = [];
      let prev = resolve(r.firstOff);
      for (const v of r.linear) {
        if (v >= 0) prev = resolve(v);
        lin.push(prev);
      }
      i32(lin.length);
      for (const v of lin) u64(v);
    }
    u64(0); // n_no_coor
    return Buffer.concat(parts);
  }
}

/** Length on the reference of a VCF record from POS, REF and INFO (END= for symbolic alleles). */
export function vcfRecordEnd(pos1: number, ref: string, info = ''): number {
  const m = /(?:^|;)END=(\d+)/.exec(info);
  const beg = pos1 - 1;
  if (m) return Math.max(beg + 1, Number(m[1]));
  return beg + Math.max(1, ref.length);
}

/**
 * Writes `path` (BGZF VCF) and `path.tbi`. Lines are written without their newline;
 * records must be sorted by reference (contiguous) and position.
 */
export class VcfGzWriter {
  private readonly bgzf: BgzfWriter;
  private readonly index = new TabixBuilder();
  /** Set by the header: records are read (and checked) as the VCF readers read them. */
  private parser: VcfRecordParser | null = null;
  private records = 0;
  private constructor(readonly path: string, bgzf: BgzfWriter) {
    this.bgzf = bgzf;
  }

  static async create(path: string, opts: BgzfWriterOptions = {}): Promise<VcfGzWriter> {
    return new VcfGzWriter(path, new BgzfWriter(await fileSink(path), opts));
  }

  /** The header, every line ending in '\n'; it ends its own BGZF block. */
  async writeHeader(text: string): Promise<void> {
    this.parser = new VcfRecordParser(parseVcfHeader(text, this.path), this.path);
    this.bgzf.write(Buffer.from(text.endsWith('\n') ? text : `${text}\n`, 'utf8'));
    this.bgzf.flushBlock();
    await this.bgzf.drain();
  }

  /** One data line (tab-separated VCF record, no newline). */
  async writeRecord(line: string): Promise<void> {
    if (!this.parser) throw new GenolakeError('VCF_NO_HEADER', `${this.path}: a record was written before the header`);
    const r = this.parser.parse(line, { file: this.path, record: ++this.records });
    const vBeg = this.bgzf.tell();
    this.bgzf.write(Buffer.from(`${line}\n`, 'utf8'));
    this.index.add(r.chrom, r.pos - 1, vcfRecordEnd(r.pos, r.ref, r.info), vBeg, this.bgzf.tell());
    if (this.bgzf.needsDrain) await this.bgzf.drain();
  }

  /** Closes the VCF and writes `<path>.tbi`; returns the index path. */
  async close(): Promise<string> {
    await this.bgzf.close();
    const raw = this.index.build((v) => this.bgzf.resolve(v));
    const tbi = `${this.path}.tbi`;
    await writeFile(tbi, await bgzfCompress(raw));
    return tbi;
  }
}

/**
 * Writes `<path>.tbi` for a finished, position-sorted BGZF VCF, reading it once (inflating,
 * never compressing): for a file compressed by another writer (such as the annotator's,
 * whose blocks several threads compress), where no writer kept the virtual offsets. The
 * index is written under a temporary name and renamed into place.
 */
export async function indexBgzfVcf(path: string, name = path): Promise<string> {
  const index = new TabixBuilder();
  let carry: Buffer | null = null;
  let carryStart = 0;
  let lineNo = 0;
  let header = '';
  let parser: VcfRecordParser | null = null;
  let records = 0;
  const addLine = (line: Buffer, vBeg: number, vEnd: number): void => {
    lineNo++;
    if (!parser) {
      header += `${line.toString('utf8')}\n`;
      if (line[0] !== 35 /* # */ || line.toString('latin1', 0, 6) === '#CHROM') parser = new VcfRecordParser(parseVcfHeader(header, name), name);
      return;
    }
    if (line.length === 0) return;
    const r = parser.parse(line.toString('utf8'), { file: name, record: ++records, line: lineNo });
    try {
      index.add(r.chrom, r.pos - 1, vcfRecordEnd(r.pos, r.ref, r.info), vBeg, vEnd);
    } catch (e) {
      if (e instanceof GenolakeError) throw new InputError('VCF_UNSORTED', e.message, { file: name, record: records, line: lineNo });
      throw e;
    }
  };
  for await (const block of readBgzfBlocks(path, { name })) {
    const d = block.data;
    // virtual offset: compressed block offset × 2^16 + offset in the block (exact below 2^53)
    const v0 = block.coffset * 65536;
    let s = 0;
    while (s < d.length) {
      const nl = d.indexOf(10, s);
      if (nl < 0) {
        if (carry) carry = Buffer.concat([carry, d.subarray(s)]);
        else {
          carry = Buffer.from(d.subarray(s));
          carryStart = v0 + s;
        }
        break;
      }
      let end = nl;
      if (end > s && d[end - 1] === 13) end--;
      // a line that ends its block ends where the next block starts (as htslib's tell puts it)
      const vEnd = nl + 1 === d.length ? (block.coffset + block.csize) * 65536 : v0 + nl + 1;
      if (carry) {
        addLine(Buffer.concat([carry, d.subarray(s, end)]), carryStart, vEnd);
        carry = null;
      } else addLine(d.subarray(s, end), v0 + s, vEnd);
      s = nl + 1;
    }
  }
  if (carry) throw new InputError('VCF_TRUNCATED', 'the last line has no newline', { file: name, line: lineNo + 1 });
  if (!parser) throw new InputError('VCF_BAD_HEADER', 'header has no #CHROM line', { file: name, line: lineNo });
  const tbi = `${path}.tbi`;
  const tmp = `${tbi}.tmp-${process.pid}`;
  try {
    await writeFile(tmp, await bgzfCompress(index.build()));
    await rename(tmp, tbi);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return tbi;
}
