// `toy-train` (the default recipe, protocol/recipes.ts) as it was when benches' figures were measured,
// written out whole: benches that reproduce old figures start from these, not from today's toy-train
// plus pins, so that a later change of toy-train cannot silently change what they run.
// Used by bench/default-recipe-tune.sh, bench/exp-norm.sh and bench/data-parallel.sh.

/** toy-train as session 8 shipped it (GN, no scale jitter; until session 9). */
const session8 = {
  name: 'toy-train',
  norm: 'gn',
  epochs: 12,
  batchSize: 4,
  optimizer: { lr: 0.02, momentum: 0.9, weightDecay: 0.0001, noDecayOnNormAndBias: true, clipGradNorm: 35 },
  schedule: { kind: 'cosine', minLr: 0.0001, warmupIterations: 100, warmupFraction: 0.1, warmupRatio: 0.001 },
  augment: { flip: true, scaleJitter: [1, 1] },
  fcWidth: 256,
  rpn: { samplesPerImage: 128, positiveFraction: 0.5, trainPreNms: 600, trainPostNms: 300, testPreNms: 300, testPostNms: 100, nmsIou: 0.7 },
  roi: { samplesPerImage: 128, positiveFraction: 0.25 },
  test: { scoreThreshold: 0.05, nmsIou: 0.5, maxPerImage: 100 },
  workers: 1,
};

/** toy-train until session 8 (sessions 4-7): GN+WS with scale jitter 0.9-1.1, otherwise session 8's. */
const beforeSession8 = { ...session8, norm: 'gn+ws', augment: { flip: true, scaleJitter: [0.9, 1.1] } };

/**
 * toy-train as sessions 9 and 10 shipped it (until session 11): session 8's with a 300-iteration
 * warm-up and half of the sampled RoIs positive (bench/default-recipe-tune.sh's wu300-pos05).
 */
const session10 = {
  ...session8,
  schedule: { ...session8.schedule, warmupIterations: 300 },
  roi: { samplesPerImage: 128, positiveFraction: 0.5 },
};

module.exports = { session8, beforeSession8, session10 };
