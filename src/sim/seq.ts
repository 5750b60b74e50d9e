/** Byte-level DNA helpers shared by the simulator modules (ASCII, upper case). */

export const A = 65;
export const C = 67;
export const G = 71;
export const T = 84;
export const N = 78;

export const BASES: readonly number[] = [A, C, G, T];

/** Complement of an ASCII base; N (and anything unexpected) maps to N. */
export const COMPLEMENT: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(N);
  t[A] = T;
  t[C] = G;
  t[G] = C;
  t[T] = A;
  return t;
})();

/** Transition partner (A<->G, C<->T), used to bias substitutions towards Ti. */
export const TRANSITION: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(N);
  t[A] = G;
  t[G] = A;
  t[C] = T;
  t[T] = C;
  return t;
})();

/** The two transversion partners of each base. */
export const TRANSVERSIONS: Record<number, [number, number]> = {
  [A]: [C, T],
  [G]: [C, T],
  [C]: [A, G],
  [T]: [A, G],
};

export function reverseComplement(seq: Uint8Array): Uint8Array {
  const out = new Uint8Array(seq.length);
  for (let i = 0, j = seq.length - 1; j >= 0; i++, j--) out[i] = COMPLEMENT[seq[j]];
  return out;
}

export function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

export function text(seq: Uint8Array): string {
  return Buffer.from(seq.buffer, seq.byteOffset, seq.length).toString('latin1');
}

/** 0-based half-open interval on one contig. */
export interface Interval {
  start: number;
  end: number;
}

export function overlaps(a: Interval, b: Interval): boolean {
  return a.start < b.end && b.start < a.end;
}
