/**
 * The byte layout of one sequence's llama.cpp state file (what `saveStateToFile` writes and our
 * snapshots carry as their payload), as written by the llama.cpp bundled with node-llama-cpp
 * 3.21.1 (`llama/gitRelease.bundle`, tag v0.4.0). A parser that splits a payload into its
 * sections (metadata, attention K/V, recurrent conv and SSM tensors) and a serialiser that writes
 * the parsed form back byte for byte, so tensors can be re-encoded (see `recurrent-bf16.ts`).
 *
 * All integers little-endian. `llama_state_seq_save_file` (src/llama-context.cpp) writes:
 *
 *   u32 magic `GGSQ` (LLAMA_STATE_SEQ_MAGIC 0x67677371), u32 version (LLAMA_STATE_SEQ_VERSION 3),
 *   u32 token count, i32 × count tokens, then `state_seq_write_data` → `memory->state_write`.
 *   (The whole-context `state_write_data` adds the architecture string; the per-sequence one
 *   does not, so nothing in the file names the model.)
 *
 * For a hybrid model (`llama_memory_hybrid::state_write`, src/llama-memory-hybrid.cpp) the
 * memory is the attention KV cache, then the recurrent memory.
 *
 * KV cache (`llama_kv_cache::state_write`, src/llama-kv-cache.cpp):
 *   u32 n_stream (one stream per sequence of the context unless the cache is unified), then per
 *   stream: u32 cell_count; when 0 the stream ends there. Otherwise
 *   `state_write_meta`: per cell i32 pos, u32 n_seq_id, i32 × n_seq_id seq ids (a 2-D position
 *   record sits between them for M-RoPE / PLE models, `has_cell_ext`: not supported here);
 *   `state_write_data`: u32 v_trans, u32 n_layer (attention layers only), then per layer
 *   K: i32 ggml type, u64 row bytes, cell_count rows; then per layer V: untransposed the same as K,
 *   transposed (v_trans = 1, no flash attention) i32 ggml type, u32 element bytes,
 *   u32 n_embd_v_gqa, then n_embd_v_gqa × cell_count elements.
 *
 * Recurrent memory (`llama_memory_recurrent::state_write`, src/llama-memory-recurrent.cpp):
 *   u32 cell_count; `state_write_meta`: per cell i32 pos, u32 n_seq_id (0 for a single-sequence
 *   save), i32 × n_seq_id; `state_write_data`: u32 s_trans (always 0), u32 n_layer (all layers of
 *   the model), then per recurrent layer (attention layers are skipped, so fewer than n_layer)
 *   r = conv state: i32 ggml type, u64 row bytes, cell_count rows; then per recurrent layer
 *   s = SSM state: i32 ggml type, u64 row bytes, cell_count rows. Models with a PLE conv row
 *   (`p_l`, written after each r without a type) are not supported here.
 *
 * The number of recurrent layers is not written, so the parser reads (type, row bytes, rows)
 * records to the end of the payload and splits them in half: the first half conv, the second
 * SSM. Each half must agree on type and row size, which catches a misread.
 */

/** ggml type ids this module names (ggml/include/ggml.h `enum ggml_type`). */
export const GgmlType = { f32: 0, f16: 1, bf16: 30 } as const;

/** `LLAMA_STATE_SEQ_MAGIC` ('ggsq'). */
export const STATE_SEQ_MAGIC = 0x67677371;
/** `LLAMA_STATE_SEQ_VERSION` of the bundled llama.cpp. */
export const STATE_SEQ_VERSION = 3;

/** Which memory modules the model's state holds, in file order. */
export type StateMemoryKind = 'hybrid' | 'attention' | 'recurrent';

/** One cell record: a token position and the sequences that hold it (empty for a single-sequence save of recurrent memory). */
export interface StateCell {
  position: number;
  sequenceIds: number[];
}

