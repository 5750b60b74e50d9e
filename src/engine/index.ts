export * from './graph.js';
export * from './pool.js';
export * from './progress.js';
export * from './run.js';
export * from './runlog.js';
export * from './worker.js';
