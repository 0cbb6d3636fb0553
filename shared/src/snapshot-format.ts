/**
 * The state-snapshot container: our own fixed header in front of the engine's per-sequence
 * state bytes. Pure byte layout (no hashing library): producers compute the digests with
 * whatever their runtime offers and this module only places and checks them, so the same
 * code reads snapshot headers on Node and in workerd.
 *
 * Layout, little-endian, 128 bytes, then the payload:
 *
 * | offset | bytes | field                                              |
 * |-------:|------:|----------------------------------------------------|
 * |      0 |     8 | magic `BAMBASNP`                                   |
 * |      8 |     2 | format version (`SNAPSHOT_FORMAT_VERSION`)         |
 * |     10 |     2 | payload encoding (`SnapshotCompression`)           |
 * |     12 |     4 | header bytes (128)                                 |
 * |     16 |    32 | model fingerprint (sha-256)                        |
 * |     48 |     4 | token count                                        |
 * |     52 |    32 | token-sequence hash (sha-256, the prefix key)      |
 * |     84 |    32 | payload checksum (sha-256 of the stored payload)   |
 * |    116 |     8 | payload bytes                                      |
 * |    124 |     4 | header checksum (FNV-1a 32 of bytes 0..123)        |
 */
import { SnapshotRejectedError } from './errors.js';

export const SNAPSHOT_MAGIC = 'BAMBASNP';
export const SNAPSHOT_FORMAT_VERSION = 1;
export const SNAPSHOT_HEADER_BYTES = 128;
/** Length in bytes of every digest in the header (sha-256). */
export const SNAPSHOT_DIGEST_BYTES = 32;

/**
 * Payload encoding codes (the header's `compression` field). `none`: llama.cpp's state file as it
 * wrote it (recurrent state f32). `recurrentBf16`: the same layout with every f32 recurrent
 * (Mamba conv and SSM) tensor stored as bf16, rounded to nearest even; the reader widens it back
 * to f32 before llama.cpp sees it. Attention K/V is stored as written either way. General-purpose
 * compression (deflate) did not pay (BENCHMARKS.md, "Snapshot compression").
 */
export const SnapshotCompression = { none: 0, recurrentBf16: 1 } as const;
export type SnapshotCompressionCode = (typeof SnapshotCompression)[keyof typeof SnapshotCompression];

const KNOWN_COMPRESSION_CODES: ReadonlySet<number> = new Set(Object.values(SnapshotCompression));

function isCompressionCode(code: number): code is SnapshotCompressionCode {
  return KNOWN_COMPRESSION_CODES.has(code);
}

/** The decoded header of a snapshot. Digests are lowercase hex strings of 64 characters. */
export interface SnapshotHeader {
  formatVersion: number;
  compression: SnapshotCompressionCode;
  /** Model fingerprint the state was taken under (see gpu-node's fingerprint). */
  fingerprint: string;
  /** Number of tokens the state covers; the state is valid only at exactly this position. */
  tokenCount: number;
  /** sha-256 of the token sequence (uint32 little-endian ids): the prefix-cache key. */
  tokenHash: string;
  /** sha-256 of the payload bytes as stored (encoded, before any widening back to f32). */
  payloadChecksum: string;
  /** Stored payload length in bytes. */
  payloadBytes: number;
}

const OFFSET = {
  magic: 0,
  formatVersion: 8,
  compression: 10,
  headerBytes: 12,
  fingerprint: 16,
  tokenCount: 48,
  tokenHash: 52,
  payloadChecksum: 84,
  payloadBytes: 116,
  headerChecksum: 124,
} as const;

