/**
 * Pause / resume / stop-stage for a stage workflow, and the bounded "start at most N at a time"
 * loop the training stages share. A paused stage finishes its running evaluations and starts
 * none; a stopped stage keeps what finished and returns. Pure workflow code.
 */
import { CancellationScope, condition, isCancellation, setHandler } from '@temporalio/workflow';
import { pauseSignal, resumeSignal, stopStageSignal } from './api';

export interface StageControl {
  paused: boolean;
  stopRequested: boolean;
}

/** Install the signal handlers on this (stage) workflow; `stage` filters stop requests aimed at another stage. */
export function installStageControl(stage: string, initial: Partial<StageControl> = {}): StageControl {
  const ctl: StageControl = { paused: initial.paused ?? false, stopRequested: initial.stopRequested ?? false };
  setHandler(pauseSignal, () => {
    ctl.paused = true;
  });
  setHandler(resumeSignal, () => {
    ctl.paused = false;
  });
  setHandler(stopStageSignal, (target?: string) => {
    if (!target || target === stage) ctl.stopRequested = true;
  });
  return ctl;
}

/**
 * Run `work(item)` for each item with at most `concurrency` in flight, honouring pause and stop.
 * Returns the results in item order; items never started (stopped) are `undefined`, failed ones
 * carry their error.
 */
export async function runBounded<I, O>(
  items: I[],
  concurrency: number,
  ctl: StageControl,
  work: (item: I, index: number) => Promise<O>,
  onSettled?: () => void,
): Promise<({ ok: true; value: O } | { ok: false; error: unknown } | undefined)[]> {
  const results: ({ ok: true; value: O } | { ok: false; error: unknown } | undefined)[] = items.map(() => undefined);
  let running = 0;
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < items.length; i++) {
    try {
      await condition(() => ctl.stopRequested || (!ctl.paused && running < concurrency));
    } catch (e) {
      // cancelled while waiting: the trainings in flight finish their own cancellation first
      if (isCancellation(e)) await CancellationScope.nonCancellable(() => Promise.allSettled(inFlight));
      throw e;
    }
    if (ctl.stopRequested) break;
    running++;
    inFlight.push(
      work(items[i], i)
        .then(
          (value) => {
            results[i] = { ok: true, value };
          },
          (error) => {
            results[i] = { ok: false, error };
          },
        )
        .finally(() => {
          running--;
          onSettled?.();
        }),
    );
  }
  await Promise.all(inFlight);
  // a cancelled stage must end cancelled, not look like a stage whose trainings all failed
  for (const r of results) if (r && !r.ok && isCancellation(r.error)) throw r.error;
  return results;
}
