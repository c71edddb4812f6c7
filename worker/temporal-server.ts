/**
 * Starting and probing a `temporal server start-dev` (the Temporal CLI installed by
 * scripts/setup.sh into .venv/bin/temporal). Shared by `bin/smnas dev` and the jest harness
 * (test/support/temporal-server.ts), so both register the same search attributes the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { TEMPORAL_BIN } from '../common/paths';

/** A custom search attribute as the CLI's `--search-attribute Name=Type` wants it. */
export interface SearchAttributeSpec {
  name: string;
  type: string;
}

/** The CLI's type names; the SDK spells them KEYWORD, INT, KEYWORD_LIST... so accept both. */
const CLI_TYPES: Record<string, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
  KEYWORDLIST: 'KeywordList',
};

export function cliSearchAttributeType(type: string): string {
  const t = CLI_TYPES[type.replace(/^INDEXED_VALUE_TYPE_/, '').toUpperCase()];
  if (!t) throw new Error(`unknown search attribute type '${type}'`);
  return t;
}

/**
 * The project's search attributes, from workflows/api.ts (owned by the campaign engineer). Loaded
 * lazily so that this module works before that file exists and does not pull workflow code into
 * the CLI's start-up path.
 */
export function projectSearchAttributes(): SearchAttributeSpec[] {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const api = require('../workflows/api') as { SEARCH_ATTRIBUTES?: unknown };
    const list = api.SEARCH_ATTRIBUTES;
    if (!Array.isArray(list)) return [];
    return list.map((a: { name: string; type?: string; valueType?: string }) => ({
      name: a.name,
      type: String(a.type ?? a.valueType),
    }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /workflows[\\/]api/.test(String((e as Error).message))) return [];
    throw e;
  }
}

export interface DevServerOptions {
  /** frontend gRPC port */
  port: number;
  /** bind address of the frontend (and UI) */
  ip?: string;
  /** Web UI port; null runs headless */
  uiPort: number | null;
  /** SQLite file for persistence; undefined keeps everything in memory */
  dbFilename?: string;
  /** extra namespaces to create besides `default` */
  namespaces?: string[];
  searchAttributes: SearchAttributeSpec[];
  /** `--dynamic-config-value K=V` pairs, e.g. raised history limits for a benchmark */
  dynamicConfig?: Record<string, unknown>;
}

/** argv (after the binary) of `temporal server start-dev` for these options. Pure. */
export function devServerArgs(o: DevServerOptions): string[] {
  const args = ['server', 'start-dev', '--port', String(o.port), '--ip', o.ip ?? '127.0.0.1', '--log-level', 'warn'];
  if (o.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort), '--ui-disable-news-fetch');
  if (o.dbFilename) args.push('--db-filename', o.dbFilename);
  for (const ns of o.namespaces ?? []) if (ns !== 'default') args.push('--namespace', ns);
  for (const sa of o.searchAttributes) args.push('--search-attribute', `${sa.name}=${cliSearchAttributeType(sa.type)}`);
  for (const [k, v] of Object.entries(o.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);
  return args;
}

export interface SpawnServerOptions {
  /** where the server's stdout/stderr go */
  logFile: string;
  /** own process group, not killed with the parent (for `dev --detach` and the jest harness) */
  detached?: boolean;
  /** when set, a tiny shell watchdog stops the server once this pid is gone (jest killed hard) */
  stopWhenPidExits?: number;
}

export function spawnDevServer(o: DevServerOptions, s: SpawnServerOptions): ChildProcess {
  if (!fs.existsSync(TEMPORAL_BIN)) {
    throw new Error(`Temporal CLI not found at ${TEMPORAL_BIN}: run 'bash scripts/setup.sh' (or set SMNAS_TEMPORAL_BIN)`);
  }
  const out = fs.openSync(s.logFile, 'a');
  const args = devServerArgs(o);
  let child: ChildProcess;
  if (s.stopWhenPidExits !== undefined) {
    // bash runs the server in the background and polls the owner once a second: cheap, and it
    // keeps an aborted test run from leaving a server behind on a shared machine.
    const script =
      '"$@" & srv=$!; trap \'kill $srv 2>/dev/null; wait $srv; exit 0\' TERM INT; ' +
      'while kill -0 "$OWNER" 2>/dev/null && kill -0 $srv 2>/dev/null; do sleep 1; done; kill $srv 2>/dev/null; wait $srv';
    child = spawn('bash', ['-c', script, 'smnas-temporal-watchdog', TEMPORAL_BIN, ...args], {
      detached: s.detached ?? true,
      stdio: ['ignore', out, out],
      env: { ...process.env, OWNER: String(s.stopWhenPidExits) },
    });
  } else {
    child = spawn(TEMPORAL_BIN, args, { detached: s.detached ?? false, stdio: ['ignore', out, out] });
  }
  fs.closeSync(out);
  if (s.detached) child.unref();
  return child;
}

