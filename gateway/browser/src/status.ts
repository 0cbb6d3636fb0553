/**
 * The status page (`GET /status`): reads `/status.json` (the figures /metrics exports, plus this
 * gateway's last minutes) every few seconds and draws regions, gpu-nodes, queue, snapshot bytes
 * against the budget, sessions, a time-to-first-token histogram and tokens/s over time.
 */
import { ApiError, call, storedKey } from './api.js';
import { byId, element } from './dom.js';
import { formatBytes, formatMs, formatSeconds } from './format.js';
import { askForKey } from './key-dialog.js';

interface NodeWire {
  id: string;
  device: string;
  models: string[];
  slots: number;
  busy_slots: number;
  max_busy_slots: number;
  resident_sessions: number;
  host_tier_sessions: number | null;
  completed_requests: number;
  accepting: boolean;
  heartbeat_age_ms: number;
}

interface StatusWire {
  generated_at_ms: number;
  regions: Array<{
    name: string;
    redis: boolean;
    gpu_nodes: NodeWire[];
    queue: Record<string, number> | null;
    sessions: number | null;
    snapshot_bytes: number | null;
    snapshot_budget_bytes: number | null;
    batches: { by_status: Record<string, number>; requests_in_flight: number; requests_completed: number; requests_failed: number; completion_tokens: number } | null;
  }>;
  recent: {
    bucket_seconds: number;
    bucket_starts_ms: number[];
    tokens_per_second: number[];
    ttft_bounds_seconds: number[];
    ttft_counts: number[];
  };
}

const REFRESH_MS = 2000;
const keys = storedKey('bamba.metricsToken');
const regionsBox = byId<HTMLDivElement>('regions');
const ttftBox = byId<HTMLDivElement>('ttft');
const throughputBox = byId<HTMLDivElement>('throughput');
const updated = byId<HTMLParagraphElement>('updated');
const errorBox = byId<HTMLDivElement>('error');

/** A horizontal meter: `used` of `total`. */
function meter(label: string, used: number, total: number | null, text: string): HTMLElement {
  const bar = element('div', { className: 'meter-fill' });
  bar.style.width = `${total ? Math.min(100, (used / total) * 100) : 0}%`;
  return element('div', { className: 'meter-row' },
    element('span', { className: 'meter-label', text: label }),
    element('div', { className: 'meter', attrs: { role: 'meter', 'aria-label': label, 'aria-valuemin': '0', 'aria-valuemax': String(total ?? used), 'aria-valuenow': String(used) } }, bar),
    element('span', { className: 'meter-text', text }));
}

/** Batches still being worked on, and their requests. */
const ACTIVE_BATCH_STATUSES = ['validating', 'in_progress', 'finalizing', 'cancelling'];

function batchFigures(batches: StatusWire['regions'][number]['batches']): HTMLElement {
  if (!batches) return element('p', { className: 'hint', text: 'Batches: not available.' });
  const inProgress = ACTIVE_BATCH_STATUSES.reduce((sum, status) => sum + (batches.by_status[status] ?? 0), 0);
  return element('div', { className: 'figures', attrs: { 'aria-label': 'batches' } },
    figure('batches in progress', String(inProgress)),
    figure('batches completed', String(batches.by_status.completed ?? 0)),
    figure('batch requests in flight', String(batches.requests_in_flight)),
    figure('batch requests done', String(batches.requests_completed + batches.requests_failed)),
    figure('batch tokens', String(batches.completion_tokens)));
}

function figure(label: string, value: string): HTMLElement {
  return element('div', { className: 'figure' }, element('span', { className: 'figure-value', text: value }), element('span', { className: 'figure-label', text: label }));
}

const orDash = (value: number | null, format: (value: number) => string = String) => (value === null ? '—' : format(value));

function nodeRow(node: NodeWire): HTMLTableRowElement {
  return element('tr', { attrs: { 'data-node': node.id } },
    element('th', { text: node.id, attrs: { scope: 'row' } }),
    element('td', { text: `${node.device}${node.accepting ? '' : ' (stopping)'}` }),
    element('td', { text: node.models.join(', ') }),
    element('td', {}, meter(`slots busy on ${node.id}`, node.busy_slots, node.slots, `${node.busy_slots} / ${node.slots}`)),
    element('td', { text: String(node.resident_sessions) }),
    element('td', { text: orDash(node.host_tier_sessions), attrs: node.host_tier_sessions === null ? { title: 'this node has no host-memory tier' } : {} }),
    element('td', { text: String(node.completed_requests) }),
    element('td', { text: formatMs(node.heartbeat_age_ms) }));
}

