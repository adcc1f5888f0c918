// A small flag parser with typed options and clear errors (no dependency needed for this much).

export type FlagType = 'string' | 'int' | 'number' | 'boolean' | 'strings';

export interface FlagSpec {
  type: FlagType;
  help: string;
  default?: string | number | boolean;
}

export type Flags = Record<string, FlagSpec>;
export type Parsed = Record<string, string | number | boolean | string[] | undefined>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseFlags(command: string, argv: readonly string[], flags: Flags): Parsed {
  const out: Parsed = {};
  for (const [name, spec] of Object.entries(flags)) if (spec.default !== undefined) out[name] = spec.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`${command}: unexpected argument '${arg}' (flags start with --; see ${command} --help)`);
    const [rawName, inline] = arg.slice(2).split('=', 2);
    const spec = flags[rawName];
    if (!spec) {
      const known = Object.keys(flags).map((f) => `--${f}`).join(', ');
      throw new UsageError(`${command}: unknown flag --${rawName} (known: ${known})`);
    }
    if (spec.type === 'boolean') {
      out[rawName] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`${command}: --${rawName} needs a value`);
    if (spec.type === 'int' || spec.type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n) || (spec.type === 'int' && !Number.isInteger(n))) {
        throw new UsageError(`${command}: --${rawName} expects ${spec.type === 'int' ? 'an integer' : 'a number'}, got '${value}'`);
      }
      out[rawName] = n;
    } else if (spec.type === 'strings') {
      const list = (out[rawName] as string[] | undefined) ?? [];
      out[rawName] = [...list, value];
    } else {
      out[rawName] = value;
    }
  }
  return out;
}

export function usage(command: string, summary: string, flags: Flags): string {
  const lines = [`usage: pixelvae ${command} [flags]`, '', summary, '', 'flags:'];
  for (const [name, spec] of Object.entries(flags)) {
    const def = spec.default !== undefined ? ` (default ${String(spec.default)})` : '';
    lines.push(`  --${name.padEnd(16)} ${spec.help}${def}`);
  }
  return lines.join('\n');
}
