import { describe, expect, it } from 'vitest';
import { StopStringMatcher } from './stop-strings.js';

function run(stops: string[], pieces: string[]): { text: string; stopped: boolean } {
  const matcher = new StopStringMatcher(stops);
  let text = '';
  for (const piece of pieces) {
    const { release, stopped } = matcher.push(piece);
    text += release;
    if (stopped) return { text, stopped };
  }
  return { text: text + matcher.flush(), stopped: false };
}

describe('StopStringMatcher', () => {
  it('passes text through when there are no stops', () => {
    expect(run([], ['ab', 'c'])).toEqual({ text: 'abc', stopped: false });
  });

  it('stops before a stop string split across pieces', () => {
    expect(run(['END'], ['abc', 'E', 'N', 'Dxyz'])).toEqual({ text: 'abc', stopped: true });
  });

  it('holds back a possible prefix, then releases it when it turns out not to be one', () => {
    const matcher = new StopStringMatcher(['END']);
    expect(matcher.push('abE')).toEqual({ release: 'ab', stopped: false });
    expect(matcher.push('x')).toEqual({ release: 'Ex', stopped: false });
  });

  it('picks the earliest of several stops', () => {
    expect(run(['zz', 'b'], ['aazzb'])).toEqual({ text: 'aa', stopped: true });
  });

  it('releases held-back text at the end of generation', () => {
    expect(run(['END'], ['abEN'])).toEqual({ text: 'abEN', stopped: false });
  });
});
