/**
 * `npm run bench [-- --case NAME] [-- --quick]`: runs benchmark cases against stacks they start
 * themselves, writes bench/results/<date>.json and rewrites the tables in BENCHMARKS.md.
 * Every figure is a median or a ratio measured side by side in the same run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE_LLAMA_CPP_VERSION } from '@bamba/gpu-node';
import { markdownTable, updateBenchmarks } from './benchmarks-markdown.js';
import type { BenchCase, BenchTable } from './case.js';
import { batchCase } from './cases/batch.js';
import { batchingCase } from './cases/batching.js';
import { compressionCase } from './cases/compression.js';
import { edgeHopCase } from './cases/edge-hop.js';
import { exportStallCase } from './cases/export-stall.js';
import { gatewayCase } from './cases/gateway.js';
import { overheadCase } from './cases/overhead.js';
import { regionMoveCase } from './cases/region-move.js';
import { responsesCase } from './cases/responses.js';
import { resumeCase } from './cases/resume.js';
import { snapshotDriftCase } from './cases/snapshot-drift.js';
import { snapshotStoreCase } from './cases/snapshot-store.js';
import { sharedPrefillCase } from './cases/shared-prefill.js';
import { stateSizeCase } from './cases/state-size.js';
import { structuredOutputCase } from './cases/structured-output.js';
import { vocabularyWorkCase } from './cases/vocabulary-work.js';

const CASES: BenchCase[] = [resumeCase, overheadCase, batchingCase, snapshotStoreCase, gatewayCase, stateSizeCase, compressionCase, snapshotDriftCase, responsesCase, batchCase, regionMoveCase, edgeHopCase, exportStallCase, structuredOutputCase, vocabularyWorkCase, sharedPrefillCase];

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { case: { type: 'string' }, quick: { type: 'boolean' } } });
  const selected = values.case ? CASES.filter((benchCase) => benchCase.name === values.case) : CASES;
  if (selected.length === 0) {
    process.stderr.write(`unknown case '${values.case}'; cases: ${CASES.map((benchCase) => benchCase.name).join(', ')}\n`);
    return 2;
  }
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nodeLlamaCpp: NODE_LLAMA_CPP_VERSION,
    date: new Date().toISOString(),
    quick: values.quick ?? false,
  };
  const resultsDir = resolve('bench/results');
  mkdirSync(resultsDir, { recursive: true });
  // A --quick smoke run never replaces measured results; a --case run replaces only its case.
  const resultsPath = join(resultsDir, `${machine.date.slice(0, 10)}${machine.quick ? '-quick' : ''}.json`);
  const previous = existsSync(resultsPath) ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as { results: Record<string, { tables: BenchTable[] }> }).results : {};
  // Each case keeps when it ran: a --case run rewrites the file's machine header, not older cases' dates.
  const results: Record<string, { raw: unknown; tables: BenchTable[]; seconds: number; measuredAt: string }> = {};
  for (const [index, benchCase] of selected.entries()) {
    process.stderr.write(`[${index + 1}/${selected.length}] ${benchCase.name}: ${benchCase.description}\n`);
    const started = Date.now();
    const { tables, raw } = await benchCase.run({ quick: machine.quick });
    results[benchCase.name] = { raw, tables, seconds: (Date.now() - started) / 1000, measuredAt: new Date(started).toISOString() };
    for (const table of tables) process.stdout.write(`\n${markdownTable(table)}`);
  }
  const merged = { ...previous, ...results };
  writeFileSync(resultsPath, `${JSON.stringify({ machine, results: merged }, null, 2)}\n`);
  if (machine.quick) {
    process.stderr.write(`\nwrote ${resultsPath} (quick run: BENCHMARKS.md left as it is)\n`);
    return 0;
  }
  const benchmarksPath = resolve('BENCHMARKS.md');
  const measuredOn = `Measured ${machine.date.slice(0, 10)} on ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB; Node ${machine.node}; node-llama-cpp ${machine.nodeLlamaCpp}; raw results in bench/results/${resultsPath.split('/').at(-1)}.`;
  writeFileSync(benchmarksPath, updateBenchmarks(
    existsSync(benchmarksPath) ? readFileSync(benchmarksPath, 'utf8') : null,
    Object.entries(results).map(([name, result]) => ({ name, tables: result.tables, measuredOn })),
    CASES.map((benchCase) => benchCase.name),
  ));
  process.stderr.write(`\nwrote ${resultsPath} and BENCHMARKS.md\n`);
  return 0;
}

main().then((code) => { process.exitCode = code; }, (error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
