/** jest globalTeardown: stops the dev server if a test started one, and removes its temp folder. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stopGroup } from '../../worker/temporal-server';

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.SMNAS_TEST_TEMPORAL_DIR;
  if (!dir || process.env.SMNAS_TEST_TEMPORAL_EXTERNAL) return;
  const pidFile = path.join(dir, 'server.pid');
  if (fs.existsSync(pidFile)) await stopGroup(Number(fs.readFileSync(pidFile, 'utf8')), 5000);
  if (!process.env.SMNAS_TEST_KEEP_TEMPORAL_LOG) fs.rmSync(dir, { recursive: true, force: true });
}
