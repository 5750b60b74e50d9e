import { expect } from 'vitest';
import { InputError } from '../../src/util/errors.js';

/** The InputError `p` rejects with; fails the test when it resolves or rejects otherwise. */
export async function inputErrorOf(p: Promise<unknown>): Promise<InputError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(InputError);
    return e as InputError;
  }
  throw new Error('expected an InputError');
}
