/**
 * A streaming GGUF (version 3) writer: metadata, tensor table, then tensor data produced chunk
 * by chunk, so a model of many GiB is written with bounded memory. Writes to a temporary file
 * and renames it into place, so a reader never sees half a model.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
const GGUF_VERSION = 3;
const DEFAULT_ALIGNMENT_BYTES = 32;
const WRITE_CHUNK_BYTES = 8 * 1024 * 1024;

/** GGUF metadata value type codes (gguf.h `gguf_type`). */
const ValueTypeCode = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;

type ScalarKind = 'u32' | 'i32' | 'f32' | 'bool' | 'string';
/** One metadata value. Arrays hold scalars of one kind. */
export type GgufValue =
  | { kind: 'u32' | 'i32' | 'f32'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'string'; value: string }
  | { kind: 'array'; itemKind: Exclude<ScalarKind, 'bool'>; values: readonly (number | string)[] };

/** Constructors that keep metadata tables readable. */
export const gguf = {
  u32: (value: number): GgufValue => ({ kind: 'u32', value }),
  i32: (value: number): GgufValue => ({ kind: 'i32', value }),
  f32: (value: number): GgufValue => ({ kind: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ kind: 'bool', value }),
  string: (value: string): GgufValue => ({ kind: 'string', value }),
  u32s: (values: readonly number[]): GgufValue => ({ kind: 'array', itemKind: 'u32', values }),
  i32s: (values: readonly number[]): GgufValue => ({ kind: 'array', itemKind: 'i32', values }),
  f32s: (values: readonly number[]): GgufValue => ({ kind: 'array', itemKind: 'f32', values }),
  strings: (values: readonly string[]): GgufValue => ({ kind: 'array', itemKind: 'string', values }),
};

/** ggml tensor types we write (ggml.h `ggml_type`). */
export const GgmlType = { F32: 0, F16: 1 } as const;
export type GgmlTypeName = keyof typeof GgmlType;
const ELEMENT_BYTES: Record<GgmlTypeName, number> = { F32: 4, F16: 2 };

/** Fills the next chunk of one tensor's data; called in order until the tensor is complete. */
export type TensorChunkFiller = (chunk: Uint8Array) => void;

/** One tensor: GGUF dimension order (ne0 first, the contiguous one). */
export interface GgufTensorSpec {
  name: string;
  dims: readonly number[];
  type: GgmlTypeName;
  /** Makes a fresh filler for this tensor's data stream. */
  createFiller: () => TensorChunkFiller;
  /**
   * Bytes of the data from which on it is all zero, whatever the filler wrote (the output rows
   * of a padded vocabulary's unused tokens); absent: none. The host's fill-weights.py reads it
   * from the manifest too.
   */
  zeroFromByte?: number;
}

export interface GgufDocument {
  metadata: ReadonlyArray<readonly [string, GgufValue]>;
  tensors: readonly GgufTensorSpec[];
}

/** Bytes of one tensor's data, unpadded. */
export function tensorDataBytes(tensor: Pick<GgufTensorSpec, 'dims' | 'type'>): number {
  return tensor.dims.reduce((product, dim) => product * dim, 1) * ELEMENT_BYTES[tensor.type];
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

/** Growable little-endian byte sink for the header part of the file. */
class ByteSink {
  private buffer = Buffer.alloc(1 << 16);
  length = 0;
  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const next = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
  u32(value: number): void { this.reserve(4); this.buffer.writeUInt32LE(value, this.length); this.length += 4; }
  i32(value: number): void { this.reserve(4); this.buffer.writeInt32LE(value, this.length); this.length += 4; }
  f32(value: number): void { this.reserve(4); this.buffer.writeFloatLE(value, this.length); this.length += 4; }
  u64(value: number): void { this.reserve(8); this.buffer.writeBigUInt64LE(BigInt(value), this.length); this.length += 8; }
  u8(value: number): void { this.reserve(1); this.buffer[this.length++] = value; }
  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buffer, this.length);
    this.length += bytes.length;
  }
  padTo(alignment: number): void {
    const target = alignUp(this.length, alignment);
    this.reserve(target - this.length);
    this.length = target; // Buffer.alloc zero-fills, so padding is zeros
  }
  bytes(): Buffer { return this.buffer.subarray(0, this.length); }
}

function writeScalar(sink: ByteSink, kind: ScalarKind, value: number | string | boolean): void {
  switch (kind) {
    case 'u32': sink.u32(value as number); break;
    case 'i32': sink.i32(value as number); break;
    case 'f32': sink.f32(value as number); break;
    case 'bool': sink.u8(value ? 1 : 0); break;
    case 'string': sink.string(value as string); break;
  }
}

