import { describe, expect, it } from 'vitest';
import { backupOf, homeRegionOf, parseRegionMap, rankRegions, regionIdTag } from './regions.js';

const map = parseRegionMap(JSON.stringify([
  { name: 'us', url: 'https://us.example/', continent: 'NA', latitude: 39, longitude: -77 },
  { name: 'eu', url: 'https://eu.example', continent: 'EU', latitude: 50, longitude: 8.7, backup: 'us' },
  { name: 'ap', url: 'https://ap.example', continent: 'AS', latitude: 1.3, longitude: 103.8, weight: 3 },
]));

describe('region ids', () => {
  it('carry the home region of stateful ids and nothing else', () => {
    const hex = 'a'.repeat(32);
    expect(homeRegionOf(`sess_eu_${hex}`)).toBe('eu');
    expect(homeRegionOf(`resp_us_${hex}`)).toBe('us');
    expect(homeRegionOf(`batch_ap_${hex}`)).toBe('ap');
    expect(homeRegionOf(`file-eu_${hex}`)).toBe('eu');
    for (const id of [`sess_${hex}`, `sess_EU_${hex}`, `sess_eu_${hex}x`, `snap_eu_${hex}`, 'sess_eu_', '']) expect(homeRegionOf(id)).toBeNull();
    expect(regionIdTag('us')).toBe('us_');
    expect(regionIdTag('Local-1')).toBe(''); // not a tag: such a region's ids name no home
  });
});

describe('the region map', () => {
  it('parses, trims URLs, and says why it refuses', () => {
    expect(map.get('us')?.url).toBe('https://us.example');
    expect(map.get('us')?.weight).toBe(1);
    expect(() => parseRegionMap('nope')).toThrow(/not valid JSON/);
    expect(() => parseRegionMap('[]')).toThrow(/at least one/);
    expect(() => parseRegionMap('[{"name":"US","url":"http://x"}]')).toThrow(/lowercase/);
    expect(() => parseRegionMap('[{"name":"us","url":"ftp://x"}]')).toThrow(/http/);
    expect(() => parseRegionMap('[{"name":"us","url":"http://a"},{"name":"us","url":"http://b"}]')).toThrow(/unique/);
    expect(() => parseRegionMap('[{"name":"us","url":"http://a","backup":"eu"}]')).toThrow(/backup/);
  });

  it('backs each region up with its backup, else the next one', () => {
    expect(backupOf(map, 'us')).toBe('eu');
    expect(backupOf(map, 'eu')).toBe('us');
    expect(backupOf(map, 'ap')).toBe('us');
    expect(backupOf(parseRegionMap('[{"name":"us","url":"http://a"}]'), 'us')).toBeNull();
  });

  it('ranks the preferred region first, then same continent, then distance, then weight', () => {
    expect(rankRegions(map, { continent: 'EU' }, null)[0]).toBe('eu');
    expect(rankRegions(map, { continent: 'EU' }, 'ap')[0]).toBe('ap');
    expect(rankRegions(map, { continent: 'SA', latitude: -23.5, longitude: -46.6 }, null)).toEqual(['us', 'eu', 'ap']);
    expect(rankRegions(map, { continent: 'OC', latitude: -33.9, longitude: 151.2 }, null)[0]).toBe('ap');
    expect(rankRegions(map, {}, null)).toEqual(['ap', 'us', 'eu']); // nothing known: weight, then order
    expect(rankRegions(map, {}, 'mars')).toEqual(['ap', 'us', 'eu']);
  });
});
