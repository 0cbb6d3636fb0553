/**
 * The Files API with the official `openai` client: upload, retrieve, list with pagination,
 * content, delete; bad uploads (purpose, size, not multipart) are 4xx and store nothing;
 * another tenant sees none of it; a damaged file on disk is refused rather than served.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from './support/stack.js';

const KEY_A = 'sk-files-a';
const KEY_B = 'sk-files-b';
const MAX_FILE_BYTES = 64 * 1024;
const filesDir = mkdtempSync(join(tmpdir(), 'bamba-files-'));
let stack: TestStack;
let tenantA: OpenAI;
let tenantB: OpenAI;

beforeAll(async () => {
  stack = await startTestStack({ gpuNodes: 0, gatewayEnv: { BAMBA_API_KEYS: `${KEY_A}:tenant-a,${KEY_B}:tenant-b`, BAMBA_FILES_DIR: filesDir, BAMBA_MAX_FILE_BYTES: String(MAX_FILE_BYTES) } });
  tenantA = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
  tenantB = new OpenAI({ baseURL: `${stack.url}/v1`, apiKey: KEY_B, maxRetries: 0 });
});
afterAll(async () => stack?.stop());

const lines = (count: number) => Array.from({ length: count }, (_, index) => JSON.stringify({ custom_id: `r${index}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'bamba-tiny', messages: [{ role: 'user', content: `hi ${index}` }] } })).join('\n');
const upload = async (client: OpenAI, text: string, name = 'input.jsonl') => client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' });

describe('files', () => {
  it('uploads, retrieves, reads back and deletes a file', async () => {
    const text = lines(3);
    const file = await upload(tenantA, text, 'nested/dir/input.jsonl');
    expect(file).toMatchObject({ object: 'file', bytes: Buffer.byteLength(text), filename: 'input.jsonl', purpose: 'batch', status: 'processed' });
    expect(file.id).toMatch(/^file-local_[0-9a-f]{32}$/);
    expect(await tenantA.files.retrieve(file.id)).toEqual(file);
    expect(await (await tenantA.files.content(file.id)).text()).toBe(text);
    expect(await tenantA.files.delete(file.id)).toMatchObject({ id: file.id, deleted: true });
    await expect(tenantA.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
    expect(readdirSync(filesDir)).not.toContain(file.id);
  });

  it('lists newest first, page by page', async () => {
    const made: string[] = [];
    for (let index = 0; index < 5; index++) made.push((await upload(tenantA, lines(1), `page-${index}.jsonl`)).id);
    const first = await tenantA.files.list({ limit: 2 });
    expect(first.data.map((file) => file.id)).toEqual([made[4], made[3]]);
    expect(first.has_more).toBe(true);
    const seen: string[] = [];
    for await (const file of tenantA.files.list({ limit: 2 })) seen.push(file.id); // the client follows `after`
    expect(seen.slice(0, 5)).toEqual([...made].reverse());
    const oldest = await tenantA.files.list({ order: 'asc', limit: 1 });
    expect(oldest.data[0]!.id).not.toBe(made[4]);
    // Filtering by purpose: ours, one of OpenAI's that no file here has, and one nobody knows.
    expect((await tenantA.files.list({ purpose: 'batch', limit: 2 })).data).toHaveLength(2);
    expect((await tenantA.files.list({ purpose: 'fine-tune' })).data).toEqual([]);
    await expect(tenantA.files.list({ purpose: 'nonsense' })).rejects.toMatchObject({ status: 400, param: 'purpose' });
  });

  it('lists inside a creation-time window (how the edge pages a list merged from regions)', async () => {
    const all = (await tenantA.files.list({ limit: 100 })).data;
    const middle = all[Math.floor(all.length / 2)]!.created_at;
    const window = async (query: string) => {
      const response = await fetch(`${stack.url}/v1/files?${query}`, { headers: { authorization: `Bearer ${KEY_A}` } });
      return { status: response.status, json: (await response.json()) as { data: Array<{ id: string; created_at: number }>; error?: { param: string } } };
    };
    const before = await window(`created_before=${middle}`);
    expect(before.json.data.map((file) => file.id)).toEqual(all.filter((file) => file.created_at < middle).map((file) => file.id));
    const after = await window(`created_after=${middle - 1}&order=asc`);
    expect(after.json.data.map((file) => file.id)).toEqual(all.filter((file) => file.created_at >= middle).map((file) => file.id).reverse());
    expect((await window(`created_before=${middle + 1}&created_after=${middle - 1}`)).json.data.map((file) => file.id)).toEqual(all.filter((file) => file.created_at === middle).map((file) => file.id));
    expect(await window('created_before=soon')).toMatchObject({ status: 400, json: { error: { param: 'created_before' } } });
    // With `after` too: the window's ids after that one (what the official client's auto-pagination sends).
    const inside = all.filter((file) => file.created_at <= middle).map((file) => file.id);
    expect((await window(`created_before=${middle + 1}&after=${inside[0]}`)).json.data.map((file) => file.id)).toEqual(inside.slice(1));
    const paged: string[] = [];
    for await (const file of tenantA.files.list({ limit: 1, created_before: middle + 1 } as OpenAI.FileListParams)) paged.push(file.id);
    expect(paged).toEqual(inside);
  });

  it('refuses bad uploads with 4xx and stores nothing', async () => {
    const before = readdirSync(filesDir).length;
    await expect(tenantA.files.create({ file: await toFile(Buffer.from('x'), 'a.jsonl'), purpose: 'fine-tune' })).rejects.toMatchObject({ status: 400, param: 'purpose' });
    await expect(upload(tenantA, 'x'.repeat(MAX_FILE_BYTES + 1))).rejects.toMatchObject({ status: 413 });
    await expect(upload(tenantA, '')).rejects.toMatchObject({ status: 400, param: 'file' });
    await expect(tenantA.files.create({ file: await toFile(Buffer.from('{}'), 'a.jsonl'), purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 3600 } })).rejects.toMatchObject({ status: 400, param: 'expires_after', code: 'unsupported_parameter' });
    const json = await fetch(`${stack.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: '{"purpose":"batch"}' });
    expect(json.status).toBe(400);
    const noFile = new FormData();
    noFile.set('purpose', 'batch');
    const missing = await fetch(`${stack.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}` }, body: noFile });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { param: string } }).error.param).toBe('file');
    // A field sent twice says so, rather than "required" or "must be one of".
    for (const [field, twice] of [['file', (form: FormData) => { form.append('file', new Blob(['a']), 'a.jsonl'); form.append('file', new Blob(['b']), 'b.jsonl'); form.set('purpose', 'batch'); }], ['purpose', (form: FormData) => { form.append('purpose', 'batch'); form.append('purpose', 'batch'); form.set('file', new Blob(['a']), 'a.jsonl'); }]] as const) {
      const form = new FormData();
      twice(form);
      const refused = await fetch(`${stack.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}` }, body: form });
      expect(refused.status, field).toBe(400);
      const { error } = (await refused.json()) as { error: { param: string; message: string } };
      expect(error.param, field).toBe(field);
      expect(error.message, field).toMatch(/sent 2 times/);
    }
    expect(readdirSync(filesDir).length).toBe(before);
  });

  it('keeps tenants apart', async () => {
    const file = await upload(tenantA, lines(2));
    await expect(tenantB.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
    const long = await fetch(`${stack.url}/v1/files/file-${'a'.repeat(3000)}`, { headers: { authorization: `Bearer ${KEY_B}` } });
    expect(long.status).toBe(404);
    expect(((await long.json()) as { error: { message: string } }).error.message.length).toBeLessThan(120); // the id is not echoed whole
    await expect(tenantB.files.content(file.id)).rejects.toMatchObject({ status: 404 });
    await expect(tenantB.files.delete(file.id)).rejects.toMatchObject({ status: 404 });
    expect((await tenantB.files.list()).data.map((entry) => entry.id)).not.toContain(file.id);
    expect((await tenantA.files.retrieve(file.id)).id).toBe(file.id); // untouched
  });

  it('refuses to serve a file whose bytes changed on disk', async () => {
    const file = await upload(tenantA, lines(2));
    writeFileSync(join(filesDir, file.id), lines(2).replace('hi 0', 'hi X'));
    await expect(tenantA.files.content(file.id)).rejects.toMatchObject({ status: 500, code: 'file_damaged' });
  });
});
