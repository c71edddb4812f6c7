/**
 * Used-layers canonical forms (notation.ts markUnusedStages) and the spaces built on them: two
 * architectures that differ only in backbone stages the detector never builds are one network and
 * get one form; different networks keep different forms.
 */
import fc from 'fast-check';
import { detectorCost } from '../../search/cost';
import { ProposeMemo, mutate, proposeCandidates } from '../../search/evolution';
import { builtStages, resolveLayout } from '../../search/layout-resolve';
import { type Arch, ArchError, formatArch, isLegalArch, markUnusedStages, parseArch, usedBackboneStages, usedLayersString } from '../../search/notation';
import { Rng } from '../../search/rng';
import { type StageTwoSpace, enumerateArchs, getSearchSpaces, outsideSpace, sampleArch, spaceSize, stageTwoSpaceFrom } from '../../search/space';
import { archArb } from './arbitraries';

const stageCode = fc.array(fc.constantFrom('1', '2'), { minLength: 1, maxLength: 6 }).map((cs) => cs.join(''));

/** What the detector builds, as data: the resolved layout with the unbuilt backbone stages cut off. */
function builtNetwork(a: Arch): string {
  const l = resolveLayout(a, { numClasses: 3, fcWidth: 64 });
  const n = builtStages(l.neck);
  return JSON.stringify({
    ...l,
    arch: undefined,
    backbone: { ...l.backbone, stages: l.backbone.stages.slice(0, n), stageChannels: l.backbone.stageChannels.slice(0, n) },
  });
}

const encodedArch = archArb.filter((a) => a.backbone.kind === 'encoded');

describe('markUnusedStages', () => {
  test('writes the stages the neck does not build as x and keeps the rest', () => {
    expect(usedLayersString('64x64/basicblock_16_11-21-21-21/fpn(P1-P3,c=32)/rpn/2fc')).toBe('64x64/basicblock_16_11-21-21-x/fpn(P1-P3,c=32)/rpn/2fc');
    expect(usedLayersString('64x64/basicblock_16_11-21-21-21/fpn(P2-P2,c=32)/rpn/2fc')).toBe('64x64/basicblock_16_11-21-x-x/fpn(P2-P2,c=32)/rpn/2fc');
    expect(usedLayersString('64x64/basicblock_16_11-21-21-21/none/rpn/2fc')).toBe('64x64/basicblock_16_11-21-21-x/none/rpn/2fc');
    // P5 / P6 are computed from P4: every stage is built
    expect(usedLayersString('64x64/basicblock_16_11-21-21-21/fpn(P2-P6,c=32)/rpn/2fc')).toBe('64x64/basicblock_16_11-21-21-21/fpn(P2-P6,c=32)/rpn/2fc');
    // named backbones stand for their ImageNet weights too: they stay named
    expect(usedLayersString('800x600/resnet101/fpn(P1-P2,c=256)/rpn/2fc')).toBe('800x600/resnet101/fpn(P1-P2,c=256)/rpn/2fc');
  });

  test("an 'x' on a stage the neck uses is an error naming the stage; the parsed form round-trips", () => {
    expect(() => parseArch('64x64/basicblock_16_11-21-x-x/fpn(P1-P3,c=32)/rpn/2fc')).toThrow(ArchError);
    expect(() => parseArch('64x64/basicblock_16_11-21-x-x/fpn(P1-P3,c=32)/rpn/2fc')).toThrow(/stage 3 is written 'x'.*uses stages 1\.\.3/);
    expect(() => parseArch('64x64/basicblock_16_x-21-21-21/fpn(P1-P4,c=32)/rpn/2fc')).toThrow(/stage 1 is written 'x'/);
    const s = '64x64/basicblock_16_11-21-x-x/fpn(P1-P2,c=32)/rpn/2fc';
    expect(formatArch(parseArch(s))).toBe(s);
  });

  test('property: stages past the neck changed at random give the same form and the same built network', () => {
    fc.assert(
      fc.property(encodedArch, fc.tuple(stageCode, stageCode, stageCode, stageCode), (a, other) => {
        const used = usedBackboneStages(a.neck);
        if (a.backbone.kind !== 'encoded') return;
        const b: Arch = { ...a, backbone: { ...a.backbone, stages: a.backbone.stages.map((s, i) => (i < used ? s : other[i])) } };
        fc.pre(isLegalArch(b)); // e.g. too many doublings for the width limit
        expect(formatArch(markUnusedStages(b))).toBe(formatArch(markUnusedStages(a)));
        expect(builtNetwork(b)).toBe(builtNetwork(a));
        expect(builtNetwork(markUnusedStages(a))).toBe(builtNetwork(a));
        // the cost model sees the same detector
        expect(detectorCost(markUnusedStages(a), { numClasses: 3, fcWidth: 64 }).params).toBe(detectorCost(a, { numClasses: 3, fcWidth: 64 }).params);
      }),
      { numRuns: 150 },
    );
  });

  test('property: forms are equal exactly when the built networks are equal', () => {
    // pairs drawn close to each other (same neck and head, one used stage changed) so both outcomes occur
    fc.assert(
      fc.property(encodedArch, fc.nat(), stageCode, (a, pick, code) => {
        if (a.backbone.kind !== 'encoded') return;
        const i = pick % 4;
        const b: Arch = { ...a, backbone: { ...a.backbone, stages: a.backbone.stages.map((s, j) => (j === i ? code : s)) } };
        fc.pre(isLegalArch(b));
        const sameForm = formatArch(markUnusedStages(a)) === formatArch(markUnusedStages(b));
        const sameNet = builtNetwork(a) === builtNetwork(b);
        expect(sameForm).toBe(sameNet);
      }),
      { numRuns: 200 },
    );
  });

  test('property: the form is a fixed point and parses back to itself', () => {
    fc.assert(
      fc.property(archArb, (a) => {
        const f = markUnusedStages(a);
        expect(markUnusedStages(f)).toEqual(f);
        expect(markUnusedStages(parseArch(formatArch(f)))).toEqual(f);
      }),
      { numRuns: 150 },
    );
  });
});

