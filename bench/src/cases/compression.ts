/**
 * Does compressing snapshots pay? For the tiny and small presets: a snapshot after 1,000
 * tokens, deflated at levels 1 and 6 (node:zlib); size ratio and time, next to the time to
 * write and read the uncompressed bytes through Redis in the same run. Compression stays off
 * unless the saved transfer outweighs the added CPU time.
 */
import { resolve } from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';
import { createLlamaEngine } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, type ModelPresetName } from '@bamba/model-gen';
import type { BenchCase } from '../case.js';
import type { RegionRedis } from '@bamba/region';
import { withLocalRedis } from '../local-redis.js';
import { median, progress, round } from '../measure.js';

const CHUNK_BYTES = 1024 * 1024;

async function redisRoundTripMs(redis: RegionRedis, bytes: Buffer): Promise<number> {
  const times: number[] = [];
  for (let repetition = 0; repetition < 5; repetition++) {
    const started = performance.now();
    const writes = redis.pipeline();
    for (let offset = 0, index = 0; offset < bytes.length; offset += CHUNK_BYTES, index++) writes.set(`bench:chunk:${index}`, bytes.subarray(offset, offset + CHUNK_BYTES));
    await writes.exec();
    const reads = redis.pipeline();
    for (let index = 0; index * CHUNK_BYTES < bytes.length; index++) reads.getBuffer(`bench:chunk:${index}`);
    await reads.exec();
    times.push(performance.now() - started);
  }
  return median(times);
}

export const compressionCase: BenchCase = {
  name: 'compression',
  description: 'snapshot compression (deflate 1 and 6) vs plain Redis transfer, tiny and small',
  async run({ quick }) {
    return withLocalRedis(async (redis) => {
      const rows: Array<Array<string | number>> = [];
      for (const preset of ['tiny', 'small'] as ModelPresetName[]) {
        progress(`${preset}: snapshot after 1,000 tokens`);
        const engine = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED), device: 'cpu', slots: 1, contextSize: 2048 });
        try {
          const slot = engine.acquireSlot()!;
          await engine.evaluate(slot, engine.tokenize('The quick brown fox. '.repeat(48).slice(0, 1000)));
          const snapshot = await engine.exportState(slot);
          const transferMs = await redisRoundTripMs(redis, snapshot);
          for (const level of [1, 6]) {
            const compressTimes: number[] = [];
            const inflateTimes: number[] = [];
            let compressed = Buffer.alloc(0);
            for (let repetition = 0; repetition < (quick ? 2 : 5); repetition++) {
              let started = performance.now();
              compressed = deflateSync(snapshot, { level });
              compressTimes.push(performance.now() - started);
              started = performance.now();
              inflateSync(compressed);
              inflateTimes.push(performance.now() - started);
            }
            const compressedTransferMs = await redisRoundTripMs(redis, compressed);
            const withCompression = median(compressTimes) + median(inflateTimes) + compressedTransferMs;
            rows.push([preset, level, round(snapshot.length / 1e6, 3), round(compressed.length / snapshot.length, 3), round(median(compressTimes), 1), round(median(inflateTimes), 1),
              round(transferMs, 1), round(withCompression, 1), withCompression < transferMs ? 'yes' : 'no']);
          }
        } finally {
          await engine.close();
        }
      }
      return {
        raw: { rows },
        tables: [{
          title: 'Snapshot compression',
          note: 'A snapshot after 1,000 tokens. Plain: write + read through a local Redis in 1 MiB chunks. Compressed: deflate + the same transfer of fewer bytes + inflate. Medians.',
          columns: ['preset', 'deflate level', 'snapshot MB', 'compressed/plain', 'deflate (ms)', 'inflate (ms)', 'plain round trip (ms)', 'compressed round trip (ms)', 'pays?'],
          rows,
        }],
      };
    });
  },
};
