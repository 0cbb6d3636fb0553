#!/usr/bin/env node
// Packs what the GPU host lacks into one folder that travels with the working tree (the device
// tool's `carry`, 64 MiB in all): this machine's Node.js runtime with npm, the built project with
// its production node_modules (no prebuilt llama.cpp binaries: the host builds its own for CUDA
// arch 90), a trimmed llama.cpp source for that build, redis-server with the libraries it links,
// and the GGUF preambles + tensor manifests of bamba-9b-shape and llama-3.1-8b-shape (their
// weights are written on the host by fill-weights.py). bench/gpu/host.sh unpacks and runs it.
//
// Usage (after `npm run build`): node bench/gpu/pack.mjs [OUT_DIR=.gpu]
// Node-API addons take their headers from the node-api-headers package (in node_modules), so
// Node's own include/ folder need not travel.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { hostWeightsManifest, MODEL_PRESETS, planModel, planTransformer, TRANSFORMER_PRESETS } from '@bamba/model-gen';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const out = resolve(process.argv[2] ?? join(root, '.gpu'));
const LIMIT_BYTES = 60 * 2 ** 20; // what travels must stay under 64 MiB with the working tree
/** Packages the GPU run never loads (the test suite's browser and client, the compiler: dist/ travels built). */
const UNUSED_PACKAGES = ['typescript', 'playwright-core', 'openai', 'fast-check'];
/** llama.cpp backends never configured on the host. */
const UNUSED_BACKENDS = ['vulkan', 'metal', 'sycl', 'opencl', 'cann', 'musa', 'hip', 'kompute', 'webgpu', 'zdnn', 'openvino', 'virtgpu', 'hexagon'];

const stage = mkdtempSync(join(tmpdir(), 'bamba-gpu-pack-'));
const xz = (archive, cwd, paths, extra = []) => execFileSync('tar', ['-cf', archive, '-I', 'xz -T0 -6', ...extra, '-C', cwd, ...paths], { stdio: 'inherit' });
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// 1. Node.js and npm (node-llama-cpp's build runs `npm run cmake-js-llama`).
const npmDir = join(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim(), 'npm');
const nodeStage = join(stage, 'node');
mkdirSync(join(nodeStage, 'bin'), { recursive: true });
mkdirSync(join(nodeStage, 'lib', 'node_modules'), { recursive: true });
cpSync(realpathSync(process.execPath), join(nodeStage, 'bin', 'node'));
cpSync(npmDir, join(nodeStage, 'lib', 'node_modules', 'npm'), { recursive: true, dereference: true });
for (const [tool, script] of [['npm', 'npm-cli.js'], ['npx', 'npx-cli.js']]) {
  writeFileSync(join(nodeStage, 'bin', tool), `#!/bin/sh\nexec "$(dirname "$0")/node" "$(dirname "$0")/../lib/node_modules/npm/bin/${script}" "$@"\n`);
  chmodSync(join(nodeStage, 'bin', tool), 0o755);
}
xz(join(out, 'node.tar.xz'), stage, ['node']);

// 2. The built project: every workspace's dist/ and the production dependencies.
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
const workspaces = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces;
const modules = Object.entries(lock.packages)
  .filter(([path, entry]) => path.startsWith('node_modules/') && !entry.dev && existsSync(join(root, path)))
  .map(([path]) => path)
  .filter((path) => !path.startsWith('node_modules/@node-llama-cpp/') && !UNUSED_PACKAGES.some((name) => path === `node_modules/${name}` || path.startsWith(`node_modules/${name}/`)));
