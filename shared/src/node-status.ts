/** What a gpu-node announces about itself every heartbeat (JSON in Redis, short expiry). */
export interface ServedModel {
  /** Model id clients use (`model` in requests). */
  id: string;
  /** Tokens one slot holds: prompt + completion must fit. */
  contextSize: number;
  fingerprint: string;
}

export interface NodeStatus {
  nodeId: string;
  region: string;
  device: 'cpu' | 'cuda';
  models: ServedModel[];
  slots: number;
  /** Requests running now (a slot reserved while waiting for a job does not count). */
  busySlots: number;
  /** Highest `busySlots` seen since the node started. */
  maxBusySlots: number;
  /** Requests finished since start, by outcome. */
  completedRequests: number;
  startedAtMs: number;
  heartbeatAtMs: number;
}
