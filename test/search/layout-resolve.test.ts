import fc from 'fast-check';
import { DetectorLayoutSchema } from '../../search/layout';
import { layoutCost } from '../../search/cost';
import { builtStages, resolveLayout } from '../../search/layout-resolve';
import { archArb } from './arbitraries';

const opts = { numClasses: 80, fcWidth: 1024 };

describe('resolveLayout', () => {
  test('resnet50 with an FPN: torchvision channel plan, strides and projections', () => {
    const l = resolveLayout('800x608/resnet50/fpn(P1-P5,c=256)/rpn/cascade(n=3)', opts);
    expect(l.arch).toBe('800x608/resnet50/fpn(P1-P5,c=256)/rpn/cascade(n=3)');
    expect(l.backbone.stemChannels).toBe(64);
    expect(l.backbone.stages.map((s) => s.blocks.length)).toEqual([3, 4, 6, 3]);
    expect(l.backbone.stageChannels).toEqual([256, 512, 1024, 2048]);
    expect(l.backbone.stages[0].blocks[0]).toEqual({ inChannels: 64, outChannels: 256, midChannels: 64, stride: 1, groups: 1, projection: true });
    expect(l.backbone.stages[0].blocks[1]).toEqual({ inChannels: 256, outChannels: 256, midChannels: 64, stride: 1, groups: 1, projection: false });
    expect(l.backbone.stages[1].blocks[0]).toEqual({ inChannels: 256, outChannels: 512, midChannels: 128, stride: 2, groups: 1, projection: true });
    expect(l.neck).toEqual({ kind: 'fpn', from: 1, to: 5, channels: 256, strides: [4, 8, 16, 32, 64] });
    expect(l.rpn).toEqual({ kind: 'rpn', anchorsPerLocation: 3, convChannels: 256, deformGroups: 0 });
    expect(l.head).toEqual({ kind: 'cascade', stages: 3, iouThresholds: [0.5, 0.6, 0.7], roiSize: 7, fcWidth: 1024, numClasses: 80 });
  });

  test('ga-rpn: one guided anchor per location, 4 deformable groups; its cost adds the offset conv and drops the adaption bias', () => {
    const l = resolveLayout('800x608/resnet50/fpn(P2-P5,c=256)/ga-rpn/2fc', opts);
    expect(l.rpn).toEqual({ kind: 'ga-rpn', anchorsPerLocation: 1, convChannels: 256, deformGroups: 4 });
    // mmdetection GARPNHead at 256 channels: rpn_conv 3x3 (+bias), conv_loc 1x1 (+bias), conv_shape 1x1 to 2 (+bias),
    // conv_offset 1x1 2 -> 72 (no bias), DeformConv 3x3 (no bias), conv_cls 1x1 to 1 (+bias), conv_reg 1x1 to 4 (+bias)
    const C = 256;
    const expected = C * C * 9 + C + (C + 1) + (2 * C + 2) + 2 * 72 + C * C * 9 + (C + 1) + (4 * C + 4);
    expect(layoutCost(l).modules.rpn.params).toBe(expected);
  });

  test('resnext50_32x4d grouped widths, resnet18 basic blocks', () => {
    const x = resolveLayout('512x512/resnext50_32x4d/fpn(P2-P6,c=256)/none/retina', opts);
    expect(x.backbone.stages.map((s) => s.blocks[0].midChannels)).toEqual([128, 256, 512, 1024]);
    expect(x.backbone.stages[0].blocks[0].groups).toBe(32);
    expect(x.head).toEqual({ kind: 'retina', convChannels: 256, stackedConvs: 4, anchorsPerLocation: 9, numClasses: 80 });
    const r = resolveLayout('512x512/resnet18/none/rpn/2fc', opts);
    expect(r.backbone.stageChannels).toEqual([64, 128, 256, 512]);
    expect(r.backbone.stages[0].blocks[0].projection).toBe(false);
    expect(r.neck).toEqual({ kind: 'none', channels: 256, stride: 16 });
    expect(builtStages(r.neck)).toBe(3);
  });

  test('doublings anywhere in a stage, base 48', () => {
    const l = resolveLayout('800x600/basicblock_48_12-11111-211-1112/fpn(P1-P5,c=128)/rpn/cascade(n=3)', opts);
    expect(l.backbone.stages[0].blocks.map((b) => b.outChannels)).toEqual([48, 96]);
    expect(l.backbone.stages[0].blocks[1]).toMatchObject({ inChannels: 48, stride: 1, projection: true });
    expect(l.backbone.stageChannels).toEqual([96, 96, 192, 384]);
  });

  test('mobilenet_v2 and mbblock layouts', () => {
    const m = resolveLayout('512x512/mobilenet_v2/fpn(P1-P4,c=128)/rpn/2fc', opts);
    expect(m.backbone.stemChannels).toBe(32);
    expect(m.backbone.stageChannels).toEqual([24, 32, 96, 320]);
    expect(m.backbone.stages.map((s) => s.blocks.length)).toEqual([2, 3, 7, 4]);
    expect(m.backbone.stages[0].blocks[0]).toEqual({ inChannels: 16, outChannels: 24, midChannels: 96, stride: 2, groups: 96, projection: false });
    const e = resolveLayout('512x512/mbblock_24_11-21-21-21/none/rpn/2fc', opts);
    expect(e.backbone.stages.map((s) => s.blocks[0].stride)).toEqual([2, 2, 2, 2]);
    expect(e.backbone.stageChannels).toEqual([24, 48, 96, 192]);
  });

  test('every legal architecture resolves to a schema-valid layout', () => {
    fc.assert(
      fc.property(archArb, (a) => {
        const l = resolveLayout(a, { numClasses: 3, fcWidth: 64 });
        expect(DetectorLayoutSchema.safeParse(l).success).toBe(true);
        if (l.neck.kind === 'fpn') expect(l.neck.strides.length).toBe(l.neck.to - l.neck.from + 1);
      }),
      { numRuns: 200 },
    );
  });

  test("the paper's input sizes are padded up to multiples of 32; the notation is kept", () => {
    const l = resolveLayout('1333x800/resnet50/fpn(P1-P5,c=256)/rpn/2fc', opts);
    expect(l.arch).toBe('1333x800/resnet50/fpn(P1-P5,c=256)/rpn/2fc');
    expect(l.input).toEqual({ width: 1344, height: 800 });
    expect(resolveLayout('800x600/resnet18/none/rpn/2fc', opts).input).toEqual({ width: 800, height: 608 });
    expect(resolveLayout('1080x720/resnet18/none/rpn/2fc', opts).input).toEqual({ width: 1088, height: 736 });
  });

  test('bad notation is an ArchError', () => {
    expect(() => resolveLayout('512x512/resnet18/none/none/2fc', opts)).toThrow(/two-stage heads/);
  });
});
