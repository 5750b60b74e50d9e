/** SAM text for alignment records (see record.ts for the field conventions). */
import type { AlignmentHeader, AlignmentRecord } from './record.js';
import { cigarString } from './record.js';

function clean(v: string): string {
  return v.replace(/[\t\n\r]/g, ' ');
}

export function samHeader(h: AlignmentHeader): string {
  const lines = [`@HD\tVN:1.6\tSO:${h.sortOrder}`];
  for (const r of h.references) lines.push(`@SQ\tSN:${r.name}\tLN:${r.length}`);
  for (const rg of h.readGroups) {
    let l = `@RG\tID:${clean(rg.id)}\tSM:${clean(rg.sample)}`;
    for (const [k, v] of Object.entries(rg.extra ?? {})) l += `\t${k}:${clean(v)}`;
    lines.push(l);
  }
  const p = h.program;
  lines.push(`@PG\tID:${p.id}\tPN:${p.name}\tVN:${p.version}\tCL:${clean(p.commandLine)}${p.description ? `\tDS:${clean(p.description)}` : ''}`);
  return `${lines.join('\n')}\n`;
}

export function samLine(r: AlignmentRecord, refNames: readonly string[]): string {
  const rname = r.refId >= 0 ? refNames[r.refId] : '*';
  const rnext = r.nextRefId < 0 ? '*' : r.nextRefId === r.refId ? '=' : refNames[r.nextRefId];
  let qual = '*';
  if (r.qual) {
    const b = Buffer.allocUnsafe(r.qual.length);
    for (let i = 0; i < r.qual.length; i++) b[i] = r.qual[i] + 33;
    qual = b.toString('latin1');
  }
  let line = `${r.qname}\t${r.flag}\t${rname}\t${r.pos + 1}\t${r.mapq}\t${cigarString(r.cigar)}\t${rnext}\t${r.nextPos + 1}\t${r.tlen}\t${r.seq || '*'}\t${qual}`;
  const t = r.tags;
  if (t.NM !== undefined) line += `\tNM:i:${t.NM}`;
  if (t.MD !== undefined) line += `\tMD:Z:${t.MD}`;
  if (t.MC !== undefined) line += `\tMC:Z:${t.MC}`;
  if (t.AS !== undefined) line += `\tAS:i:${t.AS}`;
  if (t.XS !== undefined) line += `\tXS:i:${t.XS}`;
  if (t.SA !== undefined) line += `\tSA:Z:${t.SA}`;
  if (t.RG !== undefined) line += `\tRG:Z:${t.RG}`;
  return line;
}
