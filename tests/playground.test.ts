/**
 * The playground (`GET /`) and the status page (`GET /status`) in a real headless Chromium
 * against a real stack: key prompt, streamed answers, the resume badge going from `replay` to
 * `resident`, fork at an answer (its next turn resumes from the saved state), delete, the status
 * page showing the gpu-node, a phone-sized window, and the pages' security headers.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, screenshotPath } from './support/browser.js';
import { sessionClient } from './support/session-client.js';
import { startTestStack, type TestStack } from './support/stack.js';

const API_KEY = 'sk-playground';
const METRICS_TOKEN = 'metrics-secret';
let stack: TestStack;
let browser: Browser;

beforeAll(async () => {
  // Both started at once; both kept when one fails, so afterAll stops the other (no stray redis-server).
  const [started, launched] = await Promise.allSettled([
    startTestStack({ gpuNodes: 1, gatewayEnv: { BAMBA_API_KEYS: `${API_KEY}:tenant-play`, BAMBA_METRICS_TOKEN: METRICS_TOKEN } }),
    launchChromium(),
  ]);
  if (started.status === 'fulfilled') stack = started.value;
  if (launched.status === 'fulfilled') browser = launched.value;
  for (const outcome of [started, launched]) if (outcome.status === 'rejected') throw outcome.reason;
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A new page that records the browser's errors (script errors, CSP refusals, failed loads). */
async function openPage(viewport: { width: number; height: number }, mobile = false): Promise<{ page: Page; errors: string[]; expectStatus: (status: number) => void }> {
  const page = await browser.newPage({ viewport, ...(mobile ? { isMobile: true, hasTouch: true } : {}) });
  const errors: string[] = [];
  const expected = new Set([401]);
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  // A 401 before the key is entered is the page asking for it, not a fault; other failed loads
  // are recorded with their address (the console only says "Failed to load resource").
  page.on('response', (response) => { if (response.status() >= 400 && !expected.has(response.status())) errors.push(`${response.status()} ${response.request().method()} ${response.url()}`); });
  page.on('console', (message) => { if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(`console: ${message.text()}`); });
  return { page, errors, expectStatus: (status) => expected.add(status) };
}

/** Answer the page's key dialog with the keyboard: type the key, Enter saves. */
async function enterKey(page: Page, key: string): Promise<void> {
  const dialog = page.getByRole('dialog');
  await dialog.waitFor();
  await dialog.getByLabel('Key', { exact: true }).fill(key);
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'hidden' });
}

/** Type a message and send it with the keyboard; resolves once the answer's badge shows. */
async function sendWithKeyboard(page: Page, text: string): Promise<{ resume: string; answer: string; partialLengths: number[] }> {
  const answers = page.locator('li.message-assistant');
  const before = await answers.count();
  // Record how the streaming answer grows, to see text arrive in pieces rather than at once.
  await page.evaluate(() => {
    const seen: number[] = [];
    (window as unknown as { partialLengths: number[] }).partialLengths = seen;
    new MutationObserver(() => {
      const streaming = document.querySelector('li.streaming .content');
      const length = streaming?.textContent?.length ?? 0;
      if (length > 0 && seen[seen.length - 1] !== length) seen.push(length);
    }).observe(document.getElementById('transcript')!, { subtree: true, childList: true, characterData: true });
  });
  await page.getByRole('textbox', { name: 'Message' }).focus();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
  const finished = answers.nth(before).and(page.locator('[data-resume]'));
  await finished.waitFor({ timeout: 60_000 });
  return {
    resume: (await finished.getAttribute('data-resume')) ?? '',
    answer: (await finished.locator('.content').textContent()) ?? '',
    partialLengths: await page.evaluate(() => (window as unknown as { partialLengths: number[] }).partialLengths),
  };
}

