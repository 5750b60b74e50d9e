/** Every subcommand of `genolake`; each module registers itself on the program. */
import type { Command } from 'commander';
import { register as align } from './align.js';
import { register as annotate } from './annotate.js';
import { register as bam } from './bam.js';
import { register as buildIndex } from './build-index.js';
import { register as call } from './call.js';
import { register as demo } from './demo.js';
import { register as lakeTables } from './lake-tables.js';
import { register as metadata } from './metadata.js';
import { register as providers } from './providers.js';
import { register as run } from './run.js';
import { register as simulate } from './simulate.js';

export const COMMANDS: ReadonlyArray<(program: Command) => void> = [demo, run, simulate, buildIndex, align, bam, call, annotate, lakeTables, providers, metadata];
