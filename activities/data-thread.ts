/**
 * Worker-thread entry of prepareData (activities/data-thread-client.ts starts it): runs the
 * synchronous data work and posts back the summary, or the failure as plain data (an Error's class
 * does not cross threads; the client rebuilds the ApplicationFailure).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import { prepareDataSync } from './data';

const { input, artifactRoot } = workerData as { input: unknown; artifactRoot: string };
try {
  parentPort!.postMessage({ ok: prepareDataSync(input, artifactRoot) });
} catch (e) {
  const err = e as Error;
  parentPort!.postMessage({
    error: {
      message: err.message,
      type: e instanceof ApplicationFailure ? ((err as ApplicationFailure).type ?? null) : err.name,
      nonRetryable: e instanceof ApplicationFailure ? (err as ApplicationFailure).nonRetryable : false,
    },
  });
}