function renderRegions(status: StatusWire): void {
  regionsBox.replaceChildren(...status.regions.map((region) => element('section', { className: 'card', attrs: { 'aria-labelledby': `region-${region.name}` } },
    element('h2', { text: `Region ${region.name}`, attrs: { id: `region-${region.name}` } }),
    element('div', { className: 'figures' },
      figure('Redis', region.redis ? 'up' : 'DOWN'),
      figure('gpu-nodes', String(region.gpu_nodes.length)),
      figure('sessions', orDash(region.sessions)),
      figure('region queue: interactive', orDash(region.queue?.interactive ?? null)),
      figure('region queue: batch', orDash(region.queue?.batch ?? null))),
    batchFigures(region.batches),
    meter('snapshot bytes', region.snapshot_bytes ?? 0, region.snapshot_budget_bytes,
      `${orDash(region.snapshot_bytes, formatBytes)} of ${orDash(region.snapshot_budget_bytes, formatBytes)} budget`),
    region.gpu_nodes.length === 0
      ? element('p', { className: 'warning', text: 'No gpu-node is alive in this region.' })
      : element('div', { className: 'table-scroll' }, element('table', {},
        element('caption', { text: 'gpu-nodes' }),
        element('thead', {}, element('tr', {}, ...['node', 'device', 'models', 'slots busy', 'resident sessions', 'host tier', 'requests done', 'heartbeat age'].map((name) => element('th', { text: name, attrs: { scope: 'col' } })))),
        element('tbody', {}, ...region.gpu_nodes.map(nodeRow)))))));
}

/** Vertical bars, one per value, with a text summary for screen readers. */
function bars(values: number[], labels: string[], summary: string, unit: string): HTMLElement {
  const highest = Math.max(...values, 0);
  return element('div', { className: 'chart', attrs: { role: 'img', 'aria-label': summary } },
    ...values.map((value, index) => {
      const bar = element('div', { className: 'bar', attrs: { title: `${labels[index]}: ${value} ${unit}` } });
      bar.style.height = `${highest > 0 ? Math.max(value > 0 ? 2 : 0, (value / highest) * 100) : 0}%`;
      return bar;
    }));
}

function renderRecent(status: StatusWire): void {
  const { recent } = status;
  const bounds = recent.ttft_bounds_seconds;
  const labels = [...bounds.map((bound) => `≤ ${formatSeconds(bound)}`), `> ${formatSeconds(bounds[bounds.length - 1] ?? 0)}`];
  const total = recent.ttft_counts.reduce((sum, count) => sum + count, 0);
  let seen = 0;
  const medianAt = recent.ttft_counts.findIndex((count) => (seen += count) >= total / 2);
  const ttftSummary = total === 0 ? 'no requests in the last minutes' : `${total} ${total === 1 ? 'request' : 'requests'}; median time to first token ${labels[medianAt]}`;
  ttftBox.replaceChildren(
    element('p', { className: 'chart-summary', text: ttftSummary }),
    bars(recent.ttft_counts, labels, ttftSummary, 'requests'),
    element('div', { className: 'chart-axis' }, element('span', { text: labels[0] ?? '' }), element('span', { text: labels[labels.length - 1] ?? '' })));
  const rates = recent.tokens_per_second;
  const latest = rates[rates.length - 1] ?? 0;
  const peak = Math.max(...rates, 0);
  const minutes = Math.round((rates.length * recent.bucket_seconds) / 60);
  const rateSummary = `now ${latest.toFixed(1)} tokens/s; peak ${peak.toFixed(1)} tokens/s over the last ${minutes} minutes`;
  throughputBox.replaceChildren(
    element('p', { className: 'chart-summary', text: rateSummary }),
    bars(rates, recent.bucket_starts_ms.map((start) => new Date(start).toLocaleTimeString()), rateSummary, 'tokens/s'),
    element('div', { className: 'chart-axis' }, element('span', { text: `${minutes} min ago` }), element('span', { text: 'now' })));
}

/** Asked once automatically; after a cancel only the "Metrics token" button asks again. */
let askedAutomatically = false;

async function askForToken(): Promise<void> {
  if (await askForKey(keys, 'This server wants its metrics token (BAMBA_METRICS_TOKEN) for the status page.')) await refresh();
}

async function refresh(): Promise<void> {
  try {
    const status = (await (await call(keys, '/status.json')).json()) as StatusWire;
    renderRegions(status);
    renderRecent(status);
    updated.textContent = `Updated ${new Date(status.generated_at_ms).toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    errorBox.hidden = true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      errorBox.textContent = 'The status needs the metrics token: use "Metrics token" above.';
      errorBox.hidden = false;
      if (!askedAutomatically) {
        askedAutomatically = true;
        await askForToken();
      }
      return;
    }
    errorBox.textContent = `Could not read the status: ${error instanceof Error ? error.message : String(error)}`;
    errorBox.hidden = false;
  }
}

async function loop(): Promise<void> {
  await refresh();
  setTimeout(() => void loop(), REFRESH_MS);
}

byId('key-button').addEventListener('click', () => void askForToken());
void loop();
