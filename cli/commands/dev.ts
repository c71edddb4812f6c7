/**
 * `smnas dev`: the local stack for campaigns: a Temporal dev server (SQLite under the state
 * folder, Web UI, the project's search attributes) and one control + one GPU worker. Reuses a
 * server (and workers) already running. Ctrl-C stops what it started; `--detach` leaves the stack
 * in the background and `smnas dev stop` stops it.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bool, int, parseFlags, printJson, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { PROJECT_ROOT, SMNAS_CLI, STATE_DIR } from '../../common/paths';
import {
  liveDevProcesses,
  logDir,
  logFile,
  readPidRecord,
  removePidRecord,
  stopDevProcesses,
  writePidRecord,
  type DevProcessName,
} from '../../worker/dev-processes';
import {
  devServerArgs,
  ensureSearchAttributes,
  pidAlive,
  portOpen,
  projectSearchAttributes,
  spawnDevServer,
  stopGroup,
  temporalHealthy,
  waitForTemporal,
} from '../../worker/temporal-server';

const NAME = 'smnas dev';

const HELP = `usage: smnas dev [--port 7233] [--ui-port 8233] [--ip 127.0.0.1] [--headless] [--no-workers]
                 [--gpus 0,1] [--state dir] [--detach] [--json]
       smnas dev stop [--state dir]
       smnas dev status [--state dir] [--json]

Starts the local campaign stack and waits until it is ready:
  1. a Temporal dev server ('temporal server start-dev' from .venv), persistent in
     <state>/temporal.sqlite, Web UI on --ui-port, the project's search attributes registered;
     a server already answering on --ip:--port is reused (missing search attributes are added);
  2. a control worker and a GPU worker ('smnas worker --queue control|gpu'), unless --no-workers
     or they already run from an earlier 'dev --detach'.
Logs: <state>/logs/{temporal,worker-control,worker-gpu}.log. Pid files: <state>/run/.
Ctrl-C (SIGINT/SIGTERM) stops everything this command started, workers first.
  --detach        start, print the addresses, and return; the stack keeps running
  --state dir     state folder (default $SMNAS_STATE or <repo>/.state)
  --gpus 0,1      devices of the GPU worker (default: detect; CPU-only = one slot)`;

interface DevSettings {
  ip: string;
  port: number;
  uiPort: number | null;
  stateDir: string;
  workers: boolean;
  gpus?: string;
  detach: boolean;
  json: boolean;
}

function settings(argv: string[]): { sub?: string; s: DevSettings } {
  const flags = parseFlags(NAME, argv, {
    port: { type: 'string' },
    'ui-port': { type: 'string' },
    ip: { type: 'string' },
    headless: { type: 'boolean' },
    'no-workers': { type: 'boolean' },
    gpus: { type: 'string' },
    state: { type: 'string' },
    detach: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const sub = flags.positionals[0];
  if (sub !== undefined && sub !== 'stop' && sub !== 'status')
    throw new UserError(`${NAME}: unknown sub-command '${sub}' (start with no sub-command, or 'stop' / 'status')`);
  if (flags.positionals.length > 1) throw new UserError(`${NAME}: unexpected argument '${flags.positionals[1]}'`);
  const port = int(NAME, flags, 'port', 7233)!;
  const uiPort = int(NAME, flags, 'ui-port', port + 1000)!;
  for (const [n, v] of [
    ['port', port],
    ['ui-port', uiPort],
  ] as const) {
    if (v < 1 || v > 65535) throw new UserError(`${NAME}: --${n} must be a TCP port (1-65535), got ${v}`);
  }
  return {
    sub,
    s: {
      ip: str(flags, 'ip') ?? '127.0.0.1',
      port,
      uiPort: bool(flags, 'headless') ? null : uiPort,
      stateDir: path.resolve(str(flags, 'state') ?? STATE_DIR),
      workers: !bool(flags, 'no-workers'),
      gpus: str(flags, 'gpus'),
      detach: bool(flags, 'detach'),
      json: bool(flags, 'json'),
    },
  };
}

/**
 * argv that runs this CLI for a child: the compiled entry point with this node when we run from
 * dist/ (no second rebuild check, and the pid is node's own), else bin/smnas.
 */
function cliArgv(): string[] {
  const compiled = path.join(PROJECT_ROOT, 'dist', 'cli', 'smnas.js');
  return __filename.endsWith('.js') && fs.existsSync(compiled) ? [process.execPath, compiled] : SMNAS_CLI;
}

/** The argv of a worker child. */
function workerArgv(queue: 'control' | 'gpu', s: DevSettings, address: string): string[] {
  return [...cliArgv(), 'worker', '--queue', queue, '--address', address, ...(queue === 'gpu' && s.gpus !== undefined ? ['--gpus', s.gpus] : [])];
}

