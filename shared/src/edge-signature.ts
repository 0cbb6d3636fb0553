/**
 * Trust between the edge and a region (and between regions): a request carries the tenant it
 * acts for, a timestamp and an HMAC-SHA256 over both with its method, path and query, keyed by
 * a secret the edge and the regions share (`BAMBA_EDGE_SECRET`). A region believes the tenant
 * only when the signature checks and the timestamp is within the replay window; a tenant header
 * without one is refused, never trusted. Region-to-region calls (replication, moves) sign with
 * an empty tenant, which only the internal routes accept. Web Crypto only: Node and workerd.
 */

/** Header names of the edge ↔ region protocol, spelled once. */
export const EDGE_HEADER = {
  tenant: 'x-bamba-edge-tenant',
  timestamp: 'x-bamba-edge-timestamp',
  signature: 'x-bamba-edge-signature',
  /** `1`: the edge sends a session's turn to its backup region because its home is down. */
  failover: 'x-bamba-edge-failover',
} as const;

/** On every answer that went through the edge: the region that answered. */
export const REGION_HEADER = 'x-bamba-region';
/** On a snapshot chunk a region exports: its SHA-256 (hex), checked by the region that fetches it. */
export const CHUNK_DIGEST_HEADER = 'x-bamba-chunk-sha256';
/** A client's wish for where a new conversation lives. */
export const PREFER_REGION_HEADER = 'x-bamba-prefer-region';
/** A region's answer for a session that moved: its id now (the edge follows it). */
export const MOVED_TO_HEADER = 'x-bamba-moved-to';

/**
 * The last bytes of every event stream a gateway ends on purpose (an SSE comment, which clients
 * ignore): a stream through the edge that ends without it was cut (its region gateway died),
 * and the edge ends it with an error event instead of letting it look finished.
 */
export const SSE_END_COMMENT = ': end\n\n';

/** A signed request older or newer than this (clock skew included) is refused. */
export const EDGE_SIGNATURE_WINDOW_MS = 60_000;

export interface EdgeClaims {
  /** The tenant the request acts for; '' for a region-to-region call. */
  tenant: string;
  /** Sent to a session's backup region because its home is down. */
  failover: boolean;
}

const keys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    keys.set(secret, key);
  }
  return key;
}

function canonical(claims: EdgeClaims, method: string, pathWithQuery: string, timestampMs: number): string {
  return ['bamba-edge-v1', claims.tenant, method.toUpperCase(), pathWithQuery, String(timestampMs), claims.failover ? '1' : '0'].join('\n');
}

async function signature(secret: string, text: string): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), new TextEncoder().encode(text)));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** The headers that sign a request for `claims` (add them to the request). */
export async function signEdgeRequest(secret: string, claims: EdgeClaims, method: string, pathWithQuery: string, nowMs: number): Promise<Record<string, string>> {
  return {
    [EDGE_HEADER.tenant]: claims.tenant,
    [EDGE_HEADER.timestamp]: String(nowMs),
    [EDGE_HEADER.signature]: await signature(secret, canonical(claims, method, pathWithQuery, nowMs)),
    ...(claims.failover ? { [EDGE_HEADER.failover]: '1' } : {}),
  };
}

/** Whether a request carries any edge header (then it must be signed correctly). */
export function hasEdgeHeaders(header: (name: string) => string | undefined | null): boolean {
  return Object.values(EDGE_HEADER).some((name) => header(name) != null);
}

/** The claims of a signed request, or why it is refused. Compares in constant time. */
export async function verifyEdgeRequest(secret: string, header: (name: string) => string | undefined | null, method: string, pathWithQuery: string, nowMs: number): Promise<EdgeClaims | { refused: string }> {
  const tenant = header(EDGE_HEADER.tenant);
  const timestampText = header(EDGE_HEADER.timestamp);
  const presented = header(EDGE_HEADER.signature);
  if (tenant == null || timestampText == null || presented == null) return { refused: 'the edge headers are incomplete' };
  const timestampMs = Number(timestampText);
  if (!/^\d{1,16}$/.test(timestampText) || Math.abs(nowMs - timestampMs) > EDGE_SIGNATURE_WINDOW_MS) return { refused: 'the edge signature is stale or its timestamp is malformed' };
  const failoverText = header(EDGE_HEADER.failover);
  const claims = { tenant, failover: failoverText === '1' };
  const expected = await signature(secret, canonical(claims, method, pathWithQuery, timestampMs));
  let difference = expected.length ^ presented.length;
  for (let index = 0; index < expected.length; index++) difference |= expected.charCodeAt(index) ^ (presented.charCodeAt(index) || 0);
  return difference === 0 ? claims : { refused: 'the edge signature does not match' };
}
