/**
 * The HTML of the playground (`GET /`) and the status page (`GET /status`). Static markup: the
 * browser scripts (compiled from `gateway/browser/`) fill it in through the public API. Nothing
 * secret or per-user is in the HTML; keys are asked for by the page and kept in the browser.
 */

/** The key dialog both pages use (`key-dialog.ts` in the browser code drives it). */
const KEY_DIALOG = `
<dialog id="key-dialog" aria-labelledby="key-title">
  <form method="dialog">
    <h2 id="key-title">Key</h2>
    <p id="key-reason"></p>
    <label for="key-input">Key</label>
    <input id="key-input" type="password" autocomplete="off" aria-describedby="key-hint">
    <p id="key-hint" class="hint">Saving an empty key forgets the stored one.</p>
    <div class="actions">
      <button id="key-cancel" type="button">Cancel</button>
      <button type="submit" class="primary">Save</button>
    </div>
  </form>
</dialog>`;

function page(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/assets/bamba.css">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
${body}
${KEY_DIALOG}
</body>
</html>
`;
}

export const PLAYGROUND_HTML = page('Bamba Serve playground', `
<header>
  <h1>Bamba Serve playground</h1>
  <label>Model <select id="model" aria-label="Model"></select></label>
  <button id="key-button" type="button">API key</button>
  <a href="/status">Status</a>
</header>
<div class="layout">
  <aside aria-labelledby="sessions-title">
    <h2 id="sessions-title">Sessions</h2>
    <button id="new-session" type="button">New session</button>
    <ul id="session-list"></ul>
  </aside>
  <main>
    <h2 id="session-title">New conversation</h2>
    <div id="error" role="alert" hidden></div>
    <label id="system-field" class="system-field">System prompt for a new session <input id="system" type="text" placeholder="optional"></label>
    <ol id="transcript" aria-labelledby="session-title"></ol>
    <p id="announce" class="visually-hidden" aria-live="polite"></p>
    <form id="composer">
      <label for="message" class="visually-hidden">Message</label>
      <textarea id="message" placeholder="Message (Enter sends, Shift+Enter for a new line)" required></textarea>
      <label>Max tokens <input id="max-tokens" type="number" min="1" max="4096" value="64"></label>
      <button id="send" type="submit" class="primary">Send</button>
    </form>
  </main>
</div>`, 'playground.js');

export const STATUS_HTML = page('Bamba Serve status', `
<header>
  <h1>Bamba Serve status</h1>
  <button id="key-button" type="button">Metrics token</button>
  <a href="/">Playground</a>
</header>
<main class="status-main">
  <p id="updated">Loading…</p>
  <div id="error" role="alert" hidden></div>
  <div id="regions"></div>
  <div class="charts">
    <section class="card" aria-labelledby="ttft-title"><h2 id="ttft-title">Time to first token (last minutes)</h2><div id="ttft"></div></section>
    <section class="card" aria-labelledby="throughput-title"><h2 id="throughput-title">Tokens per second</h2><div id="throughput"></div></section>
  </div>
  <p class="hint">Queue (the region queue; turns sent to a node's own queue are not in it), sessions, batches, snapshots and gpu-nodes are the region's; time to first token and tokens/s are this gateway's. The same figures are at <a href="/metrics">/metrics</a>.</p>
</main>`, 'status.js');