/** Waits until a poller with this identity prefix serves the queue (the worker is really up). */
async function waitForPoller(
  address: string,
  queue: string,
  kind: 'workflow' | 'activity',
  identityPrefix: string,
  pid: number,
  timeoutMs: number,
  logPath: string,
) {
  const { Connection } = await import('@temporalio/client');
  const conn = await Connection.connect({ address });
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const r = await conn.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: queue, kind: 1 },
        taskQueueType: kind === 'workflow' ? 1 : 2,
      });
      if ((r.pollers ?? []).some((p) => (p.identity ?? '').startsWith(identityPrefix) && (p.identity ?? '').includes(`:${pid}`))) return;
      if (!pidAlive(pid)) throw new UserError(`${NAME}: the ${identityPrefix} worker exited during start-up; see ${logPath}`);
      await new Promise((r2) => setTimeout(r2, 500));
    }
    throw new UserError(`${NAME}: the ${identityPrefix} worker did not start polling within ${timeoutMs / 1000} s; see ${logPath}`);
  } finally {
    await conn.close();
  }
}

interface StackReport {
  address: string;
  ui: string | null;
  stateDir: string;
  database: string | null;
  reusedServer: boolean;
  started: DevProcessName[];
  reused: DevProcessName[];
  logs: string;
}

async function startStack(s: DevSettings): Promise<{ report: StackReport; started: { name: DevProcessName; pid: number }[] }> {
  const address = `${s.ip}:${s.port}`;
  fs.mkdirSync(logDir(s.stateDir), { recursive: true });
  const started: { name: DevProcessName; pid: number }[] = [];
  const reused: DevProcessName[] = [];
  const database = path.join(s.stateDir, 'temporal.sqlite');
  const searchAttributes = projectSearchAttributes();

  let reusedServer = false;
  if (await temporalHealthy(address)) {
    reusedServer = true;
    reused.push('temporal');
    log.info({ address }, 'reusing the Temporal server already running');
  } else if (await portOpen(address)) {
    // something listens but is not (yet) a healthy Temporal: give a starting server a moment
    await waitForTemporal(address, { timeoutMs: 15_000 }).catch(() => {
      throw new UserError(`${NAME}: ${address} is in use by something that is not a Temporal server; pick another --port`);
    });
    reusedServer = true;
    reused.push('temporal');
  } else {
    const opts = { port: s.port, ip: s.ip, uiPort: s.uiPort, dbFilename: database, searchAttributes };
    const serverLog = logFile(s.stateDir, 'temporal');
    let child;
    try {
      child = spawnDevServer(opts, { logFile: serverLog, detached: true });
    } catch (e) {
      throw new UserError(`${NAME}: ${(e as Error).message}`);
    }
    const pid = child.pid!;
    writePidRecord(s.stateDir, 'temporal', { pid, argv: ['temporal', ...devServerArgs(opts)], address, startedAt: new Date().toISOString() });
    started.push({ name: 'temporal', pid });
    log.info({ address, database, ui: s.uiPort && `http://localhost:${s.uiPort}`, log: serverLog }, 'starting the Temporal dev server');
    try {
      await waitForTemporal(address, { timeoutMs: 90_000, logFile: serverLog, isAlive: () => pidAlive(pid) });
    } catch (e) {
      await stopGroup(pid, 3000);
      removePidRecord(s.stateDir, 'temporal');
      throw new UserError(`${NAME}: ${(e as Error).message}`);
    }
  }

  // a server an earlier `dev --detach` of this state folder started: we know its Web UI port
  let reusedUi: string | null = null;
  const serverRec = readPidRecord(s.stateDir, 'temporal');
  if (reusedServer && serverRec && serverRec.address === address && liveDevProcesses(s.stateDir).some((p) => p.name === 'temporal')) {
    const i = serverRec.argv.indexOf('--ui-port');
    if (i >= 0) reusedUi = `http://localhost:${serverRec.argv[i + 1]}`;
  }

  if (reusedServer && searchAttributes.length > 0) {
    const { Connection } = await import('@temporalio/client');
    const conn = await Connection.connect({ address });
    try {
      const added = await ensureSearchAttributes(conn, 'default', searchAttributes);
      if (added.length > 0) log.info({ added }, 'registered missing search attributes on the reused server');
    } finally {
      await conn.close();
    }
  }

  if (s.workers) {
    const live = new Set(liveDevProcesses(s.stateDir).map((p) => p.name));
    const { CONTROL_QUEUE, GPU_QUEUE } = await import('../../protocol/campaign');
    for (const queue of ['control', 'gpu'] as const) {
      const name: DevProcessName = `worker-${queue}`;
      if (live.has(name) && readPidRecord(s.stateDir, name)?.address === address) {
        reused.push(name);
        continue;
      }
      const argv = workerArgv(queue, s, address);
      const out = fs.openSync(logFile(s.stateDir, name), 'a');
      const child = spawn(argv[0], argv.slice(1), {
        detached: true,
        stdio: ['ignore', out, out],
        env: { ...process.env, SMNAS_STATE: s.stateDir },
      });
      fs.closeSync(out);
      child.unref();
      writePidRecord(s.stateDir, name, { pid: child.pid!, argv, address, startedAt: new Date().toISOString() });
      started.push({ name, pid: child.pid! });
    }
    // both at once: the control worker bundles the workflows meanwhile
    await Promise.all(
      started
        .filter((p) => p.name !== 'temporal')
        .map((p) =>
          p.name === 'worker-control'
            ? waitForPoller(address, CONTROL_QUEUE, 'workflow', 'smnas-control@', p.pid, 180_000, logFile(s.stateDir, p.name))
            : waitForPoller(address, GPU_QUEUE, 'activity', 'smnas-gpu@', p.pid, 180_000, logFile(s.stateDir, p.name)),
        ),
    ).catch(async (e) => {
      for (const p of [...started].reverse()) {
        await stopGroup(p.pid, 5000);
        removePidRecord(s.stateDir, p.name);
      }
      throw e;
    });
  }

  const report: StackReport = {
    address,
    ui: reusedServer ? reusedUi : s.uiPort === null ? null : `http://localhost:${s.uiPort}`,
    stateDir: s.stateDir,
    database: reusedServer ? null : database,
    reusedServer,
    started: started.map((p) => p.name),
    reused,
    logs: logDir(s.stateDir),
  };
  return { report, started };
}

