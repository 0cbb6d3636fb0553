/** A benchmark case: measures side by side in one run and returns rows for a table. */
export interface BenchContext {
  /** Short run for a smoke check. */
  quick: boolean;
}

export interface BenchTable {
  title: string;
  /** What was compared and how, in a sentence or two (goes above the table). */
  note: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

export interface BenchCase {
  name: string;
  description: string;
  run(context: BenchContext): Promise<{ tables: BenchTable[]; raw: unknown }>;
}
