/**
 * llama.cpp saves and loads sequence state through files only. This gives each hop a private
 * file in RAM-backed /dev/shm (the OS temp dir where there is none) and always removes it.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where state files go by default: RAM-backed /dev/shm, else the OS temp dir. */
export const DEFAULT_STATE_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

export async function withStateFile<T>(directory: string, use: (path: string) => Promise<T>): Promise<T> {
  const path = join(directory, `bamba-state-${process.pid}-${randomUUID()}.bin`);
  try {
    return await use(path);
  } finally {
    await rm(path, { force: true });
  }
}
