/**
 * Structured outputs: an answer held to JSON (`json_object`) or to a JSON Schema (`json_schema`)
 * by a grammar the gpu-node builds from it (node-llama-cpp's JSON-schema grammar). A schema may
 * use only the keywords that grammar enforces; any other keyword is refused by name here, at the
 * edge of the system, never ignored: an answer that silently ignored `pattern` or `minimum` would
 * not match the schema its client trusts. The gpu-node parses the job with this same schema.
 *
 * What the grammar does with the keywords it knows: every property listed is generated, in the
 * order listed (so any `required` is met); `additionalProperties` (extra keys) only on an object
 * that lists none, since the grammar could write a listed name again as an extra key; `anyOf`
 * is "one of these", its alternatives told apart by their first character (`oneOf`, which also
 * forbids matching two, is refused); `$defs` (or draft-07's `definitions`) at the root only; strings honour
 * `minLength`/`maxLength` (in characters: the grammar writes no `\u` escapes) or `format: time`;
 * arrays `items`, `prefixItems`, `minItems`, `maxItems`. Counts stay at most `MAX_SCHEMA_COUNT`
 * (llama.cpp's grammar expands repetitions: larger ones fail or stop being enforced), and the
 * literals (property names, `enum` and `const` strings) are bounded in number and length, since
 * the gpu-node builds the grammar on its main thread.
 */
import { z } from 'zod';

/** Deeper schemas are refused (OpenAI allows 10 levels; nobody needs more than this). */
export const MAX_SCHEMA_DEPTH = 32;
/** Most subschemas one schema may hold: bounds the grammar a request makes a gpu-node build. */
export const MAX_SCHEMA_NODES = 500;

/**
 * Most digits of an integer the grammar writes (the gpu-node builds its integer rule from this):
 * every such integer is a safe one, so the bounds that zod and openai's `zodResponseFormat`
 * write for `.int()` (±(2^53 − 1)) already hold, and are accepted.
 */
export const MAX_INTEGER_DIGITS = 15;
const LARGEST_INTEGER = 10 ** MAX_INTEGER_DIGITS - 1;

/** Largest count (`maxLength`, `minItems`, …) a schema may set. */
export const MAX_SCHEMA_COUNT = 500;
/** Most `enum` values in one schema, and most characters of all its literals together (OpenAI's limits). */
export const MAX_ENUM_VALUES = 1000;
export const MAX_LITERAL_CHARACTERS = 15_000;

/** Keywords that describe without constraining: accepted and left out of the grammar. */
export const SCHEMA_ANNOTATIONS = ['title', 'description', '$schema', '$id', '$comment', 'examples', 'default', 'deprecated', 'readOnly', 'writeOnly'] as const;

const SCALAR_TYPES = ['string', 'number', 'integer', 'boolean', 'null'] as const;
const TYPES = [...SCALAR_TYPES, 'object', 'array'] as const;
// Not date or date-time: the grammar cannot tell how many days a month has (it writes 2023-02-31).
const STRING_FORMATS = ['time'] as const;
/**
 * Where a schema's definitions are: `$defs` (JSON Schema 2020-12), or `definitions` (draft-07,
 * what openai's `zodResponseFormat` writes for named and recursive zod schemas). One of the two,
 * at the root; a `$ref` points into it from the root.
 */
export const DEFINITION_CONTAINERS = ['$defs', 'definitions'] as const;
type DefinitionContainer = (typeof DEFINITION_CONTAINERS)[number];
const refPrefix = (container: DefinitionContainer) => `#/${container}/`;

/** The definitions of a schema's root, and the container they are in ('$defs' when none). */
function definitionsOf(schema: unknown): { container: DefinitionContainer; defs: Record<string, unknown> } {
  const container = isObject(schema) && 'definitions' in schema && !('$defs' in schema) ? 'definitions' : '$defs';
  const defs = isObject(schema) && isObject(schema[container]) ? schema[container] : {};
  return { container, defs };
}

/**
 * Where a checked schema holds subschemas: keys whose value is one (or, for
 * `additionalProperties`, a boolean), a list of them, or a map of them (definitions at the root
 * only). What walks a schema after the check (a rename, the grammar's reading) follows these.
 */
export const SUBSCHEMA_KEYS = ['items', 'additionalProperties'] as const;
export const SUBSCHEMA_LIST_KEYS = ['prefixItems', 'anyOf'] as const;
export const SUBSCHEMA_MAP_KEYS = ['properties', ...DEFINITION_CONTAINERS] as const;

