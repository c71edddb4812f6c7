/** Unit, activity and workflow tests. Workflow tests talk to a real `temporal server start-dev`
 * (installed by scripts/setup.sh); they share one server started in test/global-setup. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, diagnostics: false }] },
  testTimeout: 120000,
  maxWorkers: 2,
  // the suites that train for minutes first (test/support/sequencer.js)
  testSequencer: '<rootDir>/test/support/sequencer.js',
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  // lists skipped/todo tests; with CI=true they fail the run (the suite cannot silently shrink)
  reporters: ['default', '<rootDir>/test/support/no-skip-reporter.js'],
};
