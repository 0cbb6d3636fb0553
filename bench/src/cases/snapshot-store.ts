/**
 * Snapshot store throughput: export → Redis (chunked store) → import for tiny and small, and a
 * payload the size of a bamba-9b-shape snapshot (synthetic bytes: loading the 19.6 GB model is
 * more than this machine's time allows), against plain SET/GET of the same bytes as one value,
 * in the same run.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { createLlamaEngine } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, estimateStateBytes, MODEL_PRESETS, type ModelPresetName } from '@bamba/model-gen';
import { regionKeys, SnapshotStore } from '@bamba/region';
import type { BenchCase } from '../case.js';
import { withLocalRedis } from '../local-redis.js';
import { median, progress, round } from '../measure.js';

const REPETITIONS = 3;

async function timeMs(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

export const snapshotStoreCase: BenchCase = {
  name: 'snapshot-store',
  description: 'export → Redis → import (tiny, small, 9B-sized payload) vs plain SET/GET of the same bytes',
  async run({ quick }) {
    return withLocalRedis(async (redis) => {
      const store = new SnapshotStore(redis, regionKeys('bench', 'local'), 8 * 1024 ** 3);
      const rows: Array<Array<string | number>> = [];
      const tokens = 1000;
      for (const preset of ['tiny', 'small'] as ModelPresetName[]) {
        progress(`${preset}: snapshot after ${tokens} tokens`);
        const engine = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED), device: 'cpu', slots: 2, contextSize: 2048 });
        try {
          const slot = engine.acquireSlot()!;
          const target = engine.acquireSlot()!;
          await engine.evaluate(slot, engine.tokenize('y'.repeat(tokens)));
          const exports: number[] = [];
          const stores: number[] = [];
          const imports: number[] = [];
          const plain: number[] = [];
          let size = 0;
          for (let repetition = 0; repetition < REPETITIONS; repetition++) {
            let snapshot: Buffer = Buffer.alloc(0);
            exports.push(await timeMs(async () => { snapshot = await engine.exportState(slot); }));
            size = snapshot.length;
            stores.push(await timeMs(async () => { const info = await store.put(snapshot, { tenant: 'bench', fingerprint: engine.info.fingerprint, tokenCount: tokens, tokenHash: `${repetition}`.padStart(64, '0'), indexPrefix: false }); snapshot = (await store.read(info.snapshotId))!; }));
            imports.push(await timeMs(() => engine.importState(target, snapshot)));
            plain.push(await timeMs(async () => { await redis.set('bench:plain', snapshot); await redis.getBuffer('bench:plain'); }));
          }
          const total = median(exports) + median(stores) + median(imports);
          rows.push([preset, round(size / 1e6, 2), round(median(exports), 1), round(median(stores), 1), round(median(imports), 1), round(size / 1e6 / (total / 1000), 0), round(size / 1e6 / (median(plain) / 1000), 0), round(median(plain) / total, 2)]);
        } finally {
          await engine.close();
        }
      }
      const bambaBytes = estimateStateBytes(MODEL_PRESETS['bamba-9b-shape'], tokens).totalBytes;
      progress(`bamba-9b-shape-sized payload: ${round(bambaBytes / 1e6, 1)} MB of random bytes`);
      const payload = randomBytes(bambaBytes);
      const stores: number[] = [];
      const plain: number[] = [];
      for (let repetition = 0; repetition < (quick ? 1 : REPETITIONS); repetition++) {
        stores.push(await timeMs(async () => { const info = await store.put(payload, { tenant: 'bench', fingerprint: '0'.repeat(64), tokenCount: tokens, tokenHash: `9b${repetition}`.padStart(64, '0'), indexPrefix: false }); await store.read(info.snapshotId); }));
        plain.push(await timeMs(async () => { await redis.set('bench:plain', payload); await redis.getBuffer('bench:plain'); }));
      }
      rows.push(['bamba-9b-shape (synthetic)', round(bambaBytes / 1e6, 1), '–', round(median(stores), 1), '–', round(bambaBytes / 1e6 / (median(stores) / 1000), 0), round(bambaBytes / 1e6 / (median(plain) / 1000), 0), round(median(plain) / median(stores), 2)]);
      return {
        raw: { rows },
        tables: [{
          title: 'Snapshot store',
          note: `Snapshot after ${tokens} tokens: export from the engine, write + read through the chunked Redis store (1 MiB chunks), import into another slot; plain = one SET + GET of the same bytes as a single value (what the store avoids: one huge command blocks Redis). Medians of ${REPETITIONS}. MB/s over the whole path.`,
          columns: ['snapshot', 'MB', 'export (ms)', 'store write+read (ms)', 'import (ms)', 'MB/s export→store→import', 'MB/s plain SET+GET', 'plain time / store path time'],
          rows,
        }],
      };
    });
  },
};
