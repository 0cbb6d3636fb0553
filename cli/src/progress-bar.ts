/**
 * A one-line progress bar on stderr for long work (a 9B-shaped model is 18 GB). On a terminal
 * it redraws in place; in logs it prints a line every 10%. Small files get no bar.
 */
const WIDTH = 30;
/** Files smaller than this are written too fast for a bar to mean anything. */
const MIN_BYTES_FOR_BAR = 64 * 1024 * 1024;

export function createProgressBar(label: string) {
  const interactive = process.stderr.isTTY === true;
  let lastDecile = -1;
  let drawn = false;
  const gigabytes = (bytes: number) => (bytes / 1e9).toFixed(2);
  return {
    update(fraction: number, writtenBytes: number, totalBytes: number): void {
      if (totalBytes < MIN_BYTES_FOR_BAR) return;
      const filled = Math.round(fraction * WIDTH);
      const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${gigabytes(writtenBytes)}/${gigabytes(totalBytes)} GB`;
      if (interactive) {
        process.stderr.write(`\r${line}`);
        drawn = true;
      } else if (Math.floor(fraction * 10) > lastDecile) {
        lastDecile = Math.floor(fraction * 10);
        process.stderr.write(`${line}\n`);
      }
    },
    skip(): void {
      process.stderr.write(`${label}: already in the cache\n`);
    },
    done(elapsedMs: number): void {
      if (drawn) process.stderr.write('\n');
      if (lastDecile >= 0 || drawn) process.stderr.write(`${label}: written in ${(elapsedMs / 1000).toFixed(1)} s\n`);
    },
  };
}
