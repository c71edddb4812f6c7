/** `smnas worker --queue control|gpu|latency`: one Temporal worker of the campaign (worker/create-worker.ts). */
import { parseFlags, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { CONNECTION_FLAGS, CONNECTION_HELP, resolveConnectionSettings } from '../../worker/connection';
import { resolveDevices, resolveTrainerThreads } from '../../worker/devices';
import { stopAllTrainers } from '../../activities/trainer-process';
import { parseLiveness } from '../../activities/liveness';
import { parseLatencyDevice } from '../../protocol/latency';
import { parseHealthListen, startHealthServer, workerHealth } from '../../worker/health';

const NAME = 'smnas worker';

export const command: Command = {
  summary: 'run a control, GPU or latency worker (Temporal) until Ctrl-C',
  help: `usage: smnas worker --queue control|gpu [--gpus 0,1|cpu] [--task-queue name] [--artifacts dir]
       smnas worker --queue latency --latency-device cuda[:MODEL]|cpu[:MODEL] [--gpus 0,1]
                    [--address host:port] [--namespace ns] [--tls-cert f --tls-key f] [--tls-ca f] [--api-key k]

  --queue control     workflows + light activities (data checks, store, cost model, reports)
  --queue gpu         trainer activities: at most one training per device it owns
  --queue latency     latency measurements of campaigns with "latency": {"device": {"kind", "model"}}
                      (docs/campaign.md "Latency"): polls smnas-latency-<kind>[-<model>] only and
                      refuses to start (exit 2) unless each of its devices is of that kind and model
  --latency-device d  the requirement served: cuda:V100 (model matched as part of the device
                      name the trainer reports), cuda, cpu, cpu:EPYC
  --gpus 0,1          devices of a gpu worker (SMNAS_GPUS; default: CUDA_VISIBLE_DEVICES, then
                      nvidia-smi; none found = a CPU-only host, one slot 'cpu')
  --task-queue name   serve another task queue than smnas-control / smnas-gpu (campaign "queues")
  --artifacts dir     default artifact store ($SMNAS_STATE/artifacts)
  --shutdown-grace s  seconds running activities get on Ctrl-C/SIGTERM before they are cancelled (15)
  --trainer-threads N intra-op threads of each trainer (SMNAS_TRAINER_THREADS; default: the CPUs this
                      process may use divided by its devices, at least 1)
  --node K            this host is node K of the campaigns' multi-host trainings ("multiHost"):
                      the gpu worker also polls <task queue>-node<K> with the same devices
                      (docs/runtime.md "Multi-host trainings")
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
        node: { type: 'string' },
        'latency-device': { type: 'string' },
        'health-port': { type: 'string' },
        ...CONNECTION_FLAGS,
      },
      false,
    );
    const queue = str(flags, 'queue');
    if (queue !== 'control' && queue !== 'gpu' && queue !== 'latency')
      throw new UserError(`${NAME}: --queue must be 'control', 'gpu' or 'latency' (see '${NAME} --help')`);
    if (queue === 'control' && str(flags, 'gpus') !== undefined) throw new UserError(`${NAME}: --gpus only applies to --queue gpu or latency`);
    const latencySpec = str(flags, 'latency-device');
    if ((queue === 'latency') !== (latencySpec !== undefined))
      throw new UserError(`${NAME}: --latency-device goes with --queue latency, and --queue latency needs it`);
    const latencyDevice = latencySpec !== undefined ? parseLatencyDevice(latencySpec) : undefined;
    if (latencyDevice === null) throw new UserError(`${NAME}: --latency-device: expected cuda[:MODEL] or cpu[:MODEL], got '${latencySpec}'`);
    const nodeFlag = str(flags, 'node');
    if (nodeFlag !== undefined && (queue !== 'gpu' || !/^\d+$/.test(nodeFlag) || Number(nodeFlag) > 63))
      throw new UserError(`${NAME}: --node takes a node index 0..63 and applies to --queue gpu, got '${nodeFlag}'`);
    const grace = str(flags, 'shutdown-grace');
    if (grace !== undefined && !/^\d+(\.\d+)?$/.test(grace)) throw new UserError(`${NAME}: --shutdown-grace must be seconds, got '${grace}'`);
    const connection = resolveConnectionSettings(flags, process.env);
    const devices = queue === 'gpu' || latencyDevice?.kind === 'cuda' ? resolveDevices(str(flags, 'gpus'), process.env) : latencyDevice ? ['cpu'] : [];
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
    const threads = queue !== 'control' ? resolveTrainerThreads(str(flags, 'trainer-threads'), process.env, devices.length) : undefined;

    const { createWorker } = await import('../../worker/create-worker');
    let created;
    try {
      created = await createWorker({
        queue,
        connection,
        devices,
        ...(latencyDevice ? { latencyDevice } : {}),
        taskQueue: str(flags, 'task-queue'),
        artifactRoot: str(flags, 'artifacts'),
        shutdownGraceMs: grace !== undefined ? Number(grace) * 1000 : undefined,
        trainerThreads: threads,
        liveness,
        ...(nodeFlag !== undefined ? { node: Number(nodeFlag) } : {}),
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
    const { workers, connection: conn, plan } = created;
    log.info(
      {
        identity: plan.identity,
        taskQueue: plan.taskQueue,
        ...(plan.extraTaskQueues.length ? { alsoPolls: plan.extraTaskQueues } : {}),
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
          // the worker of its main queue speaks for it (a node worker's second queue shares its devices)
          const st = workers[0].getStatus();
          return workerHealth(
            {
              runState: st.runState,
              workflowPollerState: st.workflowPollerState,
              activityPollerState: st.activityPollerState,
              numRunningActivities: workers.reduce((n, w) => n + w.getStatus().numInFlightActivities, 0),
            },
            { pollsWorkflows: queue === 'control', identity: plan.identity },
          );
        })
      : undefined;
    if (health) log.info({ port: health.port }, 'health endpoint: GET /livez /readyz');
    try {
      await Promise.all(workers.map((w) => w.run())); // resolve after SIGINT/SIGTERM and a graceful drain
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
