// ESLint (flat config): the recommended JS and typescript-eslint rules for all TypeScript, and for
// workflows/ the Temporal sandbox rules temporalio/samples-typescript uses: no Node built-in module
// may be imported by workflow code (it runs in the deterministic sandbox; only 'assert' is
// provided), and no promise may be left floating (a forgotten await of an activity or a timer).
const { builtinModules } = require('node:module');
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

const ALLOWED_NODE_BUILTINS = new Set(['assert']);

module.exports = tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/**', '.venv/**', '.state/**', '.gpu-check/**', 'bench/out/**', '**/*.js', '**/*.cjs'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: __dirname } },
    rules: {
      'no-restricted-imports': ['error', { paths: builtinModules.filter((m) => !ALLOWED_NODE_BUILTINS.has(m)).flatMap((m) => [m, `node:${m}`]) }],
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
  {
    // tests read untyped JSON results and drive APIs with deliberately wrong inputs
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
