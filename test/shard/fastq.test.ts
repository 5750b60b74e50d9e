import { describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import {
  canonicalBytes,
  checkPairedFastq,
  readFastq,
  type FastqBatch,
  type FastqOptions,
} from '../../src/formats/fastq.js';
import { InputError } from '../../src/util/errors.js';
import { fastqText, makeRecords, multiMemberGzip } from './helpers.js';
import { inputErrorOf } from '../helpers/errors.js';

/** Feeds bytes in small uneven chunks so records straddle chunk and batch boundaries. */
function chunked(buf: Buffer, size = 777): AsyncIterable<Buffer> {
  const parts: Buffer[] = [];
  for (let o = 0; o < buf.length; o += size) parts.push(buf.subarray(o, o + size));
  return Readable.from(parts);
}

async function readAll(buf: Buffer, opts: FastqOptions = { batchBytes: 4096 }): Promise<{ text: string; count: number; batches: FastqBatch[] }> {
  let text = '';
  let count = 0;
  const batches: FastqBatch[] = [];
  for await (const b of readFastq(chunked(buf), 'in.fq', opts)) {
    text += canonicalBytes(b, 0, b.count).toString('latin1');
    count += b.count;
    batches.push(b);
  }
  return { text, count, batches };
}

const errorOf = inputErrorOf;

describe('readFastq', () => {
  const recs = makeRecords(500);
  const text = fastqText(recs);

  it('reads plain, gzip and multi-member gzip to the same records', async () => {
    for (const buf of [Buffer.from(text), gzipSync(text), multiMemberGzip(text, 7)]) {
      const r = await readAll(buf);
      expect(r.count).toBe(500);
      expect(r.text).toBe(text);
      expect(r.batches.length).toBeGreaterThan(1);
      expect(r.batches[1].firstRecord).toBe(r.batches[0].count + 1);
    }
  });

  it('accepts CRLF, a missing final newline and trailing blank lines, and emits LF records', async () => {
    const crlf = fastqText(recs, '\r\n');
    expect((await readAll(Buffer.from(crlf))).text).toBe(text);
    expect((await readAll(Buffer.from(text.slice(0, -1)))).text).toBe(text);
    expect((await readAll(Buffer.from(`${text}\n\n`))).text).toBe(text);
    expect((await readAll(Buffer.from(`${crlf.slice(0, -2)}`))).text).toBe(text);
  });

  it('accepts a separator that repeats the header or the name', async () => {
    const r = makeRecords(3);
    r[0].plus = `+${r[0].head.slice(1)}`;
    r[1].head += ' 1:N:0:ACGT';
    r[1].plus = `+${r[1].head.slice(1).split(' ')[0]}`;
    expect((await readAll(Buffer.from(fastqText(r)))).count).toBe(3);
  });

  it('IUPAC letters only with alphabet iupac; maxQual narrows the quality range', async () => {
    const r = makeRecords(2, { len: 10 });
    r[1].seq = 'ACGTRYKMSW';
    const buf = Buffer.from(fastqText(r));
    const e = await errorOf(readAll(buf));
    expect(e.code).toBe('FASTQ_BAD_BASE');
    expect((await readAll(buf, { alphabet: 'iupac' })).count).toBe(2);
    r[1].seq = 'ACGTACGTAC';
    r[1].qual = 'IIIIIIIIIK';
    const q = Buffer.from(fastqText(r));
    expect((await readAll(q)).count).toBe(2);
    const eq = await errorOf(readAll(q, { maxQual: 'J' }));
    expect(eq.code).toBe('FASTQ_BAD_QUAL');
    expect(eq.place).toMatchObject({ file: 'in.fq', record: 2, line: 8, field: 'quality' });
    expect(eq.message).toContain("'K' at position 10");
  });

  it('reports corrupt gzip as an InputError naming the file', async () => {
    const gz = gzipSync(text);
    const e = await errorOf(readAll(gz.subarray(0, gz.length - 100)));
    expect(e.code).toBe('FASTQ_BAD_GZIP');
    expect(e.place.file).toBe('in.fq');
  });
});

describe('checkPairedFastq', () => {
  it('pairs names modulo /1 /2 and comments, and finds the first mismatch', async () => {
    const a = fastqText(makeRecords(300, { mate: 1, suffix: true }));
    const b = makeRecords(300, { mate: 2, seed: 9 });
    expect(await checkPairedFastq(chunked(Buffer.from(a)), 'a.fq', chunked(Buffer.from(fastqText(b))), 'b.fq')).toBe(300);
    b[211].head = '@other 2:N:0:ACGT';
    const e = await errorOf(checkPairedFastq(chunked(Buffer.from(a)), 'a.fq', chunked(Buffer.from(fastqText(b))), 'b.fq', { recordOffset: 1000 }));
    expect(e.code).toBe('FASTQ_PAIR_NAME');
    expect(e.place.record).toBe(1212);
    expect(e.message).toContain('a.fq');
    expect(e.message).toContain('b.fq');
  });

  it('reports unequal record counts with the first unpaired record', async () => {
    const a = fastqText(makeRecords(300, { mate: 1 }));
    const b = fastqText(makeRecords(250, { mate: 2 }));
    const e = await errorOf(checkPairedFastq(chunked(Buffer.from(a)), 'a.fq', chunked(Buffer.from(b)), 'b.fq'));
    expect(e.code).toBe('FASTQ_PAIR_COUNT');
    expect(e.place.record).toBe(251);
    expect(e.message).toMatch(/a\.fq has a record 251 but b\.fq ends after 250 records/);
  });
});
