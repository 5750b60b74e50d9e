/**
 * The `genolake` command. Each subcommand lives in ./commands/<name>.ts and registers
 * itself on the program; this file only wires them together and turns errors into one
 * precise line and an exit code (2 for bad input, 1 for everything else).
 */
import { Command, CommanderError } from 'commander';
import { detachOneBuffer } from '../util/detach.js';
import { genolakeVersion } from '../util/paths.js';
import { describeError, exitCodeFor } from './report.js';
import { registerCommands } from './commands/index.js';

detachOneBuffer();

/** The program with the command `name` registered (every command without one). */
export async function buildProgram(name?: string): Promise<Command> {
  const program = new Command('genolake')
    .description('Portable genomics pipeline engine: FASTQ drops in, a queryable variant lake out')
    .version(genolakeVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: true });
  await registerCommands(program, name);
  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  // the first word after the script names the command (there are no global options before it)
  const first = argv[2];
  try {
    const program = await buildProgram(first !== undefined && !first.startsWith('-') ? first : undefined);
    program.exitOverride();
    await program.parseAsync([...argv]);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    process.stderr.write(`genolake: error: ${describeError(e)}\n`);
    return exitCodeFor(e);
  }
}
