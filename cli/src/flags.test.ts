import { describe, expect, it } from 'vitest';
import { applyFlags } from './flags.js';

const allowed = new Set(['BAMBA_REGIONS', 'BAMBA_EDGE', 'PORT']);
const switches = new Set(['BAMBA_EDGE']);

describe('flags', () => {
  it('take values, and a switch may stand alone', () => {
    expect(applyFlags(['--regions', 'us,eu', '--edge'], {}, allowed, switches)).toMatchObject({ BAMBA_REGIONS: 'us,eu', BAMBA_EDGE: 'true' });
    expect(applyFlags(['--edge', '--port', '9000'], {}, allowed, switches)).toMatchObject({ BAMBA_EDGE: 'true', PORT: '9000' });
    expect(applyFlags(['--edge', 'false'], {}, allowed, switches)).toMatchObject({ BAMBA_EDGE: 'false' });
    expect(applyFlags(['--edge=0'], {}, allowed, switches)).toMatchObject({ BAMBA_EDGE: '0' });
  });

  it('refuse unknown options, bare words and a value-less option that is no switch', () => {
    expect(() => applyFlags(['--nope', 'x'], {}, allowed, switches)).toThrow(/unknown option/);
    expect(() => applyFlags(['us'], {}, allowed, switches)).toThrow(/unexpected argument/);
    expect(() => applyFlags(['--regions'], {}, allowed, switches)).toThrow(/needs a value/);
  });
});
