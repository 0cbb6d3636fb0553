/**
 * Structured outputs: an answer held to JSON (`json_object`) or to a JSON Schema (`json_schema`)
 * by a grammar the gpu-node builds from it (node-llama-cpp's JSON-schema grammar). A schema may
 * use only the keywords that grammar enforces; any other keyword is refused by name here, at the
 * edge of the system, never ignored: an answer that silently ignored `pattern` or `minimum` would
 * not match the schema its client trusts. The gpu-node parses the job with this same schema.
 *
 * What the grammar does with the keywords it knows: every property listed is generated, in the
 * order listed (so any `required` is met), no other property unless `additionalProperties` says
 * so; `anyOf` and `oneOf` are both "one of these"; strings honour `minLength`/`maxLength` or
 * `format` (date-time, date, time); arrays `items`, `prefixItems`, `minItems`, `maxItems`.
 */
import { z } from 'zod';

/** Deeper schemas are refused (OpenAI allows 10 levels; nobody needs more than this). */
export const MAX_SCHEMA_DEPTH = 32;
/** Most subschemas one schema may hold: bounds the grammar a request makes a gpu-node build. */
export const MAX_SCHEMA_NODES = 2000;

/**
 * Most digits of an integer the grammar writes (the gpu-node builds its integer rule from this):
 * every such integer is a safe one, so the bounds that zod and openai's `zodResponseFormat`
 * write for `.int()` (±(2^53 − 1)) already hold, and are accepted.
 */
export const MAX_INTEGER_DIGITS = 15;
const LARGEST_INTEGER = 10 ** MAX_INTEGER_DIGITS - 1;

/** Keywords that describe without constraining: accepted and left out of the grammar. */
export const SCHEMA_ANNOTATIONS = ['title', 'description', '$schema', '$id', '$comment', 'examples', 'default', 'deprecated', 'readOnly', 'writeOnly'] as const;

const SCALAR_TYPES = ['string', 'number', 'integer', 'boolean', 'null'] as const;
const TYPES = [...SCALAR_TYPES, 'object', 'array'] as const;
const STRING_FORMATS = ['date-time', 'date', 'time'] as const;
const DEFS_PREFIX = '#/$defs/';

