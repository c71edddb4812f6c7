/**
 * End-to-end run on the local production-shaped cluster (infra/local/up.sh: Temporal server built
 * from go.temporal.io/server, PostgreSQL, mTLS). Run it through `bash infra/local/e2e.sh`, which
 * brings the cluster up on a fresh state folder, runs this, and takes it down.
 *
 *  1. a client without a client certificate, one with a certificate of another CA and one
 *     without TLS are refused; the admin certificate is accepted;
 *  2. a control worker and two GPU workers (`bin/smnas worker`, each its own process with its own
 *     client certificate: control, gpu-0, gpu-1; the GPU workers serve the CPU as their device)
 *     run the reduced toy campaign of the fault tests (makeReducedToyCampaign: 2 structural + 1 modular + 1 final
 *     training, real native trainer, generated 64x64 data) with two trainings at once, started
 *     by `bin/smnas search start --campaign` with the admin certificate;
 *  3. once a training has written a checkpoint, the Temporal server is SIGKILLed and restarted
 *     (`up.sh` restarts what is not running);
 *  4. the campaign must complete, every finished training must be in the results log exactly
 *     once, and both GPU workers must have run trainings;
 *  5. down.sh + up.sh (every process of the cluster restarted): the campaign is still there.
 *
 * Prints one JSON summary line and `cluster-e2e: N passed, M failed`; exit 0 only when all passed.
 * Environment (set by e2e.sh): SMNAS_INFRA_STATE, SMNAS_E2E_WORK, SMNAS_E2E_ROGUE_TLS.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { readResultsText } from '../activities/artifact-store';
import { PROJECT_ROOT } from '../common/paths';
import { makeReducedToyCampaign } from '../protocol/campaign';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const need = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run bash infra/local/e2e.sh)`);
  return v;
};
const STATE = need('SMNAS_INFRA_STATE');
const WORK = need('SMNAS_E2E_WORK');
const ROGUE = need('SMNAS_E2E_ROGUE_TLS');
const SMNAS = path.join(PROJECT_ROOT, 'bin', 'smnas');

/** TEMPORAL_* settings of one client certificate, from <state>/env/<name>.env (written by up.sh) */
function clientEnv(name: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const l of fs.readFileSync(path.join(STATE, 'env', `${name}.env`), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(l);
    if (m) env[m[1]] = m[2];
  }
  return env;
}

const results: { check: string; ok: boolean; detail: string }[] = [];
function check(name: string, ok: boolean, detail: string): void {
  results.push({ check: name, ok, detail });
  console.error(`[e2e] ${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`);
}

async function refused(what: string, opts: Parameters<typeof Connection.connect>[0], namespace: string): Promise<void> {
  try {
    const c = await Connection.connect({ ...opts, connectTimeout: 5000 });
    try {
      await new Client({ connection: c, namespace }).workflowService.getSystemInfo({});
      check(`refused: ${what}`, false, 'the call went through');
    } finally {
      await c.close();
    }
  } catch (e) {
    check(`refused: ${what}`, true, (e as Error).message.split('\n')[0].slice(0, 160));
  }
}

