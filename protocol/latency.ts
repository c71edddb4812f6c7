/**
 * The latency protocol's pure parts (no zod: the evaluation workflow imports them, and the
 * thousands of short evaluation workflows must not load the campaign's schemas): the settings a
 * campaign's `latency` section resolves to, the task queue of a latency device requirement, and
 * whether a device model meets a requirement. The schema is LatencySchema in protocol/campaign.ts;
 * the measurement is activities/latency.ts, its statistics activities/latency-stats.ts.
 */

/** Backends that can time a trained model with the protocol (the statistics are shared). */
export const LATENCY_BACKENDS = ['native', 'onnxruntime'] as const;
export type LatencyBackend = (typeof LATENCY_BACKENDS)[number];

export const LATENCY_DEVICE_KINDS = ['cuda', 'cpu'] as const;
export type LatencyDeviceKind = (typeof LATENCY_DEVICE_KINDS)[number];

/** A campaign's requirement on the device that measures latency, e.g. {kind: 'cuda', model: 'V100'}. */
export interface LatencyDeviceRequirement {
  kind: LatencyDeviceKind;
  /** matched case-insensitively as a part of the device's model name ('V100' matches 'Tesla V100-SXM2-16GB') */
  model?: string;
}

/** The resolved `latency` section of a campaign (every field set). */
export interface LatencySettings {
  /** absent: latency runs on the campaign's GPU queue, on the device `latencyDevice` names */
  device?: LatencyDeviceRequirement;
  backend: LatencyBackend;
  /** the fixed seeded sample of validation images (batch 1, cycled) */
  images: number;
  /** timed rounds; every round times each sample image once */
  rounds: number;
  /** untimed forwards before the rounds (cycling through the sample) */
  warmup: number;
  /** (p90 - p10) / median of the round latencies above which a measurement is repeated */
  maxSpread: number;
  /** measurements at most (the first included) before the figure is recorded as unreliable */
  maxMeasurements: number;
  /** seeds the image sample */
  seed: number;
}

export const LATENCY_DEFAULTS: Record<'toy' | 'paper', Omit<LatencySettings, 'device' | 'warmup'>> = {
  toy: { backend: 'native', images: 4, rounds: 5, maxSpread: 0.25, maxMeasurements: 3, seed: 0 },
  paper: { backend: 'native', images: 20, rounds: 10, maxSpread: 0.1, maxMeasurements: 3, seed: 0 },
};

/** A campaign's `latency` section with the profile's defaults filled in (warm-up from `bench.warmup`, seed from the campaign's). */
export function latencySettings(c: {
  profile: 'toy' | 'paper';
  seed: number;
  bench: { warmup: number };
  latency?: Partial<Omit<LatencySettings, 'device'>> & { device?: LatencyDeviceRequirement };
}): LatencySettings {
  const d = LATENCY_DEFAULTS[c.profile];
  const l = c.latency ?? {};
  return {
    ...(l.device ? { device: l.device } : {}),
    backend: l.backend ?? d.backend,
    images: l.images ?? d.images,
    rounds: l.rounds ?? d.rounds,
    warmup: l.warmup ?? c.bench.warmup,
    maxSpread: l.maxSpread ?? d.maxSpread,
    maxMeasurements: l.maxMeasurements ?? d.maxMeasurements,
    seed: l.seed ?? c.seed,
  };
}

/** Prefix of every latency task queue. */
export const LATENCY_QUEUE_PREFIX = 'smnas-latency';

/** The task queue of a latency device requirement: smnas-latency-cuda-v100, smnas-latency-cpu. */
export function latencyQueueName(d: LatencyDeviceRequirement): string {
  const model = d.model
    ? '-' +
      d.model
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
    : '';
  return `${LATENCY_QUEUE_PREFIX}-${d.kind}${model}`;
}

/** 'cuda:V100' / 'cuda' / 'cpu' / 'cpu:Xeon' (the worker's --latency-device) -> a requirement. */
export function parseLatencyDevice(spec: string): LatencyDeviceRequirement | null {
  const m = /^(cuda|cpu)(?::(.+))?$/.exec(spec.trim());
  if (!m) return null;
  const model = m[2]?.trim();
  return { kind: m[1] as LatencyDeviceKind, ...(model ? { model } : {}) };
}

/** Whether a device (kind + model name as the trainer reports it) meets the requirement; a reason when not. */
export function deviceMeets(req: LatencyDeviceRequirement, device: { deviceKind: string; deviceModel: string }): { ok: true } | { ok: false; reason: string } {
  if (device.deviceKind !== req.kind) return { ok: false, reason: `a ${device.deviceKind} device (${device.deviceModel}), not ${req.kind}` };
  if (req.model && !device.deviceModel.toLowerCase().includes(req.model.toLowerCase())) {
    return { ok: false, reason: `${device.deviceModel} is not a ${req.model}` };
  }
  return { ok: true };
}
