/**
 * torchvision ImageNet weights (native/src/weights.cpp): state dicts written by Debian's
 * python3-torch / python3-torchvision from randomly initialised torchvision models (BN statistics
 * calibrated on random inputs; test/support/torchvision_weights.py) are imported by the trainer as
 * .pth (torch.save) and .safetensors; `bin/smnas classify` gives torchvision's top-5 logits on
 * generated PNGs (reference: torchvision 0.14 transforms on the uint8 tensor) to 1e-4 relative;
 * bad files fail as invalid_job naming the keys or the file; a detector imports the backbone with
 * stem + stage 1 frozen and BN in eval mode; and the project's own pretraining, exported in
 * torchvision naming and imported through the same path, gives a detector that learns faster than
 * the same detector from scratch.
 *
 * Needs /usr/bin/python3 with torch and torchvision (Debian's python3-torchvision, python3-pil:
 * scripts/setup.sh installs them); without them the suite fails rather than shrinking.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../common/paths';
import { buildClassificationJob, buildClassifyJob, buildDetectionJob } from '../../protocol/job-builder';
import { getClassificationRecipe, getDetectionRecipe } from '../../protocol/recipes';
import { PRETRAINED_BACKBONE } from '../../protocol/recipe';
import { classFolders, evaluatorArgv, requireTrainer, resultOf, runTrainer, shapesDataset, tmpDir } from './helpers/trainer';

const PY = '/usr/bin/python3';
const HELPER = path.join(PROJECT_ROOT, 'test', 'support', 'torchvision_weights.py');
const HAVE_TORCHVISION = spawnSync(PY, ['-c', 'import torch, torchvision, PIL, numpy'], { stdio: 'ignore' }).status === 0;

/** Relative tolerance on each logit (the bar); measured max on 2026-11-29: 6.5e-7 (resnet50). */
const REL_TOL = 1e-4;
const ARCHS = ['resnet18', 'resnet50', 'resnext50_32x4d', 'mobilenet_v2'];

