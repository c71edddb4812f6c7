/**
 * Control-queue activity `checkBackboneWeights`: the campaign's `data.backboneWeights` (ImageNet
 * checkpoints in torchvision's naming, per named backbone) checked at start, and what the campaign
 * does with them (BackboneWeightsPlan): which stage-one backbones start from weights, which have
 * none (trained from scratch or left out of the space, `data.missingBackboneWeights`), and which
 * finalists start from them in the final stage.
 *
 * The check is cheap and needs no trainer: the file exists and is a readable regular file; its
 * content is a torch.save zip (`.pth` / `.pt`) or a safetensors file (header length + JSON header
 * parsed); and it holds the backbone's torchvision keys (a few signature keys present, the keys of
 * deeper variants absent: a resnet18 file named as resnet50 is caught; safetensors headers also
 * tell ResNeXt's grouped conv2 from ResNet's). Keys and shapes in full are checked by the trainer
 * when a training imports the file (an `invalid_job` naming initWeights, non-retryable).
 * The signature table below is a second reader of torchvision's naming beside the trainer's name
 * map (native/src/weights.cpp); test/activities/torchvision-names.test.ts holds both to
 * torchvision's own names and shapes for every named backbone.
 * A bad file fails the campaign non-retryably (InvalidCampaign) naming `data.backboneWeights.<name>`
 * and the path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { UserError, describeZodError } from '../common/errors';
import { DEFAULT_MISSING_BACKBONE_WEIGHTS, parseCampaign } from '../protocol/campaign';
import { resolveDetectionRecipe } from '../protocol/recipe-file';
import { getSearchSpaces, NAMED_BACKBONES, type NamedBackbone } from '../search';
import type { ActivityDeps } from './index';
import type { BackboneWeightsPlan } from './types';

type Format = 'pth' | 'safetensors';

/** torchvision keys a checkpoint of each named backbone must hold, and key prefixes it must not. */
const SIGNATURES: Record<NamedBackbone, { present: string[]; absent: string[]; grouped?: boolean }> = {
  resnet18: { present: ['conv1.weight', 'layer1.1.conv2.weight', 'layer4.1.bn2.running_var'], absent: ['layer1.0.conv3.', 'layer1.2.'] },
  resnet34: { present: ['conv1.weight', 'layer3.5.conv2.weight', 'layer4.2.bn2.running_var'], absent: ['layer1.0.conv3.', 'layer3.6.'] },
  resnet50: { present: ['conv1.weight', 'layer1.0.conv3.weight', 'layer3.5.conv3.weight', 'layer4.2.bn3.running_var'], absent: ['layer3.6.'], grouped: false },
  resnet101: {
    present: ['conv1.weight', 'layer1.0.conv3.weight', 'layer3.22.conv3.weight', 'layer4.2.bn3.running_var'],
    absent: ['layer3.23.'],
    grouped: false,
  },
  resnext50_32x4d: {
    present: ['conv1.weight', 'layer1.0.conv3.weight', 'layer3.5.conv3.weight', 'layer4.2.bn3.running_var'],
    absent: ['layer3.6.'],
    grouped: true,
  },
  resnext101_32x4d: {
    present: ['conv1.weight', 'layer1.0.conv3.weight', 'layer3.22.conv3.weight', 'layer4.2.bn3.running_var'],
    absent: ['layer3.23.'],
    grouped: true,
  },
  mobilenet_v2: { present: ['features.0.0.weight', 'features.17.conv.2.weight', 'features.18.1.running_var'], absent: ['layer1.'] },
};

/** how much of a .pth is scanned for key names (torch.save writes data.pkl, stored, first) */
const PTH_SCAN_BYTES = 8 << 20;

class WeightsProblem extends Error {}

