/**
 * Worker entry for the shard stage: one task = one mate file (see src/stages/shard.ts).
 * `defineWorker` carries an InputError's code and place (file, record, field) across the
 * thread boundary to the engine's pool.
 */
import { defineWorker } from '../src/engine/worker.js';
import { shardMateFile } from '../src/stages/shard.js';

export default defineWorker(shardMateFile);
