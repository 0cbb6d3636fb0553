/**
 * The reliability campaigns at quick size (`npm run chaos` runs them in full and writes
 * RELIABILITY.md): every figure with a target must meet it.
 */
import { describe, expect, it } from 'vitest';
import { badRequests, nodeFaults, redisCrash, sseClients, tenantMatrix, type CampaignResult } from './chaos/campaigns.js';

function expectTargetsMet(result: CampaignResult): void {
  const missed = result.figures.filter((figure) => !figure.ok).map((figure) => `${figure.metric} = ${figure.value} (target ${figure.target})`);
  const context = result.figures.map((figure) => `${figure.metric}: ${figure.value}`).join('\n');
  expect(missed, `${result.name}\n${context}`).toEqual([]);
}

describe('reliability campaigns (quick)', () => {
  it('gpu-nodes SIGKILLed under traffic: nothing committed is lost, answers equal replays, nobody hangs', async () => expectTargetsMet(await nodeFaults('SIGKILL', 4)), 300_000);
  it('gpu-nodes SIGTERMed under traffic: drained or handed back, nobody hangs', async () => expectTargetsMet(await nodeFaults('SIGTERM', 2)), 300_000);
  it('Redis killed and restarted on its append-only file: committed sessions survive, the stack recovers', async () => expectTargetsMet(await redisCrash()), 300_000);
  it('generated bad requests: no 5xx, OpenAI-shaped errors, no crash', async () => expectTargetsMet(await badRequests(300)), 300_000);
  it('misbehaving SSE clients: only 429s, slots freed, streams expire', async () => expectTargetsMet(await sseClients(24)), 300_000);
  it('tenant matrix: another tenant’s ids answer like unknown ids', async () => expectTargetsMet(await tenantMatrix()), 300_000);
});
