/**
 * `data.backboneWeights` / `data.missingBackboneWeights`: the campaign schema, and the control
 * activity checkBackboneWeights on hand-made checkpoint files (a torch.save-like zip whose data.pkl
 * holds the key names, and safetensors headers): formats, wrong-backbone and bad-format errors
 * naming the field and the path, the plan (stage one / final weights, missing backbones, 'exclude').
 * Real torchvision files are checked in test/activities/torchvision-init.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createControlActivities } from '../../activities';
import type { BackboneWeightsPlan } from '../../activities/types';
import { makePaperCampaign, makeToyCampaign, parseCampaign } from '../../protocol/campaign';
import { tmpDir } from './mock-trainer';
import { R18, R50, resnetKeys, writePth, writeSafetensors } from '../support/checkpoint-files';

const work = tmpDir('smnas-bbw-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

const control = createControlActivities({
  artifactRoot: path.join(work, 'store'),
  trainerBin: '/nonexistent',
  devices: ['cpu'],
  logger: pino({ level: 'silent' }),
});
const check = (c: unknown) => new MockActivityEnvironment().run(control.checkBackboneWeights as any, c) as Promise<BackboneWeightsPlan>;
const paper = (data: Record<string, unknown>, overrides: Record<string, unknown> = {}) => ({
  ...makePaperCampaign({ cocoRoot: path.join(work, 'coco') }),
  ...overrides,
  data: { detection: { root: path.join(work, 'coco'), trainSplit: 'train2017', valSplit: 'val2017' }, transfer: [], ...data },
});

describe('campaign schema: data.backboneWeights, data.missingBackboneWeights', () => {
  test('optional; any subset of the named backbones; the policy is scratch or exclude', () => {
    const base = { id: 'x', profile: 'paper', data: { detection: { root: '/c' } } };
    const none = parseCampaign(base);
    expect(none.success && none.data.data.backboneWeights).toBeUndefined();
    expect(none.success && none.data.data.missingBackboneWeights).toBeUndefined();
    const some = parseCampaign({
      ...base,
      data: { ...base.data, backboneWeights: { resnet50: '/w/r50.pth', mobilenet_v2: 'm.safetensors' }, missingBackboneWeights: 'exclude' },
    });
    expect(some.success).toBe(true);
    expect(some.success && some.data.data.backboneWeights).toEqual({ resnet50: '/w/r50.pth', mobilenet_v2: 'm.safetensors' });
  });

  test('an unknown backbone name, a bad extension or a bad policy names the field', () => {
    const bad = (data: object) => {
      const r = parseCampaign({ id: 'x', profile: 'paper', data: { detection: { root: '/c' }, ...data } });
      expect(r.success).toBe(false);
      return r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    expect(bad({ backboneWeights: { resnet5: '/w.pth' } })).toMatch(/data\.backboneWeights/);
    expect(bad({ backboneWeights: { resnet50: '/w.bin' } })).toMatch(/data\.backboneWeights\.resnet50: a torchvision checkpoint path/);
    expect(bad({ missingBackboneWeights: 'skip' })).toMatch(/data\.missingBackboneWeights/);
  });
});

describe('checkBackboneWeights (control activity)', () => {
  const r18pth = writePth(path.join(work, 'r18.pth'), R18);
  const r50pth = writePth(path.join(work, 'r50.pth'), R50);
  const r50st = writeSafetensors(path.join(work, 'r50.safetensors'), R50);
  const x50st = writeSafetensors(path.join(work, 'x50.safetensors'), R50, [128, 4, 3, 3]);

  test('weights for two backbones, the rest trained from scratch (default policy)', async () => {
    const plan = await check(paper({ backboneWeights: { resnet50: r50pth, resnext50_32x4d: x50st } }));
    expect(plan.weights).toEqual({ resnet50: r50pth, resnext50_32x4d: x50st });
    expect(plan.formats).toEqual({ resnet50: 'pth', resnext50_32x4d: 'safetensors' });
    expect(plan.policy).toBe('scratch');
    expect(plan.missing).toEqual(['resnet18', 'resnet34', 'resnet101', 'resnext101_32x4d', 'mobilenet_v2']);
    expect(plan.stageOneBackbones).toHaveLength(7);
    expect(plan.stageOneNorm).toBe('bn');
    expect(plan.stageOneWeights).toEqual({ resnet50: r50pth, resnext50_32x4d: x50st });
    expect(plan.finalWeights).toEqual({ resnet50: r50pth, resnext50_32x4d: x50st });
    expect(plan.messages[0]).toBe('stage one: resnet50, resnext50_32x4d from ImageNet weights (BN in eval mode, stem and stage 1 frozen)');
    expect(plan.messages[1]).toBe('resnet18, resnet34, resnet101, resnext101_32x4d, mobilenet_v2 have no weights: trained from scratch');
  });

  test("'exclude' keeps only the backbones with weights; relative paths become absolute", async () => {
    const rel = path.relative(process.cwd(), r18pth);
    const plan = await check(paper({ backboneWeights: { resnet18: rel, resnet50: r50st }, missingBackboneWeights: 'exclude' }));
    expect(plan.stageOneBackbones).toEqual(['resnet18', 'resnet50']);
    expect(plan.weights.resnet18).toBe(r18pth);
    expect(plan.messages).toContain('resnet34, resnet101, resnext50_32x4d, resnext101_32x4d, mobilenet_v2 have no weights: left out of the space');
  });

  test("'exclude' without any weights fails at start; a GN+WS stage-one recipe uses none", async () => {
    const err = await check(paper({ missingBackboneWeights: 'exclude' })).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('InvalidCampaign');
    expect(err.message).toMatch(/data\.missingBackboneWeights: 'exclude' leaves the stage-one space without backbones/);
    const gn = await check(
      paper(
        { backboneWeights: { resnet50: r50pth } },
        { stages: { ...makePaperCampaign({ cocoRoot: '/c' }).stages, structural: { maxEvaluations: 5, population: 2, recipe: 'paper-stage-two' } } },
      ),
    );
    expect(gn.stageOneNorm).toBe('gn+ws');
    expect(gn.stageOneWeights).toEqual({});
    expect(gn.finalWeights).toEqual({ resnet50: r50pth });
    expect(gn.messages[0]).toMatch(/uses gn\+ws: backbones train from scratch/);
  });

  test.each([
    ['a missing file', () => path.join(work, 'nope.pth'), /cannot read the file \(ENOENT\)/],
    ['a folder', () => (fs.mkdirSync(path.join(work, 'dir.pth'), { recursive: true }), path.join(work, 'dir.pth')), /not a regular file/],
    [
      'resnet18 weights named as resnet50',
      () => r18pth,
      /not resnet50 weights in torchvision naming: missing key\(s\) layer1\.0\.conv3\.weight, layer3\.5\.conv3\.weight, layer4\.2\.bn3\.running_var/,
    ],
    ['ResNeXt weights named as resnet50', () => x50st, /grouped \(ResNeXt\) convolution, not resnet50's/],
    [
      'a file of another format',
      () => (fs.writeFileSync(path.join(work, 'text.pth'), 'hello, this is not a checkpoint'), path.join(work, 'text.pth')),
      /nor a safetensors file/,
    ],
    [
      'a legacy torch.save file',
      () => (fs.writeFileSync(path.join(work, 'legacy.pth'), Buffer.from([0x80, 0x02, 0x8a, 0x0a])), path.join(work, 'legacy.pth')),
      /legacy \(pre-1\.6\)/,
    ],
  ])('%s fails non-retryably naming data.backboneWeights.resnet50 and the path', async (_what, file, message) => {
    const f = file();
    const err = await check(paper({ backboneWeights: { resnet50: f } })).catch((e) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err.nonRetryable).toBe(true);
    expect(err.type).toBe('InvalidCampaign');
    expect(err.message).toContain(`campaign: data.backboneWeights.resnet50: ${f}: `);
    expect(err.message).toMatch(message);
  });

  test('resnet101 weights named as resnet50 are caught by the deeper keys', async () => {
    const f = writeSafetensors(path.join(work, 'r101.safetensors'), resnetKeys([3, 4, 23, 3], true));
    const err = await check(paper({ backboneWeights: { resnet50: f } })).catch((e) => e);
    expect(err.message).toMatch(/key\(s\) of a deeper network \(layer3\.6\.\*\)/);
    const ok = await check(paper({ backboneWeights: { resnet101: f } }));
    expect(ok.weights.resnet101).toBe(f);
  });

  test('the toy space has no named backbones: weights are only for finalists that are exactly one', async () => {
    const c = { ...makeToyCampaign({ dataRoot: path.join(work, 'toy') }) };
    const plan = await check({ ...c, data: { ...c.data, backboneWeights: { resnet18: r18pth }, missingBackboneWeights: 'exclude' } });
    expect(plan.missing).toEqual([]);
    expect(plan.stageOneBackbones).toEqual([]);
    expect(plan.stageOneWeights).toEqual({});
    expect(plan.messages[0]).toMatch(/the toy space has no named backbones/);
    expect(plan.messages).toContain('resnet18: not in the toy stage-one space');
  });
});
