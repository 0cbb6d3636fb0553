#!/usr/bin/env node
// Prepares a Node-free GPU run with llama.cpp's own tools (for a host image without Node.js):
// a trimmed llama.cpp source tarball from node-llama-cpp's bundled release, and GGUF preambles
// + tensor manifests of bamba-9b-shape and llama-3.1-8b-shape for fill-weights.py.
// Usage: node bench/gpu/prepare-llama-cpp-run.mjs OUT_DIR   (after npm run build)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MODEL_PRESETS, planModel, planTransformer, TRANSFORMER_PRESETS } from '@bamba/gpu-node';
import { encodeGgufPreamble, tensorDataBytes } from '../../gpu-node/dist/model-gen/gguf-writer.js';

const out = resolve(process.argv[2] ?? '.gpu');
mkdirSync(out, { recursive: true });
for (const [name, document] of [
  ['bamba-9b-shape', planModel(MODEL_PRESETS['bamba-9b-shape'], 1).document],
  ['llama-3.1-8b-shape', planTransformer(TRANSFORMER_PRESETS['llama-3.1-8b-shape'], 1).document],
]) {
  const { preamble, dataOffsets, dataBytes } = encodeGgufPreamble(document);
  writeFileSync(join(out, `${name}.preamble`), preamble);
  writeFileSync(join(out, `${name}.json`), JSON.stringify({ dataBytes, tensors: document.tensors.map((tensor, index) => ({ name: tensor.name, type: tensor.type, offset: dataOffsets[index], bytes: tensorDataBytes(tensor) })) }));
}
const source = mkdtempSync(join(tmpdir(), 'llama-src-'));
execFileSync('git', ['clone', '-q', resolve('node_modules/node-llama-cpp/llama/gitRelease.bundle'), source]);
// Only what llama-bench and llama-batched-bench need; other GPU backends are never configured.
writeFileSync(join(source, 'tools/CMakeLists.txt'), 'find_package(Threads REQUIRED)\nllama_add_compile_flags()\nadd_subdirectory(batched-bench)\nadd_subdirectory(llama-bench)\n');
const dropped = ['vulkan', 'metal', 'sycl', 'opencl', 'cann', 'musa', 'hip', 'kompute', 'webgpu', 'zdnn', 'openvino', 'virtgpu', 'hexagon'].map((backend) => `ggml/src/ggml-${backend}`);
execFileSync('tar', ['-cJf', join(out, 'llama-src.tar.xz'), '-C', source, ...dropped.map((path) => `--exclude=${path}`), 'CMakeLists.txt', 'cmake', 'ggml', 'src', 'include', 'common', 'vendor', 'tools/CMakeLists.txt', 'tools/batched-bench', 'tools/llama-bench', 'licenses']);
rmSync(source, { recursive: true, force: true });
console.log(`prepared ${out}`);
