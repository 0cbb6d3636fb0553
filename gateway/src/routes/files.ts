/**
 * /v1/files: upload (multipart, `purpose=batch`), list, retrieve, delete and read content, in
 * OpenAI's shapes; scoped to the API key's tenant. Uploads have their own size limit
 * (`BAMBA_MAX_FILE_BYTES`, 413 above), checked while the body arrives, before it is parsed.
 */
import { cleanFilename, ConflictError, fileToWire, InvalidRequestError, listObject, NotFoundError, validateCreatedWindow, validateFilePurpose, validateListQuery, validatePurposeFilter } from '@bamba/shared';
import { Hono } from 'hono';
import { limitBody } from '../body-limit.js';
import type { GatewayVariables } from '../gateway-env.js';
import type { Files } from '../ports.js';

const fileNotFound = (id: string) => new NotFoundError(`file '${id.length > 64 ? `${id.slice(0, 64)}…` : id}' does not exist`, { param: 'file_id', code: 'file_not_found' });

/** OpenAI lists up to 10,000 files a page, all of them by default. */
export const FILE_LIST_LIMITS = { defaultLimit: 10_000, maxLimit: 10_000 };

/** An upload's fields (the edge checks them too, before the bytes travel on). */
export function checkUpload(form: Record<string, unknown>): { purpose: ReturnType<typeof validateFilePurpose>; file: File } {
  // Sent as `expires_after[anchor]` / `expires_after[seconds]`: refused rather than ignored, so no
  // client believes its file will be deleted for it.
  if (Object.keys(form).some((field) => field === 'expires_after' || field.startsWith('expires_after['))) {
    throw new InvalidRequestError('expires_after is not supported: an uploaded file is kept until it is deleted (DELETE /v1/files/{file_id})', { param: 'expires_after', code: 'unsupported_parameter' });
  }
  const purpose = validateFilePurpose(form.purpose);
  const file = form.file;
  if (Array.isArray(file)) throw new InvalidRequestError(`the field "file" was sent ${file.length} times; upload one file per request`, { param: 'file', code: 'invalid_value' });
  if (!(file instanceof File)) throw new InvalidRequestError('file is required: one file in the multipart field "file"', { param: 'file', code: 'missing_required_parameter' });
  if (file.size === 0) throw new InvalidRequestError('the file is empty', { param: 'file', code: 'invalid_value' });
  return { purpose, file };
}

export function filesRoute(files: Files, maxFileBytes: number) {
  return new Hono<{ Variables: GatewayVariables }>()
    .post('/', limitBody(maxFileBytes), async (c) => {
      if (!(c.req.header('content-type') ?? '').toLowerCase().startsWith('multipart/form-data')) {
        throw new InvalidRequestError('upload a file as multipart/form-data with the fields file and purpose', { code: 'invalid_body' });
      }
      let form: Record<string, string | File | (string | File)[]>;
      try {
        form = await c.req.parseBody({ all: true });
      } catch {
        throw new InvalidRequestError('the multipart body could not be read', { code: 'invalid_body' });
      }
      const { purpose, file } = checkUpload(form);
      const record = await files.put(c.get('tenant'), { filename: cleanFilename(file.name), purpose, content: new Uint8Array(await file.arrayBuffer()) });
      return c.json(fileToWire(record));
    })
    .get('/', async (c) => {
      const query = validateListQuery(c.req.query(), FILE_LIST_LIMITS);
      const purpose = validatePurposeFilter(c.req.query('purpose'));
      if (purpose === 'none-here') return c.json(listObject([], false));
      const page = await files.list(c.get('tenant'), { ...query, purpose, window: validateCreatedWindow(c.req.query()) });
      return c.json(listObject(page.files.map(fileToWire), page.hasMore));
    })
    .get('/:id', async (c) => {
      const file = await files.get(c.get('tenant'), c.req.param('id'));
      if (!file) throw fileNotFound(c.req.param('id'));
      return c.json(fileToWire(file));
    })
    .get('/:id/content', async (c) => {
      const content = await files.content(c.get('tenant'), c.req.param('id'));
      if (!content) throw fileNotFound(c.req.param('id'));
      return c.body(content as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream' });
    })
    .delete('/:id', async (c) => {
      const outcome = await files.delete(c.get('tenant'), c.req.param('id'));
      if (outcome === 'not_found') throw fileNotFound(c.req.param('id'));
      if (outcome === 'in_use') throw new ConflictError('the file is the input of a batch that is still running; delete it when the batch has finished', { param: 'file_id', code: 'file_in_use', retryable: false });
      return c.json({ id: c.req.param('id'), object: 'file', deleted: true });
    });
}