function python(args: string[]): string {
  const r = spawnSync(PY, [HELPER, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${HELPER} ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

function smnas(args: string[]) {
  return spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'dist', 'cli', 'smnas.js'), ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Rewrites a safetensors file: edit(header) may rename, drop or reshape records (same bytes). */
function editSafetensors(src: string, dst: string, edit: (h: Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>) => void) {
  const b = fs.readFileSync(src);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString());
  edit(header);
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(dst, Buffer.concat([len, h, b.subarray(8 + n)]));
}

describe('torchvision weights', () => {
  it('has the Python reference (torch, torchvision, PIL, numpy under /usr/bin/python3)', () => {
    // a missing reference fails loudly: scripts/setup.sh installs python3-torchvision and python3-pil
    expect({ python: PY, importsTorchvision: HAVE_TORCHVISION }).toEqual({ python: PY, importsTorchvision: true });
  });

  let dir = '';
  let ref: { files: string[]; archs: Record<string, Record<string, { classes: number[]; logits: number[] }>> };
  beforeAll(() => {
    requireTrainer();
    dir = tmpDir('tvweights');
    python(['write', '--out', dir, '--archs', ARCHS.join(','), '--images', '4', '--seed', '0']);
    ref = JSON.parse(fs.readFileSync(path.join(dir, 'reference.json'), 'utf8'));
  }, 300_000);

  it.each(ARCHS.flatMap((a) => [[a, 'pth'], [a, 'safetensors']]))('%s (.%s): smnas classify equals torchvision to 1e-4', (arch, ext) => {
    const r = smnas(['classify', '--arch', arch, '--weights', path.join(dir, `${arch}.${ext}`), '--images', path.join(dir, 'images'), '--json', '--threads', '1']);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { predictions: { file: string; classes: number[]; logits: number[] }[] };
    expect(out.predictions.map((p) => p.file)).toEqual(ref.files);
    let worst = 0;
    for (const p of out.predictions) {
      const want = ref.archs[arch][p.file];
      expect(p.classes).toEqual(want.classes);
      p.logits.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want.logits[i]) / Math.max(Math.abs(want.logits[i]), 1e-6))));
    }
    expect(worst).toBeLessThanOrEqual(REL_TOL);
  }, 120_000);

  const classify = (weights: string) =>
    runTrainer(buildClassifyJob({ backbone: 'resnet18', weights, images: path.join(dir, 'images'), outDir: tmpDir('classify'), threads: 1 }));

  it('names unknown, missing and mis-shaped keys (exit 2, invalid_job, initWeights)', async () => {
    const bad = path.join(dir, 'bad.safetensors');
    editSafetensors(path.join(dir, 'resnet18.safetensors'), bad, (h) => {
      h['layer1.0.conv9.weight'] = h['layer1.0.conv1.weight']; // unknown ...
      delete h['layer1.0.conv1.weight']; // ... and missing
      delete h['layer2.1.bn2.running_var']; // missing
      h['fc.bias'].shape = [10, 100]; // mis-shaped (same bytes)
    });
    const r = await classify(bad);
    expect(r.code).toBe(2);
    const err = r.messages.find((m) => m.type === 'error');
    expect(err).toMatchObject({ kind: 'invalid_job', field: 'initWeights' });
    const msg = err!.type === 'error' ? err!.message : '';
    for (const k of ['1 unknown key(s): layer1.0.conv9.weight', 'missing key(s): ', 'layer1.0.conv1.weight', 'layer2.1.bn2.running_var', 'fc.bias (file [10,100], model [1000])'])
      expect(msg).toContain(k);
  }, 60_000);

  it('a corrupt safetensors header fails as invalid_job naming the file', async () => {
    const bad = path.join(dir, 'corrupt.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(1n << 40n);
    fs.writeFileSync(bad, Buffer.concat([len, Buffer.from('{"fc.weight":')]));
    const r = await classify(bad);
    expect(r.code).toBe(2);
    const err = r.messages.find((m) => m.type === 'error');
    expect(err).toMatchObject({ kind: 'invalid_job', field: 'initWeights' });
    expect(err!.type === 'error' && err!.message).toContain(bad);
    const bad2 = path.join(dir, 'offsets.safetensors');
    editSafetensors(path.join(dir, 'resnet18.safetensors'), bad2, (h) => (h['conv1.weight'].data_offsets = [0, 1e12]));
    const r2 = await classify(bad2);
    expect(r2.code).toBe(2);
    expect(r2.messages.find((m) => m.type === 'error')).toMatchObject({ field: 'initWeights', message: expect.stringContaining("record 'conv1.weight'") });
  }, 60_000);

  const ARCH18 = '128x128/resnet18/fpn(P2-P5,c=32)/rpn/2fc';
  const detJob = (arch: string, init: string, recipeName: string, extra: Partial<ReturnType<typeof getDetectionRecipe>> = {}) =>
    buildDetectionJob({
      command: 'train', arch, recipe: { ...getDetectionRecipe(recipeName), maxIterations: 2, batchSize: 2, ...extra }, numClasses: 4,
      dataRoot: shapesDataset(200, 50), outDir: tmpDir('tvdet'), threads: 1, initWeights: init, initKind: 'torchvision',
    });

  it('a detector trains from a torchvision backbone with stem + stage 1 frozen and BN statistics fixed', async () => {
    const job = detJob(ARCH18, path.join(dir, 'resnet18.pth'), 'toy-final', { backbone: PRETRAINED_BACKBONE });
    const r = await runTrainer(job);
    expect({ code: r.code, invalid: r.invalid }).toEqual({ code: 0, invalid: [] });
    expect(r.stderr).toMatch(/imported 120 tensors from .*resnet18\.pth \(torchvision naming\); 2 known keys unused by this backbone/);
    // the saved detector against the checkpoint (python reads the trainer's archive with torch.jit.load)
    const cmp = spawnSync(PY, ['-c', `
import json, sys, torch
det = {k: v for k, v in torch.jit.load(sys.argv[1]).state_dict().items()}
tv = torch.load(sys.argv[2])
pairs = {'backbone.stem.weight': 'conv1.weight', 'backbone.stemNorm.bn.running_mean': 'bn1.running_mean',
         'backbone.stage1.0.conv1.weight': 'layer1.0.conv1.weight', 'backbone.stage1.1.n2.bn.weight': 'layer1.1.bn2.weight',
         'backbone.stage3.0.n1.bn.running_var': 'layer3.0.bn1.running_var', 'backbone.stage2.0.conv1.weight': 'layer2.0.conv1.weight'}
print(json.dumps({k: bool(torch.equal(det[k], tv[v])) for k, v in pairs.items()}))
`, path.join(job.outDir, 'weights'), path.join(dir, 'resnet18.pth')], { encoding: 'utf8' });
    expect(cmp.status).toBe(0);
    expect(JSON.parse(cmp.stdout)).toEqual({
      'backbone.stem.weight': true, 'backbone.stemNorm.bn.running_mean': true, 'backbone.stage1.0.conv1.weight': true,
      'backbone.stage1.1.n2.bn.weight': true, 'backbone.stage3.0.n1.bn.running_var': true, // frozen / normEval
      'backbone.stage2.0.conv1.weight': false, // trained
    });
  }, 120_000);

  it('neck none (3 stages) leaves layer4 unused; a GN+WS detector refuses a BN checkpoint', async () => {
    const r = await runTrainer(detJob('128x128/resnet18/none/rpn/2fc', path.join(dir, 'resnet18.safetensors'), 'toy-final', { maxIterations: 1 }));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/imported 90 tensors .*; 32 known keys unused by this backbone/);
    const g = await runTrainer(detJob(ARCH18, path.join(dir, 'resnet18.safetensors'), 'toy-stage-two'));
    expect(g.code).toBe(2);
    expect(g.messages.find((m) => m.type === 'error')).toMatchObject({ kind: 'invalid_job', field: 'initWeights', message: expect.stringContaining('BatchNorm') });
  }, 120_000);

  it("classify-train's export loads into torchvision's resnet18 with strict=True", async () => {
    const cls = buildClassificationJob({
      command: 'classify-train', arch: '64x64/resnet18/fpn(P2-P5,c=32)/rpn/2fc', recipe: { ...getClassificationRecipe('toy-pretrain'), maxIterations: 1 },
      dataRoot: classFolders(100, 20), outDir: tmpDir('cls-export'), seed: 1, threads: 1,
    });
    expect((await runTrainer(cls)).code).toBe(0);
    const out = python(['load', '--arch', 'resnet18', '--num-classes', '4', '--file', path.join(cls.outDir, 'torchvision.safetensors')]);
    expect(JSON.parse(out)).toEqual({ ok: true, tensors: 122 });
  }, 120_000);
});

