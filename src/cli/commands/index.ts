/**
 * Every subcommand of `genolake`, by the module that registers it. A call loads only the
 * module of the command it names (module loading was ~0.3 s of every call when all were
 * loaded); help, `--version` and names that are not commands load them all.
 */
import type { Command } from 'commander';

interface CommandModule {
  register(program: Command): void;
}

const run = () => import('./run.js');
const lakeTables = () => import('./lake-tables.js');

/** Top-level command name → its module. */
const MODULES: Readonly<Record<string, () => Promise<CommandModule>>> = {
  demo: () => import('./demo.js'),
  run,
  resume: run,
  runs: run,
  watch: run,
  simulate: () => import('./simulate.js'),
  index: () => import('./build-index.js'),
  align: () => import('./align.js'),
  bam: () => import('./bam.js'),
  call: () => import('./call.js'),
  annotate: () => import('./annotate.js'),
  'to-parquet': lakeTables,
  query: lakeTables,
  features: lakeTables,
  catalog: lakeTables,
  providers: () => import('./providers.js'),
  metadata: () => import('./metadata.js'),
};

/** The top-level command names (for tests: each must be registered by its module). */
export const COMMAND_NAMES: readonly string[] = Object.keys(MODULES);

/** Registers the command `name` (with its module's siblings), or every command without a known name. */
export async function registerCommands(program: Command, name?: string): Promise<void> {
  const only = name !== undefined && Object.hasOwn(MODULES, name) ? MODULES[name] : undefined;
  const loaders = only ? [only] : [...new Set(Object.values(MODULES))];
  for (const m of await Promise.all(loaders.map((load) => load()))) m.register(program);
}
