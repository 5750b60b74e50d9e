import { describe, expect, it } from 'vitest';
import { defineStage, validateGraph, type AnyStage } from '../../src/engine/graph.js';
import { GenolakeError } from '../../src/util/errors.js';

const stage = (name: string, deps: string[] = []): AnyStage =>
  defineStage({ name, deps, run: async () => name });

function codeOf(fn: () => unknown): { code: string; message: string; field?: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GenolakeError);
    const g = e as GenolakeError;
    return { code: g.code, message: g.message, field: g.place.field };
  }
  throw new Error('expected an error');
}

describe('stage graph validation', () => {
  it('orders stages so every dependency comes first, keeping the given order otherwise', () => {
    const order = validateGraph([stage('report', ['b', 'a']), stage('a', ['root']), stage('b', ['root']), stage('root')]);
    expect(order.map((s) => s.name)).toEqual(['root', 'b', 'a', 'report']);
  });

  it('refuses a stage defined twice', () => {
    const e = codeOf(() => validateGraph([stage('a'), stage('b', ['a']), stage('a')]));
    expect(e.code).toBe('GRAPH_DUPLICATE_STAGE');
    expect(e.message).toContain('a');
  });

  it('refuses a dependency that is not in the pipeline, naming the stage', () => {
    const e = codeOf(() => validateGraph([stage('a'), stage('b', ['a', 'missing'])]));
    expect(e.code).toBe('GRAPH_UNKNOWN_DEP');
    expect(e.message).toContain('missing');
    expect(e.field).toBe('b.deps');
  });

  it('refuses a stage depending on itself', () => {
    expect(codeOf(() => validateGraph([stage('a', ['a'])])).code).toBe('GRAPH_CYCLE');
  });

  it('refuses a cycle and spells it out', () => {
    const e = codeOf(() => validateGraph([stage('root'), stage('x', ['root', 'z']), stage('y', ['x']), stage('z', ['y'])]));
    expect(e.code).toBe('GRAPH_CYCLE');
    expect(e.message).toMatch(/x -> z -> y -> x/);
  });

  it('refuses stage names that cannot be a lake key segment', () => {
    expect(codeOf(() => defineStage({ name: '../up', run: async () => 1 })).code).toBe('GRAPH_BAD_NAME');
    expect(codeOf(() => validateGraph([{ name: 'a/b', deps: [], run: async () => 1 }])).code).toBe('GRAPH_BAD_NAME');
  });

  it('types a stage input from its dependency objects', async () => {
    const a = defineStage({ name: 'a', run: async () => ({ n: 2 }) });
    const b = defineStage({ name: 'b', deps: [a], run: async (_ctx, inputs) => inputs.a.n * 21 });
    expect(b.deps).toEqual(['a']);
    expect(await b.run({} as never, { a: { n: 2 } })).toBe(42);
  });
});