/**
 * The project's own pretraining (classify-train, BN), exported in torchvision naming
 * (<outDir>/torchvision.safetensors) and imported with initKind 'torchvision', against the same
 * detector from scratch: pretrain.test.ts's schedule (toy-final, one epoch, lr 0.01), mean AP50 of
 * two seeds. No python needed.
 */
describe('torchvision-naming export + import', () => {
  it('a detector from the imported backbone learns faster than from scratch', async () => {
    requireTrainer();
    const ARCH = '128x128/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc';
    const cls = buildClassificationJob({
      command: 'classify-train', arch: ARCH, recipe: getClassificationRecipe('toy-pretrain'), dataRoot: classFolders(100, 20),
      outDir: tmpDir('pretrain-tv'), seed: 3, threads: 1,
    });
    const rc = await runTrainer(cls);
    expect(rc.code).toBe(0);
    const exported = path.join(cls.outDir, 'torchvision.safetensors');
    expect(fs.existsSync(exported)).toBe(true);
    const det = (seed: number, init?: string) => {
      const recipe = getDetectionRecipe('toy-final');
      recipe.epochs = 1;
      recipe.schedule = { kind: 'cosine', minLr: 1e-4, warmupIterations: 30, warmupRatio: 0.001 };
      if (init) recipe.backbone = PRETRAINED_BACKBONE;
      return buildDetectionJob({
        command: 'train', arch: ARCH, recipe, numClasses: 4, dataRoot: shapesDataset(200, 50), outDir: tmpDir('tv-init'),
        seed, threads: 1, initWeights: init, initKind: init ? 'torchvision' : 'backbone', evaluator: evaluatorArgv(),
      });
    };
    const seeds = [3, 4];
    const runs = await Promise.all(seeds.flatMap((seed) => [runTrainer(det(seed)), runTrainer(det(seed, exported))]));
    const ap50 = (i: number) => resultOf(runs[i]).metrics!.stats!.AP50;
    for (let k = 0; k < seeds.length; k++) expect(runs[2 * k + 1].stderr).toContain('(torchvision naming)');
    const scratch = (ap50(0) + ap50(2)) / 2, imported = (ap50(1) + ap50(3)) / 2;
    console.log(`AP50 scratch ${ap50(0)} / ${ap50(2)} (mean ${scratch.toFixed(3)}), imported ${ap50(1)} / ${ap50(3)} (mean ${imported.toFixed(3)})`);
    expect(imported).toBeGreaterThan(scratch);
  }, 900_000);
});
