/**
 * Wraps engine state bytes in the snapshot container from `@bamba/shared` and checks them on
 * the way back: header, payload checksum, fingerprint, length. Everything is verified before a
 * single byte reaches llama.cpp, which trusts its state files blindly.
 */
import { createHash } from 'node:crypto';
import {
  decodeSnapshot,
  encodeSnapshotHeader,
  SNAPSHOT_HEADER_BYTES,
  SnapshotCompression,
  SnapshotRejectedError,
  type SnapshotHeader,
} from '@bamba/shared';

/** sha-256 of a token sequence as uint32 little-endian ids: the prefix key. */
export function tokenSequenceHash(tokens: readonly number[]): string {
  const ids = new Uint32Array(tokens.length);
  for (let index = 0; index < tokens.length; index++) ids[index] = tokens[index]!;
  return createHash('sha256').update(new Uint8Array(ids.buffer)).digest('hex');
}

/** Bytes hashed between turns of the event loop: a 9B state (~130 MB) must not block it for long. */
const HASH_SLICE_BYTES = 4 * 1024 * 1024;

/** sha-256 of `bytes`, yielding to the event loop between slices (heartbeats and lock renewals keep running). */
export async function payloadChecksum(bytes: Uint8Array): Promise<string> {
  const hash = createHash('sha256');
  for (let offset = 0; offset < bytes.length; offset += HASH_SLICE_BYTES) {
    hash.update(bytes.subarray(offset, offset + HASH_SLICE_BYTES));
    if (offset + HASH_SLICE_BYTES < bytes.length) await new Promise((resolve) => setImmediate(resolve));
  }
  return hash.digest('hex');
}

export async function wrapSnapshot(fingerprint: string, tokens: readonly number[], payload: Uint8Array): Promise<Buffer> {
  const header = encodeSnapshotHeader({
    compression: SnapshotCompression.none,
    fingerprint,
    tokenCount: tokens.length,
    tokenHash: tokenSequenceHash(tokens),
    payloadChecksum: await payloadChecksum(payload),
    payloadBytes: payload.length,
  });
  const snapshot = Buffer.allocUnsafe(SNAPSHOT_HEADER_BYTES + payload.length);
  snapshot.set(header, 0);
  snapshot.set(payload, SNAPSHOT_HEADER_BYTES);
  return snapshot;
}

/**
 * Check a snapshot against the engine it is about to enter. Throws `SnapshotRejectedError`.
 * Returns the header and a view of the payload.
 */
export async function unwrapSnapshot(
  snapshot: Uint8Array,
  expected: { fingerprint: string; maxTokens: number },
): Promise<{ header: SnapshotHeader; payload: Uint8Array }> {
  const { header, payload } = decodeSnapshot(snapshot);
  if (header.fingerprint !== expected.fingerprint) {
    throw new SnapshotRejectedError(
      'snapshot_fingerprint_mismatch',
      `snapshot was taken under model fingerprint ${header.fingerprint.slice(0, 12)}…, this engine is ${expected.fingerprint.slice(0, 12)}…`,
    );
  }
  if (header.tokenCount > expected.maxTokens) {
    throw new SnapshotRejectedError('snapshot_too_long', `snapshot covers ${header.tokenCount} tokens, a slot holds ${expected.maxTokens}`);
  }
  if ((await payloadChecksum(payload)) !== header.payloadChecksum) {
    throw new SnapshotRejectedError('snapshot_checksum_mismatch', 'snapshot payload fails its checksum');
  }
  return { header, payload };
}
