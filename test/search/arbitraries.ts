/** fast-check generators of legal architectures, shared by the search tests. */
import fc from 'fast-check';
import { type Arch, BLOCK_KINDS, NAMED_BACKBONES } from '../../search/notation';

const stage = fc.array(fc.constantFrom('1', '2'), { minLength: 1, maxLength: 8 }).map((cs) => cs.join(''));

export const backboneArb: fc.Arbitrary<Arch['backbone']> = fc.oneof(
  fc.constantFrom(...NAMED_BACKBONES).map((name) => ({ kind: 'named' as const, name })),
  fc.record({
    kind: fc.constant('encoded' as const),
    block: fc.constantFrom(...BLOCK_KINDS),
    base: fc.integer({ min: 16, max: 128 }),
    // at most 4 doublings keeps widths (and costs) in a realistic range
    stages: fc.tuple(stage, stage, stage, stage).map((t) => {
      let left = 4;
      return t.map((s) => s.replace(/2/g, () => (left-- > 0 ? '2' : '1')));
    }),
  }),
);

export const neckArb: fc.Arbitrary<Arch['neck']> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc
    .record({ from: fc.integer({ min: 1, max: 4 }), span: fc.integer({ min: 0, max: 5 }), channels: fc.integer({ min: 1, max: 512 }) })
    .map(({ from, span, channels }) => ({ kind: 'fpn' as const, from, to: Math.min(6, from + span), channels })),
);

export const rpnHeadArb: fc.Arbitrary<Pick<Arch, 'rpn' | 'head'>> = fc.oneof(
  fc.constant({ rpn: 'none' as const, head: { kind: 'retina' as const } }),
  fc.record({
    rpn: fc.constantFrom('rpn' as const, 'ga-rpn' as const),
    head: fc.oneof(
      fc.constant({ kind: '2fc' as const }),
      fc.integer({ min: 2, max: 4 }).map((stages) => ({ kind: 'cascade' as const, stages })),
    ),
  }),
);

export const archArb: fc.Arbitrary<Arch> = fc
  .record({
    w: fc.integer({ min: 1, max: 64 }),
    h: fc.integer({ min: 1, max: 64 }),
    backbone: backboneArb,
    neck: neckArb,
    rh: rpnHeadArb,
  })
  .map(({ w, h, backbone, neck, rh }) => ({ input: { width: w * 32, height: h * 32 }, backbone, neck, rpn: rh.rpn, head: rh.head }));
