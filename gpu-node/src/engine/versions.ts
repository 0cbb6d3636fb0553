/** Versions that are part of the model fingerprint. Kept equal to the pinned dependency. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

function packageVersion(entry: string): string {
  // node-llama-cpp's exports map hides package.json; walk up from its entry point instead.
  let directory = dirname(createRequire(import.meta.url).resolve(entry));
  for (let depth = 0; depth < 4; depth++) {
    try {
      const manifest = JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === entry && manifest.version) return manifest.version;
    } catch { /* not here, go up */ }
    directory = dirname(directory);
  }
  throw new Error(`cannot find the installed version of ${entry}`);
}

export const NODE_LLAMA_CPP_VERSION = packageVersion('node-llama-cpp');
