/** The `genolake index` and `genolake align` commands on a program of their own, for tests. */
import { Command } from 'commander';
import { register as registerAlign } from '../../src/cli/commands/align.js';
import { register as registerIndex } from '../../src/cli/commands/build-index.js';

export function alignProgram(): Command {
  const p = new Command('genolake').exitOverride();
  registerIndex(p);
  registerAlign(p);
  return p;
}
