#!/usr/bin/env node
/**
 * `bin/smnas`: the project's command line. Each sub-command lives in cli/commands/<name>.ts and
 * exports a `Command`. User errors print one line and exit non-zero; anything else is a bug and
 * prints its stack.
 */
import type { Command } from '../common/cli';
import { UserError } from '../common/errors';

/** name -> module (loaded lazily so `smnas arch` does not load Temporal) */
const COMMANDS: Record<string, string> = {
  arch: './commands/arch',
  pareto: './commands/pareto',
  data: './commands/data',
  eval: './commands/eval',
  train: './commands/train',
  classify: './commands/classify',
  bench: './commands/bench',
  export: './commands/export',
  detect: './commands/detect',
  search: './commands/search',
  dashboard: './commands/dashboard',
  dev: './commands/dev',
  worker: './commands/worker',
  protocol: './commands/protocol',
};

function load(name: string): Command | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(COMMANDS[name]).command as Command;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((e as Error).message).includes(COMMANDS[name].slice(2))) return undefined;
    throw e;
  }
}

function usage(): string {
  const lines = ['usage: smnas <command> [options]   (smnas <command> --help for details)', '', 'commands:'];
  for (const name of Object.keys(COMMANDS)) {
    const c = load(name);
    if (c) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  if (!(name in COMMANDS)) throw new UserError(`unknown command '${name}'\n${usage()}`);
  const cmd = load(name);
  if (!cmd) throw new UserError(`command '${name}' is not available in this build`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(cmd.help.trimEnd() + '\n');
    return 0;
  }
  return cmd.main(rest);
}

// `smnas ... | head` closes stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UserError) {
      process.stderr.write(`smnas: ${e.message}\n`);
      process.exitCode = e.exitCode;
    } else {
      process.stderr.write(`smnas: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  },
);