/** Any JSON object: what `json_object` holds an answer to (and a tool without parameters takes). */
export const ANY_OBJECT_SCHEMA = { type: 'object', additionalProperties: true } as const;

/** The definition a `$ref` names (either container's prefix), or null. */
export const definitionName = (ref: string): string | null => {
  const prefix = DEFINITION_CONTAINERS.map(refPrefix).find((candidate) => ref.startsWith(candidate));
  return prefix ? ref.slice(prefix.length) : null;
};

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
// A number literal must be finite (1e400 parses as Infinity, which JSON cannot carry: the job
// would hold null) and, when whole, a safe integer (12345678901234567890 parsed as another number).
const isLiteral = (value: unknown) => value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value) && (!Number.isInteger(value) || Number.isSafeInteger(value)));
/** Whether a literal is a value of a JSON Schema type. */
const literalIs = (value: unknown, type: unknown) => (type === 'null' ? value === null : type === 'integer' ? Number.isInteger(value) : typeof value === type);
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f]/;
const isCount = (value: unknown) => typeof value === 'number' && Number.isInteger(value) && value >= 0;
/** The keywords that count (characters, properties, items): whole numbers up to `MAX_SCHEMA_COUNT`. */
const COUNT_KEYWORDS = ['minLength', 'maxLength', 'minProperties', 'maxProperties', 'minItems', 'maxItems'];
/** A `type` as a list of known types, or null when it names none or another. */
const typeList = (type: unknown): unknown[] | null => {
  const types = Array.isArray(type) ? type : [type];
  return types.length > 0 && types.every((one) => (TYPES as readonly unknown[]).includes(one)) ? types : null;
};
const TYPE_LIST_MESSAGE = `type must be one of ${TYPES.join(', ')}, or an array of them`;
const list = (values: readonly string[]) => values.join(', ');

/**
 * The first thing in `schema` that the grammar cannot enforce, or null. Walks the schema once
 * (a `$ref` is checked to name a definition in scope, not followed, so recursive schemas end).
 */
