/**
 * Our own stack on the GPU: a private redis-server, a gpu-node with BAMBA_DEVICE=cuda serving
 * bamba-9b-shape, and the gateway, driven over HTTP: time to first token of a session's next
 * turn at 8K and 32K tokens of history, resident, from the host tier, from a Redis snapshot and
 * replayed. Then, in-process on the same device: a 9B state's export → Redis → import, and how
 * long an export stalls the other slots' decoding. Run by bench/gpu/host.sh; `--dry-run` runs the
 * same code on the CPU with a tiny model (host.sh gives it the one with Bamba-9B's vocabulary) and
 * short histories.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLlamaEngine, type EngineDevice } from '@bamba/gpu-node';
import { BULK_CONNECTIONS_DEFAULT, connectBulkBytes, regionKeys, SnapshotStore } from '@bamba/region';
import { markdownTable } from '../benchmarks-markdown.js';
import type { BenchTable } from '../case.js';
import { DECODERS, measureExportStall, STALL_COLUMNS, stallRow, type StallFigures } from '../cases/export-stall.js';
import { measureResume, RESUME_COLUMNS, resumeRows } from '../cases/resume.js';
import { storeRoundTrip, type RoundTripTimes } from '../cases/snapshot-store.js';
import { withLocalRedis } from '../local-redis.js';
import { median, progress, round } from '../measure.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'dry-run': { type: 'boolean' }, hybrid: { type: 'string' }, out: { type: 'string' } } });
  const dryRun = values['dry-run'] ?? false;
  if (!values.hybrid) throw new Error('--hybrid names the bamba-shaped GGUF file');
  const modelPath = values.hybrid;
  const device: EngineDevice = dryRun ? 'cpu' : 'cuda';
  const modelId = dryRun ? 'bamba-tiny' : 'bamba-9b-shape';
  // bamba-9b-shape is trained (its metadata says) for 32,768 tokens: 32,000 of history leave room for two turns.
  const context = dryRun ? 4096 : 32_768;
  const histories = dryRun ? [256, 1024] : [8192, 32_000];
  const stateDir = process.env.BAMBA_STATE_DIR;
  const started = performance.now();

  const resume = await measureResume({
    modelPath, modelId, device, context, histories,
    repetitionsFor: (history) => (dryRun || history > 8192 ? 1 : 2),
    // One lease holds the whole run: the host tier (no GPU in its path) and the in-process
    // export/import (the round-trip table below has them) are left to the CPU bench.
    skipHost: !dryRun,
    skipTransfer: true,
    // Sessions of 500 MB each: lift the tenant's byte quota (4 GiB by default) out of the way.
    gatewayEnv: { BAMBA_MAX_SESSION_BYTES_PER_TENANT: String(64 * 2 ** 30) },
    ...(stateDir ? { stateDir } : {}),
  });

  progress(`${modelId}: export → Redis → import, and export stalls, in-process on ${device}`);
  const roundTrips: Record<number, RoundTripTimes> = {};
  const stalls: Record<number, StallFigures> = {};
  await withLocalRedis(async (redis, target) => {
    const bulk = connectBulkBytes(target, { role: 'bench', connections: BULK_CONNECTIONS_DEFAULT });
    const store = new SnapshotStore(redis, regionKeys('bench', 'local'), 64 * 2 ** 30, bulk);
    const engine = await createLlamaEngine({ modelPath, device, slots: DECODERS + 1, contextSize: context, ...(stateDir ? { stateDir } : {}) });
    try {
      for (const history of histories) {
        progress(`round trip, H=${history}`);
        roundTrips[history] = await storeRoundTrip(engine, store, redis, history, 3);
        progress(`export stall, H=${history}`);
        stalls[history] = await measureExportStall(engine, history, dryRun ? 3 : 8, dryRun ? 2000 : 1500);
      }
    } finally {
      await engine.close();
      await bulk.close();
    }
  });

  const tables: BenchTable[] = [{
    title: `Resume vs replay on ${device} (${modelId}, through the HTTP API)`,
    note: `Time to first token of the next turn after H tokens of history: resident in the slot, loaded from a Redis snapshot, replayed from the transcript, as in BENCHMARKS.md "resume" (median of ${dryRun ? 1 : '2 at 8K, 1 at 32K'}).${dryRun ? '' : ' The host tier is not measured here (no GPU in its path); export and import times are in the next table.'}`,
    columns: RESUME_COLUMNS,
    rows: resumeRows(histories, resume),
  }, {
    title: `A state's way device → host → Redis and back (${modelId})`,
    note: 'Export from the engine (device to host memory), write + read through the chunked Redis store, import into another slot (host to device); plain = one SET + GET of the same bytes. Medians of 3.',
    columns: ['H (tokens)', 'MB', 'export (ms)', 'store write+read (ms)', 'import (ms)', 'MB/s whole path', 'plain SET+GET (ms)'],
    rows: histories.map((history) => {
      const times = roundTrips[history]!;
      const total = median(times.exports) + median(times.stores) + median(times.imports);
      return [history, round(times.size / 1e6, 1), round(median(times.exports), 1), round(median(times.stores), 1), round(median(times.imports), 1), round(times.size / 1e6 / (total / 1000), 0), round(median(times.plain), 1)];
    }),
  }, {
    title: `Export stall on ${device} (${modelId})`,
    note: `${DECODERS} slots decode while a fourth slot's state of H tokens is exported repeatedly; worst inter-token gap during an export ÷ the median gap (goal ≤ 2).`,
    columns: STALL_COLUMNS,
    rows: histories.map((history) => stallRow(modelId, history, stalls[history]!)),
  }];
  const report = `${dryRun ? 'DRY RUN (CPU, tiny model, short histories): the numbers mean nothing, the script works.\n\n' : ''}${tables.map(markdownTable).join('\n')}\nWall time: ${round((performance.now() - started) / 1000, 0)} s.\n`;
  process.stdout.write(report);
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify({ dryRun, device, modelId, histories, resume, roundTrips, stalls }, null, 2)}\n`);
    writeFileSync(values.out.replace(/\.json$/, '.md'), report);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`gpu stack: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  // Exit now: a failure part-way can leave handles open, and host.sh's next step is waiting.
  process.exit(1);
});
