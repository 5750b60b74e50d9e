export * from './types.js';
export { LocalLake } from './local.js';
export { openLake, parseLakeUri } from './open.js';
