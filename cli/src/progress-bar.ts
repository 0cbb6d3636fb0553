/**
 * One-line progress bars on stderr for long work (writing a 9B-shaped model, waiting for a
 * batch). On a terminal the bar redraws in place; in logs it prints a line every 10%.
 */
const WIDTH = 30;
/** Files smaller than this are written too fast for a bar to mean anything. */
const MIN_BYTES_FOR_BAR = 64 * 1024 * 1024;

/** A bar: `draw` shows `fraction` (0–1) with a detail text; `end` closes the line if one is open. */
export function createProgressBar(label: string) {
  const interactive = process.stderr.isTTY === true;
  let lastDecile = -1;
  let drawn = false;
  return {
    draw(fraction: number, detail: string): void {
      const filled = Math.round(Math.min(1, Math.max(0, fraction)) * WIDTH);
      const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${detail}`;
      if (interactive) {
        process.stderr.write(`\r${line}\x1b[K`);
        drawn = true;
      } else if (Math.floor(fraction * 10) > lastDecile) {
        lastDecile = Math.floor(fraction * 10);
        process.stderr.write(`${line}\n`);
      }
    },
    /** Whether anything was drawn. */
    get shown(): boolean {
      return drawn || lastDecile >= 0;
    },
    end(): void {
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

/** The bar of a file being written: none for small files, sizes in GB. */
export function createFileProgress(label: string) {
  const bar = createProgressBar(label);
  const gigabytes = (bytes: number) => (bytes / 1e9).toFixed(2);
  return {
    update(fraction: number, writtenBytes: number, totalBytes: number): void {
      if (totalBytes >= MIN_BYTES_FOR_BAR) bar.draw(fraction, `${gigabytes(writtenBytes)}/${gigabytes(totalBytes)} GB`);
    },
    skip(): void {
      process.stderr.write(`${label}: already in the cache\n`);
    },
    done(elapsedMs: number): void {
      const shown = bar.shown;
      bar.end();
      if (shown) process.stderr.write(`${label}: written in ${(elapsedMs / 1000).toFixed(1)} s\n`);
    },
  };
}