export { freePort } from '../common/net';

/** host:port -> [host, port] */
export function splitAddress(address: string): [string, number] {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw new Error(`address '${address}' is not host:port`);
  return [m[1].replace(/^\[|\]$/g, ''), Number(m[2])];
}

/** True when something accepts TCP connections on address (cheap first probe). */
export function portOpen(address: string, timeoutMs = 1000): Promise<boolean> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * True when a Temporal frontend answers at address and the namespace exists (start-dev opens the
 * port a moment before the namespace is usable, so probe the namespace, not just the port).
 */
export async function temporalHealthy(address: string, namespace = 'default'): Promise<boolean> {
  if (!(await portOpen(address))) return false;
  const { Connection } = await import('@temporalio/client');
  let conn: Awaited<ReturnType<typeof Connection.connect>> | undefined;
  try {
    conn = await Connection.connect({ address, connectTimeout: 2000 });
    await conn.workflowService.describeNamespace({ namespace });
    return true;
  } catch {
    return false;
  } finally {
    await conn?.close().catch(() => undefined);
  }
}

/** Polls until the server is healthy; throws naming the log file when it does not come up. */
export async function waitForTemporal(
  address: string,
  opts: { namespace?: string; timeoutMs?: number; logFile?: string; isAlive?: () => boolean } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (Date.now() < deadline) {
    if (await temporalHealthy(address, opts.namespace)) return;
    if (opts.isAlive && !opts.isAlive()) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const tail = opts.logFile && fs.existsSync(opts.logFile) ? ` (last log lines: ${tailOf(opts.logFile, 5)})` : '';
  throw new Error(`Temporal server at ${address} did not become healthy${tail}`);
}

function tailOf(file: string, lines: number): string {
  return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join(' | ');
}

/** Sends sig to a whole process group (falls back to the pid), ignoring "no such process". */
export function killGroup(pid: number, sig: NodeJS.Signals = 'SIGTERM'): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    try {
      process.kill(pid, sig);
      return true;
    } catch {
      return false;
    }
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGTERM the group, wait up to graceMs, then SIGKILL. */
export async function stopGroup(pid: number, graceMs = 5000): Promise<void> {
  if (!killGroup(pid, 'SIGTERM')) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!pidAlive(pid)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  killGroup(pid, 'SIGKILL');
}

const INDEXED_VALUE_TYPE: Record<string, number> = { Text: 1, Keyword: 2, Int: 3, Double: 4, Bool: 5, Datetime: 6, KeywordList: 7 };

/**
 * Registers the search attributes a server lacks (a reused server started without them, or a
 * production namespace). Returns the names it added. Needs operator rights on the cluster.
 */
export async function ensureSearchAttributes(
  connection: {
    operatorService: {
      listSearchAttributes(r: object): Promise<{ customAttributes?: Record<string, unknown> | null }>;
      addSearchAttributes(r: object): Promise<unknown>;
    };
  },
  namespace: string,
  wanted: SearchAttributeSpec[],
): Promise<string[]> {
  const res = await connection.operatorService.listSearchAttributes({ namespace });
  const have = new Set(Object.keys(res.customAttributes ?? {}));
  const missing = wanted.filter((a) => !have.has(a.name));
  if (missing.length === 0) return [];
  const searchAttributes: Record<string, number> = {};
  for (const a of missing) searchAttributes[a.name] = INDEXED_VALUE_TYPE[cliSearchAttributeType(a.type)];
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
  return missing.map((a) => a.name);
}
