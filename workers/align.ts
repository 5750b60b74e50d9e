/**
 * Worker entry for the aligner: one task = one batch of reads. The shared index memory
 * arrives with every task (posting a shared WebAssembly.Memory shares it, no copy); the
 * kernel is instantiated once per thread and per index, on the thread's own slot.
 */
import { defineWorker } from '../src/engine/worker.js';
import { alignTask } from '../src/align/task.js';

export default defineWorker(alignTask);
