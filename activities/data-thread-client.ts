/**
 * Heavy data preparation (toy data generation, VOC/BDD conversion, hashing every annotation file)
 * is synchronous. The control worker's main thread also dispatches the workflow tasks of every
 * campaign, so prepareData runs in a worker thread (node:worker_threads): the main thread stays
 * free, the activity stays a normal control-queue activity (no extra task queue or process to
 * deploy), and failures come back with their kind (BadData / InvalidCampaign stay non-retryable).
 * The thread runs the compiled code (dist/activities/data-thread.js); from sources without a build
 * (ts-jest with no dist/) it runs inline on the main thread, with a warning.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import { PROJECT_ROOT } from '../common/paths';
import type { Logger } from '../common/log';
import type { DataSummary } from './types';

type Reply = { ok: DataSummary } | { error: { message: string; type: string | null; nonRetryable: boolean } };

/** The compiled thread entry: beside this file when running from dist/, else the project's dist/. */
export function dataThreadEntry(): string | null {
  const beside = path.join(__dirname, 'data-thread.js');
  if (fs.existsSync(beside)) return beside;
  const dist = path.join(PROJECT_ROOT, 'dist', 'activities', 'data-thread.js');
  return fs.existsSync(dist) ? dist : null;
}

export async function runDataThread(input: unknown, artifactRoot: string, logger: Logger): Promise<DataSummary> {
  const entry = dataThreadEntry();
  if (!entry) {
    logger.warn('no compiled dist/activities/data-thread.js: preparing data on the main thread');
    const { prepareDataSync } = await import('./data');
    return prepareDataSync(input, artifactRoot);
  }
  const reply = await new Promise<Reply>((resolve, reject) => {
    const w = new Worker(entry, { workerData: { input, artifactRoot } });
    let got: Reply | null = null;
    w.once('message', (m: Reply) => (got = m));
    w.once('error', reject);
    w.once('exit', (code) => (got ? resolve(got) : reject(new Error(`data preparation thread exited with code ${code} and no reply`))));
  });
  if ('ok' in reply) return reply.ok;
  const { message, type, nonRetryable } = reply.error;
  throw nonRetryable ? ApplicationFailure.nonRetryable(message, type ?? undefined) : ApplicationFailure.retryable(message, type ?? undefined);
}
