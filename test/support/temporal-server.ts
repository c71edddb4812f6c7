/**
 * Test harness for workflow tests against a REAL `temporal server start-dev` (the binary set-up
 * installs). One server serves the whole jest run: global-setup.ts reserves an address, and the
 * first test that needs it starts it here (a lock file makes sure only one jest worker does);
 * global-teardown.ts stops it. Pure unit-test runs never start it.
 *
 *   const client = await connectTestClient();           // a Client on testNamespace
 *   await withTestWorker({ activities: mocked }, async ({ client, taskQueue }) => {
 *     await client.workflow.execute(smnasSearch, { taskQueue, workflowId: uniqueId('wf'), args: [...] });
 *   });
 *   afterAll(closeTestClients);
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { freePort, projectSearchAttributes, spawnDevServer, waitForTemporal } from '../../worker/temporal-server';
import { DEFAULT_WORKFLOWS_PATH, getWorkflowBundle } from '../../worker/bundle';

/** Worker logs at WARN so test output stays readable (SMNAS_TEST_TEMPORAL_LOG=INFO for more). */
function quietRuntime(): void {
  try {
    Runtime.install({ logger: new DefaultLogger((process.env.SMNAS_TEST_TEMPORAL_LOG as 'INFO') ?? 'WARN') });
  } catch {
    // already installed by this process (another helper or the test itself): keep theirs
  }
}

export const testNamespace = process.env.SMNAS_TEST_TEMPORAL_NAMESPACE ?? 'default';

let counter = 0;
/** A name unique across jest workers and runs: prefix-pid-n-random. */
export function uniqueId(prefix: string): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}
export const uniqueTaskQueue = (prefix = 'test-tq') => uniqueId(prefix);

/** Fills in the reservation when jest ran without global-setup.ts (e.g. another config). */
async function reservation(): Promise<{ address: string; dir?: string; owner: number; external: boolean }> {
  if (!process.env.SMNAS_TEST_TEMPORAL_ADDRESS) {
    process.env.SMNAS_TEST_TEMPORAL_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-jest-temporal-'));
    process.env.SMNAS_TEST_TEMPORAL_ADDRESS = `127.0.0.1:${await freePort()}`;
    process.env.SMNAS_TEST_JEST_PID = String(process.pid);
  }
  return {
    address: process.env.SMNAS_TEST_TEMPORAL_ADDRESS,
    dir: process.env.SMNAS_TEST_TEMPORAL_DIR,
    owner: Number(process.env.SMNAS_TEST_JEST_PID ?? process.pid),
    external: Boolean(process.env.SMNAS_TEST_TEMPORAL_EXTERNAL) || !process.env.SMNAS_TEST_TEMPORAL_DIR,
  };
}

let ready: Promise<string> | undefined;

/** Starts the run's dev server if no jest worker has yet; resolves to its address once healthy. */
export function ensureTestServer(): Promise<string> {
  ready ??= (async () => {
    const r = await reservation();
    if (r.external || !r.dir) {
      await waitForTemporal(r.address, { namespace: testNamespace, timeoutMs: 30_000 });
      return r.address;
    }
    const logFile = path.join(r.dir, 'server.log');
    let fd: number | undefined;
    try {
      fd = fs.openSync(path.join(r.dir, 'start.lock'), 'wx');
    } catch {
      fd = undefined; // another jest worker starts it
    }
    if (fd !== undefined) {
      fs.closeSync(fd);
      const port = Number(r.address.split(':').pop());
      const child = spawnDevServer(
        {
          port,
          uiPort: null,
          namespaces: [testNamespace],
          searchAttributes: projectSearchAttributes(),
        },
        { logFile, detached: true, stopWhenPidExits: r.owner },
      );
      fs.writeFileSync(path.join(r.dir, 'server.pid'), String(child.pid));
    }
    await waitForTemporal(r.address, { namespace: testNamespace, timeoutMs: 60_000, logFile });
    return r.address;
  })();
  ready.catch(() => (ready = undefined));
  return ready;
}

const openConnections = new Set<{ close(): Promise<void> }>();

/** A Client of the test server (starting it if needed). Close with closeTestClients(). */
export async function connectTestClient(): Promise<Client> {
  const address = await ensureTestServer();
  const connection = await Connection.connect({ address });
  openConnections.add(connection);
  return new Client({ connection, namespace: testNamespace });
}

/** Closes every connection this test file opened (call in afterAll, or jest waits for them). */
export async function closeTestClients(): Promise<void> {
  const all = [...openConnections];
  openConnections.clear();
  await Promise.all(all.map((c) => c.close().catch(() => undefined)));
}

export interface TestWorkerOptions {
  /** activities to register (mocked ones in workflow tests; label them as mocks) */
  activities?: object;
  /** workflows to bundle; default workflows/index.ts; false for an activity-only worker */
  workflowsPath?: string | false;
  /** default: a fresh unique queue */
  taskQueue?: string;
  /** anything else Worker.create accepts (identity, concurrency caps...) */
  workerOptions?: Partial<WorkerOptions>;
}

export interface TestWorker {
  worker: Worker;
  client: Client;
  taskQueue: string;
  /** the worker's run() promise (rejects if the worker fails) */
  running: Promise<void>;
  /** graceful shutdown; resolves when the worker has stopped */
  stop(): Promise<void>;
}

/** Starts a worker on the test server; you stop it. For fault tests that kill/restart workers. */
export async function startTestWorker(opts: TestWorkerOptions = {}): Promise<TestWorker> {
  const address = await ensureTestServer();
  const taskQueue = opts.taskQueue ?? uniqueTaskQueue();
  quietRuntime();
  const connection = await NativeConnection.connect({ address });
  const workflowsPath = opts.workflowsPath === undefined ? DEFAULT_WORKFLOWS_PATH : opts.workflowsPath;
  const worker = await Worker.create({
    connection,
    namespace: testNamespace,
    taskQueue,
    activities: opts.activities,
    ...(workflowsPath ? { workflowBundle: await getWorkflowBundle(workflowsPath, process.env.SMNAS_TEST_TEMPORAL_DIR) } : {}),
    ...opts.workerOptions,
  });
  const client = await connectTestClient();
  const running = worker.run();
  running.catch(() => undefined); // surfaced through stop() / the test's own await
  return {
    worker,
    client,
    taskQueue,
    running,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/** Runs fn while a worker serves a fresh task queue; the worker stops when fn settles. */
export async function withTestWorker<T>(opts: TestWorkerOptions, fn: (env: { client: Client; taskQueue: string; worker: Worker }) => Promise<T>): Promise<T> {
  const w = await startTestWorker(opts);
  try {
    return await fn({ client: w.client, taskQueue: w.taskQueue, worker: w.worker });
  } finally {
    await w.stop();
  }
}
