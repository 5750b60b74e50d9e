/**
 * Streaming FASTA reader with validation, for building the aligner's index.
 *
 * Rules (each failure is an InputError naming the file, 1-based line and contig):
 * - the first non-empty line is a header ('>' followed by a non-empty name; the name
 *   ends at the first space or tab); names are unique;
 * - every contig has at least one base;
 * - sequence letters: A C G T N and the IUPAC codes R Y S W K M B D H V U in either
 *   case; IUPAC codes other than ACGT become N in the index (U becomes N too);
 *   anything else (digits, '-', '.', '*', spaces inside a line...) is an error;
 * - for the .fai (as samtools faidx requires), every line of a contig except its last
 *   has the same length; CRLF line ends are accepted.
 * Sequence is delivered as codes 0..3 = ACGT, 4 = N.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { InputError } from '../util/errors.js';

export interface FastaContig {
  name: string;
  length: number;
  /** Byte offset of the first base in the file (the .fai OFFSET column). */
  offset: number;
  /** Bases per line and bytes per line (LINEBASES, LINEWIDTH of the .fai). */
  lineBases: number;
  lineWidth: number;
}

export interface FastaSummary {
  contigs: FastaContig[];
  /** sha256 (hex) of the file's bytes. */
  sha256: string;
  bytes: number;
  /** Concatenated sequence codes (0..4) of all contigs, in order. */
  codes: Uint8Array;
  /** Bases that were IUPAC codes other than ACGT (stored as N). */
  iupac: number;
}

/** 0..3 ACGT, 4 N/IUPAC, 255 illegal. */
const CODE = new Uint8Array(256).fill(255);
for (const [c, v] of [['A', 0], ['C', 1], ['G', 2], ['T', 3]] as const) {
  CODE[c.charCodeAt(0)] = v;
  CODE[c.toLowerCase().charCodeAt(0)] = v;
}
for (const c of 'NRYSWKMBDHVU') {
  CODE[c.charCodeAt(0)] = 4;
  CODE[c.toLowerCase().charCodeAt(0)] = 4;
}

function shownChar(b: number): string {
  return b >= 33 && b <= 126 ? `'${String.fromCharCode(b)}'` : `byte 0x${b.toString(16).padStart(2, '0')}`;
}

/** A growable byte buffer. */
class Codes {
  buf = new Uint8Array(1 << 20);
  n = 0;
  reserve(extra: number): void {
    if (this.n + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.n + extra) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.n));
    this.buf = nb;
  }
}

/**
 * Reads and validates a FASTA file. The sequence is kept in memory (one byte per
 * base): it goes into the index anyway.
 */
