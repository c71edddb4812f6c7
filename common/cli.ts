/**
 * Small helpers shared by every `bin/smnas` command: flag parsing with a clear error for unknown
 * or malformed flags, `--help`, and JSON output.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from './errors';

export type FlagSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedFlags {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Parse argv with node's util.parseArgs; `--help`/`-h` is always accepted. Unknown flags and
 * missing values become UserErrors naming the flag and pointing at `--help`.
 */
export function parseFlags(command: string, argv: string[], options: FlagSpec, allowPositionals = true): ParsedFlags {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      allowPositionals,
      strict: true,
    });
    return { values: values as ParsedFlags['values'], positionals };
  } catch (e) {
    throw new UserError(`${command}: ${(e as Error).message.split('\n')[0]} (see '${command} --help')`);
  }
}

export function str(flags: ParsedFlags, name: string): string | undefined {
  const v = flags.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function requireStr(command: string, flags: ParsedFlags, name: string): string {
  const v = str(flags, name);
  if (v === undefined || v === '') throw new UserError(`${command}: --${name} is required (see '${command} --help')`);
  return v;
}

export function int(command: string, flags: ParsedFlags, name: string, dflt?: number): number | undefined {
  const v = str(flags, name);
  if (v === undefined) return dflt;
  if (!/^-?\d+$/.test(v)) throw new UserError(`${command}: --${name} must be an integer, got '${v}'`);
  return Number(v);
}

export function bool(flags: ParsedFlags, name: string): boolean {
  return flags.values[name] === true;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value) + '\n');
}

/** A command module of bin/smnas. */
export interface Command {
  summary: string;
  /** full help text, printed for --help */
  help: string;
  /** returns the process exit code */
  main(argv: string[]): Promise<number>;
}
