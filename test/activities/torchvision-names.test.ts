/**
 * torchvision's naming has two readers here: the campaign's start check of ImageNet weights
 * (activities/backbone-weights.ts: a short table of signature keys per named backbone, because
 * control workers carry no trainer) and the trainer's import (native/src/weights.cpp: the full
 * name map). This contract test holds both to torchvision itself, for every named backbone of the
 * search library, as one suite: each backbone's real names and shapes come from Debian's
 * python3-torchvision (test/support/torchvision_weights.py `skeleton`: a torch.save
 * .pth whose tensors are zeros broadcast to their real shapes, a few hundred kB) and a safetensors
 * header with the real shapes.
 *  - Start check: each file passes under its own name and is refused under every other name, with
 *    one exception by design: a .pth is checked by key names only, and ResNet-50/101 and
 *    ResNeXt-50/101 32x4d have the same names (their conv2 shapes differ), so such a pair passes
 *    the start check...
 *  - ...and the trainer refuses it by shape, while it imports every tensor of each backbone's own
 *    file (`classify`, invalid_job naming initWeights otherwise).
 * (weights.test.ts checks the import's numbers: logits equal torchvision's on real weights.)
 * Fails (does not skip) without the trainer, /usr/bin/python3 or python3-torchvision.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkBackboneWeightsFile } from '../../activities/backbone-weights';
import { PROJECT_ROOT } from '../../common/paths';
import { encodePngRgb } from '../../datasets/png';
import { buildClassifyJob } from '../../protocol/job-builder';
import { NAMED_BACKBONES, type NamedBackbone } from '../../search';
import { writeSafetensorsHeader } from '../support/checkpoint-files';
import { requireTrainer, runTrainer } from '../native/helpers/trainer';
import { tmpDir } from './mock-trainer';

const PY = '/usr/bin/python3';
const HELPER = path.join(PROJECT_ROOT, 'test', 'support', 'torchvision_weights.py');
const work = tmpDir('smnas-tvnames-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function helper(args: string[]): string {
  const r = spawnSync(PY, [HELPER, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${HELPER} ${args.join(' ')} failed (python3-torchvision installed? bash scripts/setup.sh):\n${r.stderr}`);
  return r.stdout;
}

const files = {} as Record<NamedBackbone, { pth: string; safetensors: string; tensors: number }>;
const conv2 = {} as Record<NamedBackbone, number[] | undefined>;
const images = path.join(work, 'images');
beforeAll(() => {
  requireTrainer();
  for (const arch of NAMED_BACKBONES) {
    const pth = path.join(work, `${arch}.pth`);
    const shapes = JSON.parse(helper(['skeleton', '--arch', arch, '--out', pth])) as Record<string, number[]>;
    files[arch] = { pth, safetensors: writeSafetensorsHeader(path.join(work, `${arch}.safetensors`), shapes), tensors: Object.keys(shapes).length };
    conv2[arch] = shapes['layer1.0.conv2.weight'];
  }
  fs.mkdirSync(images);
  // one 8x8 grey PNG: the import is what is checked, not the prediction
  fs.writeFileSync(path.join(images, 'grey.png'), encodePngRgb(8, 8, new Uint8Array(8 * 8 * 3).fill(128)));
}, 120_000);

/** key-identical pairs a .pth name check cannot tell apart */
const SAME_NAMES: ReadonlyArray<readonly [NamedBackbone, NamedBackbone]> = [
  ['resnet50', 'resnext50_32x4d'],
  ['resnet101', 'resnext101_32x4d'],
];
const sameNames = (a: NamedBackbone, b: NamedBackbone) => SAME_NAMES.some(([x, y]) => (x === a && y === b) || (x === b && y === a));

function startCheck(name: NamedBackbone, file: string): string {
  try {
    return `accepted as ${checkBackboneWeightsFile(name, file)}`;
  } catch (e) {
    return `refused: ${(e as Error).message}`;
  }
}

describe.each(['pth', 'safetensors'] as const)('the start check on torchvision files (.%s), every named backbone', (ext) => {
  test.each([...NAMED_BACKBONES])('%s: accepted under its own name, refused under the others', (arch) => {
    const file = files[arch][ext];
    const got = Object.fromEntries(NAMED_BACKBONES.map((name) => [name, startCheck(name, file)]));
    const want = Object.fromEntries(
      NAMED_BACKBONES.map((name) => [
        name,
        name === arch || (ext === 'pth' && sameNames(arch, name))
          ? `accepted as ${ext}`
          : expect.stringMatching(/^refused: (not \S+ weights in torchvision naming|layer1\.0\.conv2\.weight has shape)/),
      ]),
    );
    expect(got).toEqual(want);
  });
});

test('the key-identical pairs really are: the same torchvision names, different conv2 shapes', () => {
  for (const [a, b] of SAME_NAMES) {
    expect(files[a].tensors).toBe(files[b].tensors);
    expect(startCheck(a, files[b].pth)).toBe('accepted as pth');
    expect(conv2[a]).not.toEqual(conv2[b]);
  }
});

const classify = (backbone: NamedBackbone, weights: string) =>
  runTrainer(buildClassifyJob({ backbone, weights, images, outDir: tmpDir('smnas-tvnames-run-'), threads: 1 }));

describe("the trainer's import of the same .pth files (classify)", () => {
  test.each([...NAMED_BACKBONES])(
    '%s: every torchvision tensor imported by name and shape',
    async (arch) => {
      const r = await classify(arch, files[arch].pth);
      expect({ code: r.code, imported: /imported (\d+) tensors/.exec(r.stderr)?.[1] }).toEqual({ code: 0, imported: String(files[arch].tensors) });
    },
    120_000,
  );

  test.each(SAME_NAMES.flatMap(([a, b]) => [[a, b] as const, [b, a] as const]))(
    '%s weights named as %s: passed by the start check, refused by the import (mis-shaped conv2)',
    async (file, name) => {
      const r = await classify(name, files[file].pth);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/initWeights: .* does not fit this classifier .*mis-shaped key\(s\): .*layer1\.0\.conv2\.weight/);
    },
    120_000,
  );
});
