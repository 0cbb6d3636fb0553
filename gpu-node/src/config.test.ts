/** The gpu-node's environment parsing: the snapshot encoding setting. */
import { describe, expect, it } from 'vitest';
import { parseGpuNodeConfig } from './config.js';

const base = { REDIS_URL: 'redis://127.0.0.1:6379', BAMBA_MODEL_PATH: '/models/bamba.gguf' };

describe('gpu-node config', () => {
  it('stores snapshots as f32 unless BAMBA_SNAPSHOT_ENCODING says bf16', () => {
    expect(parseGpuNodeConfig(base).snapshotEncoding).toBe('f32');
    expect(parseGpuNodeConfig({ ...base, BAMBA_SNAPSHOT_ENCODING: 'bf16' }).snapshotEncoding).toBe('bf16');
    expect(() => parseGpuNodeConfig({ ...base, BAMBA_SNAPSHOT_ENCODING: 'f16' })).toThrow(/BAMBA_SNAPSHOT_ENCODING/);
  });
});
