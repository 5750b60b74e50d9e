/** Minimal streaming VCF text reading/writing for the annotator (plain or gzip/BGZF input). */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import { isBgzfBlock, readBgzfBlocks } from '../formats/bgzf.js';
import { InputError } from '../util/errors.js';

/** One parsed VCF record: 0-based POS, upper-case alleles, optional genotypes. */
export interface VariantRecord {
  chrom: string;
  pos: number;
  ref: string;
  alts: string[];
  /** Reference length covered (REF length, or END for symbolic alleles). */
  rlen: number;
  gts: Array<{ a: number[]; phased: boolean }> | null;
}

export function openVcfLines(file: string): Interface {
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const gz = /\.(gz|bgz)$/i.test(file);
  const input = gz ? raw.pipe(createGunzip()) : raw;
  if (gz) raw.on('error', (e) => input.emit('error', e));
  return createInterface({ input, crlfDelay: Infinity });
}

/** A file's bytes in pieces of 1 MiB, read synchronously (async reads wait in libuv's thread pool behind output compression). */
async function* fileChunks(file: string): AsyncGenerator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(1 << 20);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n <= 0) break;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** The bytes of a plain, BGZF or gzip file (by extension `.gz`/`.bgz`), in pieces. BGZF is inflated block by block in this thread. */
export async function* byteBatches(file: string): AsyncGenerator<Buffer> {
  if (!/\.(gz|bgz)$/i.test(file)) {
    yield* fileChunks(file);
    return;
  }
  const head = Buffer.alloc(18);
  const fd = openSync(file, 'r');
  let got: number;
  try {
    got = readSync(fd, head, 0, 18, 0);
  } finally {
    closeSync(fd);
  }
  if (isBgzfBlock(head.subarray(0, got))) {
    for await (const b of readBgzfBlocks(fileChunks(file), { name: file, threads: 1 })) if (b.data.length) yield b.data;
    return;
  }
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const input = raw.pipe(createGunzip({ chunkSize: 1 << 18 }));
  raw.on('error', (e) => input.emit('error', e));
  for await (const piece of input) yield piece as Buffer;
}

/** Lines of a (gzip/BGZF or plain) text file in batches, without per-line promises. */
export async function* lineBatches(file: string, encoding: 'latin1' | 'utf8' = 'latin1'): AsyncGenerator<string[]> {
  const raw = createReadStream(file, { highWaterMark: 1 << 20 });
  const gz = /\.(gz|bgz)$/i.test(file);
  const input = gz ? raw.pipe(createGunzip({ chunkSize: 1 << 18 })) : raw;
  if (gz) raw.on('error', (e) => input.emit('error', e));
  // UTF-8 characters may be cut between chunks
  const utf8 = encoding === 'utf8' ? new StringDecoder('utf8') : null;
  let rest = '';
  for await (const chunk of input) {
    const text = rest + (utf8 ? utf8.write(chunk as Buffer) : (chunk as Buffer).toString('latin1'));
    const lines = text.split('\n');
    rest = lines.pop()!;
    for (let i = 0; i < lines.length; i++) if (lines[i].endsWith('\r')) lines[i] = lines[i].slice(0, -1);
    yield lines;
  }
  if (utf8) rest += utf8.end();
  if (rest) yield [rest.endsWith('\r') ? rest.slice(0, -1) : rest];
}

/** Parses one VCF data line (already split on tabs). */

export function parseVcfRecord(cols: string[], nsamples: number, file: string, recordNo: number, lineNo: number): VariantRecord {
  if (cols.length < 8) throw new InputError('bad_vcf', `expected at least 8 columns, found ${cols.length}`, { file, record: recordNo, line: lineNo });
  const pos1 = Number(cols[1]);
  if (!Number.isInteger(pos1) || pos1 < 1) throw new InputError('bad_vcf', `bad POS ${JSON.stringify(cols[1])}`, { file, record: recordNo, line: lineNo, field: 'POS' });
  let ref = cols[3];
  for (let i = 0; i < ref.length; i++) {
    const c = ref.charCodeAt(i);
    if (c !== 65 && c !== 67 && c !== 71 && c !== 84 && c !== 78) {
      ref = ref.toUpperCase();
      break;
    }
  }
  if (!/^[ACGTN]+$/.test(ref)) throw new InputError('bad_vcf', `bad REF ${JSON.stringify(cols[3])}`, { file, record: recordNo, line: lineNo, field: 'REF' });
  const alts = cols[4] === '.' ? [] : cols[4].indexOf(',') < 0 ? [upperAllele(cols[4])] : cols[4].split(',').map(upperAllele);
  let rlen = ref.length;
  if (cols[4].indexOf('<') >= 0) {
    const m = /(?:^|;)END=(\d+)/.exec(cols[7]);
    if (m) rlen = Math.max(1, Number(m[1]) - (pos1 - 1));
  }
  let gts: VariantRecord['gts'] = null;
  if (nsamples > 0 && cols.length > 9) {
    const fmt = cols[8].split(':');
    if (fmt[0] === 'GT') {
      gts = [];
      for (let i = 0; i < nsamples; i++) {
        const v = (cols[9 + i] ?? '.').split(':')[0];
        const phased = v.includes('|') || !/[/|]/.test(v);
        const a = v.split(/[/|]/).map((x) => (x === '.' ? -1 : Number(x)));
        if (a.some((x) => !Number.isInteger(x) || x > alts.length)) {
          throw new InputError('bad_vcf', `bad genotype ${JSON.stringify(v)}`, { file, record: recordNo, line: lineNo, field: 'GT' });
        }
        gts.push({ a, phased });
      }
    }
  }
  return { chrom: cols[0], pos: pos1 - 1, ref, alts, rlen, gts };
}

function upperAllele(a: string): string {
  if (a[0] === '<') return a;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c >= 97 && c <= 122) return a.toUpperCase();
  }
  return a;
}

/** Sets (or replaces) an INFO key. */
export function setInfo(info: string, key: string, value: string): string {
  if (info === '.' || info === '') return `${key}=${value}`;
  if (!info.includes(key)) return `${info};${key}=${value}`;
  const parts = info === '.' || info === '' ? [] : info.split(';').filter((kv) => kv !== key && !kv.startsWith(`${key}=`));
  parts.push(`${key}=${value}`);
  return parts.join(';');
}
