/**
 * The gateway's Prometheus metrics, kept in memory and rendered as text exposition format.
 * Small on purpose: counters, one gauge, one histogram; queue and node figures are read from
 * Redis at scrape time.
 */
import type { NodeStatus } from '@bamba/shared';

const TTFT_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function labels(values: Record<string, string>): string {
  const parts = Object.entries(values).map(([name, value]) => `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
}

export class GatewayMetrics {
  private readonly requests = new Map<string, { route: string; status: string; count: number }>();
  private readonly ttftCounts = new Array<number>(TTFT_BUCKETS_SECONDS.length).fill(0);
  private ttftSum = 0;
  private ttftTotal = 0;
  tokensGenerated = 0;
  activeStreams = 0;

  countRequest(route: string, status: number): void {
    const key = `${route} ${status}`;
    const entry = this.requests.get(key) ?? { route, status: String(status), count: 0 };
    entry.count++;
    this.requests.set(key, entry);
  }

  observeTimeToFirstToken(seconds: number): void {
    this.ttftSum += seconds;
    this.ttftTotal++;
    TTFT_BUCKETS_SECONDS.forEach((bound, index) => { if (seconds <= bound) this.ttftCounts[index]!++; });
  }

  render(scrape: { waitingJobs: number | null; nodes: NodeStatus[] }): string {
    const lines: string[] = [];
    lines.push('# HELP bamba_requests_total HTTP requests by route and status.', '# TYPE bamba_requests_total counter');
    for (const { route, status, count } of this.requests.values()) lines.push(`bamba_requests_total${labels({ route, status })} ${count}`);
    lines.push('# HELP bamba_time_to_first_token_seconds From request arrival to the first token relayed.', '# TYPE bamba_time_to_first_token_seconds histogram');
    TTFT_BUCKETS_SECONDS.forEach((bound, index) => lines.push(`bamba_time_to_first_token_seconds_bucket${labels({ le: String(bound) })} ${this.ttftCounts[index]}`));
    lines.push(`bamba_time_to_first_token_seconds_bucket${labels({ le: '+Inf' })} ${this.ttftTotal}`);
    lines.push(`bamba_time_to_first_token_seconds_sum ${this.ttftSum}`, `bamba_time_to_first_token_seconds_count ${this.ttftTotal}`);
    lines.push('# HELP bamba_tokens_generated_total Completion tokens relayed to clients.', '# TYPE bamba_tokens_generated_total counter');
    lines.push(`bamba_tokens_generated_total ${this.tokensGenerated}`);
    lines.push('# HELP bamba_active_streams Requests currently relaying tokens.', '# TYPE bamba_active_streams gauge');
    lines.push(`bamba_active_streams ${this.activeStreams}`);
    if (scrape.waitingJobs !== null) {
      lines.push('# HELP bamba_queue_depth Generation jobs waiting in the region queue.', '# TYPE bamba_queue_depth gauge');
      lines.push(`bamba_queue_depth ${scrape.waitingJobs}`);
    }
    lines.push('# HELP bamba_node_busy_slots Slots running a request, per live gpu-node.', '# TYPE bamba_node_busy_slots gauge');
    for (const node of scrape.nodes) lines.push(`bamba_node_busy_slots${labels({ node: node.nodeId })} ${node.busySlots}`);
    lines.push('# HELP bamba_node_slots Slots per live gpu-node.', '# TYPE bamba_node_slots gauge');
    for (const node of scrape.nodes) lines.push(`bamba_node_slots${labels({ node: node.nodeId })} ${node.slots}`);
    lines.push('# HELP bamba_node_max_busy_slots Highest busy-slot count a live gpu-node has seen.', '# TYPE bamba_node_max_busy_slots gauge');
    for (const node of scrape.nodes) lines.push(`bamba_node_max_busy_slots${labels({ node: node.nodeId })} ${node.maxBusySlots}`);
    return `${lines.join('\n')}\n`;
  }
}