// Each workspace's dist/ and any one level down (the gateway's page scripts: gateway/browser/dist).
const dists = workspaces.flatMap((workspace) => [
  `${workspace}/dist`,
  ...readdirSync(join(root, workspace), { withFileTypes: true }).filter((entry) => entry.isDirectory() && !['node_modules', 'dist', 'src'].includes(entry.name)).map((entry) => `${workspace}/${entry.name}/dist`),
]).filter((path) => existsSync(join(root, path)));
if (!dists.includes('bench/dist')) throw new Error('bench/dist is missing: run `npm run build` first');
const listFile = join(stage, 'app.list');
// node_modules/.bin: `npm run` finds cmake-js there when node-llama-cpp builds.
writeFileSync(listFile, [...new Set([...dists, 'node_modules/.bin', ...modules])].join('\n'));
xz(join(out, 'app.tar.xz'), root, ['-T', listFile], ['--exclude=node_modules/node-llama-cpp/llama/gitRelease.bundle', '--exclude=node_modules/node-llama-cpp/llama/localBuilds', '--exclude=node_modules/node-llama-cpp/llama/llama.cpp', '--exclude=*.tsbuildinfo']);

// 3. llama.cpp's source at the release node-llama-cpp bundles, without what a CUDA or CPU build never reads.
const source = join(stage, 'llama.cpp');
execFileSync('git', ['-c', 'advice.detachedHead=false', 'clone', '-q', join(root, 'node_modules/node-llama-cpp/llama/gitRelease.bundle'), source]);
xz(join(out, 'llama-src.tar.xz'), source, ['CMakeLists.txt', 'cmake', 'ggml', 'src', 'include', 'common', 'vendor', 'licenses', 'LICENSE'],
  UNUSED_BACKENDS.map((backend) => `--exclude=ggml/src/ggml-${backend}`));

// 4. redis-server and the shared libraries it links, except glibc's own (the host has a newer glibc).
const redisStage = join(stage, 'redis');
mkdirSync(join(redisStage, 'lib'), { recursive: true });
const redisServer = execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim();
cpSync(realpathSync(redisServer), join(redisStage, 'redis-server.bin'));
const GLIBC = /^(libc|libm|libdl|librt|libpthread|ld-linux-x86-64|linux-vdso)\.so/;
for (const line of execFileSync('ldd', [redisServer], { encoding: 'utf8' }).split('\n')) {
  const match = /^\s*(\S+) => (\/\S+)/.exec(line);
  if (match && !GLIBC.test(match[1])) cpSync(realpathSync(match[2]), join(redisStage, 'lib', match[1]));
}
writeFileSync(join(redisStage, 'redis-server'), '#!/bin/sh\nhere="$(dirname "$(readlink -f "$0")")"\nLD_LIBRARY_PATH="$here/lib" exec "$here/redis-server.bin" "$@"\n');
chmodSync(join(redisStage, 'redis-server'), 0o755);
xz(join(out, 'redis.tar.xz'), stage, ['redis']);

// 5. The two big models as preamble + manifest: fill-weights.py writes their weights on the host.
mkdirSync(join(out, 'models'));
for (const [name, document] of [
  ['bamba-9b-shape', planModel(MODEL_PRESETS['bamba-9b-shape'], 1).document],
  ['llama-3.1-8b-shape', planTransformer(TRANSFORMER_PRESETS['llama-3.1-8b-shape'], 1).document],
]) {
  const { preamble, manifest } = hostWeightsManifest(document);
  writeFileSync(join(out, 'models', `${name}.preamble`), preamble);
  writeFileSync(join(out, 'models', `${name}.json`), JSON.stringify(manifest));
}
rmSync(stage, { recursive: true, force: true });

const sizes = readdirSync(out, { recursive: true }).map((name) => join(out, name)).filter((path) => statSync(path).isFile()).map((path) => [relative(out, path), statSync(path).size]);
const total = sizes.reduce((sum, [, size]) => sum + size, 0);
for (const [name, size] of sizes) console.log(`${(size / 2 ** 20).toFixed(1).padStart(6)} MiB  ${name}`);
console.log(`${(total / 2 ** 20).toFixed(1).padStart(6)} MiB  in ${basename(out)}/`);
if (total > LIMIT_BYTES) {
  console.error(`too big to travel: ${(total / 2 ** 20).toFixed(1)} MiB > ${LIMIT_BYTES / 2 ** 20} MiB`);
  process.exit(1);
}
