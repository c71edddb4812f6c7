/**
 * The worker's own health over HTTP, for Kubernetes probes and load balancers
 * (`bin/smnas worker --health-port 8088`, environment SMNAS_HEALTH_PORT):
 *
 *   GET /livez   200 while the worker is alive (initialising, running or draining), 503 once it
 *                failed or stopped: restart the process
 *   GET /readyz  200 while it is running and its pollers poll, 503 otherwise (starting up, draining
 *                on SIGTERM, a poller failed): take it out of rotation
 *   GET /healthz the same as /readyz
 *
 * The body is JSON: { live, ready, state, pollers, activities, identity }. No framework: node:http.
 */
import * as http from 'node:http';

/** What the probes read of a worker (a subset of @temporalio/worker's WorkerStatus). */
export interface WorkerHealthInput {
  runState: 'INITIALIZED' | 'RUNNING' | 'STOPPED' | 'STOPPING' | 'DRAINING' | 'DRAINED' | 'FAILED';
  workflowPollerState?: 'POLLING' | 'SHUTDOWN' | 'FAILED';
  activityPollerState?: 'POLLING' | 'SHUTDOWN' | 'FAILED';
  numRunningActivities?: number;
}

export interface WorkerHealth {
  live: boolean;
  ready: boolean;
  state: string;
  pollers: { workflow?: string; activity?: string };
  activities: number;
  identity?: string;
}

/** Pure: liveness and readiness of a worker status. `pollsWorkflows`: a control worker's workflow poller counts. */
export function workerHealth(s: WorkerHealthInput, o: { pollsWorkflows: boolean; identity?: string }): WorkerHealth {
  const live = !['FAILED', 'STOPPED'].includes(s.runState);
  const pollerFailed = s.activityPollerState === 'FAILED' || (o.pollsWorkflows && s.workflowPollerState === 'FAILED');
  return {
    live: live && !pollerFailed,
    ready: s.runState === 'RUNNING' && !pollerFailed,
    state: s.runState,
    pollers: { workflow: s.workflowPollerState, activity: s.activityPollerState },
    activities: s.numRunningActivities ?? 0,
    ...(o.identity ? { identity: o.identity } : {}),
  };
}

/** Parses --health-port / SMNAS_HEALTH_PORT: a port number, or host:port. */
export function parseHealthListen(spec: string, what: string): { host: string; port: number } {
  const m = /^(?:(\[[^\]]+\]|[^:]+):)?(\d+)$/.exec(spec.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${what}: expected a port or host:port, got '${spec}'`);
  return { host: m[1]?.replace(/^\[|\]$/g, '') ?? '0.0.0.0', port };
}

/** Serves the probes; resolves once listening (the bound port is in `.port`). */
export async function startHealthServer(listen: { host: string; port: number }, health: () => WorkerHealth): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let h: WorkerHealth;
    try {
      h = health();
    } catch (e) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ live: false, ready: false, error: (e as Error).message }));
      return;
    }
    const ok = url === '/livez' ? h.live : url === '/readyz' || url === '/healthz' ? h.ready : null;
    if (ok === null) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /livez, /readyz or /healthz\n');
      return;
    }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(h) + '\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : listen.port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