function pidOf(name: string): number | null {
  try {
    return Number(fs.readFileSync(path.join(STATE, 'run', `${name}.pid`), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const admin = clientEnv('admin');
  const address = admin.TEMPORAL_ADDRESS;
  const namespace = admin.TEMPORAL_NAMESPACE;
  const ca = fs.readFileSync(admin.TEMPORAL_TLS_CA);
  const tlsBase = { serverRootCACertificate: ca, serverNameOverride: 'localhost' };

  // 1. who gets in
  await refused('TLS without a client certificate', { address, tls: tlsBase }, namespace);
  await refused(
    'client certificate of another CA',
    {
      address,
      tls: {
        ...tlsBase,
        clientCertPair: { crt: fs.readFileSync(path.join(ROGUE, 'intruder.pem')), key: fs.readFileSync(path.join(ROGUE, 'intruder.key')) },
      },
    },
    namespace,
  );
  await refused('plaintext (no TLS)', { address }, namespace);
  const connection = await Connection.connect({
    address,
    tls: { ...tlsBase, clientCertPair: { crt: fs.readFileSync(admin.TEMPORAL_TLS_CERT), key: fs.readFileSync(admin.TEMPORAL_TLS_KEY) } },
  });
  const client = new Client({ connection, namespace });
  const info = await client.workflowService.getSystemInfo({});
  check('accepted: admin client certificate', true, `server ${info.serverVersion}`);

  // 2. workers, each with its own certificate
  const store = path.join(WORK, 'store');
  const tq = { control: 'e2e-control', gpu: 'e2e-gpu' };
  const procs: { name: string; p: ChildProcess; log: string; health: number }[] = [];
  const healthBase = Number(process.env.SMNAS_INFRA_PORT_BASE ?? 27000) + 2000;
  const startWorker = (name: string, queue: 'control' | 'gpu') => {
    const health = healthBase + procs.length;
    const log = path.join(WORK, `worker-${name}-${procs.length}.log`);
    const out = fs.openSync(log, 'w');
    const extra = queue === 'gpu' ? ['--gpus', 'cpu', '--trainer-threads', '1', '--liveness', 'startup=300,floor=60,factor=10'] : [];
    const args = ['worker', '--queue', queue, '--task-queue', tq[queue], '--artifacts', store, '--health-port', `127.0.0.1:${health}`, ...extra];
    const p = spawn(SMNAS, args, {
      stdio: ['ignore', out, out],
      env: { ...process.env, ...clientEnv(name), SMNAS_LOG_LEVEL: 'info' },
    });
    procs.push({ name, p, log, health });
  };
  /** seconds until every worker's /readyz answers 200 (their own health endpoint) */
  const allReady = async (timeoutMs: number): Promise<number | null> => {
    const t = Date.now();
    while (Date.now() - t < timeoutMs) {
      const codes = await Promise.all(
        procs.map((w) =>
          fetch(`http://127.0.0.1:${w.health}/readyz`).then(
            (r) => r.status,
            () => 0,
          ),
        ),
      );
      if (codes.every((c) => c === 200)) return (Date.now() - t) / 1000;
      await sleep(250);
    }
    return null;
  };
  const t0 = Date.now();
  let serverKilledAt: number | null = null;
  let restartSeconds: number | null = null;
  try {
    startWorker('control', 'control');
    startWorker('gpu-0', 'gpu');
    startWorker('gpu-1', 'gpu');
    const ready = await allReady(180_000);
    check('workers ready (GET /readyz of each)', ready !== null, ready !== null ? `after ${ready.toFixed(1)} s` : 'not within 180 s');

    // the fault tests' reduced toy campaign, with two trainings at once (one per GPU worker)
    const reduced = makeReducedToyCampaign({ id: 'e2e', dataRoot: path.join(WORK, 'data'), artifactRoot: store, queues: tq, maxAttempts: 4 });
    const campaign = {
      ...reduced,
      budgets: { ...reduced.budgets, maxConcurrentTrainings: 2 },
      timeouts: { ...reduced.timeouts, heartbeatSeconds: 10 },
    };
    const file = path.join(WORK, 'campaign.json');
    fs.writeFileSync(file, JSON.stringify(campaign, null, 1));
    const started = spawnSync(SMNAS, ['search', 'start', '--campaign', file, '--json'], { env: { ...process.env, ...admin }, encoding: 'utf8' });
    check('bin/smnas search start over mTLS', started.status === 0, (started.stdout || started.stderr).trim().split('\n').pop() ?? '');
    if (started.status !== 0) throw new Error('campaign did not start');
    const h = client.workflow.getHandle(`smnas-${campaign.id}`);

    // 3. SIGKILL the server once a training has a checkpoint, restart it with up.sh
    const runs = path.join(store, 'runs');
    const deadline = Date.now() + 600_000;
    let ckpt: string | null = null;
    while (!ckpt && Date.now() < deadline) {
      if (fs.existsSync(runs)) {
        for (const k of fs.readdirSync(runs)) {
          const d = path.join(runs, k, 'checkpoints');
          if (fs.existsSync(path.join(runs, k, 'trainer.pid')) && fs.existsSync(d) && fs.readdirSync(d).some((f) => /^ckpt-\d+\.pt$/.test(f))) ckpt = k;
        }
      }
      if (!ckpt) await sleep(200);
    }
    if (!ckpt) throw new Error('no training wrote a checkpoint within 600 s');
    const pid = pidOf('temporal-server');
    if (!pid) throw new Error('no pid file of the Temporal server');
    process.kill(pid, 'SIGKILL');
    serverKilledAt = Date.now();
    console.error(`[e2e] SIGKILLed the Temporal server (pid ${pid}) while training ${ckpt.slice(0, 12)} had a checkpoint`);
    await sleep(3000);
    const up = spawnSync('bash', [path.join(PROJECT_ROOT, 'infra', 'local', 'up.sh')], { env: process.env, encoding: 'utf8' });
    restartSeconds = (Date.now() - serverKilledAt) / 1000;
    check(
      'server restarted by up.sh',
      up.status === 0 && pidOf('temporal-server') !== pid,
      `in ${restartSeconds.toFixed(1)} s, new pid ${pidOf('temporal-server')}`,
    );
    if (up.status !== 0) throw new Error(`up.sh failed: ${up.stderr.slice(-500)}`);

    // 4. outcome
    let outcome = 'completed';
    try {
      await Promise.race([h.result(), sleep(1_500_000).then(() => Promise.reject(new Error('timed out after 1500 s')))]);
    } catch (e) {
      outcome = `failed: ${(e as Error).message.split('\n')[0]}`;
    }
    check('campaign completed after the server restart', outcome === 'completed', outcome);
    const status = spawnSync(SMNAS, ['search', 'status', campaign.id, '--json'], { env: { ...process.env, ...admin }, encoding: 'utf8' });
    check('bin/smnas search status over mTLS', status.status === 0 && status.stdout.includes('COMPLETED'), status.stdout.slice(0, 120).replace(/\s+/g, ' '));

    const lines = readResultsText(path.join(store, 'campaigns', campaign.id))
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { key: string; candidate?: string | null; attempts: number });
    const ids = lines.map((l) => `${l.key}\n${l.candidate ?? ''}`);
    const keys = new Set(lines.map((l) => l.key));
    const finished = fs.existsSync(runs) ? fs.readdirSync(runs).filter((k) => fs.existsSync(path.join(runs, k, 'metrics.json'))) : [];
    const lost = finished.filter((k) => !keys.has(k));
    check('every evaluation recorded once', lines.length > 0 && new Set(ids).size === ids.length, `${lines.length} lines, ${new Set(ids).size} distinct`);
    check('no finished training without a record', lost.length === 0, `${finished.length} finished trainings, lost ${lost.length}`);
    // which GPU worker ran trainings: each logs the activities it started
    const trainedBy = procs
      .filter((w) => w.name.startsWith('gpu'))
      .map((w) => ({ name: w.name, trainings: (fs.readFileSync(w.log, 'utf8').match(/"msg":"(pre)?training started"/g) ?? []).length }));
    check(
      'both GPU workers trained',
      trainedBy.every((w) => w.trainings > 0),
      JSON.stringify(trainedBy),
    );
    // 5. state survives a restart of every process: down.sh (UI, server, PostgreSQL), up.sh
    const tDown = Date.now();
    const down = spawnSync('bash', [path.join(PROJECT_ROOT, 'infra', 'local', 'down.sh')], { env: process.env, encoding: 'utf8' });
    const up2 = spawnSync('bash', [path.join(PROJECT_ROOT, 'infra', 'local', 'up.sh')], { env: process.env, encoding: 'utf8' });
    const fullRestartSeconds = (Date.now() - tDown) / 1000;
    const after = spawnSync(SMNAS, ['search', 'status', campaign.id, '--json'], { env: { ...process.env, ...admin }, encoding: 'utf8' });
    check(
      'campaign still there after down.sh + up.sh (every process restarted)',
      down.status === 0 && up2.status === 0 && after.status === 0 && after.stdout.includes('COMPLETED'),
      `${fullRestartSeconds.toFixed(1)} s; ${(after.stdout || after.stderr || up2.stderr).slice(0, 100).replace(/\s+/g, ' ')}`,
    );
    console.log(
      JSON.stringify({
        outcome,
        fullRestartSeconds,
        evaluations: lines.length,
        distinct: new Set(ids).size,
        finishedTrainings: finished.length,
        lost: lost.length,
        retriedAttempts: lines.reduce((s, l) => s + Math.max(0, (l.attempts ?? 1) - 1), 0),
        serverRestartSeconds: restartSeconds,
        trainedBy,
        wallSeconds: (Date.now() - t0) / 1000,
      }),
    );
  } finally {
    for (const w of procs) if (w.p.exitCode === null && w.p.signalCode === null) w.p.kill('SIGTERM');
    const until = Date.now() + 30_000;
    while (procs.some((w) => w.p.exitCode === null && w.p.signalCode === null) && Date.now() < until) await sleep(200);
    for (const w of procs) if (w.p.exitCode === null && w.p.signalCode === null) w.p.kill('SIGKILL');
    await connection.close();
  }
}

main()
  .catch((e) => check('run', false, (e as Error).message))
  .finally(() => {
    const failed = results.filter((r) => !r.ok).length;
    console.log(`cluster-e2e: ${results.length - failed} passed, ${failed} failed`);
    // the race's timer and the SDK's connections would keep the process alive
    process.exit(failed ? 1 : 0);
  });
