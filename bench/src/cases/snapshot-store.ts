/**
 * Snapshot store throughput: export → Redis (chunked store) → import for tiny and small; then the
 * store's bytes alone (write + read of a small-sized and a bamba-9b-shape-sized payload, synthetic
 * bytes: loading the 19.6 GB model is more than this machine's time allows) through each way of
 * moving chunks (ioredis on the shared connection, as before; node-redis pools of 1, 2, 4), each
 * against plain SET/GET of the same bytes as one value, in the same run.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { createLlamaEngine, type Engine } from '@bamba/gpu-node';
import { DEFAULT_MODEL_SEED, ensureCachedModel, estimateStateBytes, MODEL_PRESETS, type ModelPresetName } from '@bamba/model-gen';
import { BULK_CONNECTIONS_DEFAULT, connectBulkBytes, ioredisBulkBytes, regionKeys, SnapshotStore, type BulkBytes, type RegionRedis } from '@bamba/region';
import type { BenchCase } from '../case.js';
import { withLocalRedis } from '../local-redis.js';
import { median, progress, round } from '../measure.js';

const REPETITIONS = 3;
/** The bytes-only comparison is cheap per run and noisy on 2 shared cores: more runs. */
const BYTES_REPETITIONS = 7;
const POOL_SIZES = [1, 2, 4];

