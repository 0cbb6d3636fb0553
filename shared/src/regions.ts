/**
 * Regions as the edge and the regions' workers see them: region names, the home region that
 * every stateful id carries (`sess_eu_…`, `resp_eu_…`, `batch_eu_…`, `file-eu_…`), and the
 * region map (`BAMBA_REGIONS`): where each region is, how to rank them for a new conversation,
 * and which region backs each one up. Runtime-neutral (Node and workerd).
 */
import { z } from 'zod';

/** A region name as it appears in ids and URLs: lowercase letters and digits, up to 16. */
export const REGION_NAME_PATTERN = /^[a-z][a-z0-9]{0,15}$/;

/** The tag a region puts into the ids it makes (`us_`), or '' when its name cannot be one. */
export function regionIdTag(region: string): string {
  return REGION_NAME_PATTERN.test(region) ? `${region}_` : '';
}

const HOME_OF_ID = /^(?:sess_|resp_|batch_|file-)([a-z][a-z0-9]{0,15})_[0-9a-f]{32}$/;

/** The region a stateful id was made in (its home), or null for an id without one. */
export function homeRegionOf(id: string): string | null {
  return HOME_OF_ID.exec(id)?.[1] ?? null;
}

/**
 * The variables every process that talks across regions reads (the edge, region gateways, the
 * workers): the shared secret, and the region map.
 */
export const crossRegionEnvShape = {
  BAMBA_EDGE_SECRET: z.string().min(32, 'BAMBA_EDGE_SECRET must hold at least 32 characters').refine((secret) => !/change-?me/i.test(secret), 'BAMBA_EDGE_SECRET is a placeholder; generate one (openssl rand -hex 32)').optional(),
  /** The region map, a JSON array (see `parseRegionMap`). */
  BAMBA_REGIONS: z.string().min(1).optional(),
};

/**
 * Forwarding records followed for one request. Every move points the records of the session's
 * former ids at its newest id in both regions it joins, so an old id needs at most one hop per
 * region the session passed through, however many times it moved.
 */
export const MAX_SESSION_FORWARDS = 8;

/** A move's id: its job id, the holder of the session's lock at home, and the seed of its new id. */
export const MOVE_ID_PATTERN = /^move-[0-9a-f]{32}$/;

export function newMoveId(): string {
  return `move-${crypto.randomUUID().replace(/-/g, '')}`;
}

/** Cloudflare's continent codes (`request.cf.continent`). */
export const CONTINENTS = ['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA'] as const;

const regionEntrySchema = z.object({
  name: z.string().regex(REGION_NAME_PATTERN, 'region names hold lowercase letters and digits (1–16, a letter first)'),
  /** The region gateway's base URL. */
  url: z.url({ error: 'url must be an http(s) URL' }).refine((url) => /^https?:\/\//.test(url), 'url must be an http(s) URL').transform((url) => url.replace(/\/+$/, '')),
  continent: z.enum(CONTINENTS).optional(),
  latitude: z.number().min(-90).max(90).optional(),
  longitude: z.number().min(-180).max(180).optional(),
  /** Among regions equally near, higher weight first. */
  weight: z.number().positive().default(1),
  /** Where this region's session transcripts are replicated; default the next region listed. */
  backup: z.string().regex(REGION_NAME_PATTERN).optional(),
});

export type RegionEntry = z.infer<typeof regionEntrySchema>;

export interface RegionMap {
  readonly regions: readonly RegionEntry[];
  get(name: string): RegionEntry | undefined;
}

/** Parse `BAMBA_REGIONS` (a JSON array of regions). Throws an Error saying what is wrong. */
export function parseRegionMap(text: string): RegionMap {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('BAMBA_REGIONS: not valid JSON (a JSON array of {"name","url",…} objects)');
  }
  const parsed = z.array(regionEntrySchema).min(1, 'at least one region').safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`BAMBA_REGIONS: ${issue.path.join('.') || 'value'}: ${issue.message}`);
  }
  const byName = new Map(parsed.data.map((entry) => [entry.name, entry]));
  if (byName.size !== parsed.data.length) throw new Error('BAMBA_REGIONS: region names must be unique');
  for (const entry of parsed.data) {
    if (entry.backup !== undefined && (!byName.has(entry.backup) || entry.backup === entry.name)) throw new Error(`BAMBA_REGIONS: ${entry.name}.backup must name another region of the map`);
  }
  return { regions: parsed.data, get: (name) => byName.get(name) };
}

/** The region backing `name` up (its `backup`, else the next one listed), or null when it is alone. */
export function backupOf(map: RegionMap, name: string): string | null {
  const index = map.regions.findIndex((entry) => entry.name === name);
  if (index < 0 || map.regions.length < 2) return null;
  return map.regions[index]!.backup ?? map.regions[(index + 1) % map.regions.length]!.name;
}

/** Where a request comes from, as far as the edge knows (Cloudflare's `request.cf`). */
export interface ClientPlace {
  continent?: string | undefined;
  latitude?: number | undefined;
  longitude?: number | undefined;
}

/** Great-circle distance in km. */
function distanceKm(a: { latitude: number; longitude: number }, b: { latitude: number; longitude: number }): number {
  const radians = (degrees: number) => (degrees * Math.PI) / 180;
  const dLat = radians(b.latitude - a.latitude);
  const dLon = radians(b.longitude - a.longitude);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(radians(a.latitude)) * Math.cos(radians(b.latitude)) * Math.sin(dLon / 2) ** 2;
  return 12_742 * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * Every region, best first for a new conversation: the preferred one (`x-bamba-prefer-region`),
 * then those on the client's continent, then by distance where both places are known, then by
 * weight, then in map order.
 */
export function rankRegions(map: RegionMap, place: ClientPlace, preferred: string | null): string[] {
  const score = (entry: RegionEntry) => {
    const sameContinent = place.continent !== undefined && entry.continent === place.continent ? 0 : 1;
    const known = place.latitude !== undefined && place.longitude !== undefined && entry.latitude !== undefined && entry.longitude !== undefined;
    const distance = known ? distanceKm({ latitude: place.latitude!, longitude: place.longitude! }, { latitude: entry.latitude!, longitude: entry.longitude! }) : Number.POSITIVE_INFINITY;
    return { sameContinent, distance };
  };
  return map.regions
    .map((entry, index) => ({ entry, index, ...score(entry) }))
    .sort((a, b) =>
      Number(b.entry.name === preferred) - Number(a.entry.name === preferred)
      || a.sameContinent - b.sameContinent
      || (a.distance === b.distance ? 0 : a.distance < b.distance ? -1 : 1)
      || b.entry.weight - a.entry.weight
      || a.index - b.index)
    .map(({ entry }) => entry.name);
}
