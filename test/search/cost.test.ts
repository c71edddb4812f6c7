import fc from 'fast-check';
import { backboneCost, detectorCost, layoutCost } from '../../search/cost';
import { resolveLayout } from '../../search/layout-resolve';
import { archArb } from './arbitraries';

/** torchvision's published ImageNet figures at 224x224 with the 1000-class head (GFLOPs = G multiply-accumulates). */
const TORCHVISION: [string, number, number][] = [
  ['resnet18', 1.82, 11.69],
  ['resnet34', 3.66, 21.8],
  ['resnet50', 4.09, 25.56],
  ['resnet101', 7.8, 44.55],
  ['resnext50_32x4d', 4.23, 25.03],
  ['mobilenet_v2', 0.3, 3.5],
];

describe('cost model', () => {
  test.each(TORCHVISION)('%s at 224x224 with 1000 classes: %f GFLOPs, %f M params', (name, gflops, mparams) => {
    const c = backboneCost(name, { width: 224, height: 224 }, { classifier: 1000 });
    // within rounding of the published 2-decimal figure (resnet18 is 1.814 G: torchvision prints 1.81, others quote 1.82)
    expect(Math.abs(c.flops / 1e9 - gflops)).toBeLessThanOrEqual(0.0065);
    expect(Math.abs(c.params / 1e6 - mparams)).toBeLessThanOrEqual(0.005);
    expect(c.mac).toBeGreaterThan(c.params);
  });

  test('exact parameter counts of torchvision models', () => {
    expect(backboneCost('resnet18', { width: 224, height: 224 }, { classifier: 1000 }).params).toBe(11689512);
    expect(backboneCost('resnet50', { width: 224, height: 224 }, { classifier: 1000 }).params).toBe(25557032);
    expect(backboneCost('mobilenet_v2', { width: 224, height: 224 }, { classifier: 1000 }).params).toBe(3504872);
    // the encoding of resnet50 is resnet50
    expect(backboneCost('bottleneck_64_111-2111-211111-211', { width: 224, height: 224 }).params).toBe(25557032 - 2049000);
  });

  // torchvision's detection models use FrozenBatchNorm (buffers, not parameters): resnet50 has 53,120 BN affine params.
  const R50_BN_AFFINE = 53120;

  test("whole detector equals torchvision's fasterrcnn_resnet50_fpn (41,755,286 params) after its conventions", () => {
    // torchvision: 91 classes incl. background, class-specific regression over all 91 (we: 4 * foreground classes)
    const c = detectorCost('800x800/resnet50/fpn(P1-P4,c=256)/rpn/2fc', { numClasses: 90, fcWidth: 1024 });
    expect(c.params - R50_BN_AFFINE + (1024 * 4 + 4)).toBe(41755286);
    expect(c.modules.neck.params).toBe((256 + 512 + 1024 + 2048) * 256 + 4 * 256 + 4 * (256 * 256 * 9 + 256));
    expect(c.modules.rpn.params).toBe(256 * 256 * 9 + 256 + (256 * 3 + 3) + (256 * 12 + 12));
  });

  test("retina equals torchvision's retinanet_resnet50_fpn (34,014,999 params): P2-P6 = torchvision's P3-P7", () => {
    const c = detectorCost('800x800/resnet50/fpn(P2-P6,c=256)/none/retina', { numClasses: 91, fcWidth: 1024 });
    expect(c.params - R50_BN_AFFINE).toBe(34014999);
    expect(c.modules.rpn).toEqual({ flops: 0, params: 0, mac: 0 });
  });

  test('module FLOPs by hand: 2fc head scales with RoIs, RPN per level, neck none skips stage 4', () => {
    const l = resolveLayout('256x256/resnet18/fpn(P1-P5,c=64)/rpn/2fc', { numClasses: 3, fcWidth: 32 });
    const c0 = layoutCost(l, 0);
    const c10 = layoutCost(l, 10);
    const perRoi = 64 * 49 * 32 + 32 * 32 + 32 * 4 + 32 * 12;
    expect(c0.modules.head.flops).toBe(0);
    expect(c10.modules.head.flops).toBe(10 * perRoi);
    expect(c10.modules.head.params).toBe(perRoi + 32 + 32 + 4 + 12);
    // levels P1..P5 at 64, 32, 16, 8, 4 px: RPN 3x3 64->64 + 1x1 64->3 + 1x1 64->12 per location
    const px = 64 * 64 + 32 * 32 + 16 * 16 + 8 * 8 + 4 * 4;
    expect(c0.modules.rpn.flops).toBe(px * (9 * 64 * 64 + 64 * 3 + 64 * 12));
    const none = detectorCost('256x256/resnet18/none/rpn/2fc', { numClasses: 3, fcWidth: 32 });
    const full = backboneCost('resnet18', { width: 256, height: 256 });
    const stage4 = 8 * 8 * 9 * (256 * 512 + 512 * 512 * 3) + 8 * 8 * 256 * 512; // convs of stage 4 at 8x8
    expect(none.modules.backbone.flops).toBe(full.flops - stage4);
    expect(none.modules.neck.params).toBe(0);
  });

  test('detector input is padded to a multiple of 32 (1333x800 is costed as 1344x800)', () => {
    const o = { numClasses: 80, fcWidth: 1024 };
    const a = detectorCost('1333x800/resnet50/fpn(P1-P5,c=256)/rpn/2fc', o);
    const b = detectorCost('1344x800/resnet50/fpn(P1-P5,c=256)/rpn/2fc', o);
    expect(a.flops).toBe(b.flops);
    expect(a.mac).toBe(b.mac);
    expect(detectorCost('800x600/resnet18/none/rpn/2fc', o).flops).toBe(detectorCost('800x608/resnet18/none/rpn/2fc', o).flops);
  });

  test('totals are the sum of the modules; costs grow with input size and RoIs', () => {
    fc.assert(
      fc.property(archArb, (a) => {
        const c = detectorCost(a, { numClasses: 5, fcWidth: 64, rois: 10 });
        const m = Object.values(c.modules);
        expect(c.flops).toBe(m.reduce((s, x) => s + x.flops, 0));
        expect(c.params).toBe(m.reduce((s, x) => s + x.params, 0));
        expect(c.mac).toBe(m.reduce((s, x) => s + x.mac, 0));
        const bigger = detectorCost({ ...a, input: { width: a.input.width * 2, height: a.input.height * 2 } }, { numClasses: 5, fcWidth: 64, rois: 10 });
        expect(bigger.flops).toBeGreaterThan(c.flops);
        expect(bigger.params).toBe(c.params);
      }),
      { numRuns: 100 },
    );
  });
});
