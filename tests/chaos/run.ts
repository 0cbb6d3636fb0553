/**
 * `npm run chaos [-- --quick]`: every reliability campaign against real processes; the full run
 * rewrites RELIABILITY.md, a quick run only prints. Exits 1 when a figure misses its target.
 */
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runCampaigns } from './campaigns.js';
import { reliabilityMarkdown } from './report.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' } } });
const quick = values.quick ?? false;
const results = await runCampaigns(quick, (message) => process.stderr.write(`${message}\n`));
const machine = `${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}`;
const markdown = reliabilityMarkdown(results, machine, new Date().toISOString().slice(0, 10));
process.stdout.write(markdown);
if (!quick) {
  writeFileSync(resolve('RELIABILITY.md'), markdown);
  process.stderr.write('wrote RELIABILITY.md\n');
}
const missed = results.flatMap((result) => result.figures.filter((figure) => !figure.ok).map((figure) => `${result.name}: ${figure.metric} = ${figure.value}`));
if (missed.length > 0) {
  process.stderr.write(`missed targets:\n${missed.join('\n')}\n`);
  process.exitCode = 1;
}