/** One layer's tensor rows for the saved cells, as one record of the file. */
export type StateTensor =
  | {
      transposed: false;
      /** ggml type id (`GgmlType`). */
      ggmlType: number;
      /** Bytes of one cell's row. */
      rowBytes: number;
      /** cell_count × rowBytes bytes. */
      data: Uint8Array;
    }
  | {
      /** V of a KV cache without flash attention: element-major (one row per embedding index). */
      transposed: true;
      ggmlType: number;
      /** Bytes of one element. */
      elementBytes: number;
      /** Rows of the transposed tensor (`n_embd_v_gqa`). */
      embeddingSize: number;
      /** embeddingSize × cell_count × elementBytes bytes. */
      data: Uint8Array;
    };

export interface AttentionStream {
  /** Empty: the stream holds none of the sequence's cells and nothing else was written for it. */
  cells: StateCell[];
  /** Only meaningful when cells is not empty. */
  valuesTransposed: boolean;
  keys: StateTensor[];
  values: StateTensor[];
}

export interface RecurrentMemoryState {
  cells: StateCell[];
  /** `n_layer` as written: every layer of the model, attention layers included. */
  modelLayerCount: number;
  /** Conv state (`r_l`) per recurrent layer. */
  conv: StateTensor[];
  /** SSM state (`s_l`) per recurrent layer. */
  ssm: StateTensor[];
}

/** A parsed per-sequence state file. Tensor data are views into the parsed bytes, not copies. */
export interface SequenceState {
  magic: number;
  version: number;
  tokens: number[];
  memory: StateMemoryKind;
  attention: { streams: AttentionStream[] } | null;
  recurrent: RecurrentMemoryState | null;
}

export type StateSectionKind = 'metadata' | 'attention-key' | 'attention-value' | 'recurrent-conv' | 'recurrent-ssm';

/** A contiguous byte range of the payload. Sections tile the payload without gaps. */
export interface StateSection {
  kind: StateSectionKind;
  offset: number;
  length: number;
  /** ggml type of a tensor section; null for metadata. */
  ggmlType: number | null;
  /** Index of the layer within its memory (attention layers or recurrent layers); null for metadata. */
  layer: number | null;
}

/** A payload that does not follow the layout above (or one this parser does not support). */
export class StateLayoutError extends Error {
  override readonly name = 'StateLayoutError';
}

const U32 = 4;
const U64 = 8;

class Reader {
  private readonly view: DataView;
  offset = 0;
  readonly sections: StateSection[] = [];

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(length: number, what: string): void {
    if (this.offset + length > this.bytes.length) {
      throw new StateLayoutError(`state payload ends at ${this.bytes.length} bytes, reading ${what} needs ${length} bytes at ${this.offset}`);
    }
  }

  private metadata(length: number): void {
    const last = this.sections.at(-1);
    if (last?.kind === 'metadata') last.length += length;
    else this.sections.push({ kind: 'metadata', offset: this.offset, length, ggmlType: null, layer: null });
    this.offset += length;
  }

  u32(what: string): number {
    this.need(U32, what);
    const value = this.view.getUint32(this.offset, true);
    this.metadata(U32);
    return value;
  }

  i32(what: string): number {
    this.need(U32, what);
    const value = this.view.getInt32(this.offset, true);
    this.metadata(U32);
    return value;
  }

