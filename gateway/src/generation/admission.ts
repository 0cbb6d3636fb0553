/**
 * The cheap checks before a request costs anything: a gpu-node is alive, the model exists, the
 * token budget fits its context, the queue has room. Throws the matching HTTP error.
 */
import { fitMaxTokens, InvalidRequestError, servedModel, RateLimitError, ServiceUnavailableError, type NodeStatus, type ValidatedGenerationRequest } from '@bamba/shared';
import type { AppConfig } from '../config.js';
import type { RegionState } from '../ports.js';

export interface Admitted {
  /** The request with `max_tokens` resolved against the model's context. */
  request: ValidatedGenerationRequest;
  nodes: NodeStatus[];
}

/** No gpu-node in the registry: one may be starting or restarting (a node announces itself within seconds). */
export const noGpuNode = () => new ServiceUnavailableError('no gpu-node is alive in this region; try again shortly', { code: 'no_gpu_node', retryAfterSeconds: 2 });

/** The node registry read for admission may be this old: it changes once per heartbeat anyway. */
const NODES_MAX_AGE_MS = 200;

export async function admit(region: RegionState, config: AppConfig, request: ValidatedGenerationRequest): Promise<Admitted> {
  // Both reads at once: one round trip on the way to the first token, not two.
  const [recent, waiting] = await Promise.all([region.liveNodes(NODES_MAX_AGE_MS), region.waitingJobs()]);
  const serves = (nodes: NodeStatus[]) => nodes.some((node) => node.models.some((served) => served.id === request.model));
  // A recent answer that would refuse the request is read again: a node may have just come up.
  const nodes = serves(recent) ? recent : await region.liveNodes();
  if (nodes.length === 0) throw noGpuNode();
  const fitted = fitMaxTokens(request, servedModel(nodes, request.model));
  // Room for every job the request adds (its choices, counted by its first choice). More than the
  // queue ever holds is no reason to retry.
  if (request.choices > config.queueMaxWaiting) throw new InvalidRequestError(`this request asks for ${request.choices} answers, each a job; this region's queue holds at most ${config.queueMaxWaiting} (BAMBA_QUEUE_MAX_WAITING): ask for fewer per request`, { param: 'n', code: 'invalid_value' });
  if (waiting + request.choices > config.queueMaxWaiting) throw new RateLimitError(`the queue is full (${waiting} requests waiting${request.choices > 1 ? `, ${request.choices} choices asked for` : ''}); retry shortly`, 1);
  return { request: fitted, nodes };
}
