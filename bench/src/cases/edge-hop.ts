/**
 * What the edge adds to time to first token: the same short streaming chat sent straight to a
 * region's gateway and through the edge Worker (workerd under `wrangler dev`, which validates,
 * signs and relays it to that region), alternating, on loopback. The difference of the medians
 * is the edge's own cost (its process, validation, the signature and one more HTTP hop); a real
 * deployment adds the network between the edge and the region on top.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEdgeDev } from '@bamba/cli/edge-dev';
import { freePort } from '@bamba/cli/local-redis';
import { MODEL_ID, startTestStack } from '@bamba/tests/support/stack';
import type { BenchCase } from '../case.js';
import { median, progress, round } from '../measure.js';
import { timedStream } from '../timed-stream.js';

export const edgeHopCase: BenchCase = {
  name: 'edge-hop',
  description: 'time to first token straight to a region vs through the edge (wrangler dev), loopback',
  async run({ quick }) {
    const requests = quick ? 6 : 40;
    const secret = randomBytes(32).toString('hex');
    const regionPort = await freePort();
    const region = await startTestStack({ region: 'us', gatewayEnv: { PORT: String(regionPort), BAMBA_EDGE_SECRET: secret } });
    const workDir = mkdtempSync(join(tmpdir(), 'bamba-bench-edge-'));
    const edge = await startEdgeDev({
      workDir,
      bindings: { BAMBA_API_KEYS: 'bench-key:local', BAMBA_EDGE_SECRET: secret, BAMBA_REGIONS: JSON.stringify([{ name: 'us', url: `http://127.0.0.1:${regionPort}` }]) },
    });
    try {
      const body = (index: number) => ({ model: MODEL_ID, messages: [{ role: 'user', content: `hello ${index}` }], max_tokens: 4, temperature: 0 });
      const direct: number[] = [];
      const viaEdge: number[] = [];
      // Warm both paths (connections, the Worker's first run) before measuring.
      await timedStream(region.url, '/v1/chat/completions', body(-1), '"content"');
      await timedStream(edge.url, '/v1/chat/completions', body(-2), '"content"', { authorization: 'Bearer bench-key' });
      for (let index = 0; index < requests; index++) {
        const straight = () => timedStream(region.url, '/v1/chat/completions', body(index), '"content"').then((turn) => direct.push(turn.ttftMs));
        const edged = () => timedStream(edge.url, '/v1/chat/completions', body(index), '"content"', { authorization: 'Bearer bench-key' }).then((turn) => viaEdge.push(turn.ttftMs));
        if (index % 2 === 0) { await straight(); await edged(); } else { await edged(); await straight(); }
        if ((index + 1) % 10 === 0) progress(`${index + 1}/${requests} pairs`);
      }
      const directMs = median(direct);
      const edgeMs = median(viaEdge);
      return {
        raw: { direct, viaEdge },
        tables: [{
          title: 'Edge hop: time to first token, straight to the region vs through the edge',
          note: `${requests} pairs of the same 4-token streaming chat (tiny model, stateless; each pair in alternating order), one region on loopback, the edge under wrangler dev (workerd) on the same 2-core machine. Medians.`,
          columns: ['path', 'TTFT median (ms)', 'added by the edge (ms)'],
          rows: [
            ['straight to the region', round(directMs, 1), '—'],
            ['through the edge', round(edgeMs, 1), round(edgeMs - directMs, 1)],
          ],
        }],
      };
    } finally {
      await edge.stop();
      await region.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
  },
};
