export * from './ids.js';
export * from './drop.js';
export * from './experiment.js';
export { formatPath, suggestKey, type ManifestIssue } from './issues.js';
export { findJsonSyntaxProblem, type JsonSyntaxProblem } from './json-syntax.js';
export * from './load.js';
export { dropJsonSchema, experimentJsonSchema, renderSchemaFiles, writeSchemaFiles, manifestsDir, SCHEMA_BASE_ID } from './schemas.js';
