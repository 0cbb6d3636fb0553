/**
 * The GPU run's drivers (bench/src/gpu) in their dry-run mode: the same code the H200 runs,
 * on the CPU with the tiny models, so they cannot rot between the rare sessions that get a GPU.
 * Each must finish and print its tables with a figure in every cell; the host script must parse.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const work = mkdtempSync(join(tmpdir(), 'bamba-gpu-dry-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs a bench/dist/gpu script; resolves with its exit code and output. */
function runScript(script: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [resolve('bench/dist/gpu', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.once('exit', (code) => done({ code, output }));
  });
}

/** Data rows of every markdown table in `text` (header and separator rows left out). */
function tableRows(text: string): string[][] {
  const lines = text.split('\n').filter((line) => line.startsWith('|'));
  return lines.filter((line, index) => !/^\|[-| ]+\|$/.test(line) && !/^\|[-| ]+\|$/.test(lines[index + 1] ?? '')).map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()));
}

let models: { generator: number; tiny: string; wideVocab: string; llamaTiny: string };

describe('the GPU run, dry', () => {
  it('writes its small models with our generator', async () => {
    const run = await runScript('models.js', [work, '--dry-run']);
    expect(run.code, run.output).toBe(0);
    models = JSON.parse(run.output.trim().split('\n').at(-1)!) as typeof models;
    expect(models.tiny).toMatch(/tiny-seed42/);
    expect(models.wideVocab).toMatch(/tiny-wide-vocab-seed42/);
  });

  it('capacity: both models at both contexts, the ratios, and the fill check', async () => {
    const out = join(work, 'capacity.json');
    const run = await runScript('capacity.js', ['--dry-run', '--validate', '--hybrid', models.tiny, '--transformer', models.llamaTiny, '--out', out]);
    expect(run.code, run.output).toBe(0);
    const report = readFileSync(out.replace(/\.json$/, '.md'), 'utf8');
    const rows = tableRows(report);
    expect(rows.filter((row) => row.length === 8).map((row) => `${row[0]} ${row[1]}`)).toEqual(['512 tiny', '512 llama-tiny-shape', '1024 tiny', '1024 llama-tiny-shape']);
    for (const row of rows) for (const cell of row.slice(row.length === 8 ? 2 : 1)) if (!/limited|dry run|memory/.test(cell)) expect(Number(cell), row.join(' | ')).toBeGreaterThan(0);
    expect(report).toMatch(/Fill check \(llama-tiny-shape, 512 tokens × 3 sequences\): every sequence long [\d.]+ tokens\/s, one long [\d.]+ tokens\/s, ratio [\d.]+/);
    const raw = JSON.parse(readFileSync(out, 'utf8')) as { rows: Array<{ sequences: number }> };
    expect(raw.rows.every((row) => row.sequences === 6)).toBe(true);
  });

  it('throughput: every batch and output for both models', async () => {
    const run = await runScript('throughput.js', ['--dry-run', '--hybrid', models.tiny, '--transformer', models.llamaTiny]);
    expect(run.code, run.output).toBe(0);
    const rows = tableRows(run.output);
    expect(rows.map((row) => `${row[0]}×${row[1]}`)).toEqual(['16×1', '16×2', '32×1', '32×2']);
    for (const row of rows) expect(Number(row[2]) * Number(row[3]), row.join(' | ')).toBeGreaterThan(0);
  });

  it('stack: resume paths over HTTP, the Redis round trip and the export stall (serving a 128K vocabulary, as host.sh has it)', async () => {
    const out = join(work, 'stack.json');
    const run = await runScript('stack.js', ['--dry-run', '--hybrid', models.wideVocab, '--out', out]);
    expect(run.code, run.output).toBe(0);
    const report = readFileSync(out.replace(/\.json$/, '.md'), 'utf8');
    expect(report.match(/^### /gm)).toHaveLength(3);
    const rows = tableRows(report);
    expect(rows).toHaveLength(6); // two histories in each of the three tables
    // The resume table leaves its in-process export/import columns to the round-trip table.
    for (const row of rows.slice(0, 2)) expect(row.slice(-3)).toEqual(['—', '—', '—']);
    for (const row of rows) for (const cell of row.slice(1)) if (cell !== 'bamba-tiny' && cell !== '—') expect(Number(cell), row.join(' | ')).toBeGreaterThanOrEqual(0);
  });

  it('the host script parses', () => {
    const check = spawnSync('bash', ['-n', 'bench/gpu/host.sh'], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });
});