function printReport(r: StackReport, s: DevSettings): void {
  if (s.json) return printJson(r);
  const lines = [
    `Temporal: ${r.address}${r.reusedServer ? ' (reused, already running)' : ` (database ${r.database})`}`,
    r.ui ? `Web UI:   ${r.ui}` : r.reusedServer ? 'Web UI:   that of the running server (usually http://localhost:8233)' : 'Web UI:   off (--headless)',
    `workers:  ${s.workers ? ['worker-control', 'worker-gpu'].map((w) => `${w} ${r.started.includes(w as DevProcessName) ? 'started' : 'reused'}`).join(', ') : 'none (--no-workers)'}`,
    `logs:     ${r.logs}`,
    s.detach
      ? `stop with: bin/smnas dev stop${s.stateDir !== path.resolve(STATE_DIR) ? ` --state ${s.stateDir}` : ''}`
      : 'Ctrl-C stops what this command started.',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** Foreground: wait for Ctrl-C (or a started child dying), then stop what was started. */
async function supervise(s: DevSettings, started: { name: DevProcessName; pid: number }[]): Promise<number> {
  let exitCode = 0;
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info({ signal: sig }, 'stopping what dev started');
      clearInterval(timer);
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const timer = setInterval(() => {
      const dead = started.find((p) => !pidAlive(p.pid));
      if (dead) {
        log.error({ process: dead.name, log: logFile(s.stateDir, dead.name) }, `${dead.name} exited unexpectedly`);
        exitCode = 1;
        clearInterval(timer);
        resolve();
      }
    }, 1000); // not unref'd: this timer is what keeps a foreground `dev` alive until Ctrl-C
  });
  for (const name of ['worker-gpu', 'worker-control', 'temporal'] as DevProcessName[]) {
    const p = started.find((x) => x.name === name);
    if (!p) continue;
    await stopGroup(p.pid, name === 'temporal' ? 10_000 : 20_000);
    removePidRecord(s.stateDir, name);
  }
  return exitCode;
}

export const command: Command = {
  summary: 'start the local Temporal dev server and workers (reuses running ones); dev stop|status',
  help: HELP,
  async main(argv) {
    const { sub, s } = settings(argv);
    if (sub === 'stop') {
      const stopped = await stopDevProcesses(s.stateDir);
      if (s.json) printJson({ stopped });
      else
        process.stdout.write(stopped.length ? `stopped: ${stopped.join(', ')}\n` : `nothing to stop (no live pid files in ${path.join(s.stateDir, 'run')})\n`);
      return 0;
    }
    if (sub === 'status') {
      const address = `${s.ip}:${s.port}`;
      const live = liveDevProcesses(s.stateDir).map((p) => ({ name: p.name, pid: p.rec.pid, address: p.rec.address, startedAt: p.rec.startedAt }));
      const healthy = await temporalHealthy(address);
      if (s.json) printJson({ address, healthy, processes: live });
      else {
        process.stdout.write(`Temporal at ${address}: ${healthy ? 'up' : 'down'}\n`);
        for (const p of live) process.stdout.write(`  ${p.name.padEnd(15)} pid ${p.pid}  since ${p.startedAt}\n`);
      }
      return healthy ? 0 : 1;
    }
    const { report, started } = await startStack(s);
    printReport(report, s);
    if (s.detach) return 0;
    if (started.length === 0) {
      process.stdout.write('everything was already running; nothing for this command to supervise.\n');
      return 0;
    }
    return supervise(s, started);
  },
};
