import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { COMMAND_NAMES } from '../../src/cli/commands/index.js';

const bin = join(import.meta.dirname, '../../bin/genolake.js');

describe('CLI command registry (a call loads only its command module)', () => {
  it('each command name is registered by the module it maps to, and all of them without a name', async () => {
    const all = (await buildProgram()).commands.map((c) => c.name()).sort();
    expect(all).toEqual([...COMMAND_NAMES].sort());
    for (const name of COMMAND_NAMES) {
      const program = await buildProgram(name);
      expect(program.commands.map((c) => c.name())).toContain(name);
    }
  });

  it('help lists every command; an unknown command is refused with the list hint', () => {
    const help = execFileSync('node', [bin, '--help'], { encoding: 'utf8' });
    for (const name of COMMAND_NAMES) expect(help).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    const r = spawnSync('node', [bin, 'nosuch'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown command 'nosuch'/);
  });
});
