/**
 * Progress-based liveness of a trainer: only the trainer's own messages (started, progress,
 * checkpoint, metrics) prove that it is alive. The activity heartbeats Temporal while the trainer
 * is within its allowance and kills it (process group) when it is not, so a hung trainer
 * (deadlock, stuck filesystem, SIGSTOP) fails its attempt retryably within minutes instead of
 * heartbeating until the 48-hour start-to-close timeout.
 *
 * The rule (docs/runtime.md "Liveness"), seconds without any trainer message:
 *  - starting (before the first progress message: model build, data loading, checkpoint load;
 *    a `bench` run never sends progress): `startupSeconds`;
 *  - training: max(`floorSeconds`, `factor` x the longest gap between two progress messages seen so
 *    far in this attempt). The trainer emits progress every total/300 iterations and at least every
 *    2 s, so that gap is the iteration time of this architecture and recipe on this device (or ~2 s);
 *  - evaluating (after the last iteration: inference on the val split, then the COCO evaluator):
 *    max(`startupSeconds`, `factor` x valImages / training images per second) — inference per
 *    image is cheaper than a training step, so this over-estimates; without a val size,
 *    `startupSeconds`.
 * Pure (a clock is passed in), so the rule is unit-tested without processes.
 */
import type { TrainerMessage } from '../protocol/trainer-messages';

export interface LivenessRule {
  /** allowance before the first progress message, and the floor of the evaluation allowance */
  startupSeconds: number;
  /** the least allowance while training */
  floorSeconds: number;
  /** multiple of the observed gap between progress messages */
  factor: number;
}

export const DEFAULT_LIVENESS: LivenessRule = { startupSeconds: 900, floorSeconds: 300, factor: 20 };

export type LivenessPhase = 'starting' | 'training' | 'evaluating';

export interface Stall {
  phase: LivenessPhase;
  silentSeconds: number;
  limitSeconds: number;
  /** human-readable, for the failure message and the heartbeat details */
  reason: string;
}

export class LivenessWatch {
  private lastMessageMs: number;
  private lastProgressMs: number | null = null;
  private longestGapMs = 0;
  private imagesPerSec: number | null = null;
  private done = false;
  phase: LivenessPhase = 'starting';

  constructor(
    readonly rule: LivenessRule,
    startMs: number,
    /** images of the val split, for the evaluation allowance (null: unknown) */
    private readonly valImages: number | null = null,
  ) {
    this.lastMessageMs = startMs;
  }

  onMessage(m: TrainerMessage, nowMs: number): void {
    this.lastMessageMs = nowMs;
    if (m.type === 'progress') {
      if (this.lastProgressMs !== null) this.longestGapMs = Math.max(this.longestGapMs, nowMs - this.lastProgressMs);
      this.lastProgressMs = nowMs;
      if (m.imagesPerSec > 0) this.imagesPerSec = m.imagesPerSec;
      this.phase = m.iteration >= m.totalIterations ? 'evaluating' : 'training';
    } else if (m.type === 'result' || m.type === 'error') {
      this.done = true;
    }
  }

  limitSeconds(): number {
    const r = this.rule;
    switch (this.phase) {
      case 'starting':
        return r.startupSeconds;
      case 'training':
        return Math.max(r.floorSeconds, (r.factor * this.longestGapMs) / 1000);
      case 'evaluating':
        if (this.valImages && this.imagesPerSec) return Math.max(r.startupSeconds, (r.factor * this.valImages) / this.imagesPerSec);
        return r.startupSeconds;
    }
  }

  /** null while the trainer is within its allowance (or has finished) */
  check(nowMs: number): Stall | null {
    if (this.done) return null;
    const silentSeconds = (nowMs - this.lastMessageMs) / 1000;
    const limitSeconds = this.limitSeconds();
    if (silentSeconds <= limitSeconds) return null;
    const rule =
      this.phase === 'training'
        ? `max(${this.rule.floorSeconds} s, ${this.rule.factor} x longest progress gap ${(this.longestGapMs / 1000).toFixed(1)} s)`
        : this.phase === 'evaluating'
          ? `evaluation allowance`
          : `start-up allowance`;
    return {
      phase: this.phase,
      silentSeconds,
      limitSeconds,
      reason: `no progress from the trainer for ${silentSeconds.toFixed(0)} s while ${this.phase} (limit ${limitSeconds.toFixed(0)} s: ${rule})`,
    };
  }
}

/**
 * `startup=900,floor=300,factor=20` (any subset) -> a partial rule; the worker's --liveness flag and
 * SMNAS_LIVENESS. Errors name the source and the part.
 */
export function parseLiveness(spec: string, source = '--liveness'): Partial<LivenessRule> {
  const out: Partial<LivenessRule> = {};
  const names: Record<string, keyof LivenessRule> = { startup: 'startupSeconds', floor: 'floorSeconds', factor: 'factor' };
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^(startup|floor|factor)=(\d+(?:\.\d+)?)$/.exec(part);
    if (!m || Number(m[2]) <= 0) throw new Error(`${source}: '${part}' is not startup=<s>, floor=<s> or factor=<n> with a positive number`);
    out[names[m[1]]] = Number(m[2]);
  }
  return out;
}