function readHead(file: string, bytes: number): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = fs.readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/** Keys (and conv2 shape of layer1.0) of a safetensors file, from its header. */
function safetensorsKeys(file: string, size: number): { keys: Set<string>; shapes: Record<string, number[]> } {
  if (size < 8) throw new WeightsProblem('not a torch.save zip (.pth) nor a safetensors file (too short)');
  const head = readHead(file, 8);
  const n = head.readBigUInt64LE(0);
  if (n < 2n || n > BigInt(Math.min(size - 8, 100 << 20))) {
    throw new WeightsProblem(`not a torch.save zip (.pth) nor a safetensors file (header length ${n} does not fit a file of ${size} bytes)`);
  }
  const json = readHead(file, 8 + Number(n))
    .subarray(8)
    .toString('utf8');
  let header: Record<string, { shape?: unknown }>;
  try {
    header = JSON.parse(json);
  } catch (e) {
    throw new WeightsProblem(`safetensors header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new WeightsProblem('safetensors header is not a JSON object');
  const keys = new Set(Object.keys(header).filter((k) => k !== '__metadata__'));
  const shapes: Record<string, number[]> = {};
  for (const k of keys) if (Array.isArray(header[k]?.shape)) shapes[k] = header[k].shape as number[];
  return { keys, shapes };
}

/**
 * Check one checkpoint for one named backbone; returns its format. Throws WeightsProblem with a
 * message for people.
 */
export function checkBackboneWeightsFile(name: NamedBackbone, file: string): Format {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new WeightsProblem(`cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!st.isFile()) throw new WeightsProblem('not a regular file');
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw new WeightsProblem(`cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const sig = SIGNATURES[name];
  const head = readHead(file, Math.min(st.size, PTH_SCAN_BYTES));
  if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) {
    // torch.save's zip: key names are strings in the stored data.pkl near the start
    const text = head.toString('latin1');
    if (!text.includes('data.pkl')) throw new WeightsProblem('a zip archive without data.pkl: not a torch.save checkpoint');
    const missing = sig.present.filter((k) => !text.includes(k));
    const extra = sig.absent.filter((k) => text.includes(k));
    if (missing.length || extra.length) throw new WeightsProblem(notThisBackbone(name, missing, extra));
    return 'pth';
  }
  if (head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) {
    throw new WeightsProblem('a legacy (pre-1.6) torch.save file: re-save it with torch.save(torch.load(f), f2) (the trainer reads the zip format)');
  }
  const { keys, shapes } = safetensorsKeys(file, st.size);
  const missing = sig.present.filter((k) => !keys.has(k));
  const extra = sig.absent.filter((p) => [...keys].some((k) => k.startsWith(p)));
  if (missing.length || extra.length) throw new WeightsProblem(notThisBackbone(name, missing, extra));
  const conv2 = shapes['layer1.0.conv2.weight'];
  if (sig.grouped !== undefined && conv2 && conv2.length === 4) {
    const grouped = conv2[1] !== conv2[0];
    if (grouped !== sig.grouped) {
      throw new WeightsProblem(
        `layer1.0.conv2.weight has shape [${conv2.join(',')}]: ${grouped ? 'a grouped (ResNeXt)' : 'an ungrouped (ResNet)'} convolution, not ${name}'s`,
      );
    }
  }
  return 'safetensors';
}

function notThisBackbone(name: NamedBackbone, missing: string[], extra: string[]): string {
  const parts = [
    ...(missing.length ? [`missing key(s) ${missing.join(', ')}`] : []),
    ...(extra.length ? [`key(s) of a deeper network (${extra.map((p) => `${p}*`).join(', ')})`] : []),
  ];
  return `not ${name} weights in torchvision naming: ${parts.join('; ')}`;
}

function recipeNorm(field: string, recipe: string) {
  try {
    return resolveDetectionRecipe(recipe).norm;
  } catch (e) {
    if (e instanceof UserError) throw ApplicationFailure.nonRetryable(`campaign: ${field}: ${e.message}`, 'InvalidCampaign');
    throw e;
  }
}

const list = (names: readonly string[]) => names.join(', ');

