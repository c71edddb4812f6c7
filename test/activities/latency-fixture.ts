/**
 * The fixture of the latency tests with the REAL trainer (latency-real.test.ts, latency-onnx.test.ts):
 * a work folder, GPU-worker activity deps on this CPU (one trainer thread), generated COCO data, and
 * a detector trained briefly on it by the real trainDetector activity.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createGpuActivities, type ActivityDeps } from '../../activities';
import { describeCocoDir } from '../../activities/data';
import type { DatasetRef, TrainOutcome } from '../../activities/types';
import { writeSynthDetection } from '../../datasets/synth/detection';
import { tmpDir } from './mock-trainer';
import { realTrainerDeps } from './real-trainer-fixture';

export const LATENCY_ARCH = '64x64/basicblock_16_11-21-21-21/fpn(P1-P4,c=32)/rpn/2fc';

export interface LatencyFixture {
  work: string;
  deps: ActivityDeps;
  /** the generated data set (8 training, 6 validation images of 64 px, 2 classes) */
  root: string;
  data(): DatasetRef;
  /** the activities and a detector trained under `key` with toy-stage-one */
  train(key: string): Promise<{ acts: ReturnType<typeof createGpuActivities>; trained: TrainOutcome }>;
}

/** Call at the top of a describe block: registers its own beforeAll / afterAll. */
export function latencyFixture(prefix: string): LatencyFixture {
  const work = tmpDir(prefix);
  const root = path.join(work, 'coco');
  const deps = realTrainerDeps(work);
  beforeAll(() => writeSynthDetection({ train: 8, val: 6, size: 64, classes: 2, seed: 1, out: root, format: 'coco' }));
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
  const data = () => describeCocoDir('detection', root, 'train', 'val');
  return {
    work,
    deps,
    root,
    data,
    async train(key) {
      const acts = createGpuActivities(deps);
      const trained = (await new MockActivityEnvironment().run(acts.trainDetector, {
        campaignId: key,
        key,
        arch: LATENCY_ARCH,
        recipe: 'toy-stage-one',
        data: data(),
        seed: 0,
      })) as TrainOutcome;
      return { acts, trained };
    },
  };
}
