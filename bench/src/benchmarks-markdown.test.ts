import { describe, expect, it } from 'vitest';
import { parseSections, updateBenchmarks, type CaseResult } from './benchmarks-markdown.js';

const result = (name: string, value: number): CaseResult => ({
  name,
  measuredOn: `measured on a test machine, run ${value}`,
  tables: [{ title: `${name} table`, note: `about ${name}`, columns: ['what', 'value'], rows: [[name, value]] }],
});
const order = ['resume', 'overhead', 'gateway', 'state-size'];

describe('BENCHMARKS.md writer', () => {
  it('a run of one case replaces only its section and leaves every other one byte for byte', () => {
    const full = updateBenchmarks(null, [result('resume', 1), result('overhead', 2), result('gateway', 3)], order);
    const before = parseSections(full);
    const after = parseSections(updateBenchmarks(full, [result('overhead', 99)], order));
    expect(after.get('resume')).toBe(before.get('resume'));
    expect(after.get('gateway')).toBe(before.get('gateway'));
    expect(after.get('overhead')).not.toBe(before.get('overhead'));
    expect(after.get('overhead')).toContain('| overhead | 99 |');
    expect([...after.keys()]).toEqual(['resume', 'overhead', 'gateway']);
  });

  it('adds a new case in the case order and keeps sections of cases it does not know', () => {
    const existing = updateBenchmarks(null, [result('resume', 1), result('retired-case', 5)], order);
    const updated = updateBenchmarks(existing, [result('state-size', 4)], order);
    expect([...parseSections(updated).keys()]).toEqual(['resume', 'state-size', 'retired-case']);
    expect(parseSections(updated).get('retired-case')).toBe(parseSections(existing).get('retired-case'));
  });

  it('writing the same results twice gives the same file', () => {
    const once = updateBenchmarks(null, [result('resume', 1)], order);
    expect(updateBenchmarks(once, [result('resume', 1)], order)).toBe(once);
  });
});
