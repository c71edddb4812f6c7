/**
 * jest globalSetup: reserves ONE Temporal dev server for the whole run, but does not start it.
 * The first test that calls ensureTestServer()/connectTestClient() starts it (lock file), so pure
 * unit-test runs pay nothing. Tests find it through SMNAS_TEST_TEMPORAL_ADDRESS; set that variable
 * yourself to run the workflow tests against a server you already have.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../worker/temporal-server';

export default async function globalSetup(): Promise<void> {
  if (process.env.SMNAS_TEST_TEMPORAL_ADDRESS) {
    process.env.SMNAS_TEST_TEMPORAL_EXTERNAL = '1';
    return;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-jest-temporal-'));
  const port = await freePort();
  process.env.SMNAS_TEST_TEMPORAL_ADDRESS = `127.0.0.1:${port}`;
  process.env.SMNAS_TEST_TEMPORAL_DIR = dir;
  process.env.SMNAS_TEST_JEST_PID = String(process.pid);
}
