/**
 * Releases generated text piece by piece while watching for stop strings. Text that could be
 * the start of a stop string is held back until it is known not to be one, so a client never
 * sees part of a stop string.
 */
export class StopStringMatcher {
  private pending = '';
  private stopped = false;
  constructor(private readonly stops: readonly string[]) {}

  /** Feed new text; returns the text safe to release and whether a stop string was hit. */
  push(text: string): { release: string; stopped: boolean } {
    if (this.stopped) return { release: '', stopped: true };
    this.pending += text;
    let firstStop = -1;
    for (const stop of this.stops) {
      if (stop === '') continue;
      const at = this.pending.indexOf(stop);
      if (at !== -1 && (firstStop === -1 || at < firstStop)) firstStop = at;
    }
    if (firstStop !== -1) {
      this.stopped = true;
      const release = this.pending.slice(0, firstStop);
      this.pending = '';
      return { release, stopped: true };
    }
    const hold = this.longestPendingStopPrefix();
    const release = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { release, stopped: false };
  }

  /** Text still held back (released when generation ends without a stop). */
  flush(): string {
    const rest = this.stopped ? '' : this.pending;
    this.pending = '';
    return rest;
  }

  /** Length of the longest suffix of `pending` that is a proper prefix of some stop string. */
  private longestPendingStopPrefix(): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let length = Math.min(stop.length - 1, this.pending.length); length > longest; length--) {
        if (this.pending.endsWith(stop.slice(0, length))) { longest = length; break; }
      }
    }
    return longest;
  }
}
