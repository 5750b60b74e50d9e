/**
 * The alignment driver: reads FASTQ (single or paired), cuts it into batches, aligns
 * each batch in a worker (the kernel on the shared index memory) and returns ordered
 * alignment records; `alignToSam` writes them as SAM, published atomically.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { createPool, type TaskPool } from '../engine/pool.js';
import { FIELDS_PER_RECORD, HEAD, QUAL, SEQ, pairNameEnd, readFastq, type FastqBatch } from '../formats/fastq.js';
import { GenolakeError, InputError } from '../util/errors.js';
import { genolakeVersion } from '../util/paths.js';
import { loadIndex, type IndexHeader } from './index-file.js';
import { allocateSharedIndex, allocateSplitIndex, DEFAULT_PARAMS, MAX_READ_LEN, type AlignParams, type KernelResult, type SharedIndexHandle } from './kernel.js';
import type { AlignmentHeader, AlignmentRecord, ReadGroup } from './record.js';
import { cigarString } from './record.js';
import { samHeader, samLine } from './sam.js';
import type { AlignTaskPayload } from './task.js';

export interface AlignOptions {
  /** Directory written by `genolake index`. */
  indexDir: string;
  r1: string;
  /** Mate file; without it reads are aligned single-end. */
  r2?: string;
  threads?: number;
  readGroup?: ReadGroup;
  params?: Partial<AlignParams>;
  /** Pairs (or single reads) per kernel call; default 1024 (and at most ~1 MB of bases). */
  batchSize?: number;
  /** Recorded in @PG CL. */
  commandLine?: string;
  /** A pool to use instead of creating one (the engine's). */
  pool?: TaskPool;
  /** The index already in shared memory (`prepareIndex`), for many alignments on one pool; else loaded from indexDir. */
  index?: PreparedIndex;
  /**
   * Mark the shorter part of a chimeric read secondary (0x100, soft-clipped, full SEQ)
   * instead of supplementary, for tools that predate supplementary alignments (Picard's
   * older MarkDuplicates, GATK 3); as `bwa mem -M`.
   */
  splitAsSecondary?: boolean;
}

/** An aligner index loaded once into shared memory: every shard of a sample aligns against it. */
export interface PreparedIndex {
  dir: string;
  header: IndexHeader;
  handle: SharedIndexHandle;
}

/**
 * Loads the index of `indexDir` into a shared WebAssembly.Memory with a thread slot per
 * worker (plus slack for workers replaced after a crash). Worker threads keep one kernel
 * instance per loaded index, so reusing this across shards costs no reload anywhere.
 */
export async function prepareIndex(indexDir: string, threads: number): Promise<PreparedIndex> {
  const slots = Math.max(1, threads) + 2;
  let handle: SharedIndexHandle | undefined;
  let blobs: Uint8Array[] = [];
  // The files are read straight into the shared memories: a large index is never held twice.
  const index = await loadIndex(indexDir, {
    onSplitHeader: (header) => {
      const a = allocateSplitIndex({
        k: header.params.k,
        w: header.params.w,
        lengths: header.contigs.map((c) => c.length),
        parts: header.parts!.map((p) => ({ base: p.base, firstContig: p.firstContig, nContigs: p.nContigs })),
      }, header.parts!.map((p) => p.blobBytes), slots);
      handle = a.handle;
      blobs = a.blobs;
    },
    into: (bytes, part) => {
      if (blobs.length > 0) {
        if (bytes !== blobs[part].length) throw new InputError('INDEX_CORRUPT', `index part ${part + 1} is not the size its manifest says`, { file: indexDir });
        return blobs[part];
      }
      const a = allocateSharedIndex(bytes, slots);
      handle = a.handle;
      return a.blob;
    },
  });
  return { dir: indexDir, header: index.header, handle: handle! };
}

export interface AlignSummary {
  reads: number;
  mapped: number;
  properPairs: number;
  batches: number;
  isizeMean: number;
  isizeSd: number;
  rescued: number;
}

interface Read {
  name: string;
  seq: Buffer;
  qual: Buffer;
}