describe('used-layers spaces', () => {
  test('stage one: collapsed backbones are counted once, and the size equals the distinct members', () => {
    const plain = getSearchSpaces('toy').stageOne;
    const space = { ...plain, usedLayers: true as const };
    const forms = [...enumerateArchs(space)].map(formatArch);
    expect(new Set(forms).size).toBe(forms.length);
    expect(spaceSize(space)).toBe(forms.length);
    // the toy space's bottleneck_16 encodings of resnet50 / resnet101 agree in stages 1-2, so under
    // fpn(P1-P2) and fpn(P2-P2) they are one network: fewer members than the plain product
    expect(forms.length).toBeLessThan(spaceSize(plain));
    expect(new Set([...enumerateArchs(plain)].map((a) => formatArch(markUnusedStages(a))))).toEqual(new Set(forms));
    for (const f of forms.slice(0, 200)) expect(outsideSpace(space, parseArch(f))).toBeUndefined();
  });

  test('stage one: a neck mutation of a member with x stages builds them from the space backbone', () => {
    const space = { ...getSearchSpaces('toy').stageOne, usedLayers: true as const };
    const parent = parseArch('64x64/bottleneck_16_111-2111-x-x/fpn(P1-P2,c=32)/rpn/2fc');
    const rng = new Rng(3);
    for (let i = 0; i < 30; i++) {
      const m = mutate(space, parent, rng, 'neck');
      if (!m) continue;
      const child = markUnusedStages(m.child);
      expect(outsideSpace(space, child)).toBeUndefined();
    }
  });

  test('stage two: only the stages the template builds are searched; the size is exact', () => {
    const cand = parseArch('64x64/basicblock_16_11-21-21-21/fpn(P1-P3,c=32)/rpn/2fc');
    const space = stageTwoSpaceFrom(cand, { profile: 'toy', usedLayers: true });
    expect(space.usedLayers).toBe(true);
    expect(space.doublings).toBe(2);
    expect(formatArch(space.template)).toBe('64x64/basicblock_16_11-21-21-x/fpn(P1-P3,c=32)/rpn/2fc');
    const small: StageTwoSpace = { ...space, minBlocks: 3, maxBlocks: 6, bases: [8] };
    const all = [...enumerateArchs(small)].map(formatArch);
    expect(new Set(all).size).toBe(all.length);
    expect(spaceSize(small)).toBe(all.length);
    for (const s of all) {
      expect(s).toMatch(/^64x64\/basicblock_8_[12]+-[12]+-[12]+-x\//);
      expect(outsideSpace(small, parseArch(s))).toBeUndefined();
    }
    // membership is by network: a concrete stage 4 is the member written with x
    expect(outsideSpace(small, parseArch('64x64/basicblock_8_1-2-2-1/fpn(P1-P3,c=16)/rpn/2fc'))).toBeUndefined();
    expect(outsideSpace(small, parseArch('64x64/basicblock_8_1-2-2-2/fpn(P1-P4,c=16)/rpn/2fc'))).toMatch(/FPN levels differ/);
    const rng = new Rng(5);
    for (let i = 0; i < 50; i++) expect(outsideSpace(space, sampleArch(space, rng))).toBeUndefined();
  });

  test('stage two: a search never proposes two members that are one network', () => {
    const cand = parseArch('64x64/basicblock_16_11-21-21-21/fpn(P1-P2,c=32)/rpn/2fc');
    const space = { ...stageTwoSpaceFrom(cand, { profile: 'toy', usedLayers: true }), bases: [8], fpnChannels: [16] };
    const rng = new Rng(11);
    const evaluated: { arch: string; cost: number; score: number }[] = [];
    const memo = new ProposeMemo();
    for (let round = 0; round < 12; round++) {
      const r = proposeCandidates({ space, evaluated, rng, count: 3, initialPopulation: 4, memo });
      for (const p of r.proposals) evaluated.push({ arch: p.arch, cost: evaluated.length + 1, score: rng.next() });
      if (r.exhausted) break;
    }
    const nets = evaluated.map((e) => builtNetwork(parseArch(e.arch)));
    expect(new Set(nets).size).toBe(nets.length);
    expect(evaluated.length).toBe(Math.min(spaceSize(space), 36));
  });

  test('plain spaces (campaigns started before) are unchanged: no x forms', () => {
    const cand = parseArch('64x64/basicblock_16_11-21-21-21/fpn(P1-P3,c=32)/rpn/2fc');
    const space = stageTwoSpaceFrom(cand, { profile: 'toy' });
    expect(space.usedLayers).toBeUndefined();
    expect(space.doublings).toBe(3);
    const rng = new Rng(7);
    for (let i = 0; i < 20; i++) expect(formatArch(sampleArch(space, rng))).not.toMatch(/-x\//);
  });
});
