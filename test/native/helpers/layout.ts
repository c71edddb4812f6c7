/**
 * Test helper: hand-written DetectorLayouts for the trainer's tests (basicblock / bottleneck /
 * Xbottleneck backbones, fpn or none neck, rpn+2fc / cascade / retina heads). Used so the native
 * tests do not depend on the search library's resolver; when it is present, the cost-model test
 * compares the two.
 */
import type { BlockLayout, DetectorLayout } from '../../../search/layout';

export interface TestArch {
  size: number;
  block: 'basicblock' | 'bottleneck' | 'Xbottleneck';
  base: number;
  code: string; // e.g. '11-21-21-21'
  neck: { kind: 'none' } | { kind: 'fpn'; from: number; to: number; channels: number };
  head: '2fc' | 'retina' | { cascade: number };
  numClasses: number;
  fcWidth: number;
}

export function testLayout(a: TestArch): DetectorLayout {
  const expansion = a.block === 'basicblock' ? 1 : 4;
  let planes = a.base;
  let inCh = a.base; // stem output = base
  const stages: { blocks: BlockLayout[] }[] = [];
  const stageChannels: number[] = [];
  a.code.split('-').forEach((s, si) => {
    const blocks: BlockLayout[] = [];
    [...s].forEach((c, bi) => {
      if (c === '2') planes *= 2;
      const out = planes * expansion;
      const stride = si > 0 && bi === 0 ? 2 : 1;
      const mid = a.block === 'Xbottleneck' ? Math.floor((planes * 4) / 64) * 32 : planes;
      blocks.push({
        inChannels: inCh,
        outChannels: out,
        midChannels: mid,
        stride,
        groups: a.block === 'Xbottleneck' ? 32 : 1,
        projection: stride !== 1 || inCh !== out,
      });
      inCh = out;
    });
    stages.push({ blocks });
    stageChannels.push(inCh);
  });
  const neckStr = a.neck.kind === 'none' ? 'none' : `fpn(P${a.neck.from}-P${a.neck.to},c=${a.neck.channels})`;
  const headStr = typeof a.head === 'object' ? `cascade(n=${a.head.cascade})` : a.head;
  const rpn = a.head === 'retina' ? 'none' : 'rpn';
  const neckCh = a.neck.kind === 'none' ? stageChannels[2] : a.neck.channels;
  const neck: DetectorLayout['neck'] =
    a.neck.kind === 'none'
      ? { kind: 'none', channels: stageChannels[2], stride: 16 }
      : {
          kind: 'fpn',
          from: a.neck.from,
          to: a.neck.to,
          channels: a.neck.channels,
          strides: Array.from({ length: a.neck.to - a.neck.from + 1 }, (_, i) => 4 * 2 ** (a.neck.kind === 'fpn' ? a.neck.from + i - 1 : 0)),
        };
  let head: DetectorLayout['head'];
  if (a.head === 'retina') head = { kind: 'retina', convChannels: neckCh, stackedConvs: 4, anchorsPerLocation: 9, numClasses: a.numClasses };
  else if (a.head === '2fc') head = { kind: '2fc', roiSize: 7, fcWidth: a.fcWidth, numClasses: a.numClasses };
  else {
    const n = a.head.cascade;
    head = {
      kind: 'cascade',
      stages: n,
      iouThresholds: Array.from({ length: n }, (_, i) => 0.5 + (0.2 * i) / (n - 1)),
      roiSize: 7,
      fcWidth: a.fcWidth,
      numClasses: a.numClasses,
    };
  }
  return {
    arch: `${a.size}x${a.size}/${a.block}_${a.base}_${a.code}/${neckStr}/${rpn}/${headStr}`,
    input: { width: a.size, height: a.size },
    backbone: { block: a.block, stemChannels: a.base, stages, stageChannels },
    neck,
    rpn: rpn === 'rpn' ? { kind: 'rpn', anchorsPerLocation: 3, convChannels: neckCh, deformGroups: 0 } : { kind: 'none', anchorsPerLocation: 0, convChannels: 0, deformGroups: 0 },
    head,
  };
}
