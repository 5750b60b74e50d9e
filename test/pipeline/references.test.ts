import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReferenceRegistry, writeReferenceRegistry } from '../../src/pipeline/references.js';

describe('reference registry', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gl-refs-'));
    await writeFile(join(dir, 'ref.fa'), '>c\nACGT\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stores paths relative to itself and resolves names to existing files', async () => {
    const file = join(dir, 'references.json');
    await writeReferenceRegistry(file, { small: { fasta: join(dir, 'ref.fa') }, gone: { fasta: join(dir, 'nope.fa') } });
    const reg = await ReferenceRegistry.open(file);
    expect(reg.names()).toEqual(['gone', 'small']);
    expect(await reg.resolve('small', 'reference')).toEqual({ fasta: join(dir, 'ref.fa') });
    await expect(reg.resolve('gone', 'reference')).rejects.toMatchObject({ code: 'REFERENCE_FILE_MISSING', place: { field: 'references.gone.fasta' } });
    await expect(reg.resolve('GRCh38', 'inputs[0]')).rejects.toMatchObject({ code: 'REFERENCE_UNKNOWN', message: expect.stringContaining('known: gone, small') });
  });

  it('names the problem in a broken registry file', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"references": {"../x": {"fasta": "a.fa"}, "ok": {"fasta": 3}}}');
    await expect(ReferenceRegistry.open(bad)).rejects.toMatchObject({ code: 'REFERENCES_INVALID', message: expect.stringMatching(/references\.ok\.fasta/) });
    await writeFile(bad, '{"references": ');
    await expect(ReferenceRegistry.open(bad)).rejects.toMatchObject({ code: 'REFERENCES_INVALID', place: { file: bad } });
    await expect(ReferenceRegistry.open(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'REFERENCES_UNREADABLE' });
  });
});
