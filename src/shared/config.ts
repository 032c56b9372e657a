/**
 * Configuration loading shared by every process.
 *
 * Each process declares one zod object schema. Values come, in rising priority, from the
 * schema's defaults, an optional JSON file (`<PREFIX>_CONFIG=path.json`) and environment
 * variables. A key's variable is the prefix plus its path in SCREAMING_CASE:
 * `breaker.resetTimeoutMs` of the gateway is `GATEWAY_BREAKER_RESET_TIMEOUT_MS`.
 *
 * Environment strings are converted by the type of the schema leaf (numbers, booleans, lists as
 * JSON or comma-separated, objects as JSON) before zod validates the whole; anything zod rejects
 * becomes one ConfigError line naming the variable, which the CLI prints before it exits.
 */
import { z } from 'zod';
import { readJsonFile } from './json-file.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface ConfigKeyDoc {
  env: string;
  path: string;
  type: string;
  default: string;
  description: string;
}

type AnySchema = z.ZodType;

function defOf(schema: AnySchema): { type: string; [k: string]: unknown } {
  return (schema as unknown as { _zod: { def: { type: string; [k: string]: unknown } } })._zod.def;
}

/** Strips default/optional/nullable/prefault wrappers to the schema that says what the value is. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch'].includes(def.type)) {
      s = def.innerType as AnySchema;
    } else if (def.type === 'pipe') {
      s = def.in as AnySchema;
    } else {
      return s;
    }
  }
}

function isObjectSchema(schema: AnySchema): schema is z.ZodObject {
  return defOf(unwrap(schema)).type === 'object';
}

function shapeOf(schema: AnySchema): Record<string, AnySchema> {
  return (unwrap(schema) as z.ZodObject).shape as Record<string, AnySchema>;
}

export function envName(prefix: string, path: string[]): string {
  const words = path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase());
  return [prefix, ...words].join('_');
}

function typeName(schema: AnySchema): string {
  const inner = unwrap(schema);
  const def = defOf(inner);
  switch (def.type) {
    case 'enum':
      return Object.values(def.entries as Record<string, string>).map((v) => `\`${v}\``).join(' \\| ');
    case 'array':
      return `list of ${typeName(def.element as AnySchema)}`;
    case 'record':
    case 'object':
      return 'JSON object';
    case 'literal':
      return (def.values as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
    case 'union':
      return (def.options as AnySchema[]).map(typeName).join(' \\| ');
    default:
      return def.type;
  }
}

/** Converts one environment string by the leaf's type; leaves it as is when it does not convert, so zod reports it. */
function fromEnv(raw: string, schema: AnySchema, env: string): unknown {
  const def = defOf(unwrap(schema));
  switch (def.type) {
    case 'number':
    case 'int': {
      if (raw.trim() === '') return raw;
      const n = Number(raw);
      return Number.isNaN(n) ? raw : n;
    }
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      return raw;
    }
    case 'array': {
      const t = raw.trim();
      if (t.startsWith('[')) return parseJson(t, env);
      if (t === '') return [];
      return t.split(',').map((part) => fromEnv(part.trim(), def.element as AnySchema, env));
    }
    case 'record':
    case 'object':
    case 'union':
      return raw.trim().startsWith('{') || raw.trim().startsWith('[') ? parseJson(raw, env) : raw;
    default:
      return raw;
  }
}

