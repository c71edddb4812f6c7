/**
 * The workflow bundle (webpack of workflows/index.ts and what it imports) takes seconds to build,
 * so build it once per process, and, when a cache folder is given, once per source state: the key
 * hashes every .ts file the sandbox can import plus the SDK version. The jest harness passes its
 * per-run folder so each test file (jest gives each its own module registry) reuses one bundle.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../common/paths';

export const DEFAULT_WORKFLOWS_PATH = path.join(PROJECT_ROOT, 'workflows', 'index.ts');
/** folders whose sources may end up in the workflow sandbox */
const SANDBOX_SOURCE_DIRS = ['workflows', 'protocol', 'search', 'common', 'activities', 'datasets', 'evaluation'];

const memo = new Map<string, Promise<{ code: string }>>();

function listTs(dir: string, out: string[]): void {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) listTs(p, out);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
}

/** Content hash of the sources a bundle of workflowsPath depends on. */
export function bundleKey(workflowsPath: string): string {
  const h = createHash('sha256');
  h.update(path.resolve(workflowsPath));
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- package.json is read, not imported as a module
  h.update(require('@temporalio/worker/package.json').version as string);
  const files: string[] = [];
  for (const d of SANDBOX_SOURCE_DIRS) listTs(path.join(PROJECT_ROOT, d), files);
  const wfDir = path.dirname(path.resolve(workflowsPath));
  if (!wfDir.startsWith(PROJECT_ROOT + path.sep + 'workflows')) listTs(wfDir, files);
  for (const f of files.sort()) h.update(f).update(fs.readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

export function getWorkflowBundle(workflowsPath = DEFAULT_WORKFLOWS_PATH, cacheDir?: string): Promise<{ code: string }> {
  const key = `${path.resolve(workflowsPath)}|${cacheDir ?? ''}`;
  let p = memo.get(key);
  if (!p) {
    p = buildOrLoad(workflowsPath, cacheDir);
    memo.set(key, p);
    p.catch(() => memo.delete(key));
  }
  return p;
}

async function buildOrLoad(workflowsPath: string, cacheDir?: string): Promise<{ code: string }> {
  const file = cacheDir ? path.join(cacheDir, `workflow-bundle-${bundleKey(workflowsPath)}.js`) : undefined;
  if (file && fs.existsSync(file)) return { code: fs.readFileSync(file, 'utf8') };
  const { bundleWorkflowCode, DefaultLogger } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  if (file) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, file); // atomic: a concurrent jest worker reads the old or the new file, never half
  }
  return { code };
}
