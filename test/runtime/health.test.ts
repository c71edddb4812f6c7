/** worker/health.ts: the probes' logic (pure) and the HTTP endpoint on a real socket. */
import { parseHealthListen, startHealthServer, workerHealth, type WorkerHealth } from '../../worker/health';

test('liveness and readiness of each worker state', () => {
  const ctl = { pollsWorkflows: true };
  expect(workerHealth({ runState: 'INITIALIZED' }, ctl)).toMatchObject({ live: true, ready: false });
  expect(workerHealth({ runState: 'RUNNING', workflowPollerState: 'POLLING', activityPollerState: 'POLLING' }, ctl)).toMatchObject({
    live: true,
    ready: true,
  });
  // draining on SIGTERM: alive (let it finish), not ready (no new work routed to it)
  expect(workerHealth({ runState: 'DRAINING' }, ctl)).toMatchObject({ live: true, ready: false });
  expect(workerHealth({ runState: 'FAILED' }, ctl)).toMatchObject({ live: false, ready: false });
  expect(workerHealth({ runState: 'STOPPED' }, ctl)).toMatchObject({ live: false, ready: false });
  // a failed poller: restart the process
  expect(workerHealth({ runState: 'RUNNING', workflowPollerState: 'FAILED', activityPollerState: 'POLLING' }, ctl)).toMatchObject({
    live: false,
    ready: false,
  });
  // a GPU worker has no workflow poller: its state does not count
  expect(
    workerHealth({ runState: 'RUNNING', workflowPollerState: 'SHUTDOWN', activityPollerState: 'POLLING', numRunningActivities: 1 }, { pollsWorkflows: false }),
  ).toEqual({
    live: true,
    ready: true,
    state: 'RUNNING',
    pollers: { workflow: 'SHUTDOWN', activity: 'POLLING' },
    activities: 1,
  });
});

test('--health-port accepts a port or host:port', () => {
  expect(parseHealthListen('8088', '--health-port')).toEqual({ host: '0.0.0.0', port: 8088 });
  expect(parseHealthListen('127.0.0.1:9', '--health-port')).toEqual({ host: '127.0.0.1', port: 9 });
  expect(parseHealthListen('[::1]:9', '--health-port')).toEqual({ host: '::1', port: 9 });
  expect(() => parseHealthListen('http', 'SMNAS_HEALTH_PORT')).toThrow("SMNAS_HEALTH_PORT: expected a port or host:port, got 'http'");
  expect(() => parseHealthListen('70000', '--health-port')).toThrow('--health-port');
});

test('the endpoint answers 200 / 503 as the worker state changes', async () => {
  let state: WorkerHealth = workerHealth({ runState: 'INITIALIZED' }, { pollsWorkflows: false, identity: 'smnas-gpu@h:1' });
  const srv = await startHealthServer({ host: '127.0.0.1', port: 0 }, () => state);
  try {
    const get = async (p: string) => {
      const r = await fetch(`http://127.0.0.1:${srv.port}${p}`);
      return { status: r.status, body: r.status === 404 ? await r.text() : ((await r.json()) as WorkerHealth) };
    };
    expect(await get('/livez')).toMatchObject({ status: 200, body: { live: true, state: 'INITIALIZED', identity: 'smnas-gpu@h:1' } });
    expect((await get('/readyz')).status).toBe(503);
    state = workerHealth({ runState: 'RUNNING', activityPollerState: 'POLLING' }, { pollsWorkflows: false });
    expect((await get('/readyz')).status).toBe(200);
    expect((await get('/healthz')).status).toBe(200);
    state = workerHealth({ runState: 'FAILED' }, { pollsWorkflows: false });
    expect((await get('/livez')).status).toBe(503);
    expect((await get('/nope')).status).toBe(404);
  } finally {
    await srv.close();
  }
});
