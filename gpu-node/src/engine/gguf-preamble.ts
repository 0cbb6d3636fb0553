/**
 * Finds the extent of a GGUF file's preamble (header, metadata, tensor table) without loading
 * the file: the fingerprint hashes exactly those bytes plus a sample of tensor data.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const GGUF_MAGIC = 0x46554747;
const STRING_TYPE = 8;
const ARRAY_TYPE = 9;
/** Byte sizes of scalar GGUF value types, by type code. */
const SCALAR_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export interface GgufPreamble {
  /** The preamble bytes, tensor table included, before alignment padding. */
  bytes: Buffer;
  /** Absolute file offset where tensor data starts. */
  dataOffset: number;
  fileBytes: number;
}

/** Sequential reader over a file descriptor with a growable window. */
class FileCursor {
  private buffer = Buffer.alloc(0);
  position = 0;
  constructor(private readonly fd: number, private readonly fileBytes: number) {}
  private ensure(bytes: number): void {
    if (this.position + bytes <= this.buffer.length) return;
    const wanted = Math.min(this.fileBytes, Math.max(this.buffer.length * 2, this.position + bytes, 1 << 20));
    if (this.position + bytes > wanted) throw new Error('GGUF file ends inside its preamble');
    const next = Buffer.alloc(wanted);
    this.buffer.copy(next);
    let filled = this.buffer.length;
    while (filled < wanted) {
      const read = readSync(this.fd, next, filled, wanted - filled, filled);
      if (read === 0) break;
      filled += read;
    }
    this.buffer = next.subarray(0, filled);
  }
  u32(): number { this.ensure(4); const value = this.buffer.readUInt32LE(this.position); this.position += 4; return value; }
  u64(): number {
    this.ensure(8);
    const value = this.buffer.readBigUInt64LE(this.position);
    this.position += 8;
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('GGUF length field out of range');
    return Number(value);
  }
  skip(bytes: number): void { this.ensure(bytes); this.position += bytes; }
  string(): string { const length = this.u64(); this.ensure(length); const text = this.buffer.toString('utf8', this.position, this.position + length); this.position += length; return text; }
  slice(start: number, end: number): Buffer { return Buffer.from(this.buffer.subarray(start, end)); }
}

function skipValue(cursor: FileCursor, type: number): void {
  if (type === STRING_TYPE) { cursor.skip(cursor.u64()); return; }
  if (type === ARRAY_TYPE) {
    const itemType = cursor.u32();
    const count = cursor.u64();
    if (itemType === STRING_TYPE || itemType === ARRAY_TYPE) { for (let index = 0; index < count; index++) skipValue(cursor, itemType); }
    else cursor.skip(count * (SCALAR_BYTES[itemType] ?? unknownType(itemType)));
    return;
  }
  cursor.skip(SCALAR_BYTES[type] ?? unknownType(type));
}

function unknownType(type: number): never {
  throw new Error(`unknown GGUF value type ${type}`);
}

export function readGgufPreamble(path: string): GgufPreamble {
  const fd = openSync(path, 'r');
  try {
    const fileBytes = fstatSync(fd).size;
    const cursor = new FileCursor(fd, fileBytes);
    if (cursor.u32() !== GGUF_MAGIC) throw new Error(`${path} is not a GGUF file`);
    const version = cursor.u32();
    if (version < 2) throw new Error(`GGUF version ${version} is not supported`);
    const tensorCount = cursor.u64();
    const metadataCount = cursor.u64();
    let alignment = 32;
    for (let index = 0; index < metadataCount; index++) {
      const key = cursor.string();
      const type = cursor.u32();
      if (key === 'general.alignment' && type === 4) alignment = cursor.u32();
      else skipValue(cursor, type);
    }
    for (let index = 0; index < tensorCount; index++) {
      cursor.string();
      const dims = cursor.u32();
      cursor.skip(dims * 8 + 4 + 8);
    }
    const end = cursor.position;
    return { bytes: cursor.slice(0, end), dataOffset: Math.ceil(end / alignment) * alignment, fileBytes };
  } finally {
    closeSync(fd);
  }
}

/** Read `length` bytes at `offset` (short at end of file). */
export function readFileRange(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, offset);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}