/** Record-by-record cursor over a FASTQ file. */
class Cursor {
  private batch: FastqBatch | undefined;
  private i = 0;
  record = 0;
  private readonly it: AsyncIterator<FastqBatch>;
  constructor(readonly file: string) {
    this.it = readFastq(createReadStream(file), file)[Symbol.asyncIterator]();
  }
  async next(): Promise<Read | undefined> {
    while (!this.batch || this.i >= this.batch.count) {
      const r = await this.it.next();
      if (r.done) return undefined;
      this.batch = r.value;
      this.i = 0;
    }
    const b = this.batch, o = b.offsets, base = this.i * FIELDS_PER_RECORD;
    const nameEnd = pairNameEnd(b, this.i);
    const rd: Read = {
      name: b.buf.toString('latin1', o[base + HEAD] + 1, nameEnd),
      seq: Buffer.from(b.buf.subarray(o[base + SEQ], o[base + SEQ + 1])),
      qual: Buffer.from(b.buf.subarray(o[base + QUAL], o[base + QUAL + 1])),
    };
    this.i++;
    this.record++;
    if (rd.seq.length > MAX_READ_LEN) {
      throw new InputError('READ_TOO_LONG', `read of ${rd.seq.length} bp: the aligner takes reads up to ${MAX_READ_LEN} bp`, { file: this.file, record: this.record, field: 'sequence' });
    }
    return rd;
  }
  async close(): Promise<void> {
    await this.it.return?.(undefined);
  }
}

interface Batch {
  reads: Read[];
  payload: AlignTaskPayload;
}

async function* batches(opts: AlignOptions, handle: SharedIndexHandle, params: AlignParams): AsyncGenerator<Batch> {
  // ~1 MB of bases per batch: small enough that batches in flight cost little memory, large
  // enough for a per-batch insert-size estimate and to amortise a kernel call.
  const size = opts.batchSize ?? 1024;
  const c1 = new Cursor(opts.r1);
  const c2 = opts.r2 ? new Cursor(opts.r2) : undefined;
  try {
    for (;;) {
      const reads: Read[] = [];
      let bases = 0;
      while (reads.length < (c2 ? 2 * size : size)) {
        const a = await c1.next();
        const b = c2 ? await c2.next() : undefined;
        if (!a) {
          if (b) throw new InputError('FASTQ_PAIR_COUNT', `paired files differ in record count: ${opts.r2} has a record ${c2!.record} but ${opts.r1} ends after ${c1.record} records`, { file: `${opts.r1}, ${opts.r2}`, record: c2!.record });
          break;
        }
        if (c2) {
          if (!b) throw new InputError('FASTQ_PAIR_COUNT', `paired files differ in record count: ${opts.r1} has a record ${c1.record} but ${opts.r2} ends after ${c2.record} records`, { file: `${opts.r1}, ${opts.r2}`, record: c1.record });
          if (a.name !== b.name) throw new InputError('FASTQ_PAIR_NAME', `mate names differ: ${JSON.stringify(a.name)} in ${opts.r1} vs ${JSON.stringify(b.name)} in ${opts.r2}`, { file: `${opts.r1}, ${opts.r2}`, record: c1.record, field: 'header' });
          reads.push(a, b);
          bases += a.seq.length + b.seq.length;
        } else {
          reads.push(a);
          bases += a.seq.length;
        }
        if (bases > 1_000_000) break;
      }
      if (reads.length === 0) return;
      const seqs = new Uint8Array(bases);
      const offs = new Int32Array(reads.length + 1);
      let o = 0;
      reads.forEach((r, i) => {
        offs[i] = o;
        seqs.set(r.seq, o);
        o += r.seq.length;
      });
      offs[reads.length] = o;
      yield { reads, payload: { handle, params, paired: !!c2, seqs, offs } };
    }
  } finally {
    await c1.close();
    await c2?.close();
  }
}

const RC = new Uint8Array(256);
for (let i = 0; i < 256; i++) RC[i] = 78; // N
for (const [a, b] of [['A', 'T'], ['C', 'G'], ['G', 'C'], ['T', 'A']]) {
  RC[a.charCodeAt(0)] = b.charCodeAt(0);
  RC[a.toLowerCase().charCodeAt(0)] = b.charCodeAt(0);
}
const UP = new Uint8Array(256);
for (let i = 0; i < 256; i++) UP[i] = 78;
for (const c of 'ACGTN') {
  UP[c.charCodeAt(0)] = c.charCodeAt(0);
  UP[c.toLowerCase().charCodeAt(0)] = c.charCodeAt(0);
}

/** SEQ and QUAL of a read as stored for an alignment on the given strand, without hard-clipped ends. */
function seqQual(rd: Read, rev: boolean, from = 0, to = rd.seq.length): [string, Uint8Array] {
  const L = rd.seq.length;
  const seq = Buffer.allocUnsafe(to - from);
  const qual = new Uint8Array(to - from);
  for (let j = from; j < to; j++) {
    const k = rev ? L - 1 - j : j;
    seq[j - from] = rev ? RC[rd.seq[k]] : UP[rd.seq[k]];
    qual[j - from] = rd.qual[k] - 33;
  }
  return [seq.toString('latin1'), qual];
}