export function jsonSchemaProblem(schema: unknown): Problem | null {
  let nodes = 0;
  let enumValues = 0;
  let literalCharacters = 0;
  /** A property name or string literal the grammar writes verbatim: counted, and no control characters (JSON escapes them). */
  const literal = (text: string, at: Path): Problem | null => {
    literalCharacters += text.length;
    if (literalCharacters > MAX_LITERAL_CHARACTERS) return { path: at, message: `the schema's property names, enum and const strings hold more than ${MAX_LITERAL_CHARACTERS} characters together` };
    return CONTROL_CHARACTER.test(text) ? { path: at, message: 'property names, enum and const strings may not hold control characters (U+0000 to U+001F)' } : null;
  };
  /** A `type` beside `const`/`enum`: a valid type that every literal has. */
  const literalsOfType = (values: unknown[], type: unknown, at: Path): Problem | null => {
    if (type === undefined) return null;
    const types = typeList(type);
    if (!types) return { path: [...at, 'type'], message: TYPE_LIST_MESSAGE };
    const odd = values.find((value) => !types.some((one) => literalIs(value, one)));
    return odd === undefined ? null : { path: [...at, 'type'], message: `${JSON.stringify(odd).slice(0, 80)} is not of type ${types.join(' or ')}` };
  };
  // `#/$defs/x` points from the document's root: definitions live there only.
  const { container, defs } = definitionsOf(schema);
  /** Where alternatives are (anyOf, type lists): checked once the whole schema passed (see `overlapOf`). */
  const alternativeSites: Array<{ alternatives: unknown[]; at: Path }> = [];
  const walk = (node: unknown, path: Path, depth: number): Problem | null => {
    if (!isObject(node)) return { path, message: 'a schema must be a JSON object' };
    if (++nodes > MAX_SCHEMA_NODES) return { path, message: `the schema holds more than ${MAX_SCHEMA_NODES} subschemas` };
    if (depth > MAX_SCHEMA_DEPTH) return { path, message: `the schema nests deeper than ${MAX_SCHEMA_DEPTH} levels` };
    const keys = Object.keys(node).filter((key) => !(SCHEMA_ANNOTATIONS as readonly string[]).includes(key));
    for (const key of DEFINITION_CONTAINERS) {
      if (!(key in node)) continue;
      if (depth > 0) return { path: [...path, key], message: `${key} is supported at the schema's root only ('${refPrefix(key)}<name>' points from the root)` };
      if (key !== container) return { path: [...path, key], message: 'use $defs or definitions, not both' };
      if (!isObject(node[key])) return { path: [...path, key], message: `${key} must be an object of schemas` };
      for (const [name, def] of Object.entries(node[key])) {
        const problem = walk(def, [...path, key, name], depth + 1);
        if (problem) return problem;
      }
    }
    const only = (allowed: readonly string[], what: string): Problem | null => {
      const extra = keys.find((key) => !(DEFINITION_CONTAINERS as readonly string[]).includes(key) && !allowed.includes(key));
      if (extra === undefined) return null;
      return { path: [...path, extra], message: `'${extra}' is not supported in a ${what} schema here (the grammar could not enforce it); supported: ${list(allowed)}` };
    };
    const children = (schemas: unknown, at: Path): Problem | null => {
      if (!Array.isArray(schemas) || schemas.length === 0) return { path: at, message: 'must be a non-empty array of schemas' };
      for (const [index, child] of schemas.entries()) {
        const problem = walk(child, [...at, index], depth + 1);
        if (problem) return problem;
      }
      return null;
    };

    if ('$ref' in node) {
      const ref = node.$ref;
      if (typeof ref !== 'string' || !ref.startsWith(refPrefix(container))) {
        const why = ref === '#' ? ': a reference to the whole schema is not supported; put the recursive part in the definitions' : '';
        return { path: [...path, '$ref'], message: `$ref must be '${refPrefix(container)}<name>'${why}` };
      }
      if (!Object.hasOwn(defs, ref.slice(refPrefix(container).length))) return { path: [...path, '$ref'], message: `$ref '${ref.slice(0, 80)}' names no definition in ${container}` };
      return only(['$ref'], '$ref');
    }
    if ('oneOf' in node) return { path: [...path, 'oneOf'], message: "'oneOf' is not supported: it also forbids a value that matches two branches, which the grammar cannot check; use anyOf" };
    if ('anyOf' in node) {
      const problem = only(['anyOf'], 'anyOf') ?? children(node.anyOf, [...path, 'anyOf']);
      if (!problem) alternativeSites.push({ alternatives: node.anyOf as unknown[], at: [...path, 'anyOf'] });
      return problem;
    }
    if ('const' in node || 'enum' in node) {
      const keyword = 'const' in node ? 'const' : 'enum';
      const values = keyword === 'const' ? [node.const] : node.enum;
      if (keyword === 'const' && !isLiteral(node.const)) return { path: [...path, 'const'], message: 'const must be a string, number (whole ones within ±2^53), boolean or null' };
      if (!Array.isArray(values) || values.length === 0 || !values.every(isLiteral)) return { path: [...path, 'enum'], message: 'enum must be a non-empty array of strings, numbers (whole ones within ±2^53), booleans or nulls' };
      enumValues += values.length;
      if (enumValues > MAX_ENUM_VALUES) return { path: [...path, keyword], message: `the schema holds more than ${MAX_ENUM_VALUES} enum values` };
      for (const [index, value] of values.entries()) {
        const problem = typeof value === 'string' ? literal(value, keyword === 'const' ? [...path, 'const'] : [...path, 'enum', index]) : null;
        if (problem) return problem;
      }
      return only([keyword, 'type'], keyword) ?? literalsOfType(values, node.type, path);
    }
    if (!('type' in node)) {
      const needs = `a schema needs a type (${list(TYPES)}), or enum, const, anyOf or $ref`;
      const keyword = keys.find((key) => !(DEFINITION_CONTAINERS as readonly string[]).includes(key));
      if (keyword === undefined) return { path, message: needs };
      const owner = TYPES.find((type) => type !== 'string' && KEYWORDS_BY_TYPE[type].includes(keyword)) ?? (KEYWORDS_BY_TYPE.string.includes(keyword) ? 'string' : undefined);
      return owner
        ? { path: [...path, 'type'], message: `${needs}: '${keyword}' needs "type": "${owner}"` }
        : { path: [...path, keyword], message: `'${keyword}' is not supported here (the grammar could not enforce it); ${needs}` };
    }

    const types = typeList(node.type);
    if (!types) return { path: [...path, 'type'], message: TYPE_LIST_MESSAGE };
    if (types.length > 1) {
      // Several types: scalars only (their keywords could not apply to the others); anyOf says the rest.
      if (!types.every((type) => (SCALAR_TYPES as readonly unknown[]).includes(type))) return { path: [...path, 'type'], message: 'a type array may hold string, number, integer, boolean and null only; use anyOf for objects and arrays' };
      const problem = only(['type'], 'multi-type');
      if (!problem) alternativeSites.push({ alternatives: types.map((type) => ({ type })), at: [...path, 'type'] });
      return problem;
    }
    const type = types[0] as (typeof TYPES)[number];
    const problem = only(KEYWORDS_BY_TYPE[type], type);
    if (problem) return problem;

    const counts = COUNT_KEYWORDS.find((key) => key in node && !isCount(node[key]));
    if (counts !== undefined) return { path: [...path, counts], message: `${counts} must be a whole number ≥ 0` };
    const tooLarge = COUNT_KEYWORDS.find((key) => (node[key] as number) > MAX_SCHEMA_COUNT);
    if (tooLarge !== undefined) return { path: [...path, tooLarge], message: `${tooLarge} may be at most ${MAX_SCHEMA_COUNT} here (the grammar cannot count further)` };
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
        const childProblem = literal(name, [...path, 'properties', name]) ?? walk(child, [...path, 'properties', name], depth + 1);
        if (childProblem) return childProblem;
      }
      if ('required' in node) {
        if (!Array.isArray(node.required) || !node.required.every((name) => typeof name === 'string')) return { path: [...path, 'required'], message: 'required must be an array of property names' };
        const missing = node.required.find((name) => !Object.hasOwn(properties, name));
        // The grammar generates the listed properties only: one required but not listed could never appear.
        if (missing !== undefined) return { path: [...path, 'required'], message: `required names '${String(missing).slice(0, 80)}', which is not in properties` };
      }
      const additional = node.additionalProperties;
      const listed = Object.keys(properties).length;
      const extraKeys = additional !== undefined && additional !== false;
      if (extraKeys) {
        // Its extra keys are any strings: one could repeat a listed name (the parsed value would
        // lose the listed one), and two could repeat each other (fewer properties than written).
        if (listed > 0) return { path: [...path, 'additionalProperties'], message: 'additionalProperties cannot be combined with properties here (the grammar could write a listed name again as an extra key); list every property, or none' };
        if ((node.minProperties as number) > 1) return { path: [...path, 'minProperties'], message: 'minProperties above 1 needs listed properties here (extra keys could repeat each other)' };
        if (typeof additional !== 'boolean') {
          const childProblem = walk(additional, [...path, 'additionalProperties'], depth + 1);
          if (childProblem) return childProblem;
        }
      } else if ((node.minProperties as number) > listed) {
        return { path: [...path, 'minProperties'], message: 'minProperties is more than the listed properties, and no others may be written (additionalProperties)' };
      }
      if (isCount(node.maxProperties) && (node.maxProperties as number) < listed) return { path: [...path, 'maxProperties'], message: 'maxProperties is less than the number of properties (every listed property is generated)' };
      return range('minProperties', 'maxProperties');
    }
    if (type === 'array') {
      if ('items' in node) {
        const childProblem = walk(node.items, [...path, 'items'], depth + 1);
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
  const problem = walk(schema, [], 0);
  if (problem) return problem;
  // The schema is now known to be small and well formed: what follows may follow its references.
  const starts = new ValueStarts(defs);
  for (const { alternatives, at } of alternativeSites) {
    const clash = overlapOf(alternatives, starts);
    if (clash) return { path: at, message: clash };
  }
  // Every definition, and the root, must have a finite value: one that always contains itself
  // (a listed property, a required item) would nest until max_tokens cuts it.
  const finite = finiteDefinitions(defs);
  const endless = Object.keys(defs).find((name) => !finite.has(name));
  if (endless !== undefined) return { path: [container, endless], message: `definition '${endless.slice(0, 80)}' always contains itself, so no answer could end; give it a way out (an anyOf branch of null, an array that may be empty)` };
  return null;
}

/** The first character's kind of a JSON value: what tells alternatives apart. */
type JsonKind = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';

/** A node's type, a one-type list read as its type (as the grammar reads it). */
const typeOf = (node: Record<string, unknown>): unknown => (Array.isArray(node.type) && node.type.length === 1 ? node.type[0] : node.type);

/**
 * Alternatives (anyOf branches, a type list) must differ in how they start: the grammar then
 * commits to one at once. Two that start alike stay open side by side and, nested, their number
 * doubles with each level (a 200-byte schema held a gpu-node for minutes per token). So: one
 * alternative per kind of value, objects told apart by their first property (its name, or
 * disjoint const/enum values); a const or enum alternative is free (a literal ends within its
 * own length, never keeping two open across a nesting). Returns why they clash, or null.
 */
function overlapOf(alternatives: unknown[], starts: ValueStarts): string | null {
  const taken = new Map<JsonKind, number>();
  const objects: Array<{ index: number; object: Record<string, unknown> }> = [];
  for (const [index, alternative] of alternatives.entries()) {
    for (const kind of starts.kindsOf(alternative)) {
      const first = taken.get(kind);
      if (first !== undefined) return `alternatives ${first} and ${index} can both be ${kind === 'number' ? 'a number' : `a${kind === 'array' ? 'n' : ''} ${kind}`}; give each kind of value one alternative (the grammar cannot keep two open; const and enum alternatives may share a kind)`;
      taken.set(kind, index);
    }
    for (const object of starts.objectsOf(alternative)) {
      for (const other of objects) {
        if (other.index === index) continue;
        const clash = objectsClash(other.object, object);
        if (clash) return `alternatives ${other.index} and ${index} can both be an object: ${clash}`;
      }
      objects.push({ index, object });
    }
  }
  return null;
}

/** How two object alternatives could start alike for longer than a literal, or null when they cannot. */
function objectsClash(left: Record<string, unknown>, right: Record<string, unknown>): string | null {
  const open = (object: Record<string, unknown>) => object.additionalProperties !== undefined && object.additionalProperties !== false;
  if (open(left) || open(right)) return 'an object with extra keys (additionalProperties) cannot share an anyOf with another object';
  const firstOf = (object: Record<string, unknown>) => Object.entries(isObject(object.properties) ? object.properties : {})[0];
  const [leftFirst, rightFirst] = [firstOf(left), firstOf(right)];
  if (!leftFirst || !rightFirst) return leftFirst === rightFirst ? 'two objects without properties' : null;
  if (leftFirst[0] !== rightFirst[0]) return null;
  const literals = (schema: unknown) => (isObject(schema) ? ('const' in schema ? [schema.const] : Array.isArray(schema.enum) ? schema.enum : null) : null);
  const [leftValues, rightValues] = [literals(leftFirst[1]), literals(rightFirst[1])];
  const named = `first property '${leftFirst[0].slice(0, 60)}'${/^\d+$/.test(leftFirst[0]) ? ' (a numeric name comes first in JSON objects)' : ''}`;
  if (!leftValues || !rightValues) return `both start with the ${named}; objects in anyOf must differ in their first property's name, or in its inline const or enum values (a discriminator)`;
  const rightSet = new Set(rightValues.map((value) => JSON.stringify(value)));
  return leftValues.some((value) => rightSet.has(JSON.stringify(value))) ? `both start with the ${named} with a value in common` : null;
}

/**
 * The kinds of value a schema may write that count against each other (not its literals), and
 * the objects it may write, following `$ref`s. Each definition's are found once, as a fixed
 * point over all of them, for a schema the walk already bounded (a `$ref` cycle adds nothing).
 */
class ValueStarts {
  private readonly kinds = new Map<string, Set<JsonKind>>();
  private readonly objects = new Map<string, Set<Record<string, unknown>>>();

  constructor(defs: Record<string, unknown>) {
    for (const name of Object.keys(defs)) {
      this.kinds.set(name, new Set());
      this.objects.set(name, new Set());
    }
    for (let changed = true; changed;) {
      changed = false;
      for (const [name, def] of Object.entries(defs)) {
        const kinds = this.kinds.get(name)!;
        const objects = this.objects.get(name)!;
        const before = kinds.size + objects.size;
        for (const kind of this.kindsOf(def)) kinds.add(kind);
        for (const object of this.objectsOf(def)) objects.add(object);
        if (kinds.size + objects.size !== before) changed = true;
      }
    }
  }

  kindsOf(node: unknown): Set<JsonKind> {
    if (!isObject(node)) return new Set();
    if (typeof node.$ref === 'string') return new Set(this.kinds.get(definitionName(node.$ref) ?? '') ?? []);
    if (Array.isArray(node.anyOf)) return new Set(node.anyOf.flatMap((branch) => [...this.kindsOf(branch)]));
    if ('const' in node || 'enum' in node) return new Set();
    const type = typeOf(node);
    if (type === 'object') return new Set(); // objects: see objectsOf
    const types = Array.isArray(type) ? type : [type];
    return new Set(types.map((one) => (one === 'integer' ? 'number' : one) as JsonKind));
  }

  objectsOf(node: unknown): Set<Record<string, unknown>> {
    if (!isObject(node)) return new Set();
    if (typeof node.$ref === 'string') return new Set(this.objects.get(definitionName(node.$ref) ?? '') ?? []);
    if (Array.isArray(node.anyOf)) return new Set(node.anyOf.flatMap((branch) => [...this.objectsOf(branch)]));
    return typeOf(node) === 'object' ? new Set([node]) : new Set();
  }
}

/** The definitions that have a finite value (a least fixed point: none is assumed to). */
function finiteDefinitions(defs: Record<string, unknown>): Set<string> {
  const finite = new Set<string>();
  const ends = (node: unknown): boolean => {
    if (!isObject(node)) return true;
    if (typeof node.$ref === 'string') return finite.has(definitionName(node.$ref) ?? '');
    if (Array.isArray(node.anyOf)) return node.anyOf.some(ends);
    if ('const' in node || 'enum' in node) return true;
    if (typeOf(node) === 'object') {
      // Every listed property is written; extra keys only as many as minProperties asks.
      const listed = Object.values(isObject(node.properties) ? node.properties : {});
      const extra = (node.minProperties as number) > 0 && isObject(node.additionalProperties) ? [node.additionalProperties] : [];
      return [...listed, ...extra].every(ends);
    }
    if (typeOf(node) === 'array') {
      const prefix = Array.isArray(node.prefixItems) ? node.prefixItems : [];
      const beyond = (node.minItems as number) > prefix.length && isObject(node.items) ? [node.items] : [];
      return [...prefix, ...beyond].every(ends);
    }
    return true;
  };
  for (let changed = true; changed;) {
    changed = false;
    for (const [name, def] of Object.entries(defs)) {
      if (finite.has(name) || !ends(def)) continue;
      finite.add(name);
      changed = true;
    }
  }
  return finite;
}

/** A JSON Schema the grammar can enforce (see `jsonSchemaProblem`). */
export const jsonSchemaSchema = z.record(z.string(), z.unknown(), { error: (issue) => (issue.input === undefined ? 'schema is required: the JSON Schema the answer must match' : 'schema must be a JSON object') }).superRefine((schema, context) => {
  const problem = jsonSchemaProblem(schema);
  if (problem) context.addIssue({ code: 'custom', path: problem.path, message: problem.message });
});

/** Every string the grammar writes verbatim: property names, `enum` and `const` strings (for the gpu-node's check that its model can write them). */
export function schemaLiterals(schema: unknown): string[] {
  const found: string[] = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (!isObject(node)) return;
    for (const [key, value] of Object.entries(node)) {
      if ((SCHEMA_ANNOTATIONS as readonly string[]).includes(key)) continue;
      if (key === 'const' && typeof value === 'string') found.push(value);
      else if (key === 'enum' && Array.isArray(value)) found.push(...value.filter((item): item is string => typeof item === 'string'));
      else if (key === 'properties' && isObject(value)) {
        found.push(...Object.keys(value));
        Object.values(value).forEach(visit);
      } else visit(value);
    }
  };
  visit(schema);
  return found;
}

/** A format's `name` (OpenAI's rule); `field` is how the request spells it. */
export const formatNameSchema = (field: string) => z.string({ error: `${field} is required` }).regex(/^[A-Za-z0-9_-]{1,64}$/, `${field} must be 1 to 64 letters, digits, _ or -`);

/** The format an answer is held to, as it travels with its job. */
export const outputFormatSchema = z.discriminatedUnion('type', [
  /** Any JSON object. */
  z.object({ type: z.literal('json_object') }),
  /** A value of this schema. */
  z.object({ type: z.literal('json_schema'), schema: jsonSchemaSchema }),
]);
export type OutputFormat = z.infer<typeof outputFormatSchema>;
