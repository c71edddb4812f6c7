/**
 * `smnas dev` against real servers: it reuses the server that is already up (the harness's), it
 * starts one with a SQLite file when none answers, and `dev stop` stops exactly what it started.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { command as dev } from '../../cli/commands/dev';
import { command as worker } from '../../cli/commands/worker';
import { freePort, ensureSearchAttributes, pidAlive, temporalHealthy } from '../../worker/temporal-server';
import { readPidRecord } from '../../worker/dev-processes';
import { closeTestClients, connectTestClient, ensureTestServer, testNamespace } from '../support/temporal-server';

afterAll(closeTestClients);

/** Runs a command in-process and returns what it printed on stdout. */
async function run(cmd: typeof dev, argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  try {
    const code = await cmd.main(argv);
    return { code, out };
  } finally {
    spy.mockRestore();
  }
}

const tmpState = () => fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-dev-test-'));

test('dev reuses a server that is already running and starts nothing', async () => {
  const address = await ensureTestServer();
  const port = address.split(':').pop()!;
  const state = tmpState();
  const { code, out } = await run(dev, ['--port', port, '--no-workers', '--detach', '--json', '--state', state]);
  expect(code).toBe(0);
  const report = JSON.parse(out);
  expect(report).toMatchObject({ address, reusedServer: true, started: [], reused: ['temporal'] });
  expect(fs.existsSync(path.join(state, 'temporal.sqlite'))).toBe(false);
  expect(readPidRecord(state, 'temporal')).toBeUndefined();
  fs.rmSync(state, { recursive: true, force: true });
});

test('missing search attributes are added to a reused server, once', async () => {
  const client = await connectTestClient();
  const name = `SmnasTestAttr${process.pid}`;
  expect(await ensureSearchAttributes(client.connection, testNamespace, [{ name, type: 'Keyword' }])).toEqual([name]);
  expect(await ensureSearchAttributes(client.connection, testNamespace, [{ name, type: 'Keyword' }])).toEqual([]);
});

test('dev starts a persistent server when none answers, and dev stop stops it', async () => {
  const port = await freePort();
  const state = tmpState();
  const { code, out } = await run(dev, ['--port', String(port), '--headless', '--no-workers', '--detach', '--json', '--state', state]);
  expect(code).toBe(0);
  const report = JSON.parse(out);
  expect(report).toMatchObject({ reusedServer: false, started: ['temporal'], database: path.join(state, 'temporal.sqlite') });
  const rec = readPidRecord(state, 'temporal')!;
  try {
    expect(pidAlive(rec.pid)).toBe(true);
    expect(await temporalHealthy(`127.0.0.1:${port}`)).toBe(true);
    expect(fs.existsSync(path.join(state, 'temporal.sqlite'))).toBe(true);
    const stop = await run(dev, ['stop', '--json', '--state', state]);
    expect(JSON.parse(stop.out)).toEqual({ stopped: ['temporal'] });
    expect(pidAlive(rec.pid)).toBe(false);
    expect(readPidRecord(state, 'temporal')).toBeUndefined();
  } finally {
    if (pidAlive(rec.pid)) process.kill(-rec.pid, 'SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  }
});

test('foreground dev stays up until Ctrl-C, then stops the server it started', async () => {
  const port = await freePort();
  const state = tmpState();
  const others = process.listeners('SIGINT');
  process.removeAllListeners('SIGINT'); // only dev's handler may see the simulated Ctrl-C
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  try {
    const running = dev.main(['--port', String(port), '--headless', '--no-workers', '--state', state]);
    let settled = false;
    running.finally(() => (settled = true)).catch(() => undefined);
    while (!readPidRecord(state, 'temporal') || !(await temporalHealthy(`127.0.0.1:${port}`))) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1500));
    expect(settled).toBe(false); // still supervising
    const pid = readPidRecord(state, 'temporal')!.pid;
    process.emit('SIGINT', 'SIGINT');
    expect(await running).toBe(0);
    expect(pidAlive(pid)).toBe(false);
    expect(readPidRecord(state, 'temporal')).toBeUndefined();
    expect(out).toMatch(/Ctrl-C stops what this command started/);
  } finally {
    spy.mockRestore();
    for (const l of others) process.on('SIGINT', l as NodeJS.SignalsListener);
    const rec = readPidRecord(state, 'temporal');
    if (rec && pidAlive(rec.pid)) process.kill(-rec.pid, 'SIGKILL');
    fs.rmSync(state, { recursive: true, force: true });
  }
});

describe('argument errors are one-line user errors', () => {
  const commands = { dev, worker };
  test.each([
    ['dev', ['--port', 'abc'], /--port must be an integer, got 'abc'/],
    ['dev', ['--port', '70000'], /--port must be a TCP port/],
    ['dev', ['restart'], /unknown sub-command 'restart'/],
    ['dev', ['--bogus'], /Unknown option '--bogus'/],
    ['worker', [], /--queue must be 'control', 'gpu' or 'latency'/],
    ['worker', ['--queue', 'gpu', '--gpus', '0,a'], /'a' is not a GPU index/],
    ['worker', ['--queue', 'control', '--gpus', '0'], /--gpus only applies to --queue gpu/],
    ['worker', ['--queue', 'gpu', '--address', 'nohostport'], /address: must be host:port/],
    ['worker', ['--queue', 'gpu', '--shutdown-grace', 'soon'], /--shutdown-grace must be seconds/],
    ['worker', ['--queue', 'control', '--node', '1'], /--node takes a node index 0\.\.63 and applies to --queue gpu, got '1'/],
    ['worker', ['--queue', 'gpu', '--node', 'x'], /--node takes a node index/],
  ] as const)('smnas %s %j', async (cmd, argv, message) => {
    await expect(commands[cmd].main([...argv])).rejects.toMatchObject({ name: 'UserError', message: expect.stringMatching(message) });
  });
});