export function makeBackboneWeightsActivities(deps: ActivityDeps) {
  async function checkBackboneWeights(input: unknown): Promise<BackboneWeightsPlan> {
    const r = parseCampaign(input);
    if (!r.success) throw ApplicationFailure.nonRetryable(describeZodError('campaign', r.error), 'InvalidCampaign');
    const c = r.data;
    const given = c.data.backboneWeights ?? {};
    const weights: BackboneWeightsPlan['weights'] = {};
    const formats: BackboneWeightsPlan['formats'] = {};
    for (const name of NAMED_BACKBONES) {
      const file = given[name];
      if (file === undefined) continue;
      const abs = path.resolve(file);
      try {
        formats[name] = checkBackboneWeightsFile(name, abs);
      } catch (e) {
        if (e instanceof WeightsProblem)
          throw ApplicationFailure.nonRetryable(`campaign: data.backboneWeights.${name}: ${abs}: ${e.message}`, 'InvalidCampaign');
        throw e;
      }
      weights[name] = abs;
    }
    const policy = c.data.missingBackboneWeights ?? DEFAULT_MISSING_BACKBONE_WEIGHTS;
    const inSpace = getSearchSpaces(c.space).stageOne.backbones.flatMap((b) => (b.kind === 'named' ? [b.name] : []));
    const withWeights = inSpace.filter((n) => weights[n] !== undefined);
    const missing = inSpace.filter((n) => weights[n] === undefined);
    if (policy === 'exclude' && inSpace.length > 0 && withWeights.length === 0) {
      throw ApplicationFailure.nonRetryable(
        `campaign: data.missingBackboneWeights: 'exclude' leaves the stage-one space without backbones: none of ${list(inSpace)} has weights in data.backboneWeights`,
        'InvalidCampaign',
      );
    }
    const stageOneBackbones = policy === 'exclude' ? withWeights : inSpace;
    const stageOneNorm = recipeNorm('stages.structural.recipe', c.stages.structural.recipe);
    const finalNorm = recipeNorm('stages.final.recipe', c.stages.final.recipe);
    const stageOneWeights: BackboneWeightsPlan['stageOneWeights'] = {};
    if (stageOneNorm === 'bn') for (const n of withWeights) stageOneWeights[n] = weights[n];
    const finalWeights: BackboneWeightsPlan['finalWeights'] = finalNorm === 'bn' ? { ...weights } : {};

    const messages: string[] = [];
    if (inSpace.length === 0) {
      messages.push(`stage one: the ${c.space} space has no named backbones (its backbones are encodings): no ImageNet weights used there`);
    } else if (withWeights.length === 0) {
      messages.push(`stage one: no named backbone has ImageNet weights: ${list(inSpace)} trained from scratch`);
    } else if (stageOneNorm !== 'bn') {
      messages.push(
        `stage one: recipe ${c.stages.structural.recipe} uses ${stageOneNorm}: backbones train from scratch, the ImageNet weights of ${list(withWeights)} are not used there`,
      );
    } else {
      messages.push(`stage one: ${list(withWeights)} from ImageNet weights (BN in eval mode, stem and stage 1 frozen)`);
    }
    if (missing.length > 0 && withWeights.length > 0) {
      messages.push(
        `${list(missing)} ${missing.length === 1 ? 'has' : 'have'} no weights: ${policy === 'exclude' ? 'left out of the space' : 'trained from scratch'}`,
      );
    } else if (missing.length > 0 && policy === 'exclude') {
      messages.push(`${list(missing)}: left out of the space`);
    }
    const unused = (Object.keys(weights) as NamedBackbone[]).filter((n) => !inSpace.includes(n));
    if (unused.length > 0) messages.push(`${list(unused)}: not in the ${c.space} stage-one space`);
    const named = Object.keys(weights);
    if (named.length > 0) {
      messages.push(
        finalNorm === 'bn'
          ? `final stage: a finalist that is exactly ${list(named)} starts from its ImageNet weights (not pretrained again); the others from the pretrain stage's weights`
          : `final stage: recipe ${c.stages.final.recipe} uses ${finalNorm}: no ImageNet weights used there`,
      );
    }
    const plan: BackboneWeightsPlan = { weights, formats, missing, policy, stageOneBackbones, stageOneNorm, stageOneWeights, finalWeights, messages };
    deps.logger.info({ campaign: c.id, weights, missing, policy }, `backbone weights: ${messages.join('; ')}`);
    return plan;
  }
  return { checkBackboneWeights };
}
