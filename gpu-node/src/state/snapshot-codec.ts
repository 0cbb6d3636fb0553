/**
 * Wraps engine state bytes in the snapshot container from `@bamba/shared` and checks them on
 * the way back: header, payload checksum, fingerprint, length. Everything is verified before a
 * single byte reaches llama.cpp, which trusts its state files blindly. Optionally stores the
 * recurrent state as bf16 (`recurrent-bf16.ts`) and widens it back on the way in.
 */
import { createHash } from 'node:crypto';
import {
  decodeSnapshot,
  encodeSnapshotHeader,
  SNAPSHOT_HEADER_BYTES,
  SnapshotCompression,
  SnapshotRejectedError,
  type SnapshotCompressionCode,
  type SnapshotHeader,
} from '@bamba/shared';
import { decodeRecurrentBf16, encodeRecurrentBf16, type SnapshotEncoding } from './recurrent-bf16.js';
import { StateLayoutError, type StateMemoryKind } from './state-layout.js';

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

/** How to store a payload: the encoding asked for, and the memory modules the model's state holds (to parse it). */
export interface SnapshotWrapOptions {
  /** Default `f32` (the payload as llama.cpp wrote it). */
  encoding?: SnapshotEncoding;
  /** Default `hybrid` (granitehybrid and the other Mamba2/attention hybrids). */
  memory?: StateMemoryKind | null;
}

/**
 * Wrap a payload from llama.cpp. With encoding `bf16` the recurrent tensors are stored as bf16
 * and the header says so; a payload with nothing to encode, or whose layout this build does not
 * parse (memory null: an architecture we do not know), is stored as written (header `none`):
 * a snapshot is never lost to its encoding.
 */
export async function wrapSnapshot(fingerprint: string, tokens: readonly number[], written: Uint8Array, options: SnapshotWrapOptions = {}): Promise<Buffer> {
  let payload = written;
  let compression: SnapshotCompressionCode = SnapshotCompression.none;
  const memory = options.memory === undefined ? 'hybrid' : options.memory;
  if (options.encoding === 'bf16' && memory !== null) {
    const encoded = await encodeRecurrentBf16(written, memory).catch((error: unknown) => {
      if (error instanceof StateLayoutError) return null;
      throw error;
    });
    if (encoded) {
      payload = encoded;
      compression = SnapshotCompression.recurrentBf16;
    }
  }
  const header = encodeSnapshotHeader({
    compression,
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
 * Returns the header and the payload as llama.cpp wrote it (a view of the snapshot when stored
 * unencoded; recurrent state widened back to f32 when stored as bf16).
 */
export async function unwrapSnapshot(
  snapshot: Uint8Array,
  expected: { fingerprint: string; maxTokens: number; memory?: StateMemoryKind | null },
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
  if (header.compression === SnapshotCompression.none) return { header, payload };
  const memory = expected.memory === undefined ? 'hybrid' : expected.memory;
  if (memory === null) {
    throw new SnapshotRejectedError('snapshot_version_unsupported', 'snapshot stores recurrent state as bf16, which this engine\'s model cannot read');
  }
  try {
    return { header, payload: await decodeRecurrentBf16(payload, memory) };
  } catch (error) {
    if (error instanceof StateLayoutError) throw new SnapshotRejectedError('snapshot_garbage', 'bf16 snapshot payload does not parse as engine state', { cause: error });
    throw error;
  }
}
