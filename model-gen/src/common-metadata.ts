/** GGUF metadata every generated model carries, whatever its architecture. */
import { gguf, type GgufValue } from './gguf-writer.js';
import { CHAT_TEMPLATE, type Vocabulary } from './vocabulary.js';

/** `general.*` and our generator's own keys (the seed makes fingerprints differ per seed). */
export function generatorMetadata(architecture: string, preset: string, seed: number, mostlyF16: boolean): Array<[string, GgufValue]> {
  return [
    ['general.architecture', gguf.string(architecture)],
    ['general.name', gguf.string(`bamba-serve ${preset} (seed ${seed})`)],
    ['general.file_type', gguf.u32(mostlyF16 ? 1 : 0)],
    ['bamba.generator.preset', gguf.string(preset)],
    ['bamba.generator.seed', gguf.u32(seed)],
  ];
}

/** The byte-level BPE tokenizer with no merges, end-of-text as BOS/EOS/padding, and the chat template. */
export function tokenizerMetadata(vocabulary: Vocabulary): Array<[string, GgufValue]> {
  return [
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string('default')],
    ['tokenizer.ggml.tokens', gguf.strings(vocabulary.tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(vocabulary.tokenTypes)],
    ['tokenizer.ggml.merges', gguf.strings([])],
    ['tokenizer.ggml.bos_token_id', gguf.u32(vocabulary.eosTokenId)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(vocabulary.eosTokenId)],
    ['tokenizer.ggml.padding_token_id', gguf.u32(vocabulary.eosTokenId)],
    ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
    ['tokenizer.chat_template', gguf.string(CHAT_TEMPLATE)],
  ];
}
