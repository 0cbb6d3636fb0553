/**
 * Uploaded files (the Files API) and the files batches write: the record in the region's Redis
 * (one HASH per file and a per-tenant index, both in the tenant's slot) and the bytes in a
 * directory shared by the gateway and the workers, one file per id. Bytes are written to a
 * temporary name, flushed and renamed, so a reader sees a whole file or none; the record is
 * written after the bytes (the commit point), and its SHA-256 is checked on every read.
 * A crash between the two leaves an orphan file on disk, never a record without bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalInvariantError, parseWire, ServerError, WIRE_VERSION, type CreatedWindow, type FilePurpose, type FileRecord } from '@bamba/shared';
import { z } from 'zod';
import type { RegionRedis } from './connection.js';
import { countField } from './hash-fields.js';
import { isFileId, newFileId } from './ids.js';
import type { RegionKeys } from './keys.js';
import { indexPage, putIndexedRecord } from './indexed-records.js';
import { runScript, type LuaScript } from './scripts.js';

const fileHashSchema = z.object({
  v: z.literal(String(WIRE_VERSION)),
  tenant: z.string().min(1),
  filename: z.string().min(1),
  purpose: z.enum(['batch', 'batch_output']),
  bytes: countField,
  createdAtMs: countField,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/**
 * Forget a file if it is the tenant's and no running batch reads it. KEYS[1] file hash, KEYS[2]
 * the tenant's file index, KEYS[3] the file's users. ARGV[1] file id, ARGV[2] tenant.
 * Returns 1 (deleted), 0 (no such file of this tenant) or -1 (a running batch reads it).
 */
const DELETE_FILE: LuaScript = {
  name: 'bambaDeleteFile',
  keys: 3,
  lua: `
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[2] then return 0 end
if redis.call('SCARD', KEYS[3]) > 0 then return -1 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`,
};

/**
 * Mark a file as read by a running batch, if it exists. KEYS[1] file hash, KEYS[2] its users.
 * ARGV[1] batch id. Returns 1, or 0 when there is no such file.
 */
const USE_FILE: LuaScript = {
  name: 'bambaUseFile',
  keys: 2,
  lua: `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`,
};

export interface NewFile {
  /** Write under this id (replacing what it held): a batch's result files; default a new id. */
  id?: string;
  filename: string;
  purpose: FilePurpose;
  content: Uint8Array;
}

export interface FilePage {
  files: FileRecord[];
  hasMore: boolean;
}

export class FileStore {
  /** `directory`: where the bytes are, shared by every gateway and workers process of the region. */
  constructor(private readonly redis: RegionRedis, private readonly keys: RegionKeys, readonly directory: string) {}

  private pathOf(fileId: string): string {
    return join(this.directory, fileId);
  }

  async put(tenant: string, file: NewFile): Promise<FileRecord> {
    if (file.id !== undefined && !isFileId(file.id)) throw new InternalInvariantError(`'${file.id.slice(0, 40)}' is not a file id`);
    const record: FileRecord = {
      id: file.id ?? newFileId(this.keys.region),
      tenant,
      filename: file.filename,
      purpose: file.purpose,
      bytes: file.content.byteLength,
      createdAtMs: Date.now(),
      sha256: createHash('sha256').update(file.content).digest('hex'),
    };
    await mkdir(this.directory, { recursive: true });
    const temporary = join(this.directory, `.${record.id}.${randomBytes(4).toString('hex')}.tmp`);
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(file.content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temporary, this.pathOf(record.id));
      const fields = { v: String(WIRE_VERSION), tenant, filename: record.filename, purpose: record.purpose, bytes: String(record.bytes), createdAtMs: String(record.createdAtMs), sha256: record.sha256 };
      await putIndexedRecord(this.redis, this.keys.file(tenant, record.id), this.keys.tenantFiles(tenant), record.id, record.createdAtMs, fields);
    } catch (error) {
      await rm(temporary, { force: true });
      await rm(this.pathOf(record.id), { force: true });
      throw error;
    }
    return record;
  }

  /** The tenant's file, or null (another tenant's file reads as missing). */
  async get(tenant: string, fileId: string): Promise<FileRecord | null> {
    if (!isFileId(fileId)) return null;
    const hash = await this.redis.hgetall(this.keys.file(tenant, fileId));
    if (Object.keys(hash).length === 0 || hash.tenant !== tenant) return null;
    const fields = parseWire(fileHashSchema, hash, 'file record');
    return { id: fileId, tenant, filename: fields.filename, purpose: fields.purpose, bytes: fields.bytes, createdAtMs: fields.createdAtMs, sha256: fields.sha256 };
  }

  /** The file's bytes, checked against its SHA-256; null when the tenant has no such file. */
  async content(tenant: string, fileId: string): Promise<Buffer | null> {
    const record = await this.get(tenant, fileId);
    if (!record) return null;
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(fileId));
    } catch (error) {
      throw new ServerError(`the content of ${fileId} is missing from the file store`, { code: 'file_missing', cause: error });
    }
    if (createHash('sha256').update(bytes).digest('hex') !== record.sha256) {
      throw new ServerError(`the content of ${fileId} does not match its checksum`, { code: 'file_damaged' });
    }
    return bytes;
  }

  /** A page of the tenant's files, newest first (or oldest first), after the file `after` or inside a creation-time window. */
  async list(tenant: string, query: { after: string | null; limit: number; order: 'asc' | 'desc'; purpose: string | null; window?: CreatedWindow }): Promise<FilePage> {
    const index = this.keys.tenantFiles(tenant);
    const files: FileRecord[] = [];
    // A purpose filter may skip entries: read pages until the page is full or the index ends.
    const chunk = Math.max(query.limit + 1, 64);
    for (let start = 0; ; start += chunk) {
      const ids = await indexPage(this.redis, index, query, start, chunk);
      if (ids === null) return { files: [], hasMore: false };
      for (const file of await Promise.all(ids.map((id) => this.get(tenant, id)))) {
        if (file && (!query.purpose || file.purpose === query.purpose)) files.push(file);
        if (files.length > query.limit) return { files: files.slice(0, query.limit), hasMore: true };
      }
      if (ids.length < chunk) return { files, hasMore: false };
    }
  }

  /** Delete the tenant's file (record first: the commit point; then its bytes); `in_use` while a running batch reads it. */
  async delete(tenant: string, fileId: string): Promise<'deleted' | 'not_found' | 'in_use'> {
    if (!isFileId(fileId)) return 'not_found';
    const outcome = Number(await runScript(this.redis, DELETE_FILE, [this.keys.file(tenant, fileId), this.keys.tenantFiles(tenant), this.keys.fileUsers(tenant, fileId)], [fileId, tenant]));
    if (outcome === -1) return 'in_use';
    if (outcome === 0) return 'not_found';
    await rm(this.pathOf(fileId), { force: true });
    return 'deleted';
  }

  /** A running batch reads the file (it cannot be deleted until `release`); false when it is gone. */
  async use(tenant: string, fileId: string, batchId: string): Promise<boolean> {
    return (await runScript(this.redis, USE_FILE, [this.keys.file(tenant, fileId), this.keys.fileUsers(tenant, fileId)], [batchId])) === 1;
  }

  /** The batch no longer reads the file. */
  async release(tenant: string, fileId: string, batchId: string): Promise<void> {
    await this.redis.srem(this.keys.fileUsers(tenant, fileId), batchId);
  }
}