/** The keywords each kind of subschema may use beside the annotations and `$defs`. */
const KEYWORDS_BY_TYPE: Record<(typeof TYPES)[number], readonly string[]> = {
  string: ['type', 'minLength', 'maxLength', 'format'],
  number: ['type'],
  integer: ['type', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  boolean: ['type'],
  null: ['type'],
  object: ['type', 'properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties'],
  array: ['type', 'items', 'prefixItems', 'minItems', 'maxItems'],
};

type Path = (string | number)[];
interface Problem { path: Path; message: string }

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isLiteral = (value: unknown) => value === null || ['string', 'number', 'boolean'].includes(typeof value);
const isCount = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 0;
const list = (values: readonly string[]) => values.join(', ');

/**
 * The first thing in `schema` that the grammar cannot enforce, or null. Walks the schema once
 * (a `$ref` is checked to name a definition in scope, not followed, so recursive schemas end).
 */
export function jsonSchemaProblem(schema: unknown): Problem | null {
  let nodes = 0;
  const walk = (node: unknown, path: Path, defs: ReadonlySet<string>, depth: number): Problem | null => {
    if (!isObject(node)) return { path, message: 'a schema must be a JSON object' };
    if (++nodes > MAX_SCHEMA_NODES) return { path, message: `the schema holds more than ${MAX_SCHEMA_NODES} subschemas` };
    if (depth > MAX_SCHEMA_DEPTH) return { path, message: `the schema nests deeper than ${MAX_SCHEMA_DEPTH} levels` };
    const keys = Object.keys(node).filter((key) => !(SCHEMA_ANNOTATIONS as readonly string[]).includes(key));
    let scope = defs;
    if ('$defs' in node) {
      const own = node.$defs;
      if (!isObject(own)) return { path: [...path, '$defs'], message: '$defs must be an object of schemas' };
      scope = new Set([...defs, ...Object.keys(own)]);
      for (const [name, def] of Object.entries(own)) {
        const problem = walk(def, [...path, '$defs', name], scope, depth + 1);
        if (problem) return problem;
      }
    }
    const only = (allowed: readonly string[], what: string): Problem | null => {
      const extra = keys.find((key) => key !== '$defs' && !allowed.includes(key));
      if (extra === undefined) return null;
      if (extra === 'definitions') return { path: [...path, extra], message: "'definitions' is not supported: put the definitions in '$defs' and refer to them as '#/$defs/<name>'" };
      return { path: [...path, extra], message: `'${extra}' is not supported in a ${what} schema here (the grammar could not enforce it); supported: ${list(allowed)}` };
    };
    const children = (schemas: unknown, at: Path): Problem | null => {
      if (!Array.isArray(schemas) || schemas.length === 0) return { path: at, message: 'must be a non-empty array of schemas' };
      for (const [index, child] of schemas.entries()) {
        const problem = walk(child, [...at, index], scope, depth + 1);
        if (problem) return problem;
      }
      return null;
    };

    if ('$ref' in node) {
      const ref = node.$ref;
      if (typeof ref !== 'string' || !ref.startsWith(DEFS_PREFIX)) return { path: [...path, '$ref'], message: `$ref must be '${DEFS_PREFIX}<name>'` };
      if (!scope.has(ref.slice(DEFS_PREFIX.length))) return { path: [...path, '$ref'], message: `$ref '${ref.slice(0, 80)}' names no definition in $defs` };
      return only(['$ref'], '$ref');
    }
    for (const union of ['anyOf', 'oneOf'] as const) {
      if (!(union in node)) continue;
      const problem = only([union], union);
      return problem ?? children(node[union], [...path, union]);
    }
    if ('const' in node) {
      if (!isLiteral(node.const)) return { path: [...path, 'const'], message: 'const must be a string, number, boolean or null' };
      return only(['const', 'type'], 'const');
    }
    if ('enum' in node) {
      if (!Array.isArray(node.enum) || node.enum.length === 0 || !node.enum.every(isLiteral)) return { path: [...path, 'enum'], message: 'enum must be a non-empty array of strings, numbers, booleans or nulls' };
      return only(['enum', 'type'], 'enum');
    }
    if (!('type' in node)) {
      const needs = `a schema needs a type (${list(TYPES)}), or enum, const, anyOf or $ref`;
      const keyword = keys.find((key) => key !== '$defs');
      if (keyword === undefined) return { path, message: needs };
      const owner = TYPES.find((type) => type !== 'string' && KEYWORDS_BY_TYPE[type].includes(keyword)) ?? (KEYWORDS_BY_TYPE.string.includes(keyword) ? 'string' : undefined);
      return owner
        ? { path: [...path, 'type'], message: `${needs}: '${keyword}' needs "type": "${owner}"` }
        : { path: [...path, keyword], message: `'${keyword}' is not supported here (the grammar could not enforce it); ${needs}` };
    }

    const types = Array.isArray(node.type) ? node.type : [node.type];
    const unknown = types.find((type) => !(TYPES as readonly unknown[]).includes(type));
    if (types.length === 0 || unknown !== undefined) return { path: [...path, 'type'], message: `type must be one of ${list(TYPES)}, or an array of them` };
    if (types.length > 1) {
      // Several types: scalars only (their keywords could not apply to the others); anyOf says the rest.
      if (!types.every((type) => (SCALAR_TYPES as readonly unknown[]).includes(type))) return { path: [...path, 'type'], message: 'a type array may hold string, number, integer, boolean and null only; use anyOf for objects and arrays' };
      return only(['type'], 'multi-type');
    }
    const type = types[0] as (typeof TYPES)[number];
    const problem = only(KEYWORDS_BY_TYPE[type], type);
    if (problem) return problem;

    const counts = ['minLength', 'maxLength', 'minProperties', 'maxProperties', 'minItems', 'maxItems'].find((key) => key in node && !isCount(node[key]));
    if (counts !== undefined) return { path: [...path, counts], message: `${counts} must be a whole number ≥ 0` };
    const range = (low: string, high: string): Problem | null =>
      isCount(node[low]) && isCount(node[high]) && (node[high] as number) < (node[low] as number) ? { path: [...path, high], message: `${high} is less than ${low}` } : null;

    if (type === 'integer') {
      // Bounds are accepted where every integer the grammar writes meets them; it cannot enforce narrower ones.
      const binds = (key: string, holds: (bound: number) => boolean) => key in node && !(typeof node[key] === 'number' && holds(node[key] as number));
      const binding = [
        ['minimum', (bound: number) => bound <= -LARGEST_INTEGER],
        ['exclusiveMinimum', (bound: number) => bound < -LARGEST_INTEGER],
        ['maximum', (bound: number) => bound >= LARGEST_INTEGER],
        ['exclusiveMaximum', (bound: number) => bound > LARGEST_INTEGER],
      ].find(([key, holds]) => binds(key as string, holds as (bound: number) => boolean))?.[0] as string | undefined;
      if (binding !== undefined) return { path: [...path, binding], message: `${binding} ${String(node[binding]).slice(0, 40)} is not supported: the grammar cannot enforce bounds on integers, only accept bounds that every integer of up to ${MAX_INTEGER_DIGITS} digits meets (such as ±9007199254740991)` };
      return null;
    }
    if (type === 'string') {
      if ('format' in node) {
        if (!(STRING_FORMATS as readonly unknown[]).includes(node.format)) return { path: [...path, 'format'], message: `format must be one of ${list(STRING_FORMATS)}` };
        if ('minLength' in node || 'maxLength' in node) return { path: [...path, 'format'], message: 'format cannot be combined with minLength or maxLength' };
      }
      return range('minLength', 'maxLength');
    }
    if (type === 'object') {
      const properties = node.properties ?? {};
      if (!isObject(properties)) return { path: [...path, 'properties'], message: 'properties must be an object of schemas' };
      for (const [name, child] of Object.entries(properties)) {
        const childProblem = walk(child, [...path, 'properties', name], scope, depth + 1);
        if (childProblem) return childProblem;
      }
      if ('required' in node) {
        if (!Array.isArray(node.required) || !node.required.every((name) => typeof name === 'string')) return { path: [...path, 'required'], message: 'required must be an array of property names' };
        const missing = node.required.find((name) => !(name in properties));
        // The grammar generates the listed properties only: one required but not listed could never appear.
        if (missing !== undefined) return { path: [...path, 'required'], message: `required names '${String(missing).slice(0, 80)}', which is not in properties` };
      }
      const additional = node.additionalProperties;
      if (additional !== undefined && typeof additional !== 'boolean') {
        const childProblem = walk(additional, [...path, 'additionalProperties'], scope, depth + 1);
        if (childProblem) return childProblem;
      }
      if (isCount(node.maxProperties) && (node.maxProperties as number) < Object.keys(properties).length) return { path: [...path, 'maxProperties'], message: 'maxProperties is less than the number of properties (every listed property is generated)' };
      return range('minProperties', 'maxProperties');
    }
    if (type === 'array') {
      if ('items' in node) {
        const childProblem = walk(node.items, [...path, 'items'], scope, depth + 1);
        if (childProblem) return childProblem;
      }
      if ('prefixItems' in node) {
        const childProblem = children(node.prefixItems, [...path, 'prefixItems']);
        if (childProblem) return childProblem;
        if (isCount(node.maxItems) && (node.maxItems as number) < (node.prefixItems as unknown[]).length) return { path: [...path, 'maxItems'], message: 'maxItems is less than the number of prefixItems' };
      }
      return range('minItems', 'maxItems');
    }
    return null;
  };
  return walk(schema, [], new Set(), 0);
}

/** A JSON Schema the grammar can enforce (see `jsonSchemaProblem`). */
export const jsonSchemaSchema = z.record(z.string(), z.unknown()).superRefine((schema, context) => {
  const problem = jsonSchemaProblem(schema);
  if (problem) context.addIssue({ code: 'custom', path: problem.path, message: problem.message });
});

/** The format an answer is held to, as it travels with its job. */
export const outputFormatSchema = z.discriminatedUnion('type', [
  /** Any JSON object. */
  z.object({ type: z.literal('json_object') }),
  /** A value of this schema. */
  z.object({ type: z.literal('json_schema'), schema: jsonSchemaSchema }),
]);
export type OutputFormat = z.infer<typeof outputFormatSchema>;