/** Serialise everything before the tensor data: header, metadata, tensor table, padding. */
export function encodeGgufPreamble(document: GgufDocument): { preamble: Buffer; dataOffsets: number[]; dataBytes: number } {
  const alignmentEntry = document.metadata.find(([key]) => key === 'general.alignment');
  const alignment = alignmentEntry && alignmentEntry[1].kind === 'u32' ? alignmentEntry[1].value : DEFAULT_ALIGNMENT_BYTES;
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(document.tensors.length);
  sink.u64(document.metadata.length);
  for (const [key, value] of document.metadata) {
    sink.string(key);
    if (value.kind === 'array') {
      sink.u32(ValueTypeCode.array);
      sink.u32(ValueTypeCode[value.itemKind]);
      sink.u64(value.values.length);
      for (const item of value.values) writeScalar(sink, value.itemKind, item);
    } else {
      sink.u32(ValueTypeCode[value.kind]);
      writeScalar(sink, value.kind, value.value);
    }
  }
  const dataOffsets: number[] = [];
  let dataBytes = 0;
  for (const tensor of document.tensors) {
    sink.string(tensor.name);
    sink.u32(tensor.dims.length);
    for (const dim of tensor.dims) sink.u64(dim);
    sink.u32(GgmlType[tensor.type]);
    sink.u64(dataBytes);
    dataOffsets.push(dataBytes);
    dataBytes = alignUp(dataBytes + tensorDataBytes(tensor), alignment);
  }
  sink.padTo(alignment);
  return { preamble: sink.bytes(), dataOffsets, dataBytes };
}

/**
 * What a GPU host without Node.js needs to write a model itself (bench/gpu/fill-weights.py): the
 * preamble (header, metadata, tensor table) and a manifest of where each tensor's data goes, its
 * type, and where its zero tail starts.
 */
export function hostWeightsManifest(document: GgufDocument): { preamble: Buffer; manifest: { dataBytes: number; tensors: Array<{ name: string; type: GgmlTypeName; offset: number; bytes: number; zeroFromByte?: number }> } } {
  const { preamble, dataOffsets, dataBytes } = encodeGgufPreamble(document);
  return {
    preamble,
    manifest: {
      dataBytes,
      tensors: document.tensors.map((tensor, index) => ({
        name: tensor.name,
        type: tensor.type,
        offset: dataOffsets[index]!,
        bytes: tensorDataBytes(tensor),
        ...(tensor.zeroFromByte !== undefined ? { zeroFromByte: tensor.zeroFromByte } : {}),
      })),
    },
  };
}

/** Total file size of a document, without generating any tensor data. */
export function ggufFileBytes(document: GgufDocument): number {
  const { preamble, dataBytes } = encodeGgufPreamble(document);
  return preamble.length + dataBytes;
}

/**
 * Write a GGUF file. `onProgress(writtenBytes, totalBytes)` is called after every chunk.
 * The file appears at `path` only once complete.
 */
export function writeGguf(path: string, document: GgufDocument, onProgress?: (writtenBytes: number, totalBytes: number) => void): number {
  const { preamble, dataOffsets, dataBytes } = encodeGgufPreamble(document);
  const totalBytes = preamble.length + dataBytes;
  const temporaryPath = `${path}.partial-${process.pid}`;
  const fd = openSync(temporaryPath, 'w');
  try {
    let written = writeSync(fd, preamble);
    const chunk = new Uint8Array(WRITE_CHUNK_BYTES);
    document.tensors.forEach((tensor, index) => {
      const start = preamble.length + dataOffsets[index]!;
      if (written < start) written += writeSync(fd, new Uint8Array(start - written)); // alignment padding
      const fill = tensor.createFiller();
      const bytes = tensorDataBytes(tensor);
      const zeroFrom = tensor.zeroFromByte ?? bytes;
      let remaining = bytes;
      while (remaining > 0) {
        const view = chunk.subarray(0, Math.min(remaining, WRITE_CHUNK_BYTES));
        const at = bytes - remaining;
        // Filled all the same (the random stream of what follows does not shift), then zeroed.
        fill(view);
        if (at + view.length > zeroFrom) view.fill(0, Math.max(0, zeroFrom - at));
        written += writeSync(fd, view);
        remaining -= view.length;
        onProgress?.(written, totalBytes);
      }
    });
    if (written < totalBytes) written += writeSync(fd, new Uint8Array(totalBytes - written));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temporaryPath, path);
    return totalBytes;
  } catch (error) {
    try { closeSync(fd); } catch { /* already closed */ }
    rmSync(temporaryPath, { force: true });
    throw error;
  }
}
