/** Uploaded files (OpenAI's Files API): purposes, the record and its wire shapes. */
import { InvalidRequestError } from './errors.js';

/** What a file may be uploaded for. Only batch input is served (OpenAI has more purposes). */
export const FILE_PURPOSES = ['batch'] as const;
/** Files the service writes itself (a batch's results), which clients read but do not upload. */
export type FilePurpose = (typeof FILE_PURPOSES)[number] | 'batch_output';

/** An uploaded (or written) file as the region keeps it. */
export interface FileRecord {
  id: string;
  tenant: string;
  filename: string;
  purpose: FilePurpose;
  bytes: number;
  createdAtMs: number;
  /** SHA-256 of the content (hex): checked on every read. */
  sha256: string;
}

/** OpenAI's file object. */
export function fileToWire(file: FileRecord) {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: Math.floor(file.createdAtMs / 1000),
    expires_at: null,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    status_details: null,
  };
}

/** Purposes OpenAI lists files by; those other than ours match nothing here. */
const OPENAI_FILE_PURPOSES = ['assistants', 'assistants_output', 'batch', 'batch_output', 'fine-tune', 'fine-tune-results', 'vision', 'user_data', 'evals'];

/**
 * The `purpose` filter of a file list: null for none, `'none-here'` for an OpenAI purpose no file
 * here can have (an empty page, nothing read); 400 for a value OpenAI does not know either.
 */
export function validatePurposeFilter(purpose: string | undefined): FilePurpose | null | 'none-here' {
  if (purpose === undefined || purpose === '') return null;
  if (purpose === 'batch' || purpose === 'batch_output') return purpose;
  if (OPENAI_FILE_PURPOSES.includes(purpose)) return 'none-here';
  throw new InvalidRequestError(`purpose must be one of: ${OPENAI_FILE_PURPOSES.join(', ')}`, { param: 'purpose', code: 'invalid_value' });
}

/** The purpose field of an upload: 400 naming it unless it is one we serve. */
export function validateFilePurpose(purpose: unknown): (typeof FILE_PURPOSES)[number] {
  if (purpose === undefined || purpose === '') throw new InvalidRequestError('purpose is required', { param: 'purpose', code: 'missing_required_parameter' });
  if (Array.isArray(purpose)) throw new InvalidRequestError(`purpose was sent ${purpose.length} times; send it once`, { param: 'purpose', code: 'invalid_value' });
  if (typeof purpose !== 'string' || !(FILE_PURPOSES as readonly string[]).includes(purpose)) {
    throw new InvalidRequestError(`purpose must be one of: ${FILE_PURPOSES.join(', ')} (this server runs batches only)`, { param: 'purpose', code: 'invalid_value' });
  }
  return purpose as (typeof FILE_PURPOSES)[number];
}

/** A file name as stored: its last path part, at most 255 characters; never empty. */
export function cleanFilename(name: string): string {
  const last = name.split(/[\\/]/).pop() ?? '';
  return last.slice(0, 255) || 'upload.jsonl';
}