export async function readFasta(file: string): Promise<FastaSummary> {
  const hash = createHash('sha256');
  const contigs: FastaContig[] = [];
  const names = new Map<string, number>();
  const codes = new Codes();
  let iupac = 0;
  let lineNo = 0;
  let fileOff = 0; // offset of the current line's first byte
  let partial: Buffer | null = null;
  let cur: FastaContig | null = null;
  let curHeaderLine = 0;
  // line geometry of the current contig
  let lastLineBases = -1; // bases of the previous sequence line (-1: none yet)
  let shortLineSeen = false; // a line shorter than lineBases was seen: it must be the last
  let blankAfterSeq = false;

  const fail = (code: string, msg: string, line: number, contig?: string): never => {
    throw new InputError(code, contig ? `contig ${JSON.stringify(contig)}: ${msg}` : msg, { file, line });
  };

  const finishContig = (): void => {
    if (cur && cur.length === 0) fail('FASTA_EMPTY_CONTIG', 'contig has no sequence', curHeaderLine, cur.name);
  };

  const handleLine = (buf: Buffer, s: number, e: number, off: number, lineBytes: number): void => {
    lineNo++;
    let end = e;
    if (end > s && buf[end - 1] === 13) end--; // CR
    if (buf[s] === 62 /* > */ && end > s) {
      finishContig();
      let ne = s + 1;
      while (ne < end && buf[ne] !== 32 && buf[ne] !== 9) ne++;
      const name = buf.toString('latin1', s + 1, ne);
      if (name.length === 0) fail('FASTA_EMPTY_NAME', 'header line has no contig name', lineNo);
      const prev = names.get(name);
      if (prev !== undefined) fail('FASTA_DUPLICATE_NAME', `duplicate contig name (first defined on line ${prev})`, lineNo, name);
      names.set(name, lineNo);
      cur = { name, length: 0, offset: off + lineBytes, lineBases: 0, lineWidth: 0 };
      contigs.push(cur);
      curHeaderLine = lineNo;
      lastLineBases = -1;
      shortLineSeen = false;
      blankAfterSeq = false;
      return;
    }
    const n = end - s;
    if (n === 0) {
      if (cur && cur.length > 0) blankAfterSeq = true;
      return;
    }
    if (!cur) fail('FASTA_NO_HEADER', 'sequence before the first header line', lineNo);
    const c = cur as FastaContig;
    if (blankAfterSeq) fail('FASTA_BLANK_LINE', 'blank line inside a contig\'s sequence', lineNo - 1, c.name);
    codes.reserve(n);
    const out = codes.buf;
    let w = codes.n;
    for (let i = s; i < end; i++) {
      const v = CODE[buf[i]];
      if (v === 255) fail('FASTA_BAD_CHAR', `illegal character ${shownChar(buf[i])} at column ${i - s + 1}`, lineNo, c.name);
      if (v === 4) {
        const b = buf[i] | 0x20;
        if (b !== 110 /* n */) iupac++;
      }
      out[w++] = v;
    }
    codes.n = w;
    if (lastLineBases < 0) {
      c.lineBases = n;
      c.lineWidth = lineBytes;
    } else {
      if (shortLineSeen) fail('FASTA_LINE_LENGTH', `line lengths differ inside the contig (line ${lineNo - 1} is shorter than the ones before it)`, lineNo, c.name);
      if (n > c.lineBases) fail('FASTA_LINE_LENGTH', `line is longer (${n}) than the contig's first line (${c.lineBases})`, lineNo, c.name);
      if (n === c.lineBases && lineBytes !== c.lineWidth) fail('FASTA_LINE_LENGTH', 'line ends differ (LF vs CRLF) inside the contig', lineNo, c.name);
    }
    if (lastLineBases >= 0 && n < c.lineBases) shortLineSeen = true;
    if (lastLineBases < 0) shortLineSeen = false;
    lastLineBases = n;
    c.length += n;
  };

  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    hash.update(b);
    let buf = b;
    let base = fileOff;
    if (partial) {
      buf = Buffer.concat([partial, b]);
      partial = null;
    }
    let s = 0;
    for (;;) {
      const nl = buf.indexOf(10, s);
      if (nl < 0) break;
      handleLine(buf, s, nl, base, nl + 1 - s);
      base += nl + 1 - s;
      s = nl + 1;
    }
    if (s < buf.length) partial = Buffer.from(buf.subarray(s));
    fileOff = base;
  }
  if (partial && partial.length > 0) handleLine(partial, 0, partial.length, fileOff, partial.length + 1);
  finishContig();
  if (contigs.length === 0) throw new InputError('FASTA_EMPTY', 'no contigs (is this a FASTA file?)', { file });
  const bytes = contigs.length ? fileOff + (partial ? partial.length : 0) : 0;
  return { contigs, sha256: hash.digest('hex'), bytes, codes: codes.buf.subarray(0, codes.n), iupac };
}

/** The .fai text, byte-identical to `samtools faidx`. */
export function faiText(contigs: readonly FastaContig[]): string {
  return contigs.map((c) => `${c.name}\t${c.length}\t${c.offset}\t${c.lineBases}\t${c.lineWidth}\n`).join('');
}

/** sha256 (hex) of a file's bytes, streamed. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
