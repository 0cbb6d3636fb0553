/**
 * The `recurrentBf16` snapshot encoding: the recurrent (Mamba conv and SSM) tensors of a state
 * payload stored as bf16 instead of f32, which halves a Bamba state (almost all of it is
 * recurrent). Attention K/V stays as llama.cpp wrote it. The encoded payload keeps llama.cpp's
 * layout with the tensors' ggml type set to bf16 and their row size halved, so llama.cpp would
 * refuse it (type mismatch) rather than misread it if it ever got there undecoded.
 *
 * f32 → bf16 rounds to nearest even, as ggml's `ggml_compute_fp32_to_bf16` does (NaN stays a
 * quiet NaN); bf16 → f32 is exact (the 16 low mantissa bits become zero).
 */
import { GgmlType, parseSequenceState, serializeSequenceState, type SequenceState, type StateMemoryKind, type StateTensor } from './state-layout.js';

/** How a gpu-node stores exported state: llama.cpp's f32 as written, or recurrent state as bf16. */
export type SnapshotEncoding = 'f32' | 'bf16';

/**
 * A Uint32Array over `bytes`, copying only when the view is not 4-byte aligned (a Buffer from
 * Node's pool or a payload behind a header). `new Uint8Array(view)` copies; a Buffer's `slice`
 * would not.
 */
function wordsOf(bytes: Uint8Array): Uint32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  return new Uint32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}

function halvesOf(bytes: Uint8Array): Uint16Array {
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : new Uint8Array(bytes);
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

/** f32 little-endian bytes → bf16 little-endian bytes, round to nearest even. */
export function f32ToBf16(bytes: Uint8Array): Uint8Array {
  if (bytes.length % 4 !== 0) throw new RangeError(`f32 data of ${bytes.length} bytes`);
  const source = wordsOf(bytes);
  const target = new Uint16Array(source.length);
  for (let index = 0; index < source.length; index++) {
    const bits = source[index]!;
    target[index] = (bits & 0x7fffffff) > 0x7f800000 ? (bits >>> 16) | 0x40 : (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(target.buffer);
}

/** bf16 little-endian bytes → f32 little-endian bytes (exact). */
export function bf16ToF32(bytes: Uint8Array): Uint8Array {
  if (bytes.length % 2 !== 0) throw new RangeError(`bf16 data of ${bytes.length} bytes`);
  const source = halvesOf(bytes);
  const target = new Uint32Array(source.length);
  for (let index = 0; index < source.length; index++) target[index] = source[index]! << 16;
  return new Uint8Array(target.buffer);
}

/** Yield to the event loop between tensors: a 9B state converts ~31 M values. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function mapRecurrent(state: SequenceState, convert: (tensor: StateTensor) => StateTensor): Promise<SequenceState> {
  const recurrent = state.recurrent;
  if (!recurrent) return state;
  const mapTensors = async (tensors: StateTensor[]) => {
    const mapped: StateTensor[] = [];
    for (const tensor of tensors) {
      mapped.push(convert(tensor));
      await nextTurn();
    }
    return mapped;
  };
  return { ...state, recurrent: { ...recurrent, conv: await mapTensors(recurrent.conv), ssm: await mapTensors(recurrent.ssm) } };
}

function recurrentTensors(state: SequenceState): StateTensor[] {
  return state.recurrent ? [...state.recurrent.conv, ...state.recurrent.ssm] : [];
}

/**
 * Store the payload's f32 recurrent tensors as bf16. Returns null when there is nothing to
 * encode, or when a recurrent tensor is bf16 already (llama.cpp configured so): the decoder
 * widens every bf16 recurrent tensor, so such a payload must stay unencoded.
 * Throws `StateLayoutError` when the payload does not parse.
 */
export async function encodeRecurrentBf16(payload: Uint8Array, memory: StateMemoryKind = 'hybrid'): Promise<Uint8Array | null> {
  const { state } = parseSequenceState(payload, memory);
  const tensors = recurrentTensors(state);
  if (tensors.some((tensor) => tensor.ggmlType === GgmlType.bf16) || !tensors.some((tensor) => tensor.ggmlType === GgmlType.f32)) return null;
  const encoded = await mapRecurrent(state, (tensor) => {
    if (tensor.ggmlType !== GgmlType.f32) return tensor;
    if (tensor.transposed) throw new Error('bug: llama.cpp writes recurrent state untransposed');
    return { transposed: false, ggmlType: GgmlType.bf16, rowBytes: tensor.rowBytes / 2, data: f32ToBf16(tensor.data) };
  });
  return serializeSequenceState(encoded);
}

/** The inverse of `encodeRecurrentBf16`: widen every bf16 recurrent tensor to f32. Throws `StateLayoutError`. */
export async function decodeRecurrentBf16(payload: Uint8Array, memory: StateMemoryKind = 'hybrid'): Promise<Uint8Array> {
  const { state } = parseSequenceState(payload, memory);
  const decoded = await mapRecurrent(state, (tensor) => {
    if (tensor.ggmlType !== GgmlType.bf16 || tensor.transposed) return tensor;
    return { transposed: false, ggmlType: GgmlType.f32, rowBytes: tensor.rowBytes * 2, data: bf16ToF32(tensor.data) };
  });
  return serializeSequenceState(decoded);
}
