/**
 * The README's configuration tables are the truth users read: every variable listed for a
 * command is accepted by that command as a flag (and from the environment), and every variable
 * the gateway and the gpu-node read is listed.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { applyFlags, COMMAND_OPTIONS, flagOf, readModelConfig } from '@bamba/cli/options';
import { EDGE_ENV_VARIABLES } from '@bamba/gateway';
import { describe, expect, it } from 'vitest';

interface Table {
  /** `bamba` commands the caption names, e.g. ['gateway'] or ['gateway', 'gpu-node']. */
  commands: string[];
  headers: string[];
  rows: string[][];
}

/** The tables of the README's Configuration section, each with the commands its caption names. */
function configurationTables(): Table[] {
  const readme = readFileSync(resolve('README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('\n## ', readme.indexOf('## Configuration') + 5));
  const tables: Table[] = [];
  let caption = '';
  let current: Table | null = null;
  for (const line of section.split('\n')) {
    if (line.startsWith('|')) {
      const cells = line.slice(1, -1).split('|').map((cell) => cell.trim());
      if (!current) {
        // The edge is no `bamba` command: its table's caption names its wrangler config.
        const commands = caption.includes('wrangler.toml') ? ['edge'] : [...caption.matchAll(/`bamba ([a-z-]+)/g)].map((match) => match[1]!);
        current = { commands, headers: cells, rows: [] };
        tables.push(current);
      } else if (!/^-+$/.test(cells[0]!)) {
        current.rows.push(cells);
      }
    } else {
      current = null;
      if (line.trim() !== '') caption = line;
    }
  }
  return tables;
}

const variablesIn = (cell: string) => [...cell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((match) => match[1]!);

const tables = configurationTables();

describe('README configuration tables', () => {
  it('are found, each naming the command that reads it', () => {
    expect(tables.length).toBeGreaterThanOrEqual(5);
    for (const table of tables) expect(table.commands.length, `a table with headers ${table.headers.join(', ')} names no command`).toBeGreaterThan(0);
  });

  it('every variable of the edge table is a binding the edge reads, and every binding it reads is listed', () => {
    const documented = tables.filter((table) => table.commands.includes('edge')).flatMap((table) => table.rows.flatMap((row) => variablesIn(row[0]!)));
    expect(documented.length).toBeGreaterThan(0);
    for (const variable of documented) expect(EDGE_ENV_VARIABLES, variable).toContain(variable);
    for (const variable of EDGE_ENV_VARIABLES) expect(documented, `${variable} of the edge is not in the README`).toContain(variable);
  });

  for (const table of tables.filter((candidate) => !candidate.commands.includes('model') && !candidate.commands.includes('edge'))) {
    for (const command of table.commands) {
      it(`every variable of the ${command} table is a flag of bamba ${command}`, () => {
        const options = COMMAND_OPTIONS[command];
        expect(options, `no options known for bamba ${command}`).toBeDefined();
        for (const variable of table.rows.flatMap((row) => variablesIn(row[0]!))) {
          expect(() => applyFlags([flagOf(variable), 'x'], {}, options!), `${flagOf(variable)} (${variable})`).not.toThrow();
          expect(applyFlags([flagOf(variable), 'x'], {}, options!)[variable]).toBe('x');
        }
      });
    }
  }

  it('lists every variable the gateway, the gpu-node and the workers read', () => {
    for (const command of ['gateway', 'gpu-node', 'workers']) {
      const documented = new Set(tables.filter((table) => table.commands.includes(command)).flatMap((table) => table.rows.flatMap((row) => variablesIn(row[0]!))));
      for (const variable of COMMAND_OPTIONS[command]!) expect(documented.has(variable), `${variable} of bamba ${command} is not in the README`).toBe(true);
    }
  });

  it('every bamba model variable and its flag are accepted', () => {
    const table = tables.find((candidate) => candidate.commands.includes('model'))!;
    const samples: Record<string, string> = { BAMBA_MODEL_PRESET: 'small', BAMBA_MODEL_SEED: '7', BAMBA_MODEL_OUT: '/tmp/bamba-readme-check.gguf', BAMBA_CACHE_DIR: '/tmp/bamba-readme-cache' };
    for (const row of table.rows) {
      const [variable] = variablesIn(row[0]!);
      const flag = /`(--[a-z-]+)`/.exec(row[1]!)?.[1];
      expect(samples[variable!], `no sample value for ${variable}`).toBeDefined();
      expect(flag, `no flag for ${variable}`).toBeDefined();
      const base = variable === 'BAMBA_MODEL_OUT' ? ['tiny', '--cache'] : ['tiny', '--out', '/tmp/x.gguf'];
      const byFlag = readModelConfig([...base, flag!, samples[variable!]!], {});
      const byEnv = readModelConfig(base, { [variable!]: samples[variable!]! });
      expect(typeof byFlag, `${flag}: ${String(byFlag)}`).toBe('object');
      expect(byEnv).toEqual(byFlag);
    }
  });
});
