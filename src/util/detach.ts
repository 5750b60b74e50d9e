/**
 * V8 compiles typed-array code on the assumption that no ArrayBuffer in the thread was ever
 * detached, and at the first detach throws all that optimised code away. Buffers do get
 * detached here: moved to another thread, or a WebAssembly memory that grows (parquet-wasm,
 * our kernels). Seen with --trace-deopt: ~20 hot functions of a worker deoptimised at once
 * and compiled again, mid-run (to-parquet's record reader: 150 ms of compiling each time).
 * Detaching one buffer when a thread starts (the CLI, every pool worker) or creates a pool
 * has that code compiled once, with the check. Only the first call detaches anything.
 */
let detached = false;
export function detachOneBuffer(): void {
  if (detached) return;
  detached = true;
  const first = new ArrayBuffer(8);
  structuredClone(first, { transfer: [first] });
}