function parseJson(raw: string, where: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${where} is not valid JSON (${(err as Error).message})`);
  }
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]!] = value;
}

/** The values set by environment variables, and for each key path the variable it came from. */
interface EnvValues {
  values: Record<string, unknown>;
  sources: Map<string, string>;
}

function collectEnv(schema: AnySchema, prefix: string, path: string[], env: NodeJS.ProcessEnv, fallbacks: Readonly<Record<string, string>>, out: EnvValues): void {
  for (const [key, child] of Object.entries(shapeOf(schema))) {
    const childPath = [...path, key];
    const own = envName(prefix, childPath);
    const name = env[own] === undefined && fallbacks[own] !== undefined && env[fallbacks[own]] !== undefined ? fallbacks[own] : own;
    const raw = env[name];
    if (raw !== undefined) {
      setPath(out.values, childPath, fromEnv(raw, child, name));
      out.sources.set(childPath.join('.'), name);
    } else if (isObjectSchema(child)) {
      collectEnv(child, prefix, childPath, env, fallbacks, out);
    }
  }
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (
    typeof base === 'object' && base !== null && !Array.isArray(base) &&
    typeof over === 'object' && over !== null && !Array.isArray(over)
  ) {
    const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
    for (const [k, v] of Object.entries(over)) out[k] = deepMerge(out[k], v);
    return out;
  }
  return over === undefined ? base : over;
}

/** The path of the declared key that holds `path`, so an error names the variable to change. */
function declaredKey(schema: AnySchema, path: string[]): string[] {
  const out: string[] = [];
  let node = schema;
  for (const p of path) {
    if (!isObjectSchema(node)) break;
    const child = shapeOf(node)[p];
    if (!child) break;
    out.push(p);
    node = child;
  }
  return out;
}

export interface LoadConfigOptions<S extends z.ZodObject> {
  /** Environment prefix, e.g. `GATEWAY`. */
  prefix: string;
  schema: S;
  env?: NodeJS.ProcessEnv;
  /** Values that sit between the file and the environment (the supervisor passes its own here). */
  overrides?: Record<string, unknown>;
  /** A key's variable → another variable read when the key's own is unset (`GATEWAY_PORT` → `PORT`). */
  fallbacks?: Readonly<Record<string, string>>;
}

export function loadConfig<S extends z.ZodObject>(options: LoadConfigOptions<S>): z.infer<S> {
  const env = options.env ?? process.env;
  const fileVar = `${options.prefix}_CONFIG`;
  const file = env[fileVar];
  const fromFile: unknown = file
    ? readJsonFile(file, z.unknown(), { fail: (f, detail) => new ConfigError(`invalid configuration: ${fileVar}=${f} ${detail}`) })
    : {};
  const fromEnvVars: EnvValues = { values: {}, sources: new Map() };
  collectEnv(options.schema, options.prefix, [], env, options.fallbacks ?? {}, fromEnvVars);
  const merged = deepMerge(deepMerge(fromFile, options.overrides ?? {}), fromEnvVars.values);
  const result = options.schema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.map(String);
    const leafPath = declaredKey(options.schema, path);
    const variable = fromEnvVars.sources.get(leafPath.join('.')) ?? envName(options.prefix, leafPath);
    const where = leafPath.length ? `${variable} (${path.join('.')})` : options.prefix;
    let got = '';
    let node: unknown = merged;
    for (const p of path) node = (node as Record<string, unknown> | undefined)?.[p];
    if (node !== undefined) got = `, got ${JSON.stringify(node)?.slice(0, 80)}`;
    throw new ConfigError(`invalid configuration: ${where}: ${issue.message}${got}`);
  }
  return result.data;
}

/** One row per leaf key, for the README tables (`npm run config-docs`). */
export function describeConfig(schema: z.ZodObject, prefix: string, path: string[] = []): ConfigKeyDoc[] {
  const rows: ConfigKeyDoc[] = [];
  for (const [key, child] of Object.entries(shapeOf(schema))) {
    const childPath = [...path, key];
    const inner = unwrap(child);
    const description = child.description ?? inner.description;
    if (defOf(inner).type === 'object' && description === undefined) {
      rows.push(...describeConfig(inner as z.ZodObject, prefix, childPath));
      continue;
    }
    const def = defOf(child);
    let dflt = '';
    if (def.type === 'default' || def.type === 'prefault') {
      const v = def.defaultValue;
      // An empty string is a default too; shown quoted so the table does not read it as "required".
      dflt = typeof v === 'string' && v !== '' ? v : JSON.stringify(v);
    } else if (def.type === 'optional') {
      dflt = '(unset)';
    }
    rows.push({
      env: envName(prefix, childPath),
      path: childPath.join('.'),
      type: typeName(child),
      default: dflt,
      description: description ?? '',
    });
  }
  return rows;
}

export function configTable(schema: z.ZodObject, prefix: string): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| variable | type | default | meaning |', '| --- | --- | --- | --- |'];
  for (const row of describeConfig(schema, prefix)) {
    const d = row.default === '' ? '(required)' : `\`${esc(row.default)}\``;
    lines.push(`| \`${row.env}\` | ${row.type} | ${d} | ${esc(row.description)} |`);
  }
  return lines.join('\n');
}
