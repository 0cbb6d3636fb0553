/**
 * The models a GPU run makes with our own generator: the tiny model (the reference check's, the
 * same file the tests use) and, for a dry run (`--dry-run`), the tiny transformer and the tiny
 * model padded to Bamba-9B's vocabulary (the dry run's stack serves it, so that a 128K
 * vocabulary goes through our process as on the GPU: one once overflowed the engine's stack at
 * load). The two big models are written on the host by bench/gpu/fill-weights.py from preambles
 * bench/gpu/pack.mjs made here, under names with this generator's version (a rerun on a warm host
 * writes them again after a generator change rather than reuse old weights).
 * Usage: node bench/dist/gpu/models.js CACHE_DIR [--dry-run]   (writes CACHE_DIR/models/paths.json and prints it)
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DEFAULT_MODEL_SEED, ensureCachedModel, GENERATOR_VERSION, planTransformer, TRANSFORMER_PRESETS, writeGguf, type TransformerPresetName } from '@bamba/model-gen';

/** A random-weight transformer of a preset's shape, written once into `cacheDir/models`. */
export function ensureTransformer(cacheDir: string, preset: TransformerPresetName): string {
  const path = join(cacheDir, 'models', `${preset}-seed1-g${GENERATOR_VERSION}.gguf`);
  if (!existsSync(path)) {
    mkdirSync(join(cacheDir, 'models'), { recursive: true });
    process.stderr.write(`writing ${preset} (random weights)…\n`);
    writeGguf(path, planTransformer(TRANSFORMER_PRESETS[preset], 1).document);
  }
  return path;
}

if (process.argv[1]?.endsWith('models.js')) {
  const cacheDir = resolve(process.argv[2] ?? '.cache');
  const dryRun = process.argv.includes('--dry-run');
  const paths = {
    generator: GENERATOR_VERSION,
    tiny: ensureCachedModel(cacheDir, 'tiny', DEFAULT_MODEL_SEED),
    ...(dryRun ? { wideVocab: ensureCachedModel(cacheDir, 'tiny-wide-vocab', DEFAULT_MODEL_SEED), llamaTiny: ensureTransformer(cacheDir, 'llama-tiny-shape') } : {}),
  };
  const json = JSON.stringify(paths);
  writeFileSync(join(cacheDir, 'models', 'paths.json'), `${json}\n`);
  process.stdout.write(`${json}\n`);
}
