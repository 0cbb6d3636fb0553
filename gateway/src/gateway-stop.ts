/**
 * A gateway's stop, as the app sees it. `draining` from the moment it stops accepting: new
 * generations get 503 `gateway_stopping` at once, every answer closes its connection (so a
 * keep-alive client brings no new work) and /readyz says 503. `ended` aborts when the drain time
 * is up: the generations still open end with `gateway_stopping` and their jobs are cancelled.
 * Background responses hold the drain as open requests do (`hold`). Runtime-neutral.
 */
import { ServiceUnavailableError } from '@bamba/shared';

export class GatewayStop {
  private readonly drainStarted = new AbortController();
  private readonly drainEnded = new AbortController();
  private held = 0;

  get draining(): boolean {
    return this.drainStarted.signal.aborted;
  }

  /** Aborted when the drain time is up. */
  get ended(): AbortSignal {
    return this.drainEnded.signal;
  }

  /** Work without an open request (a background response) still running. */
  get holding(): number {
    return this.held;
  }

  /** Count work that the drain should wait for; call the returned function once it is done (again is harmless). */
  hold(): () => void {
    this.held++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held--;
    };
  }

  beginDrain(): void {
    this.drainStarted.abort();
  }

  endDrain(): void {
    this.beginDrain();
    this.drainEnded.abort();
  }
}

/**
 * What a generation refused or still open when its gateway stops gets: its job is cancelled (a
 * session turn is normally not committed; the session's `turns` tell), so sending it again is the
 * way on.
 */
export function gatewayStopping(): ServiceUnavailableError {
  return new ServiceUnavailableError('this gateway is stopping; send the request again', { code: GATEWAY_STOPPING, retryAfterSeconds: 1 });
}

export const GATEWAY_STOPPING = 'gateway_stopping';
