/**
 * Every CLI flag has an environment twin: `--slots 8` is `BAMBA_SLOTS=8`, `--redis-url X` is
 * `REDIS_URL=X`, `--port 9000` is `PORT=9000`. Flags win over the environment.
 */
const UNPREFIXED = new Set(['REDIS_URL', 'REDIS_CLUSTER_NODES', 'PORT']);

export function envNameOf(flag: string): string {
  const name = flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
  return UNPREFIXED.has(name) ? name : `BAMBA_${name}`;
}

/** The flag of an environment variable: `BAMBA_SLOTS` → `--slots`, `REDIS_URL` → `--redis-url`. */
export function flagOf(envName: string): string {
  const name = UNPREFIXED.has(envName) ? envName : envName.replace(/^BAMBA_/, '');
  return `--${name.toLowerCase().replace(/_/g, '-')}`;
}

/**
 * Merge `--name value` / `--name=value` flags into a copy of `env`. Throws on a bare word.
 * A switch (`booleans`) may stand alone: `--edge` is `--edge true`.
 */
export function applyFlags(args: readonly string[], env: Record<string, string | undefined>, allowed: ReadonlySet<string>, booleans: ReadonlySet<string> = new Set()): Record<string, string | undefined> {
  const merged = { ...env };
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument '${arg}'`);
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const name = envNameOf(flag);
    if (!allowed.has(name)) throw new Error(`unknown option '${flag}'`);
    const bare = inline === undefined && booleans.has(name) && (index + 1 >= args.length || args[index + 1]!.startsWith('--'));
    const value = bare ? 'true' : inline ?? args[++index];
    if (value === undefined) throw new Error(`option '${flag}' needs a value`);
    merged[name] = value;
  }
  return merged;
}
