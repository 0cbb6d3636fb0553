/**
 * BENCHMARKS.md, written by `npm run bench`: one section per case between markers, so a run of
 * some cases replaces exactly their sections and leaves every other one as it was.
 */
import type { BenchTable } from './case.js';

export interface CaseResult {
  name: string;
  tables: BenchTable[];
  /** Where and when it was measured, shown under the case's tables. */
  measuredOn: string;
}

const PREAMBLE = [
  '# Benchmarks',
  '',
  'Written by `npm run bench`; do not edit by hand. Every figure is a median or a ratio measured side by side in one run on the machine named under each case (these machines are noisy: compare ratios, not absolute numbers across runs). A `--case` run replaces only its own section.',
  '',
  'Reproduce: `npm run bench` (all cases), `npm run bench -- --case NAME`, `npm run bench -- --quick` (smoke run, writes `bench/results/*-quick.json` only). Raw results: `bench/results/`. GPU (H200): [bench/gpu/README.md](bench/gpu/README.md) says what has run on a GPU and links each `bench/gpu/RESULTS-<date>.md`.',
  '',
  '## Results',
  '',
  '',
].join('\n');

const begin = (name: string) => `<!-- case:${name} -->`;
const end = (name: string) => `<!-- /case:${name} -->`;

export function markdownTable(table: BenchTable): string {
  return [
    `### ${table.title}`,
    '',
    table.note,
    '',
    `| ${table.columns.join(' | ')} |`,
    `|${table.columns.map(() => '---').join('|')}|`,
    ...table.rows.map((row) => `| ${row.join(' | ')} |`),
    '',
  ].join('\n');
}

/** The sections of an existing BENCHMARKS.md, by case name (text between its markers, markers included). */
export function parseSections(markdown: string): Map<string, string> {
  const sections = new Map<string, string>();
  for (const match of markdown.matchAll(/<!-- case:([a-z0-9-]+) -->[\s\S]*?<!-- \/case:\1 -->/g)) sections.set(match[1]!, match[0]);
  return sections;
}

/**
 * The new BENCHMARKS.md: sections of the cases in `results` replaced (or added), every other
 * section of `existing` kept byte for byte, in `caseOrder` (unknown old cases last).
 */
export function updateBenchmarks(existing: string | null, results: readonly CaseResult[], caseOrder: readonly string[]): string {
  const sections = parseSections(existing ?? '');
  for (const result of results) {
    sections.set(result.name, [begin(result.name), ...result.tables.map(markdownTable), `_${result.measuredOn}_`, end(result.name)].join('\n'));
  }
  const ordered = [...caseOrder.filter((name) => sections.has(name)), ...[...sections.keys()].filter((name) => !caseOrder.includes(name))];
  return `${PREAMBLE}${ordered.map((name) => sections.get(name)!).join('\n\n')}\n`;
}