  u64(what: string): number {
    this.need(U64, what);
    const value = this.view.getBigUint64(this.offset, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new StateLayoutError(`${what} out of range: ${value}`);
    this.metadata(U64);
    return Number(value);
  }

  tensorData(length: number, kind: StateSectionKind, ggmlType: number, layer: number): Uint8Array {
    this.need(length, `${kind} data of layer ${layer}`);
    const data = this.bytes.subarray(this.offset, this.offset + length);
    if (length > 0) this.sections.push({ kind, offset: this.offset, length, ggmlType, layer });
    this.offset += length;
    return data;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }
}

function readCells(reader: Reader, count: number, memory: string): StateCell[] {
  const cells: StateCell[] = [];
  for (let index = 0; index < count; index++) {
    const position = reader.i32(`${memory} cell position`);
    const sequenceCount = reader.u32(`${memory} cell sequence count`);
    if (sequenceCount > 0xffff) throw new StateLayoutError(`${memory} cell ${index} claims ${sequenceCount} sequences`);
    const sequenceIds: number[] = [];
    for (let sequence = 0; sequence < sequenceCount; sequence++) sequenceIds.push(reader.i32(`${memory} cell sequence id`));
    cells.push({ position, sequenceIds });
  }
  return cells;
}

function readRowTensor(reader: Reader, cellCount: number, kind: StateSectionKind, layer: number): StateTensor {
  const ggmlType = reader.i32(`${kind} type of layer ${layer}`);
  const rowBytes = reader.u64(`${kind} row bytes of layer ${layer}`);
  const length = rowBytes * cellCount;
  if (!Number.isSafeInteger(length)) throw new StateLayoutError(`${kind} of layer ${layer} is out of range`);
  return { transposed: false, ggmlType, rowBytes, data: reader.tensorData(length, kind, ggmlType, layer) };
}

function readAttention(reader: Reader): { streams: AttentionStream[] } {
  const streamCount = reader.u32('KV stream count');
  if (streamCount === 0 || streamCount > 4096) throw new StateLayoutError(`KV stream count ${streamCount} is not plausible`);
  const streams: AttentionStream[] = [];
  for (let stream = 0; stream < streamCount; stream++) {
    const cellCount = reader.u32('KV cell count');
    if (cellCount === 0) {
      streams.push({ cells: [], valuesTransposed: false, keys: [], values: [] });
      continue;
    }
    const cells = readCells(reader, cellCount, 'KV');
    const valuesTransposed = reader.u32('KV v_trans');
    if (valuesTransposed > 1) throw new StateLayoutError(`KV v_trans is ${valuesTransposed}`);
    const layerCount = reader.u32('KV layer count');
    const keys: StateTensor[] = [];
    for (let layer = 0; layer < layerCount; layer++) keys.push(readRowTensor(reader, cellCount, 'attention-key', layer));
    const values: StateTensor[] = [];
    for (let layer = 0; layer < layerCount; layer++) {
      if (valuesTransposed === 0) {
        values.push(readRowTensor(reader, cellCount, 'attention-value', layer));
        continue;
      }
      const ggmlType = reader.i32(`attention-value type of layer ${layer}`);
      const elementBytes = reader.u32(`attention-value element bytes of layer ${layer}`);
      const embeddingSize = reader.u32(`attention-value embedding size of layer ${layer}`);
      const data = reader.tensorData(embeddingSize * cellCount * elementBytes, 'attention-value', ggmlType, layer);
      values.push({ transposed: true, ggmlType, elementBytes, embeddingSize, data });
    }
    streams.push({ cells, valuesTransposed: valuesTransposed === 1, keys, values });
  }
  return { streams };
}

function readRecurrent(reader: Reader): RecurrentMemoryState {
  const cellCount = reader.u32('recurrent cell count');
  const cells = readCells(reader, cellCount, 'recurrent');
  const transposed = reader.u32('recurrent s_trans');
  if (transposed !== 0) throw new StateLayoutError(`recurrent s_trans is ${transposed}; llama.cpp writes 0`);
  const modelLayerCount = reader.u32('recurrent layer count');
  const records: StateTensor[] = [];
  // The recurrent memory is last: (type, row bytes, rows) records fill the rest of the payload.
  while (reader.remaining > 0) {
    if (records.length >= 2 * modelLayerCount) throw new StateLayoutError(`more than 2 × ${modelLayerCount} recurrent tensors`);
    // Kind and layer are corrected below, once the half-way split is known.
    records.push(readRowTensor(reader, cellCount, 'recurrent-conv', records.length));
  }
  if (records.length % 2 !== 0) throw new StateLayoutError(`${records.length} recurrent tensors: conv and SSM must pair up`);
  const half = records.length / 2;
  const conv = records.slice(0, half);
  const ssm = records.slice(half);
  for (const [name, group] of [['conv', conv], ['SSM', ssm]] as const) {
    const first = group[0];
    if (first && group.some((tensor) => tensor.ggmlType !== first.ggmlType || !tensor.transposed !== !first.transposed || (!tensor.transposed && !first.transposed && tensor.rowBytes !== first.rowBytes))) {
      throw new StateLayoutError(`recurrent ${name} tensors differ in type or row size across layers`);
    }
  }
  return { cells, modelLayerCount, conv, ssm };
}

/** The recurrent records were read as conv; relabel the second half's sections as SSM. */
function relabelRecurrentSections(sections: StateSection[], recurrent: RecurrentMemoryState): void {
  for (const section of sections) {
    if (section.kind !== 'recurrent-conv' || section.layer === null) continue;
    if (section.layer >= recurrent.conv.length) {
      section.kind = 'recurrent-ssm';
      section.layer -= recurrent.conv.length;
    }
  }
}

/**
 * Parse a per-sequence state file. `memory` says which memory modules the model has (a
 * `granitehybrid` model: `hybrid`). Throws `StateLayoutError` when the bytes do not fit.
 */
export function parseSequenceState(bytes: Uint8Array, memory: StateMemoryKind = 'hybrid'): { state: SequenceState; sections: StateSection[] } {
  const reader = new Reader(bytes);
  const magic = reader.u32('magic');
  const version = reader.u32('version');
  if (magic !== STATE_SEQ_MAGIC || version !== STATE_SEQ_VERSION) {
    throw new StateLayoutError(`not a llama.cpp sequence state v${STATE_SEQ_VERSION} (magic ${magic.toString(16)}, version ${version})`);
  }
  const tokenCount = reader.u32('token count');
  if (tokenCount * U32 > reader.remaining) throw new StateLayoutError(`token count ${tokenCount} exceeds the payload`);
  const tokens: number[] = [];
  for (let index = 0; index < tokenCount; index++) tokens.push(reader.i32('token'));
  const attention = memory === 'recurrent' ? null : readAttention(reader);
  const recurrent = memory === 'attention' ? null : readRecurrent(reader);
  if (reader.remaining !== 0) throw new StateLayoutError(`${reader.remaining} bytes left after the state`);
  if (recurrent) relabelRecurrentSections(reader.sections, recurrent);
  return { state: { magic, version, tokens, memory, attention, recurrent }, sections: reader.sections };
}

function cellsBytes(cells: readonly StateCell[]): number {
  return cells.reduce((total, cell) => total + 2 * U32 + U32 * cell.sequenceIds.length, 0);
}

function tensorBytes(tensor: StateTensor): number {
  return (tensor.transposed ? 3 * U32 : U32 + U64) + tensor.data.length;
}

/** Bytes `serializeSequenceState` writes for `state`. */
export function serializedSize(state: SequenceState): number {
  let total = 3 * U32 + U32 * state.tokens.length;
  if (state.attention) {
    total += U32;
    for (const stream of state.attention.streams) {
      total += U32;
      if (stream.cells.length === 0) continue;
      total += cellsBytes(stream.cells) + 2 * U32;
      for (const tensor of [...stream.keys, ...stream.values]) total += tensorBytes(tensor);
    }
  }
  if (state.recurrent) {
    total += U32 + cellsBytes(state.recurrent.cells) + 2 * U32;
    for (const tensor of [...state.recurrent.conv, ...state.recurrent.ssm]) total += tensorBytes(tensor);
  }
  return total;
}

class Writer {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  offset = 0;

