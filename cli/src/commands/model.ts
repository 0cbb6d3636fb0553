/**
 * `bamba model tiny`: write a deterministic random-weight model. Flags have environment twins
 * (BAMBA_MODEL_PRESET, BAMBA_MODEL_SEED, BAMBA_MODEL_OUT, BAMBA_CACHE_DIR).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  cachedModelPath,
  DEFAULT_MODEL_SEED,
  ensureCachedModel,
  generateModel,
  isModelPresetName,
  MODEL_PRESET_NAMES,
  type ModelPresetName,
} from '@bamba/model-gen';
import { createFileProgress } from '../progress-bar.js';

const HELP = `usage: bamba model tiny [--preset NAME] [--seed N] (--out FILE | --cache)

Writes a granitehybrid GGUF with random weights. Same preset and seed: byte-identical file.

  --preset NAME   ${MODEL_PRESET_NAMES.join(' | ')} (default tiny)       env BAMBA_MODEL_PRESET
  --seed N        weight seed, a uint32 (default ${DEFAULT_MODEL_SEED})               env BAMBA_MODEL_SEED
  --out FILE      where to write it                                    env BAMBA_MODEL_OUT
  --cache         write into the model cache unless already there and print its path
  --cache-dir DIR model cache folder (default .cache)                  env BAMBA_CACHE_DIR
`;

export interface ModelCommandConfig {
  preset: ModelPresetName;
  seed: number;
  out: string | null;
  cache: boolean;
  cacheDir: string;
}

/** Parse `bamba model` arguments and environment: the settings, or the text to print (help or a mistake). */
export function readModelConfig(args: string[], env: NodeJS.ProcessEnv): ModelCommandConfig | string {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      preset: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      cache: { type: 'boolean' },
      'cache-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return HELP;
  if (positionals[0] !== 'tiny' || positionals.length > 1) return `expected 'bamba model tiny', got 'bamba model ${positionals.join(' ')}'\n\n${HELP}`;
  const preset = values.preset ?? env.BAMBA_MODEL_PRESET ?? 'tiny';
  if (!isModelPresetName(preset)) return `unknown preset '${preset}'; presets: ${MODEL_PRESET_NAMES.join(', ')}`;
  const seedText = values.seed ?? env.BAMBA_MODEL_SEED ?? String(DEFAULT_MODEL_SEED);
  const seed = Number(seedText);
  if (!/^\d+$/.test(seedText) || seed > 0xffffffff) return `--seed must be an integer from 0 to 4294967295, got '${seedText}'`;
  const out = values.out ?? env.BAMBA_MODEL_OUT ?? null;
  const cache = values.cache ?? false;
  if (!out && !cache) return `say where to write the model: --out FILE or --cache\n\n${HELP}`;
  return { preset, seed, out: out ? resolve(out) : null, cache, cacheDir: resolve(values['cache-dir'] ?? env.BAMBA_CACHE_DIR ?? '.cache') };
}

export async function runModelCommand(args: string[]): Promise<number> {
  let config: ModelCommandConfig | string;
  try {
    config = readModelConfig(args, process.env);
  } catch (error) {
    config = `${error instanceof Error ? error.message : String(error)}\n\n${HELP}`;
  }
  if (typeof config === 'string') {
    const isHelp = config === HELP;
    (isHelp ? process.stdout : process.stderr).write(isHelp ? config : `bamba model: ${config}\n`);
    return isHelp ? 0 : 2;
  }
  const progress = createFileProgress(`${config.preset} (seed ${config.seed})`);
  const startedMs = Date.now();
  let path: string;
  if (config.out) {
    path = generateModel({ preset: config.preset, seed: config.seed, outPath: config.out, onProgress: progress.update }).path;
  } else {
    if (existsSync(cachedModelPath(config.cacheDir, config.preset, config.seed))) progress.skip();
    path = ensureCachedModel(config.cacheDir, config.preset, config.seed, progress.update);
  }
  progress.done(Date.now() - startedMs);
  process.stdout.write(`${path}\n`);
  return 0;
}
