/**
 * What the activity tests with the REAL trainer share (real-trainer, torchvision-init and the
 * latency fixture): GPU-worker activity deps on this CPU, and a toy data set synthesised and
 * prepared by the control activity prepareData, as a campaign's first step would.
 */
import * as path from 'node:path';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createControlActivities, type ActivityDeps } from '../../activities';
import type { DataSummary } from '../../activities/types';
import { TRAINER_BIN } from '../../common/paths';
import { makeToyCampaign } from '../../protocol/campaign';

/** deps of a GPU worker on this CPU running the built trainer; the store under `work/store` */
export function realTrainerDeps(work: string, overrides: Partial<ActivityDeps> = {}): ActivityDeps {
  return {
    artifactRoot: path.join(work, 'store'),
    trainerBin: TRAINER_BIN,
    devices: ['cpu'],
    logger: pino({ level: 'silent' }),
    heartbeatEverySeconds: 1,
    killGraceMs: 5000,
    threads: 1,
    ...overrides,
  };
}

/** a toy campaign's detection data (64 px, 2 classes, seed 1) synthesised under `work/toy` by prepareData */
export async function prepareToyData(deps: ActivityDeps, work: string, campaignId: string, images: { train: number; val: number }): Promise<DataSummary> {
  const base = makeToyCampaign({ id: campaignId, dataRoot: path.join(work, 'toy'), artifactRoot: deps.artifactRoot });
  const c = {
    ...base,
    data: {
      detection: base.data.detection,
      transfer: [],
      synthesize: { root: path.join(work, 'toy'), trainImages: images.train, valImages: images.val, imageSize: 64, classes: 2, seed: 1 },
    },
  };
  return (await new MockActivityEnvironment().run(createControlActivities(deps).prepareData as any, c)) as DataSummary;
}
