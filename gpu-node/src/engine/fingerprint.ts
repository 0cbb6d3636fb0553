/**
 * The model fingerprint (DESIGN.md "Concepts"): a snapshot restores only into an engine whose
 * fingerprint is equal. It covers what decides the meaning and layout of state bytes:
 * the GGUF's metadata and tensor table, a sample of its tensor data (two fine-tunes can share
 * every shape and name), the engine version, and the context settings that change the state
 * layout. It deliberately does not hash the whole file: an 18 GB model would take a minute.
 */
import { createHash } from 'node:crypto';
import { readFileRange, readGgufPreamble } from './gguf-preamble.js';

const DATA_SAMPLES = 16;
const DATA_SAMPLE_BYTES = 64 * 1024;

/** Context settings that change what a sequence's state bytes mean. */
export interface StateLayout {
  /** Sequences in the context: a state file records one KV stream per sequence. */
  slots: number;
  flashAttention: boolean;
  kvCacheKeyType: string;
  kvCacheValueType: string;
}

export function computeModelFingerprint(modelPath: string, engineVersion: string, layout: StateLayout): string {
  const preamble = readGgufPreamble(modelPath);
  const hash = createHash('sha256');
  hash.update('bamba-fingerprint-v1\0');
  hash.update(preamble.bytes);
  const dataBytes = preamble.fileBytes - preamble.dataOffset;
  for (let sample = 0; sample < DATA_SAMPLES; sample++) {
    const offset = preamble.dataOffset + Math.floor((dataBytes * sample) / DATA_SAMPLES);
    hash.update(readFileRange(modelPath, offset, Math.min(DATA_SAMPLE_BYTES, preamble.fileBytes - offset)));
  }
  hash.update(JSON.stringify({ engineVersion, ...layout }));
  return hash.digest('hex');
}
