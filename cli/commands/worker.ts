/** `smnas worker --queue control|gpu`: one Temporal worker of the campaign (worker/create-worker.ts). */
import { parseFlags, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { CONNECTION_FLAGS, CONNECTION_HELP, resolveConnectionSettings } from '../../worker/connection';
import { resolveDevices, resolveTrainerThreads } from '../../worker/devices';
import { stopAllTrainers } from '../../activities/trainer-process';
import { parseLiveness } from '../../activities/liveness';
import { parseHealthListen, startHealthServer, workerHealth } from '../../worker/health';

const NAME = 'smnas worker';

export const command: Command = {
  summary: 'run a control or GPU worker (Temporal) until Ctrl-C',
  help: `usage: smnas worker --queue control|gpu [--gpus 0,1|cpu] [--task-queue name] [--artifacts dir]
                    [--address host:port] [--namespace ns] [--tls-cert f --tls-key f] [--tls-ca f] [--api-key k]

  --queue control     workflows + light activities (data checks, store, cost model, reports)
  --queue gpu         trainer activities: at most one training per device it owns
  --gpus 0,1          devices of a gpu worker (SMNAS_GPUS; default: CUDA_VISIBLE_DEVICES, then
                      nvidia-smi; none found = a CPU-only host, one slot 'cpu')
  --task-queue name   serve another task queue than smnas-control / smnas-gpu (campaign "queues")
  --artifacts dir     default artifact store ($SMNAS_STATE/artifacts)
  --shutdown-grace s  seconds running activities get on Ctrl-C/SIGTERM before they are cancelled (15)
  --trainer-threads N intra-op threads of each trainer (SMNAS_TRAINER_THREADS; default: the CPUs this
                      process may use divided by its devices, at least 1)
  --liveness spec     how long a silent trainer may stay silent before it is killed and retried
                      (SMNAS_LIVENESS; default startup=900,floor=300,factor=20: seconds before
                      the first progress, and max(floor, factor x the longest progress gap) while
                      training; docs/runtime.md "Reliability")
  --health-port [host:]port  serve GET /livez and /readyz (SMNAS_HEALTH_PORT; default: none): 200 while
                      alive / running and polling, 503 otherwise (Kubernetes probes, infra/k8s)

${CONNECTION_HELP}

Logs (pino JSON) go to stderr; the first line says what the worker is (identity, queue, devices).
SIGINT/SIGTERM drain the worker gracefully: running trainings get --shutdown-grace, then are
cancelled (their trainer's process group gets SIGTERM, checkpoints, and SIGKILL after the kill
grace); the worker exits only once no trainer it started is left. A killed GPU worker's training is
retried from its last checkpoint; the next attempt on the same host stops the orphaned trainer
first (the run folder's trainer.pid).`,
  async main(argv) {
    const flags = parseFlags(
      NAME,
      argv,
      {
        queue: { type: 'string' },
        gpus: { type: 'string' },
        'task-queue': { type: 'string' },
        artifacts: { type: 'string' },
        'shutdown-grace': { type: 'string' },
        'trainer-threads': { type: 'string' },
        liveness: { type: 'string' },
        'health-port': { type: 'string' },
        ...CONNECTION_FLAGS,
      },
      false,
    );
    const queue = str(flags, 'queue');
    if (queue !== 'control' && queue !== 'gpu') throw new UserError(`${NAME}: --queue must be 'control' or 'gpu' (see '${NAME} --help')`);
    if (queue === 'control' && str(flags, 'gpus') !== undefined) throw new UserError(`${NAME}: --gpus only applies to --queue gpu`);
    const grace = str(flags, 'shutdown-grace');
    if (grace !== undefined && !/^\d+(\.\d+)?$/.test(grace)) throw new UserError(`${NAME}: --shutdown-grace must be seconds, got '${grace}'`);
    const connection = resolveConnectionSettings(flags, process.env);
    const devices = queue === 'gpu' ? resolveDevices(str(flags, 'gpus'), process.env) : [];
    const livenessSpec = str(flags, 'liveness') ?? process.env.SMNAS_LIVENESS;
    let liveness;
    try {
      liveness = livenessSpec !== undefined ? parseLiveness(livenessSpec, str(flags, 'liveness') !== undefined ? '--liveness' : 'SMNAS_LIVENESS') : undefined;
    } catch (e) {
      throw new UserError(`${NAME}: ${(e as Error).message}`);
    }
    const healthSpec = str(flags, 'health-port') ?? (process.env.SMNAS_HEALTH_PORT || undefined);
    let healthListen;
    try {
      healthListen =
        healthSpec !== undefined ? parseHealthListen(healthSpec, str(flags, 'health-port') !== undefined ? '--health-port' : 'SMNAS_HEALTH_PORT') : undefined;
    } catch (e) {
      throw new UserError(`${NAME}: ${(e as Error).message}`);
    }
    const threads = queue === 'gpu' ? resolveTrainerThreads(str(flags, 'trainer-threads'), process.env, devices.length) : undefined;

    const { createWorker } = await import('../../worker/create-worker');
    let created;
    try {
      created = await createWorker({
        queue,
        connection,
        devices,
        taskQueue: str(flags, 'task-queue'),
        artifactRoot: str(flags, 'artifacts'),
        shutdownGraceMs: grace !== undefined ? Number(grace) * 1000 : undefined,
        trainerThreads: threads,
        liveness,
        logger: log,
      });
    } catch (e) {
      if (e instanceof UserError) throw e;
      const msg = (e as Error).message.split('\n')[0];
      if (/connect|transport|dns|refused/i.test(msg)) {
        throw new UserError(`${NAME}: cannot reach Temporal at ${connection.address} (${msg}); start it with 'bin/smnas dev --no-workers' or set --address`);
      }
      throw e;
    }
    const { worker, connection: conn, plan } = created;
    log.info(
      {
        identity: plan.identity,
        taskQueue: plan.taskQueue,
        devices: plan.devices,
        trainerThreads: threads,
        slots: plan.maxConcurrentActivityTaskExecutions,
        address: connection.address,
        namespace: connection.namespace,
      },
      `${plan.kind} worker ready`,
    );
    const health = healthListen
      ? await startHealthServer(healthListen, () => {
          const st = worker.getStatus();
          return workerHealth(
            {
              runState: st.runState,
              workflowPollerState: st.workflowPollerState,
              activityPollerState: st.activityPollerState,
              numRunningActivities: st.numInFlightActivities,
            },
            { pollsWorkflows: queue === 'control', identity: plan.identity },
          );
        })
      : undefined;
    if (health) log.info({ port: health.port }, 'health endpoint: GET /livez /readyz');
    try {
      await worker.run(); // resolves after SIGINT/SIGTERM and a graceful drain
    } finally {
      await health?.close();
      // cancelled activities stop their trainers; anything still running (an activity that did not
      // get to react) is stopped here, SIGTERM then SIGKILL after the grace, before the worker exits
      const left = await stopAllTrainers();
      if (left.length) log.warn({ pids: left }, 'stopped trainers still running at shutdown');
      await conn.close().catch(() => undefined);
    }
    log.info({ identity: plan.identity }, 'worker stopped');
    return 0;
  },
};