/** The SA tag entry of an alignment: rname,pos,strand,CIGAR,mapQ,NM; */
function saEntry(name: string, pos: number, rev: boolean, cigar: Uint32Array, mapq: number, nm: number): string {
  return `${name},${pos + 1},${rev ? '-' : '+'},${cigarString(cigar)},${mapq},${nm};`;
}

/**
 * Alignment records of one batch from the kernel's result: per read its primary record,
 * followed by its supplementary record when the read is chimeric (CIGAR hard-clipped,
 * SEQ/QUAL trimmed to match, SA tags on both).
 */
export function toRecords(reads: readonly Read[], r: KernelResult, rg: ReadGroup | undefined, refNames: readonly string[], splitAsSecondary = false): AlignmentRecord[] {
  const out: AlignmentRecord[] = [];
  let sec = 0;
  for (let i = 0; i < reads.length; i++) {
    const rd = reads[i];
    const flag = r.flag[i];
    const rev = (flag & 0x10) !== 0;
    const [seq, qual] = seqQual(rd, rev);
    const mapped = (flag & 0x4) === 0;
    const cigar = r.cigar.slice(r.cigarOff[i], r.cigarOff[i + 1]);
    const mc = r.mateCigar.subarray(r.mateCigarOff[i], r.mateCigarOff[i + 1]);
    const rec: AlignmentRecord = {
      qname: rd.name,
      flag,
      refId: r.tid[i],
      pos: r.pos[i],
      mapq: mapped ? r.mapq[i] : 0,
      cigar,
      nextRefId: r.mtid[i],
      nextPos: r.mpos[i],
      tlen: r.tlen[i],
      seq,
      qual,
      tags: {},
    };
    if (mapped) {
      rec.tags.NM = r.nm[i];
      rec.tags.MD = r.md[i];
    }
    if (mc.length > 0) rec.tags.MC = cigarString(mc);
    if (mapped) {
      rec.tags.AS = r.as[i];
      if (r.xs[i] >= 0) rec.tags.XS = r.xs[i];
    }
    if (rg) rec.tags.RG = rg.id;
    out.push(rec);
    // secondary alignments (allHits), as bwa mem -a: MAPQ 0, no SEQ/QUAL, mate fields of the primary
    for (; sec < r.secRead.length && r.secRead[sec] === i; sec++) {
      const sRev = r.secRev[sec] !== 0;
      const s: AlignmentRecord = {
        qname: rd.name,
        flag: (flag & (0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x80)) | 0x100 | (sRev ? 0x10 : 0),
        refId: r.secTid[sec],
        pos: r.secPos[sec],
        mapq: 0,
        cigar: r.secCigar.slice(r.secCigarOff[sec], r.secCigarOff[sec + 1]),
        nextRefId: r.mtid[i],
        nextPos: r.mpos[i],
        tlen: 0,
        seq: '',
        qual: null,
        tags: { NM: r.secNm[sec], MD: r.secMd[sec] },
      };
      if (rec.tags.MC) s.tags.MC = rec.tags.MC;
      s.tags.AS = r.secAs[sec];
      if (rg) s.tags.RG = rg.id;
      out.push(s);
    }
    if (!mapped || r.supTid[i] < 0) continue;
    // supplementary: the other part of a chimeric read
    const sRev = r.supRev[i] !== 0;
    const sCig = r.supCigar.slice(r.supCigarOff[i], r.supCigarOff[i + 1]);
    // supplementary: hard-clipped, SEQ/QUAL of the aligned part; as secondary: soft clips, whole read
    const clipped = splitAsSecondary ? sCig : Uint32Array.from(sCig, (c) => ((c & 15) === 4 ? (c & ~15) | 5 : c));
    const lead = !splitAsSecondary && (sCig[0] & 15) === 4 ? sCig[0] >>> 4 : 0;
    const last = sCig[sCig.length - 1];
    const trail = !splitAsSecondary && sCig.length > 1 && (last & 15) === 4 ? last >>> 4 : 0;
    const [sSeq, sQual] = seqQual(rd, sRev, lead, rd.seq.length - trail);
    const sup: AlignmentRecord = {
      qname: rd.name,
      flag: (flag & (0x1 | 0x2 | 0x8 | 0x20 | 0x40 | 0x80)) | (splitAsSecondary ? 0x100 : 0x800) | (sRev ? 0x10 : 0),
      refId: r.supTid[i],
      pos: r.supPos[i],
      mapq: r.supMapq[i],
      cigar: clipped,
      nextRefId: r.mtid[i],
      nextPos: r.mpos[i],
      tlen: r.tlen[i],
      seq: sSeq,
      qual: sQual,
      tags: { NM: r.supNm[i], MD: r.supMd[i] },
    };
    if (rec.tags.MC) sup.tags.MC = rec.tags.MC;
    sup.tags.AS = r.supAs[i];
    sup.tags.SA = saEntry(refNames[rec.refId], rec.pos, rev, cigar, rec.mapq, r.nm[i]);
    rec.tags.SA = saEntry(refNames[sup.refId], sup.pos, sRev, sCig, sup.mapq, r.supNm[i]);
    if (rg) sup.tags.RG = rg.id;
    out.push(sup);
  }
  return out;
}

