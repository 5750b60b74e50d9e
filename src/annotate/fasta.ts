/**
 * Indexed FASTA access (samtools .fai layout). The index is read from `<fa>.fai` when present,
 * otherwise built by one streaming pass over the file (kept in memory, optionally written).
 * Sequence is fetched with positioned reads, never by loading the whole file.
 */
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { InputError } from '../util/errors.js';

export interface FaiEntry {
  name: string;
  length: number;
  offset: number;
  lineBases: number;
  lineWidth: number;
}

export function parseFai(text: string, file: string): Map<string, FaiEntry> {
  const out = new Map<string, FaiEntry>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (!l) continue;
    const c = l.split('\t');
    const nums = c.slice(1, 5).map(Number);
    if (c.length < 5 || nums.some((n) => !Number.isInteger(n) || n < 0)) {
      throw new InputError('bad_fai', `malformed .fai line: ${JSON.stringify(l)}`, { file, line: i + 1 });
    }
    out.set(c[0], { name: c[0], length: nums[0], offset: nums[1], lineBases: nums[2], lineWidth: nums[3] });
  }
  return out;
}

/** Builds a .fai index by streaming the FASTA once. Rejects ragged line lengths like samtools. */
export async function buildFai(fasta: string): Promise<Map<string, FaiEntry>> {
  const out = new Map<string, FaiEntry>();
  let cur: FaiEntry | null = null;
  let offset = 0; // byte offset of the start of the current line
  let lineNo = 0;
  let shortSeen = false; // a line shorter than lineBases was seen for the current sequence
  let rest = Buffer.alloc(0);
  const finish = () => {
    if (cur) out.set(cur.name, cur);
  };
  const handleLine = (line: Buffer, nlLen: number) => {
    lineNo++;
    let len = line.length;
    if (len && line[len - 1] === 13) len--; // CR
    const full = line.length + nlLen;
    if (len > 0 && line[0] === 62 /* > */) {
      finish();
      const name = line.subarray(1, len).toString('latin1').split(/[ \t]/)[0];
      if (!name) throw new InputError('bad_fasta', 'empty sequence name', { file: fasta, line: lineNo });
      if (out.has(name)) throw new InputError('bad_fasta', `duplicate sequence name ${name}`, { file: fasta, line: lineNo });
      cur = { name, length: 0, offset: offset + full, lineBases: 0, lineWidth: 0 };
      shortSeen = false;
    } else if (cur) {
      const c: FaiEntry = cur;
      if (len === 0) {
        shortSeen = c.lineBases > 0;
      } else {
        if (c.lineBases === 0) {
          c.lineBases = len;
          c.lineWidth = full;
        } else if (shortSeen || len > c.lineBases) {
          throw new InputError('bad_fasta', `different line length in sequence ${c.name}`, { file: fasta, line: lineNo });
        } else if (len < c.lineBases) shortSeen = true;
        c.length += len;
      }
    } else if (len > 0) {
      throw new InputError('bad_fasta', 'sequence data before the first header', { file: fasta, line: lineNo });
    }
    offset += full;
  };
  for await (const chunk of createReadStream(fasta)) {
    let buf = rest.length ? Buffer.concat([rest, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      handleLine(buf.subarray(start, nl), 1);
      start = nl + 1;
    }
    rest = Buffer.from(buf.subarray(start));
  }
  if (rest.length) handleLine(rest, 0);
  finish();
  return out;
}

export function faiToText(fai: Map<string, FaiEntry>): string {
  let s = '';
  for (const e of fai.values()) s += `${e.name}\t${e.length}\t${e.offset}\t${e.lineBases}\t${e.lineWidth}\n`;
  return s;
}

export class IndexedFasta {
  private fd: number;
  private constructor(readonly file: string, readonly index: Map<string, FaiEntry>) {
    this.fd = openSync(file, 'r');
  }

  /** Opens `file`, using `file.fai` if it exists, else building the index (and writing it when `writeIndex`). */
  static async open(file: string, opts: { writeIndex?: boolean } = {}): Promise<IndexedFasta> {
    if (!existsSync(file)) throw new InputError('missing_file', 'reference FASTA not found', { file });
    const faiFile = `${file}.fai`;
    let idx: Map<string, FaiEntry>;
    if (existsSync(faiFile)) idx = parseFai(readFileSync(faiFile, 'utf8'), faiFile);
    else {
      idx = await buildFai(file);
      if (opts.writeIndex) writeFileSync(faiFile, faiToText(idx));
    }
    return new IndexedFasta(file, idx);
  }

  has(name: string): boolean {
    return this.index.has(name);
  }

  length(name: string): number | undefined {
    return this.index.get(name)?.length;
  }

  /** Upper-cased sequence of `name` over 0-based inclusive [beg, end], clipped to the sequence. */
  fetch(name: string, beg: number, end: number): string {
    const e = this.index.get(name);
    if (!e) throw new InputError('unknown_sequence', `sequence ${JSON.stringify(name)} is not in the reference`, { file: this.file });
    if (beg < 0) beg = 0;
    if (end >= e.length) end = e.length - 1;
    if (end < beg) return '';
    const byteOf = (p: number) => e.offset + Math.floor(p / e.lineBases) * e.lineWidth + (p % e.lineBases);
    const b0 = byteOf(beg);
    const { buf, got } = this.readBytes(b0, byteOf(end));
    // drop line ends: a byte loop (a native copy per 60-base line costs more in call overhead)
    const out = Buffer.allocUnsafe(end - beg + 1);
    let o = 0;
    let p = beg;
    while (p <= end && o < out.length) {
      const lineEnd = Math.min(end, (Math.floor(p / e.lineBases) + 1) * e.lineBases - 1);
      const src = byteOf(p) - b0;
      if (src >= got) break;
      const stop = Math.min(got, src + lineEnd - p + 1);
      for (let i = src; i < stop; i++) out[o++] = buf[i];
      p = lineEnd + 1;
    }
    const s = out.toString('latin1', 0, o);
    return s.toUpperCase();
  }

  /** File bytes [b0, b1] (fewer at the end of the file: `got`). */
  private readBytes(b0: number, b1: number): { buf: Buffer; got: number } {
    const buf = Buffer.allocUnsafe(b1 - b0 + 1);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(this.fd, buf, got, buf.length - got, b0 + got);
      if (n <= 0) break;
      got += n;
    }
    return { buf, got };
  }

  /** A window of raw FASTA bytes over [beg, end] of `name` (clipped), for base-by-base checks without building strings. */
  window(name: string, beg: number, end: number): BaseWindow | null {
    const e = this.index.get(name);
    if (!e) return null;
    if (beg < 0) beg = 0;
    if (end >= e.length) end = e.length - 1;
    if (end < beg) return null;
    const b0 = e.offset + Math.floor(beg / e.lineBases) * e.lineWidth + (beg % e.lineBases);
    const b1 = e.offset + Math.floor(end / e.lineBases) * e.lineWidth + (end % e.lineBases);
    const { buf, got } = this.readBytes(b0, b1);
    if (got < buf.length) return null;
    return new BaseWindow(name, beg, end, e, b0, buf);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Raw FASTA bytes of [beg, end] of one sequence. */
export class BaseWindow {
  constructor(
    readonly name: string,
    readonly beg: number,
    readonly end: number,
    private readonly e: FaiEntry,
    private readonly b0: number,
    private readonly buf: Buffer,
  ) {}

  /** [b, e] lies in the window. */
  holds(name: string, b: number, e: number): boolean {
    return name === this.name && b >= this.beg && e <= this.end;
  }

  /** Upper-cased sequence of [beg, end] (must lie in the window), as `IndexedFasta.fetch` gives it. */
  text(beg: number, end: number): string {
    const e = this.e;
    const out = Buffer.allocUnsafe(end - beg + 1);
    let o = 0;
    let p = beg;
    while (p <= end) {
      const lineEnd = Math.min(end, (Math.floor(p / e.lineBases) + 1) * e.lineBases - 1);
      const src = e.offset + Math.floor(p / e.lineBases) * e.lineWidth + (p % e.lineBases) - this.b0;
      const stop = src + lineEnd - p + 1;
      for (let i = src; i < stop; i++) out[o++] = this.buf[i];
      p = lineEnd + 1;
    }
    return out.toString('latin1', 0, o).toUpperCase();
  }

  /** Upper-cased character code of the base at `pos` (must lie in the window). */
  code(pos: number): number {
    const c = this.buf[this.e.offset + Math.floor(pos / this.e.lineBases) * this.e.lineWidth + (pos % this.e.lineBases) - this.b0];
    return c >= 97 && c <= 122 ? c - 32 : c;
  }
}
