/**
 * The gene model kept on disk next to its file (`<gff>.genolake-model`): used while the file
 * is unchanged, replaced when it changes or is damaged, never in the way of reading the file.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadGeneModel } from '../../src/annotate/genemodel.js';
import { loadGeneModelCached, modelCachePath } from '../../src/annotate/model-cache.js';
import { InputError } from '../../src/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'gl-mc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const row = (type: string, b: number, e: number, strand: string, phase: string, attrs: string) => ['chr1', 'src', type, b, e, '.', strand, phase, attrs].join('\t');
/** One coding gene; `name` is the gene name (same length keeps the file size). */
const gff = (name: string) =>
  [
    '##gff-version 3',
    row('gene', 100, 1000, '+', '.', `ID=gene:G1;Name=${name};biotype=protein_coding`),
    row('mRNA', 100, 1000, '+', '.', 'ID=transcript:T1;Parent=gene:G1;biotype=protein_coding'),
    row('exon', 100, 300, '+', '.', 'Parent=transcript:T1'),
    row('exon', 500, 1000, '+', '.', 'Parent=transcript:T1'),
    row('CDS', 150, 300, '+', '0', 'Parent=transcript:T1'),
    row('CDS', 500, 858, '+', '2', 'Parent=transcript:T1'),
    row('lincRNA', 2000, 2500, '-', '.', 'ID=transcript:T3;Parent=gene:G1;biotype=lincRNA'),
    row('exon', 2000, 2100, '-', '.', 'Parent=transcript:T3'),
    row('exon', 2400, 2500, '-', '.', 'Parent=transcript:T3'),
  ].join('\n') + '\n';

let n = 0;
function file(text: string): string {
  const f = join(dir, `g${n++}.gff3`);
  writeFileSync(f, text);
  return f;
}

describe('gene model copy on disk', () => {
  it('is written on the first reading and gives the same model while the file is unchanged', async () => {
    const f = file(gff('ABC'));
    // a whole second, so that the time can be set again exactly below
    const when = new Date('2026-01-02T03:04:05Z');
    utimesSync(f, when, when);
    const read = await loadGeneModel(f);
    expect(existsSync(modelCachePath(f))).toBe(false);
    expect((await loadGeneModelCached(f, 'gff3')).transcripts).toEqual(read.transcripts);
    expect(existsSync(modelCachePath(f))).toBe(true);
    // the file replaced by one of the same size and time: the copy is what is used
    writeFileSync(f, gff('XYZ'));
    utimesSync(f, when, when);
    const kept = await loadGeneModelCached(f, 'gff3');
    expect(kept.transcripts).toEqual(read.transcripts);
    expect(kept.overlapping('chr1', 300, 600).map((t) => t.id)).toEqual(['T1']);
    expect(kept.reach('chr1', 2050, 2050)).toBe(2499);
  });

  it('is made again when the file changes, or the copy is damaged', async () => {
    const f = file(gff('ABC'));
    await loadGeneModelCached(f, 'gff3');
    writeFileSync(f, gff('LONGER'));
    expect((await loadGeneModelCached(f, 'gff3')).transcripts[0].geneName).toBe('LONGER');
    // and the new copy serves the new file
    expect((await loadGeneModelCached(f, 'gff3')).transcripts[0].geneName).toBe('LONGER');
    truncateSync(modelCachePath(f), statSync(modelCachePath(f)).size - 9);
    expect((await loadGeneModelCached(f, 'gff3')).transcripts).toEqual((await loadGeneModel(f)).transcripts);
    writeFileSync(modelCachePath(f), 'not a model');
    expect((await loadGeneModelCached(f, 'gff3')).transcripts).toEqual((await loadGeneModel(f)).transcripts);
    expect(readFileSync(modelCachePath(f)).subarray(0, 40).toString()).toContain('genolake gene model');
  });

  it('never stands in the way: a place it cannot be written, cache off, a bad file', async () => {
    const f = file(gff('ABC'));
    // a directory where the copy would go: the model is read and nothing is left behind
    mkdirSync(modelCachePath(f));
    expect((await loadGeneModelCached(f, 'gff3')).transcripts).toEqual((await loadGeneModel(f)).transcripts);
    expect(statSync(modelCachePath(f)).isDirectory()).toBe(true);
    const off = file(gff('ABC'));
    await loadGeneModelCached(off, 'gff3', { cache: false });
    expect(existsSync(modelCachePath(off))).toBe(false);
    // a broken model is reported as without the copy, and no copy is made
    const bad = file(gff('ABC').replace('Parent=transcript:T3\n', 'Parent=transcript:T9\n'));
    await expect(loadGeneModelCached(bad, 'gff3')).rejects.toBeInstanceOf(InputError);
    expect(existsSync(modelCachePath(bad))).toBe(false);
    await expect(loadGeneModelCached(join(dir, 'missing.gff3'), 'gff3')).rejects.toThrow();
  });
});
