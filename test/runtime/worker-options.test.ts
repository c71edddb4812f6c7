/** Worker settings from flags and environment: connection, TLS, devices, the plan of each worker kind. */
import * as createWorkerModule from '../../worker/create-worker';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseFlags } from '../../common/cli';
import { UserError } from '../../common/errors';
import { CONNECTION_FLAGS, connectOptions, resolveConnectionSettings } from '../../worker/connection';
import { parseGpuList, resolveDevices, resolveTrainerThreads, trainerThreads } from '../../worker/devices';
import { planWorker } from '../../worker/create-worker';

const flags = (...argv: string[]) => parseFlags('smnas worker', argv, CONNECTION_FLAGS, false);

describe('connection settings', () => {
  test('defaults to the local dev server', () => {
    const s = resolveConnectionSettings(flags(), {});
    expect(s).toMatchObject({ address: 'localhost:7233', namespace: 'default', tls: false });
    expect(connectOptions(s)).toEqual({ address: 'localhost:7233' });
  });

  test('environment names are the Temporal CLI ones; flags win over them', () => {
    const env = { TEMPORAL_ADDRESS: 'temporal.prod:7233', TEMPORAL_NAMESPACE: 'smnas', TEMPORAL_API_KEY: 'k1' };
    const fromEnv = resolveConnectionSettings(flags(), env);
    expect(fromEnv).toMatchObject({ address: 'temporal.prod:7233', namespace: 'smnas', apiKey: 'k1' });
    // an API key turns TLS on (Temporal Cloud) even without certificate files
    expect(connectOptions(fromEnv)).toEqual({ address: 'temporal.prod:7233', tls: {}, apiKey: 'k1' });
    const fromFlags = resolveConnectionSettings(flags('--address', 'other:7000', '--namespace', 'ns2'), env);
    expect(fromFlags).toMatchObject({ address: 'other:7000', namespace: 'ns2', apiKey: 'k1' });
  });

  test('TLS files are read into the SDK options', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-tls-'));
    for (const f of ['c.pem', 'k.pem', 'ca.pem']) fs.writeFileSync(path.join(dir, f), `PEM ${f}`);
    const s = resolveConnectionSettings(
      flags('--tls-cert', path.join(dir, 'c.pem'), '--tls-key', path.join(dir, 'k.pem'), '--tls-ca', path.join(dir, 'ca.pem'), '--tls-server-name', 'srv'),
      {},
    );
    const o = connectOptions(s) as { tls: { clientCertPair: { crt: Buffer; key: Buffer }; serverRootCACertificate: Buffer; serverNameOverride: string } };
    expect(o.tls.clientCertPair.crt.toString()).toBe('PEM c.pem');
    expect(o.tls.clientCertPair.key.toString()).toBe('PEM k.pem');
    expect(o.tls.serverRootCACertificate.toString()).toBe('PEM ca.pem');
    expect(o.tls.serverNameOverride).toBe('srv');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('bad settings are one-line user errors naming the field or file', () => {
    expect(() => resolveConnectionSettings(flags('--address', 'nohost'), {})).toThrow(/address: must be host:port/);
    expect(() => resolveConnectionSettings(flags('--tls-cert', 'a.pem'), {})).toThrow(/tlsKeyFile: .*--tls-key/);
    const s = resolveConnectionSettings(flags('--tls-ca', '/nonexistent/ca.pem'), {});
    expect(() => connectOptions(s)).toThrow(UserError);
    expect(() => connectOptions(s)).toThrow(/TLS CA file \/nonexistent\/ca.pem: ENOENT/);
    expect(() => flags('--adress', 'x:1')).toThrow(/Unknown option '--adress'/);
  });
});

describe('devices of a GPU worker', () => {
  test('--gpus lists GPU indexes; cpu/empty means a CPU-only host with one slot', () => {
    expect(parseGpuList('0,1')).toEqual(['cuda:0', 'cuda:1']);
    expect(parseGpuList('cpu')).toEqual(['cpu']);
    expect(parseGpuList('')).toEqual(['cpu']);
    expect(() => parseGpuList('0,x')).toThrow(/'x' is not a GPU index/);
    expect(() => parseGpuList('1,1')).toThrow(/GPU 1 is listed twice/);
  });

  test('flag, then SMNAS_GPUS, then CUDA_VISIBLE_DEVICES, then detection', () => {
    const none = () => 0;
    expect(resolveDevices('2', { SMNAS_GPUS: '0,1' }, none)).toEqual(['cuda:2']);
    expect(resolveDevices(undefined, { SMNAS_GPUS: '0,1' }, none)).toEqual(['cuda:0', 'cuda:1']);
    expect(resolveDevices(undefined, { CUDA_VISIBLE_DEVICES: '3,5' }, none)).toEqual(['cuda:0', 'cuda:1']);
    expect(resolveDevices(undefined, { CUDA_VISIBLE_DEVICES: '' }, () => 4)).toEqual(['cpu']);
    expect(resolveDevices(undefined, {}, () => 2)).toEqual(['cuda:0', 'cuda:1']);
    expect(resolveDevices(undefined, {}, none)).toEqual(['cpu']);
  });
});

describe('trainer threads of a GPU worker', () => {
  test('cores divided by the devices served, at least one; the flag, then SMNAS_TRAINER_THREADS override', () => {
    expect(trainerThreads(64, 8)).toBe(8);
    expect(trainerThreads(16, 3)).toBe(5);
    expect(trainerThreads(2, 8)).toBe(1);
    expect(trainerThreads(16, 1)).toBe(16);
    expect(trainerThreads(16, 4, '3')).toBe(3);
    expect(() => trainerThreads(16, 4, '0')).toThrow(/--trainer-threads: expected a positive number of threads, got '0'/);
    expect(() => trainerThreads(16, 4, 'many', 'SMNAS_TRAINER_THREADS')).toThrow(UserError);
    expect(resolveTrainerThreads('2', { SMNAS_TRAINER_THREADS: '7' }, 1)).toBe(2);
    expect(resolveTrainerThreads(undefined, { SMNAS_TRAINER_THREADS: '7' }, 1)).toBe(7);
    expect(resolveTrainerThreads(undefined, {}, 1)).toBe(os.availableParallelism());
  });
});

describe('worker plans', () => {
  const host = { hostname: 'node7', pid: 42, trainerVersion: 'smnas-trainer_0.1' };
  test('a gpu worker takes one activity slot per device and says what it is', () => {
    const p = planWorker({ queue: 'gpu', devices: ['cuda:0', 'cuda:1'] }, host);
    expect(p).toMatchObject({ taskQueue: 'smnas-gpu', maxConcurrentActivityTaskExecutions: 2, runsWorkflows: false });
    expect(p.identity).toBe('smnas-gpu@node7:42 devices=cuda:0,cuda:1 trainer=smnas-trainer_0.1');
  });
  test('a gpu worker that is node K of multi-host trainings also polls <queue>-node<K>; other workers poll one queue', () => {
    const p = planWorker({ queue: 'gpu', taskQueue: 'g', node: 1 }, host);
    expect(p).toMatchObject({ taskQueue: 'g', extraTaskQueues: ['g-node1'] });
    expect(p.identity).toMatch(/ node=1$/);
    expect(planWorker({ queue: 'gpu' }, host).extraTaskQueues).toEqual([]);
    expect(planWorker({ queue: 'control' }, host).extraTaskQueues).toEqual([]);
  });
  test('a CPU-only gpu worker has exactly one slot', () => {
    const p = planWorker({ queue: 'gpu' }, host);
    expect(p.devices).toEqual(['cpu']);
    expect(p.maxConcurrentActivityTaskExecutions).toBe(1);
  });
  test('the control worker runs workflows on smnas-control (or the campaign queue given)', () => {
    expect(planWorker({ queue: 'control' }, host)).toMatchObject({ taskQueue: 'smnas-control', runsWorkflows: true, devices: [] });
    expect(planWorker({ queue: 'control', taskQueue: 'c2' }, host).taskQueue).toBe('c2');
  });
});

describe('trainer version in the identity', () => {
  test('--version when the binary answers it, else a content hash, else missing', () => {
    const { trainerVersion } = createWorkerModule;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-tv-'));
    const withVersion = path.join(dir, 'v');
    fs.writeFileSync(withVersion, '#!/bin/sh\necho "smnas-trainer 1.2.3 (libtorch 1.13)"\n', { mode: 0o755 });
    expect(trainerVersion(withVersion)).toBe('smnas-trainer_1.2.3_(libtorch_1.13)');
    const without = path.join(dir, 'n');
    fs.writeFileSync(without, '#!/bin/sh\necho \'{"type":"error"}\'; exit 2\n', { mode: 0o755 });
    expect(trainerVersion(without)).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(trainerVersion(path.join(dir, 'absent'))).toBe('missing');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
