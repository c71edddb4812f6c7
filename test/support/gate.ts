/**
 * Tests gated on an optional component: `describeIf(available, reason)` runs the block when the
 * component is there, and otherwise skips it and says why on stderr. Under CI=true the run then
 * fails (test/support/no-skip-reporter.js): everything the README's set-up provides must run.
 */
export function describeIf(available: boolean, reason: string): jest.Describe {
  if (available) return describe;
  process.stderr.write(`[skipped] ${reason}\n`);
  return describe.skip;
}

export function itIf(available: boolean, reason: string): jest.It {
  if (available) return it;
  process.stderr.write(`[skipped] ${reason}\n`);
  return it.skip;
}
