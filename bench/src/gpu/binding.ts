/**
 * Which llama.cpp binding a process gets on this machine, as the gpu-node would load it: the GPU
 * run's proof that its own build (not a prebuilt binary, not the CPU) is what serves.
 * Usage: node bench/dist/gpu/binding.js cpu|cuda   (exit 1 when the binding is not a local build
 * for that device)
 */
import { loadLlama } from '@bamba/gpu-node';

const device = process.argv[2] === 'cuda' ? 'cuda' : 'cpu';
const llama = await loadLlama(device);
const vram = await llama.getVramState();
const facts = { device, gpu: llama.gpu, buildType: llama.buildType, gpuDevices: await llama.getGpuDeviceNames(), vramTotalGiB: Math.round((vram.total / 2 ** 30) * 10) / 10, llamaCpp: llama.llamaCppRelease.release };
process.stdout.write(`${JSON.stringify(facts)}\n`);
await llama.dispose();
if (facts.buildType !== 'localBuild' || (device === 'cuda') !== (facts.gpu === 'cuda')) {
  process.stderr.write(`expected our own ${device} build, got a ${facts.buildType} binding on ${String(facts.gpu)}\n`);
  process.exitCode = 1;
}