describe('the playground in a browser', () => {
  it('chats with streaming, resumes the second turn from the slot, forks at an answer and deletes', async () => {
    const { page, errors, expectStatus } = await openPage({ width: 1280, height: 800 });
    await page.goto(`${stack.url}/`);
    await enterKey(page, API_KEY); // keys are configured: the page asks before listing models
    await expect.poll(() => page.getByLabel('Model').inputValue()).toBe('bamba-tiny');
    await page.getByLabel('Max tokens').fill('96');
    await page.getByLabel('System prompt for a new session').fill('Be brief.');

    const first = await sendWithKeyboard(page, 'Hello there');
    expect(first.resume).toBe('replay');
    expect(first.answer.length).toBeGreaterThan(0);
    expect(first.partialLengths.length).toBeGreaterThan(1); // text arrived while it streamed
    expect(first.partialLengths.at(-1)).toBeLessThanOrEqual(first.answer.length);

    const second = await sendWithKeyboard(page, 'Tell me more');
    expect(second.resume).toBe('resident');
    const secondStats = await page.locator('li.message-assistant').nth(1).locator('.stats').textContent();
    expect(secondStats).toMatch(/^resident cached [1-9]\d* tokens · first token .+ · snapshot \d/);

    // A refused turn says why, keeps the text for another try, and changes nothing.
    expectStatus(400);
    await page.getByLabel('Max tokens').fill('4000'); // more than the model's context
    await page.getByRole('textbox', { name: 'Message' }).fill('Too long an answer');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('max_tokens');
    expect(await page.getByRole('textbox', { name: 'Message' }).inputValue()).toBe('Too long an answer');
    // The pending answer goes once the page has read the session again (just after the alert).
    await expect.poll(() => page.locator('li.message-assistant').count()).toBe(2);
    await page.getByLabel('Max tokens').fill('96');
    await page.getByRole('textbox', { name: 'Message' }).fill('');

    // What the page shows is what the session committed.
    const sessionId = await page.evaluate(() => localStorage.getItem('bamba.currentSession'));
    const api = sessionClient(stack.url, API_KEY);
    const committed = (await api.get(sessionId!)).json;
    expect(committed.messages.map((message: { content: string }) => message.content)).toEqual(['Be brief.', 'Hello there', first.answer, 'Tell me more', second.answer]);
    expect(await page.locator('#transcript li.message').allTextContents()).toHaveLength(5);
    await page.screenshot({ path: screenshotPath('playground'), fullPage: true });

    // Fork after the first answer: a new session with its first three messages, whose next turn
    // resumes from the state saved at the end of that answer.
    await page.getByRole('button', { name: 'Fork here (after message 3)' }).click();
    await expect.poll(() => page.locator('#transcript li.message').count()).toBe(3);
    await expect.poll(() => page.locator('#session-list li.session').count()).toBe(2);
    const fork = await sendWithKeyboard(page, 'Go another way');
    expect(fork.resume).toBe('snapshot');
    const forkId = await page.evaluate(() => localStorage.getItem('bamba.currentSession'));
    expect(forkId).not.toBe(sessionId);
    expect((await api.get(forkId!)).json.messages).toHaveLength(5);

    // Delete the fork from the sidebar: gone from the list and from the server.
    await page.getByRole('button', { name: /^Delete session Hello there ↳ 3$/ }).click();
    await expect.poll(() => page.locator('#session-list li.session').count()).toBe(1);
    expect((await api.get(forkId!)).status).toBe(404);
    expect((await api.get(sessionId!)).status).toBe(200);

    // Switching back shows the original conversation with its badges.
    await page.getByRole('button', { name: 'Hello there', exact: true }).click();
    await expect.poll(() => page.locator('#transcript li[data-resume]').count()).toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('fits a phone-sized window', async () => {
    const { page, errors } = await openPage({ width: 390, height: 844 }, true);
    await page.goto(`${stack.url}/`);
    await enterKey(page, API_KEY);
    await expect.poll(() => page.getByLabel('Model').inputValue()).toBe('bamba-tiny');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await expect.poll(() => page.getByRole('button', { name: 'Send' }).isVisible()).toBe(true);
    await page.screenshot({ path: screenshotPath('playground-phone'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('shows the region, the gpu-node and the recent figures on the status page', async () => {
    const { page, errors } = await openPage({ width: 1280, height: 900 });
    await page.goto(`${stack.url}/status`);
    // /status.json is behind the metrics token, like /metrics. Cancelled once, the page does not
    // ask again by itself (it polls every 2 s) but says what it needs.
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });
    await new Promise((done) => setTimeout(done, 2500));
    expect(await page.getByRole('dialog').isVisible()).toBe(false);
    expect(await page.getByRole('alert').textContent()).toContain('metrics token');
    await page.getByRole('button', { name: 'Metrics token' }).click();
    await enterKey(page, METRICS_TOKEN);
    const [node] = await stack.nodeStatuses();
    const row = page.locator(`tr[data-node="${node!.nodeId}"]`);
    await row.waitFor();
    expect(await row.textContent()).toContain(`0 / ${node!.slots}`);
    expect(await page.getByRole('heading', { name: 'Region local' }).isVisible()).toBe(true);
    // The first test's turns are in the last minutes.
    await expect.poll(() => page.locator('#ttft .chart-summary').textContent()).toMatch(/^\d+ requests; median time to first token/);
    await page.screenshot({ path: screenshotPath('status'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('serves the status JSON behind the metrics token, with the same figures as /metrics', async () => {
    expect((await fetch(`${stack.url}/status.json`)).status).toBe(401);
    const auth = { authorization: `Bearer ${METRICS_TOKEN}` };
    const status = (await (await fetch(`${stack.url}/status.json`, { headers: auth })).json()) as Record<string, any>;
    const metrics = await (await fetch(`${stack.url}/metrics`, { headers: auth })).text();
    const region = status.regions[0];
    expect(region).toMatchObject({ name: 'local', redis: true, queue: { interactive: 0, batch: 0 } });
    expect(region.gpu_nodes).toHaveLength(1);
    expect(metrics).toContain(`bamba_sessions ${region.sessions}`);
    expect(region.sessions).toBeGreaterThanOrEqual(1);
    expect(metrics).toContain(`bamba_snapshot_bytes ${region.snapshot_bytes}`);
    expect(region.snapshot_bytes).toBeGreaterThan(0);
    expect(metrics).toContain(`bamba_node_resident_sessions{node="${region.gpu_nodes[0].id}"} ${region.gpu_nodes[0].resident_sessions}`);
    expect(metrics).toContain('bamba_queue_depth{priority="interactive"} 0');
    expect(status.recent.ttft_counts.reduce((sum: number, count: number) => sum + count, 0)).toBeGreaterThanOrEqual(3);
  });

  it('serves the pages with a strict content policy and only its own scripts', async () => {
    for (const path of ['/', '/status']) {
      const response = await fetch(`${stack.url}${path}`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(response.headers.get('content-type')).toContain('text/html');
    }
    const script = await fetch(`${stack.url}/assets/playground.js`);
    expect(script.headers.get('content-type')).toContain('text/javascript');
    expect(await script.text()).toContain('/v1/chat/completions');
    expect((await fetch(`${stack.url}/assets/nothing.js`)).status).toBe(404);
    expect((await fetch(`${stack.url}/assets/..%2Fpackage.json`)).status).toBe(404);
  });
});