async function timeMs(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

export interface RoundTripTimes { size: number; exports: number[]; stores: number[]; imports: number[]; plain: number[] }

/**
 * A slot holding `tokens` tokens: its state exported from the engine, written to and read back
 * from the chunked Redis store, imported into another slot; and the same bytes as one plain
 * SET + GET. Milliseconds per repetition.
 */
export async function storeRoundTrip(engine: Engine, store: SnapshotStore, redis: RegionRedis, tokens: number, repetitions: number): Promise<RoundTripTimes> {
  const slot = engine.acquireSlot()!;
  const target = engine.acquireSlot()!;
  try {
    await engine.evaluate(slot, engine.tokenize('y'.repeat(tokens)));
    const times: RoundTripTimes = { size: 0, exports: [], stores: [], imports: [], plain: [] };
    for (let repetition = 0; repetition < repetitions; repetition++) {
      let snapshot: Buffer = Buffer.alloc(0);
      times.exports.push(await timeMs(async () => { snapshot = await engine.exportState(slot); }));
      times.size = snapshot.length;
      times.stores.push(await timeMs(async () => { const info = await store.put(snapshot, { tenant: 'bench', fingerprint: engine.info.fingerprint, tokenCount: tokens, tokenHash: `${tokens}-${repetition}`.padStart(64, '0'), indexPrefix: false }); snapshot = (await store.read(info.snapshotId))!; await store.forget(info.snapshotId); }));
      times.imports.push(await timeMs(() => engine.importState(target, snapshot)));
      times.plain.push(await timeMs(async () => { await redis.set('bench:plain', snapshot); await redis.getBuffer('bench:plain'); await redis.del('bench:plain'); }));
    }
    return times;
  } finally {
    await engine.releaseSlot(slot);
    await engine.releaseSlot(target);
  }
}

export const snapshotStoreCase: BenchCase = {
  name: 'snapshot-store',
  description: 'export → Redis → import (tiny, small); store write + read of small- and 9B-sized payloads by client and pool size, vs plain SET/GET of the same bytes',
  async run({ quick }) {
    return withLocalRedis(async (redis, target) => {
      const keys = regionKeys('bench', 'local');
      const serving = connectBulkBytes(target, { role: 'bench', connections: BULK_CONNECTIONS_DEFAULT });
      const store = new SnapshotStore(redis, keys, 8 * 1024 ** 3, serving);
      const rows: Array<Array<string | number>> = [];
      const tokens = 1000;
      let smallBytes = 0;
      try {
        for (const preset of ['tiny', 'small'] as ModelPresetName[]) {
          progress(`${preset}: snapshot after ${tokens} tokens`);
          const engine = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), preset, DEFAULT_MODEL_SEED), device: 'cpu', slots: 2, contextSize: 2048 });
          try {
            const { size, exports, stores, imports, plain } = await storeRoundTrip(engine, store, redis, tokens, REPETITIONS);
            if (preset === 'small') smallBytes = size;
            const total = median(exports) + median(stores) + median(imports);
            rows.push([preset, round(size / 1e6, 2), round(median(exports), 1), round(median(stores), 1), round(median(imports), 1), round(size / 1e6 / (total / 1000), 0), round(size / 1e6 / (median(plain) / 1000), 0), round(median(plain) / total, 2)]);
          } finally {
            await engine.close();
          }
        }
      } finally {
        await serving.close();
      }

      // The store's bytes alone, by way of moving chunks. Each repetition runs every path once
      // (and plain SET + GET once) in turn, so drifts of the shared machine hit them alike.
      const bambaBytes = estimateStateBytes(MODEL_PRESETS['bamba-9b-shape'], tokens).totalBytes;
      const paths: Array<{ bulk: BulkBytes; store: SnapshotStore }> = [ioredisBulkBytes(redis), ...POOL_SIZES.map((connections) => connectBulkBytes(target, { role: `bench-${connections}`, connections }))]
        .map((bulk) => ({ bulk, store: new SnapshotStore(redis, keys, 8 * 1024 ** 3, bulk) }));
      const bytesRows: Array<Array<string | number>> = [];
      const raw: Record<string, unknown> = {};
      try {
        for (const [label, bytes] of [['small-sized', smallBytes], ['bamba-9b-shape-sized', bambaBytes]] as const) {
          progress(`${label}: ${round(bytes / 1e6, 1)} MB of random bytes, ${paths.length} paths`);
          const payload = randomBytes(bytes);
          const plain: number[] = [];
          const writes = paths.map(() => [] as number[]);
          const reads = paths.map(() => [] as number[]);
          for (let repetition = 0; repetition < (quick ? 1 : BYTES_REPETITIONS); repetition++) {
            plain.push(await timeMs(async () => { await redis.set('bench:plain', payload); await redis.getBuffer('bench:plain'); }));
            await redis.del('bench:plain');
            for (const [index, { store: pathStore }] of paths.entries()) {
              let snapshotId = '';
              writes[index]!.push(await timeMs(async () => { snapshotId = (await pathStore.put(payload, { tenant: 'bench', fingerprint: '0'.repeat(64), tokenCount: tokens, tokenHash: `${label}${index}-${repetition}`.padStart(64, '0'), indexPrefix: false })).snapshotId; }));
              let read: Buffer | null = null;
              reads[index]!.push(await timeMs(async () => { read = await pathStore.read(snapshotId); }));
              if (repetition === 0 && !(read as Buffer | null)?.equals(payload)) throw new Error(`${paths[index]!.bulk.description}: the snapshot read back differs from the one written`);
              await pathStore.forget(snapshotId);
            }
          }
          const plainMBps = bytes / 1e6 / (median(plain) / 1000);
          raw[label] = { bytes, plainMs: plain, paths: paths.map(({ bulk }, index) => ({ path: bulk.description, writeMs: writes[index], readMs: reads[index] })) };
          for (const [index, { bulk }] of paths.entries()) {
            const totals = writes[index]!.map((writeMs, repetition) => writeMs + reads[index]![repetition]!);
            const storeMBps = bytes / 1e6 / (median(totals) / 1000);
            bytesRows.push([label, round(bytes / 1e6, 1), bulk.description, round(median(writes[index]!), 1), round(median(reads[index]!), 1), round(storeMBps, 0), round(plainMBps, 0), round(storeMBps / plainMBps, 2)]);
          }
        }
      } finally {
        await Promise.all(paths.map(({ bulk }) => bulk.close()));
      }
      return {
        raw: { rows, bytesRows, bytes: raw },
        tables: [{
          title: 'Snapshot store',
          note: `Snapshot after ${tokens} tokens: export from the engine, write + read through the chunked Redis store (1 MiB chunks, ${serving.description} as the gpu-nodes run it), import into another slot; plain = one SET + GET of the same bytes as a single value (what the store avoids: one huge command blocks Redis). Medians of ${REPETITIONS}. MB/s over the whole path.`,
          columns: ['snapshot', 'MB', 'export (ms)', 'store write+read (ms)', 'import (ms)', 'MB/s export→store→import', 'MB/s plain SET+GET', 'plain time / store path time'],
          rows,
        }, {
          title: 'Snapshot store bytes by client',
          note: `The store alone (put, then read, of random bytes the size of the small preset's snapshot and of a bamba-9b-shape one after ${tokens} tokens) by the way chunks travel: ioredis on the connection shared with every other command (the path before the pool), node-redis (@redis/client 6.3.1) over pools of ${POOL_SIZES.join(', ')} connections, 1 MiB chunks sent in parallel round-robin. Plain = one ioredis SET + GET of the same bytes as a single value. Medians of ${quick ? 1 : BYTES_REPETITIONS}, every path once per round; ratio = store MB/s ÷ plain MB/s (goal ≥ 0.8).`,
          columns: ['payload', 'MB', 'chunks travel over', 'write (ms)', 'read (ms)', 'MB/s store write+read', 'MB/s plain SET+GET', 'store ÷ plain'],
          rows: bytesRows,
        }],
      };
    });
  },
};
