/**
 * Turns generated tokens into the text a client may see, piece by piece: bytes of a UTF-8
 * character split over several tokens wait for the rest, and text that could be the start of a
 * stop string waits until it is known not to be one. When generation ends without a stop (an
 * end-of-generation token, `max_tokens`), `finish()` releases whatever still waits, so no text
 * is lost at the end. Pure: the detokenizer is passed in, so scripted token sequences test it.
 */
import { StopStringMatcher } from './stop-strings.js';

/** A UTF-8 character spans at most 4 tokens in a byte-level vocabulary. */
const MAX_PENDING_UTF8_TOKENS = 4;

/** Text of `tokens`, given the tokens before them (some vocabularies need that context). */
export type Detokenize = (tokens: readonly number[], before: readonly number[]) => string;

export class TextAssembler {
  private readonly generated: number[] = [];
  /** generated[pendingFrom..] are not text yet (an incomplete UTF-8 character). */
  private pendingFrom = 0;
  private readonly stops: StopStringMatcher;
  private stopped = false;

  constructor(stop: readonly string[], private readonly detokenize: Detokenize) {
    this.stops = new StopStringMatcher(stop);
  }

  /** Feed one generated token: the text it releases and whether a stop string was hit. */
  push(token: number): { text: string; stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    this.generated.push(token);
    const decoded = this.pendingText();
    if (decoded.endsWith('\uFFFD') && this.generated.length - this.pendingFrom < MAX_PENDING_UTF8_TOKENS) return { text: '', stopped: false };
    this.pendingFrom = this.generated.length;
    const pushed = this.stops.push(decoded);
    this.stopped = pushed.stopped;
    return { text: pushed.release, stopped: pushed.stopped };
  }

  /** Generation ended without a stop string: everything still held back. */
  finish(): string {
    if (this.stopped) return '';
    const rest = this.pendingFrom < this.generated.length ? this.stops.push(this.pendingText()) : { release: '', stopped: false };
    this.pendingFrom = this.generated.length;
    if (rest.stopped) {
      this.stopped = true;
      return rest.release;
    }
    return rest.release + this.stops.flush();
  }

  private pendingText(): string {
    return this.detokenize(this.generated.slice(this.pendingFrom), this.generated.slice(Math.max(0, this.pendingFrom - MAX_PENDING_UTF8_TOKENS), this.pendingFrom));
  }
}
