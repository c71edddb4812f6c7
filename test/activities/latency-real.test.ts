/**
 * The latency protocol with the REAL native trainer on this CPU: a detector trained briefly on
 * generated data is timed by measureLatency with its trained weights and without them, on a
 * seeded sample of the validation split; the trainer says where it ran (this CPU's model from
 * /proc/cpuinfo, libtorch, the binary's SHA-256), the second call comes from the cache, and a
 * latency worker for a device this host does not have refuses to start (bin/smnas worker).
 * Skipped when the trainer is not built.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { probeEnvironment } from '../../activities/latency';
import type { LatencyRequest } from '../../activities/types';
import { SMNAS_CLI, TRAINER_BIN } from '../../common/paths';
import type { BenchFigures } from '../../protocol/trainer-messages';
import { checkLatencyDevices } from '../../worker/create-worker';
import { latencyFixture, LATENCY_ARCH } from './latency-fixture';
import { describeIf } from '../support/gate';

const maybe = describeIf(fs.existsSync(TRAINER_BIN), `latency with the real trainer: ${TRAINER_BIN} is not built (scripts/setup.sh builds it)`);
const ARCH = LATENCY_ARCH;

function cpuModel(): string {
  const line = fs
    .readFileSync('/proc/cpuinfo', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('model name'));
  return line ? line.slice(line.indexOf(':') + 1).trim() : 'unknown CPU';
}

maybe('measureLatency with the real trainer (CPU)', () => {
  const fx = latencyFixture('smnas-latreal-');
  const { deps, root } = fx;

  test('trained and untrained weights on the validation sample; where it ran; cached', async () => {
    const data = fx.data();
    const { acts, trained } = await fx.train('lat-train');
    expect(trained.kind).toBe('ok');
    const req = (weights: string | null): LatencyRequest => ({
      key: 'lat-train',
      arch: ARCH,
      recipe: 'toy-stage-one',
      data,
      weights,
      // a generous maxSpread: this test checks the plumbing, not the shared host's steadiness
      settings: { backend: 'native', images: 3, rounds: 3, warmup: 1, maxSpread: 100, maxMeasurements: 1, seed: 5 },
      device: 'cpu',
    });
    const withWeights = (await new MockActivityEnvironment().run(acts.measureLatency, req(trained.weights))) as BenchFigures;
    const untrained = (await new MockActivityEnvironment().run(acts.measureLatency, req(null))) as BenchFigures;
    // the build id; test/native/launcher.test.ts checks how --version computes it
    const buildId = spawnSync(TRAINER_BIN, ['--version'], { encoding: 'utf8' }).stdout.trim();
    expect(buildId).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const f of [withWeights, untrained]) {
      expect(f).toMatchObject({
        backend: 'native',
        images: 3,
        rounds: 3,
        iterations: 3,
        inputWidth: 64,
        inputHeight: 64,
        reliable: true,
        measurements: 1,
        cached: false,
      });
      expect(f.roundMs).toHaveLength(3);
      expect(f.medianMs).toBeGreaterThan(0);
      expect(f.p90Ms).toBeGreaterThanOrEqual(f.p10Ms);
      expect(f.environment).toMatchObject({ deviceKind: 'cpu', deviceModel: cpuModel(), trainerVersion: buildId, threads: 1 });
      expect(f.environment!.runtime).toMatch(/^libtorch \d/);
    }
    expect(withWeights.weights).toBe(trained.weights);
    expect(untrained.weights).toBeNull();
    expect(withWeights.cacheKey).not.toBe(untrained.cacheKey);
    // the job the trainer got: the trained weights as a detector, the seeded sample of the val split
    const job = JSON.parse(
      fs.readFileSync(path.join(deps.artifactRoot, 'latency', withWeights.cacheKey!.slice(0, 2), `${withWeights.cacheKey}-run`, 'job-latency.json'), 'utf8'),
    );
    expect(job).toMatchObject({
      command: 'bench',
      initWeights: trained.weights,
      initKind: 'detector',
      seed: 5,
      bench: { warmup: 1, iterations: 3, images: 3, rounds: 3 },
    });
    expect(job.data).toMatchObject({ root, valSplit: 'val' });
    const entry = JSON.parse(
      fs.readFileSync(path.join(deps.artifactRoot, 'latency', withWeights.cacheKey!.slice(0, 2), `${withWeights.cacheKey}.json`), 'utf8'),
    );
    const valFiles = fs.readdirSync(path.join(root, 'val'));
    expect(entry.measurements[0].images).toHaveLength(3);
    for (const f of entry.measurements[0].images) expect(valFiles).toContain(f);
    expect(entry.measurements[0].rounds).toHaveLength(3);
    // the same seed draws the same sample: the untrained run timed the same images
    const untrainedEntry = JSON.parse(
      fs.readFileSync(path.join(deps.artifactRoot, 'latency', untrained.cacheKey!.slice(0, 2), `${untrained.cacheKey}.json`), 'utf8'),
    );
    expect(untrainedEntry.measurements[0].images).toEqual(entry.measurements[0].images);
    // second call: the cache, even with a trainer that would fail to bench
    const again = (await new MockActivityEnvironment().run(acts.measureLatency, req(trained.weights))) as BenchFigures;
    expect(again).toEqual({ ...withWeights, cached: true });
  }, 300_000);

  test('the trainer identifies this host; a latency worker for another kind or model refuses to start', async () => {
    const env = await probeEnvironment(TRAINER_BIN, 'cpu');
    expect(env.deviceModel).toBe(cpuModel());
    await expect(checkLatencyDevices({ kind: 'cpu' }, ['cpu'], (d) => probeEnvironment(TRAINER_BIN, d))).resolves.toHaveProperty('cpu');
    await expect(checkLatencyDevices({ kind: 'cpu', model: 'no-such-cpu-model' }, ['cpu'], (d) => probeEnvironment(TRAINER_BIN, d))).rejects.toThrow(
      `cpu is ${cpuModel()} is not a no-such-cpu-model`,
    );
    // the CLI: refused before it connects anywhere, exit 2, one line naming the devices
    const r = spawnSync(SMNAS_CLI[0], ['worker', '--queue', 'latency', '--latency-device', 'cpu:no-such-cpu-model', '--address', '127.0.0.1:1'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`do not meet the requirement cpu (no-such-cpu-model) of queue smnas-latency-cpu-no-such-cpu-model: cpu is ${cpuModel()}`);
    const g = spawnSync(SMNAS_CLI[0], ['worker', '--queue', 'latency', '--latency-device', 'cuda:V100', '--gpus', '0', '--address', '127.0.0.1:1'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(g.status).toBe(2);
    expect(g.stderr).toMatch(/--latency-device: cannot identify cuda:0: .*(no CUDA device|no such CUDA device)/);
  }, 300_000);
});
