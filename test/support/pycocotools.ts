/**
 * Runs the pycocotools oracle (pycocotools_eval.py) with the project venv on many cases in one
 * Python process. A missing venv or pycocotools is a test FAILURE telling to run scripts/setup.sh.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { VENV_PYTHON } from '../../common/paths';

export interface OracleResult {
  stats: number[];
  perClass: Record<string, number | null>;
}

export function runPycocotools(cases: { gt: string; dets: string }[], workDir: string): OracleResult[] {
  if (!fs.existsSync(VENV_PYTHON)) {
    throw new Error(`${VENV_PYTHON} does not exist: run scripts/setup.sh (it creates .venv with pycocotools)`);
  }
  const manifest = path.join(workDir, 'manifest.json');
  fs.writeFileSync(manifest, JSON.stringify(cases));
  const r = spawnSync(VENV_PYTHON, [path.join(__dirname, 'pycocotools_eval.py'), manifest], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status === 3) throw new Error(`pycocotools is not installed in .venv: run scripts/setup.sh (${r.stdout.trim()})`);
  if (r.status !== 0) throw new Error(`pycocotools oracle failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  const lines = r.stdout.trim().split('\n');
  if (lines.length !== cases.length) throw new Error(`oracle printed ${lines.length} results for ${cases.length} cases`);
  return lines.map((l) => JSON.parse(l) as OracleResult);
}
