/** The liveness rule (activities/liveness.ts), on a fake clock: no processes. */
import { LivenessWatch, parseLiveness } from '../../activities/liveness';
import type { TrainerMessage } from '../../protocol/trainer-messages';

const rule = { startupSeconds: 600, floorSeconds: 60, factor: 10 };
const progress = (iteration: number, totalIterations = 100, imagesPerSec = 4): TrainerMessage => ({
  type: 'progress',
  epoch: 0,
  iteration,
  totalIterations,
  lr: 0.01,
  loss: 1,
  losses: {},
  imagesPerSec,
});

describe('LivenessWatch', () => {
  test('start-up: the start-up allowance until the first progress message', () => {
    const w = new LivenessWatch(rule, 0);
    expect(w.check(599_000)).toBeNull();
    const s = w.check(601_000);
    expect(s).toMatchObject({ phase: 'starting', limitSeconds: 600 });
    expect(s!.reason).toMatch(/no progress from the trainer for 601 s while starting \(limit 600 s: start-up allowance\)/);
  });

  test('training: max(floor, factor x the longest progress gap), measured from the last message', () => {
    const w = new LivenessWatch(rule, 0);
    w.onMessage(progress(1), 1000);
    w.onMessage(progress(2), 3000); // 2 s gap -> 20 s, under the 60 s floor
    expect(w.limitSeconds()).toBe(60);
    expect(w.check(3000 + 59_000)).toBeNull();
    expect(w.check(3000 + 61_000)).toMatchObject({ phase: 'training', limitSeconds: 60 });
    w.onMessage(progress(3), 13_000); // a 10 s iteration -> 100 s
    expect(w.limitSeconds()).toBe(100);
    expect(w.check(13_000 + 99_000)).toBeNull();
    // a checkpoint message is progress too
    w.onMessage({ type: 'checkpoint', path: '/x/ckpt-3.pt', epoch: 0, iteration: 3 }, 100_000);
    expect(w.check(100_000 + 99_000)).toBeNull();
    expect(w.check(100_000 + 101_000)!.reason).toMatch(/limit 100 s: max\(60 s, 10 x longest progress gap 10\.0 s\)/);
  });

  test('evaluation: from the val size and the training throughput, at least the start-up allowance', () => {
    const w = new LivenessWatch(rule, 0, 1000);
    w.onMessage(progress(99, 100, 4), 1000);
    w.onMessage(progress(100, 100, 4), 2000);
    expect(w.phase).toBe('evaluating');
    expect(w.limitSeconds()).toBe(2500); // 10 x 1000 images / 4 images/s
    const small = new LivenessWatch(rule, 0, 10);
    small.onMessage(progress(100, 100, 4), 1000);
    expect(small.limitSeconds()).toBe(600);
  });

  test('a finished trainer is never stalled', () => {
    const w = new LivenessWatch(rule, 0);
    w.onMessage({ type: 'error', kind: 'internal', message: 'x' }, 10);
    expect(w.check(1e9)).toBeNull();
  });
});

test('parseLiveness: any subset of startup/floor/factor; errors name the source and the part', () => {
  expect(parseLiveness('startup=60,floor=5,factor=4')).toEqual({ startupSeconds: 60, floorSeconds: 5, factor: 4 });
  expect(parseLiveness('floor=2.5')).toEqual({ floorSeconds: 2.5 });
  expect(() => parseLiveness('floor=0', 'SMNAS_LIVENESS')).toThrow("SMNAS_LIVENESS: 'floor=0' is not");
  expect(() => parseLiveness('flor=3')).toThrow("--liveness: 'flor=3' is not");
});
