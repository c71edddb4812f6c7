/**
 * jest's order, except that the suites which train for minutes start first, longest first. Without
 * jest's timing cache (a fresh CI clone) jest orders by file size, and these small files would start
 * last and run on alone at the end. Durations: CI on the 2-core VM, 2026-12-01 (BENCHMARKS.md,
 * "Test suite time"). A name here that no longer exists fails the run, so a rename cannot quietly
 * drop a suite back to the end.
 */
const fs = require('node:fs');
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const ROOT = path.resolve(__dirname, '..', '..');
const HEAVY = [
  'test/native/quality-ga-rpn.test.ts',
  'test/native/quality.test.ts',
  'test/native/paper-space-two.test.ts',
  'test/native/quality-mobilenet.test.ts',
  'test/native/paper-space-one.test.ts',
];
for (const f of HEAVY) {
  if (!fs.existsSync(path.join(ROOT, f))) throw new Error(`test/support/sequencer.js: HEAVY names ${f}, which does not exist`);
}

class HeavyFirstSequencer extends Sequencer {
  sort(tests) {
    const rank = (t) => HEAVY.indexOf(path.relative(ROOT, t.path));
    const heavy = tests.filter((t) => rank(t) >= 0).sort((a, b) => rank(a) - rank(b));
    return [...heavy, ...super.sort(tests.filter((t) => rank(t) < 0))];
  }
}

module.exports = HeavyFirstSequencer;