  constructor(length: number) {
    this.bytes = new Uint8Array(length);
    this.view = new DataView(this.bytes.buffer);
  }

  u32(value: number): void {
    this.view.setUint32(this.offset, value, true);
    this.offset += U32;
  }

  i32(value: number): void {
    this.view.setInt32(this.offset, value, true);
    this.offset += U32;
  }

  u64(value: number): void {
    this.view.setBigUint64(this.offset, BigInt(value), true);
    this.offset += U64;
  }

  raw(data: Uint8Array): void {
    this.bytes.set(data, this.offset);
    this.offset += data.length;
  }

  cells(cells: readonly StateCell[]): void {
    for (const cell of cells) {
      this.i32(cell.position);
      this.u32(cell.sequenceIds.length);
      for (const id of cell.sequenceIds) this.i32(id);
    }
  }

  tensor(tensor: StateTensor): void {
    this.i32(tensor.ggmlType);
    if (tensor.transposed) {
      this.u32(tensor.elementBytes);
      this.u32(tensor.embeddingSize);
    } else {
      this.u64(tensor.rowBytes);
    }
    this.raw(tensor.data);
  }
}

/** Write a parsed state back in llama.cpp's layout (the inverse of `parseSequenceState`). */
export function serializeSequenceState(state: SequenceState): Uint8Array {
  const writer = new Writer(serializedSize(state));
  writer.u32(state.magic);
  writer.u32(state.version);
  writer.u32(state.tokens.length);
  for (const token of state.tokens) writer.i32(token);
  if (state.attention) {
    writer.u32(state.attention.streams.length);
    for (const stream of state.attention.streams) {
      writer.u32(stream.cells.length);
      if (stream.cells.length === 0) continue;
      writer.cells(stream.cells);
      writer.u32(stream.valuesTransposed ? 1 : 0);
      writer.u32(stream.keys.length);
      for (const tensor of stream.keys) writer.tensor(tensor);
      for (const tensor of stream.values) writer.tensor(tensor);
    }
  }
  if (state.recurrent) {
    writer.u32(state.recurrent.cells.length);
    writer.cells(state.recurrent.cells);
    writer.u32(0);
    writer.u32(state.recurrent.modelLayerCount);
    for (const tensor of state.recurrent.conv) writer.tensor(tensor);
    for (const tensor of state.recurrent.ssm) writer.tensor(tensor);
  }
  if (writer.offset !== writer.bytes.length) throw new Error(`bug: serialised ${writer.offset} of ${writer.bytes.length} bytes`);
  return writer.bytes;
}

/** Bytes per section kind: a summary for benchmarks and logs. */
export function sectionTotals(sections: readonly StateSection[]): Record<StateSectionKind, number> {
  const totals: Record<StateSectionKind, number> = { metadata: 0, 'attention-key': 0, 'attention-value': 0, 'recurrent-conv': 0, 'recurrent-ssm': 0 };
  for (const section of sections) totals[section.kind] += section.length;
  return totals;
}

/** llama.cpp architectures whose memory is a KV cache then a Mamba-style recurrent memory (`llm_arch_is_hybrid` with `llama_memory_hybrid`). */
const HYBRID_ARCHITECTURES: ReadonlySet<string> = new Set(['granitehybrid', 'nemotron_h', 'falcon-h1', 'jamba']);
/** Recurrent-only Mamba architectures (`llm_arch_is_recurrent`, RWKV left out: its r/s differ). */
const RECURRENT_ARCHITECTURES: ReadonlySet<string> = new Set(['mamba', 'mamba2']);

/**
 * The memory modules of a model by its GGUF `general.architecture`, or null when this parser has
 * not been checked against that architecture's state (its snapshots then stay unencoded).
 */
export function stateMemoryKindOf(architecture: string | undefined): StateMemoryKind | null {
  if (architecture === undefined) return null;
  if (HYBRID_ARCHITECTURES.has(architecture)) return 'hybrid';
  if (RECURRENT_ARCHITECTURES.has(architecture)) return 'recurrent';
  return null;
}