export interface AlignRun {
  header: AlignmentHeader;
  index: PreparedIndex;
  /** Ordered batches of records. */
  records: AsyncGenerator<AlignmentRecord[]>;
  summary: AlignSummary;
}

/** Starts an alignment: loads the index once into shared memory and streams record batches. */
export async function startAlign(opts: AlignOptions): Promise<AlignRun> {
  const threads = Math.max(1, opts.threads ?? 2);
  const index = opts.index ?? (await prepareIndex(opts.indexDir, threads));
  const params: AlignParams = { ...DEFAULT_PARAMS, ...opts.params };
  for (const [k, v] of Object.entries(params)) {
    if (!Number.isInteger(v) || v < 0) throw new InputError('ALIGN_PARAM', `parameter ${k} must be a non-negative integer (got ${v})`, { field: k });
  }
  const header: AlignmentHeader = {
    sortOrder: 'unsorted',
    references: index.header.contigs.map((c) => ({ name: c.name, length: c.length })),
    readGroups: opts.readGroup ? [opts.readGroup] : [],
    program: {
      id: 'genolake',
      name: 'genolake',
      version: genolakeVersion(),
      commandLine: opts.commandLine ?? `genolake align --index ${opts.indexDir} --r1 ${opts.r1}${opts.r2 ? ` --r2 ${opts.r2}` : ''}`,
      description: `index k=${index.header.params.k} w=${index.header.params.w} ${Object.entries(params).filter(([k, v]) => k !== 'allHits' || v !== 0).map(([k, v]) => `${k}=${v}`).join(' ')}${opts.splitAsSecondary ? ' splitAsSecondary=1' : ''}`,
    },
  };
  const refNames = index.header.contigs.map((c) => c.name);
  const summary: AlignSummary = { reads: 0, mapped: 0, properPairs: 0, batches: 0, isizeMean: 0, isizeSd: 0, rescued: 0 };
  const records = (async function* (): AsyncGenerator<AlignmentRecord[]> {
    const handle = index.handle;
    const pool = opts.pool ?? createPool({ threads });
    const inflight: { reads: Read[]; result: Promise<KernelResult> }[] = [];
    try {
      const src = batches(opts, handle, params);
      let done = false;
      while (!done || inflight.length > 0) {
        // one batch queued beyond those aligning keeps every worker busy; more only holds memory
        while (!done && inflight.length < threads + 1) {
          const n = await src.next();
          if (n.done) { done = true; break; }
          const result = pool.run<AlignTaskPayload, KernelResult>('align', n.value.payload);
          result.catch(() => undefined); // awaited below, in order
          inflight.push({ reads: n.value.reads, result });
        }
        const head = inflight.shift();
        if (!head) break;
        const res = await head.result;
        summary.batches++;
        summary.reads += res.n;
        summary.rescued += res.rescued;
        if (res.isizeN > 0) { summary.isizeMean = res.isizeMean; summary.isizeSd = res.isizeSd; }
        for (let i = 0; i < res.n; i++) {
          if (!(res.flag[i] & 4)) summary.mapped++;
          if (res.flag[i] & 2) summary.properPairs++;
        }
        yield toRecords(head.reads, res, opts.readGroup, refNames, opts.splitAsSecondary);
      }
    } finally {
      await Promise.allSettled(inflight.map((f) => f.result));
      if (!opts.pool) await pool.close();
    }
  })();
  return { header, index, records, summary };
}

/** Aligns and writes SAM to `out` (written under a temporary name, then renamed). */
export async function alignToSam(opts: AlignOptions & { out: string }): Promise<AlignSummary> {
  const run = await startAlign(opts);
  const tmp = `${opts.out}.tmp-${process.pid}`;
  const ws = createWriteStream(tmp);
  const names = run.header.references.map((r) => r.name);
  try {
    ws.write(samHeader(run.header));
    for await (const recs of run.records) {
      let chunk = '';
      for (const r of recs) chunk += `${samLine(r, names)}\n`;
      if (!ws.write(chunk)) await once(ws, 'drain');
    }
    await new Promise<void>((res, rej) => ws.end((e?: Error | null) => (e ? rej(e) : res())));
    await rename(tmp, opts.out);
  } catch (e) {
    ws.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
  return run.summary;
}

