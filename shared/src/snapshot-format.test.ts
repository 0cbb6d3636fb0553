import { describe, expect, it } from 'vitest';
import { SnapshotRejectedError } from './errors.js';
import { decodeSnapshot, encodeSnapshotHeader, SNAPSHOT_HEADER_BYTES, SnapshotCompression } from './snapshot-format.js';

const digest = (fill: string) => fill.repeat(64);
const header = {
  compression: SnapshotCompression.none,
  fingerprint: digest('a'),
  tokenCount: 1234,
  tokenHash: digest('b'),
  payloadChecksum: digest('c'),
  payloadBytes: 5,
};

function snapshotWith(payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(SNAPSHOT_HEADER_BYTES + payload.length);
  bytes.set(encodeSnapshotHeader({ ...header, payloadBytes: payload.length }));
  bytes.set(payload, SNAPSHOT_HEADER_BYTES);
  return bytes;
}

function rejection(bytes: Uint8Array): string {
  try {
    decodeSnapshot(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(SnapshotRejectedError);
    return (error as SnapshotRejectedError).code;
  }
  throw new Error('expected the snapshot to be rejected');
}

describe('snapshot format', () => {
  it('round-trips every header field and returns the payload', () => {
    const payload = new Uint8Array([1, 2, 3, 4, 5]);
    const decoded = decodeSnapshot(snapshotWith(payload));
    expect(decoded.header).toEqual({ ...header, formatVersion: 1 });
    expect([...decoded.payload]).toEqual([1, 2, 3, 4, 5]);
  });

  it('rejects bytes that are not a snapshot', () => {
    expect(rejection(new Uint8Array(200).fill(7))).toBe('snapshot_garbage');
    expect(rejection(new Uint8Array(3))).toBe('snapshot_garbage');
  });

  it('rejects a truncated header and a truncated payload', () => {
    const full = snapshotWith(new Uint8Array(100));
    expect(rejection(full.subarray(0, 60))).toBe('snapshot_truncated');
    expect(rejection(full.subarray(0, full.length - 1))).toBe('snapshot_truncated');
  });

  it('rejects trailing bytes after the payload', () => {
    const full = snapshotWith(new Uint8Array(10));
    const longer = new Uint8Array(full.length + 1);
    longer.set(full);
    expect(rejection(longer)).toBe('snapshot_garbage');
  });

  it('rejects a header whose bytes changed', () => {
    const full = snapshotWith(new Uint8Array(10));
    full[50] ^= 0x01; // inside the token count
    expect(rejection(full)).toBe('snapshot_header_corrupt');
  });

  it('carries the recurrent-bf16 encoding code and rejects an unknown one', () => {
    const payload = new Uint8Array(4);
    const bytes = new Uint8Array(SNAPSHOT_HEADER_BYTES + payload.length);
    bytes.set(encodeSnapshotHeader({ ...header, compression: SnapshotCompression.recurrentBf16, payloadBytes: payload.length }));
    expect(decodeSnapshot(bytes).header.compression).toBe(SnapshotCompression.recurrentBf16);
    // An unknown code with a valid header checksum: a newer writer, not corruption.
    const unknown = encodeSnapshotHeader({ ...header, compression: 7 as never, payloadBytes: payload.length });
    bytes.set(unknown);
    expect(rejection(bytes)).toBe('snapshot_version_unsupported');
  });

  it('refuses to encode out-of-range fields', () => {
    expect(() => encodeSnapshotHeader({ ...header, tokenCount: -1 })).toThrow(TypeError);
    expect(() => encodeSnapshotHeader({ ...header, fingerprint: 'xyz' })).toThrow(TypeError);
  });
});
