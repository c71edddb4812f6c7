/**
 * A UserError is a problem with the user's input (a file, a flag, a record): the CLI prints its
 * one-line message and exits non-zero, without a stack trace. Messages name the file, line,
 * field or record at fault.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Format a zod error as one line naming the first offending field, prefixed by its source. */
export function describeZodError(source: string, error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const parts = error.issues.slice(0, 3).map((i) => `${i.path.map(String).join('.') || '<root>'}: ${i.message}`);
  const more = error.issues.length > 3 ? ` (and ${error.issues.length - 3} more)` : '';
  return `${source}: ${parts.join('; ')}${more}`;
}