/** FNV-1a 32-bit: cheap, dependency-free integrity check for the header alone. */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < bytes.length; index++) {
    hash ^= bytes[index]!;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export function hexToBytes(hex: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new TypeError(`not a lowercase hex string: ${hex.slice(0, 16)}…`);
  const bytes = new Uint8Array(hex.length / 2);
  for (let index = 0; index < bytes.length; index++) bytes[index] = parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  return bytes;
}

export function bytesToHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

function writeDigest(target: Uint8Array, offset: number, hex: string, field: string): void {
  const bytes = hexToBytes(hex);
  if (bytes.length !== SNAPSHOT_DIGEST_BYTES) throw new TypeError(`${field} must be ${SNAPSHOT_DIGEST_BYTES} bytes of hex`);
  target.set(bytes, offset);
}

/** Serialise a header into its 128 bytes. Throws TypeError on fields out of range (a caller bug). */
export function encodeSnapshotHeader(header: Omit<SnapshotHeader, 'formatVersion'>): Uint8Array {
  const bytes = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const view = new DataView(bytes.buffer);
  for (let index = 0; index < SNAPSHOT_MAGIC.length; index++) bytes[index] = SNAPSHOT_MAGIC.charCodeAt(index);
  if (!Number.isInteger(header.tokenCount) || header.tokenCount < 0 || header.tokenCount > 0xffffffff) {
    throw new TypeError(`tokenCount out of range: ${header.tokenCount}`);
  }
  if (!Number.isSafeInteger(header.payloadBytes) || header.payloadBytes < 0) {
    throw new TypeError(`payloadBytes out of range: ${header.payloadBytes}`);
  }
  view.setUint16(OFFSET.formatVersion, SNAPSHOT_FORMAT_VERSION, true);
  view.setUint16(OFFSET.compression, header.compression, true);
  view.setUint32(OFFSET.headerBytes, SNAPSHOT_HEADER_BYTES, true);
  writeDigest(bytes, OFFSET.fingerprint, header.fingerprint, 'fingerprint');
  view.setUint32(OFFSET.tokenCount, header.tokenCount, true);
  writeDigest(bytes, OFFSET.tokenHash, header.tokenHash, 'tokenHash');
  writeDigest(bytes, OFFSET.payloadChecksum, header.payloadChecksum, 'payloadChecksum');
  view.setBigUint64(OFFSET.payloadBytes, BigInt(header.payloadBytes), true);
  view.setUint32(OFFSET.headerChecksum, fnv1a32(bytes.subarray(0, OFFSET.headerChecksum)), true);
  return bytes;
}

/**
 * Read and check a snapshot's header and split off its payload (a view, not a copy).
 * Checks everything that needs no hashing: magic, version, header checksum, lengths.
 * The payload checksum and the fingerprint are the reader's to compare.
 */
export function decodeSnapshot(snapshot: Uint8Array): { header: SnapshotHeader; payload: Uint8Array } {
  if (snapshot.length < SNAPSHOT_MAGIC.length) {
    throw new SnapshotRejectedError('snapshot_garbage', `snapshot is ${snapshot.length} bytes, too short to be one`);
  }
  for (let index = 0; index < SNAPSHOT_MAGIC.length; index++) {
    if (snapshot[index] !== SNAPSHOT_MAGIC.charCodeAt(index)) {
      throw new SnapshotRejectedError('snapshot_garbage', 'not a Bamba state snapshot (bad magic)');
    }
  }
  if (snapshot.length < SNAPSHOT_HEADER_BYTES) {
    throw new SnapshotRejectedError('snapshot_truncated', `snapshot header cut short at ${snapshot.length} bytes`);
  }
  const view = new DataView(snapshot.buffer, snapshot.byteOffset, snapshot.byteLength);
  const storedHeaderChecksum = view.getUint32(OFFSET.headerChecksum, true);
  if (fnv1a32(snapshot.subarray(0, OFFSET.headerChecksum)) !== storedHeaderChecksum) {
    throw new SnapshotRejectedError('snapshot_header_corrupt', 'snapshot header fails its checksum');
  }
  const formatVersion = view.getUint16(OFFSET.formatVersion, true);
  if (formatVersion !== SNAPSHOT_FORMAT_VERSION) {
    throw new SnapshotRejectedError(
      'snapshot_version_unsupported',
      `snapshot format version ${formatVersion}, this build reads version ${SNAPSHOT_FORMAT_VERSION}`,
    );
  }
  const headerBytes = view.getUint32(OFFSET.headerBytes, true);
  const compression = view.getUint16(OFFSET.compression, true);
  if (headerBytes !== SNAPSHOT_HEADER_BYTES || !isCompressionCode(compression)) {
    throw new SnapshotRejectedError('snapshot_version_unsupported', 'snapshot uses a header size or compression this build does not know');
  }
  const payloadBytesBig = view.getBigUint64(OFFSET.payloadBytes, true);
  if (payloadBytesBig > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SnapshotRejectedError('snapshot_header_corrupt', 'snapshot payload length out of range');
  }
  const payloadBytes = Number(payloadBytesBig);
  const available = snapshot.length - SNAPSHOT_HEADER_BYTES;
  if (available < payloadBytes) {
    throw new SnapshotRejectedError('snapshot_truncated', `snapshot payload has ${available} of ${payloadBytes} bytes`);
  }
  if (available > payloadBytes) {
    throw new SnapshotRejectedError('snapshot_garbage', `snapshot has ${available - payloadBytes} bytes after its payload`);
  }
  const digest = (offset: number) => bytesToHex(snapshot.subarray(offset, offset + SNAPSHOT_DIGEST_BYTES));
  return {
    header: {
      formatVersion,
      compression,
      fingerprint: digest(OFFSET.fingerprint),
      tokenCount: view.getUint32(OFFSET.tokenCount, true),
      tokenHash: digest(OFFSET.tokenHash),
      payloadChecksum: digest(OFFSET.payloadChecksum),
      payloadBytes,
    },
    payload: snapshot.subarray(SNAPSHOT_HEADER_BYTES),
  };
}
