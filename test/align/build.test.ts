import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'gl-wasm-build-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('wasm/aligner.wasm and wasm/caller.wasm', () => {
  it('are what wasm/build.sh builds from the committed sources (byte for byte)', () => {
    execFileSync(join(root, 'wasm', 'build.sh'), [tmp], { stdio: 'pipe' });
    for (const name of ['aligner.wasm', 'caller.wasm']) {
      const rebuilt = readFileSync(join(tmp, name));
      const committed = readFileSync(join(root, 'wasm', name));
      expect(rebuilt.length, name).toBeGreaterThan(500);
      expect(rebuilt.equals(committed), name).toBe(true);
    }
  });

  it('caller.wasm imports a memory and the host Math.log10 / Math.pow, and exports its kernels', () => {
    const W = (globalThis as unknown as { WebAssembly: { Module: { new (b: Uint8Array): object; imports(m: object): { module: string; name: string; kind: string }[]; exports(m: object): { name: string }[] } } }).WebAssembly;
    const m = new W.Module(readFileSync(join(root, 'wasm', 'caller.wasm')));
    expect(W.Module.imports(m)).toEqual([
      { module: 'env', name: 'memory', kind: 'memory' },
      { module: 'env', name: 'log10', kind: 'function' },
      { module: 'env', name: 'pow', kind: 'function' },
    ]);
    expect(W.Module.exports(m).map((e) => e.name).sort()).toEqual(['__heap_base', 'gc_abi', 'gc_genotype', 'gc_pileup', 'gc_realign']);
  });

  it('imports one shared memory and exports the kernel entry points', () => {
    const W = (globalThis as unknown as { WebAssembly: { Module: { new (b: Uint8Array): object; imports(m: object): { module: string; name: string; kind: string }[]; exports(m: object): { name: string }[] } } }).WebAssembly;
    const m = new W.Module(readFileSync(join(root, 'wasm', 'aligner.wasm')));
    expect(W.Module.imports(m)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const names = W.Module.exports(m).map((e) => e.name).sort();
    expect(names).toEqual(['__stack_pointer', 'gl_abi', 'gl_align_batch', 'gl_drive_batch', 'gl_index_bound', 'gl_index_build', 'gl_index_count', 'gl_serve']);
  });
});
