/**
 * Calls to other regions' internal routes, signed with the shared secret (no tenant): how a
 * region's workers deliver replicas and pull moved sessions. Loopback or TLS alike; a peer that
 * cannot be reached throws, and the job that called runs again.
 */
import { signEdgeRequest, type RegionMap } from '@bamba/shared';

/** One call may take this long (a chunk of a snapshot is 1 MiB). */
const CALL_TIMEOUT_MS = 30_000;

export class RegionPeers {
  constructor(private readonly map: RegionMap, private readonly secret: string) {}

  has(region: string): boolean {
    return this.map.get(region) !== undefined;
  }

  /** Send a signed request to `region`'s internal route `path` (`/internal/v1/…`). */
  async call(region: string, method: string, path: string, body?: unknown): Promise<Response> {
    const entry = this.map.get(region);
    if (!entry) throw new Error(`region '${region}' is not in BAMBA_REGIONS`);
    const headers = await signEdgeRequest(this.secret, { tenant: '', failover: false }, method, path, Date.now());
    return fetch(`${entry.url}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  }

  /** `call`, then the JSON answer; a non-2xx answer throws `PeerError` with its status. */
  async json(region: string, method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await this.call(region, method, path, body);
    const text = await response.text();
    if (!response.ok) throw new PeerError(response.status, `${method} ${path} at region '${region}': HTTP ${response.status} ${text.slice(0, 200)}`);
    return JSON.parse(text) as unknown;
  }
}

export class PeerError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}
