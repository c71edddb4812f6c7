/**
 * @jest-environment ./test/support/onnx-environment.js
 */
/**
 * ONNX export (docs/deploy.md): tiny detectors trained for a few iterations on generated shapes are
 * exported by the trainer's `export` command (activities/onnx.ts exportModel); the file must pass
 * onnx.checker (full_check) and onnxruntime-node must give the libtorch model's detections on the
 * same prepared inputs: same count, same labels, scores within 1e-4, box coordinates within 1e-3
 * relative (of max(|coordinate|, 1) px). The detections are checked to be non-trivial (the test
 * would otherwise compare empty lists). runOnnxDetector on the image files (its own decoding and
 * resizing) reproduces the trainer's evaluation detections.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import pino from 'pino';
import { OnnxDetector, exportModel, makeOnnxActivities, runOnnxDetector } from '../../activities/onnx';
import { command as detectCommand } from '../../cli/commands/detect';
import { VENV_PYTHON } from '../../common/paths';
import { buildDetectionJob } from '../../protocol/job-builder';
import { getDetectionRecipe } from '../../protocol/recipes';
import type { DetectionRecipe } from '../../protocol/recipe';
import { requireTrainer, resultOf, runTrainer, shapesDataset, tmpDir } from './helpers/trainer';

interface CocoLike {
  image_id: number;
  bbox: number[];
  score: number;
}

interface ParityRecord {
  file: string;
  image: string;
  dims: number[];
  size: [number, number];
  boxes: number[];
  scores: number[];
  labels: number[];
}

function recipeFor(norm: DetectionRecipe['norm'], scoreThreshold?: number): DetectionRecipe {
  const recipe = getDetectionRecipe('toy-stage-two');
  recipe.maxIterations = 6;
  recipe.batchSize = 4;
  recipe.workers = 0;
  recipe.norm = norm;
  if (scoreThreshold !== undefined) recipe.test.scoreThreshold = scoreThreshold;
  return recipe;
}

async function trainTiny(arch: string, recipe: DetectionRecipe, data: string): Promise<string> {
  const outDir = tmpDir('onnx-train');
  const job = buildDetectionJob({ command: 'train', arch, recipe, numClasses: 4, dataRoot: data, outDir, seed: 3, threads: 1 });
  fs.writeFileSync(path.join(outDir, 'job-train.json'), JSON.stringify(job));
  const run = await runTrainer(job);
  if (run.code !== 0) throw new Error(`training ${arch} failed (exit ${run.code}):\n${run.stderr.slice(-2000)}`);
  return outDir;
}

function onnxChecker(model: string): void {
  const r = spawnSync(VENV_PYTHON, ['-c', 'import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', model], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`onnx.checker rejected ${model}:\n${r.stderr}`);
}

/** compares onnxruntime's detections with the libtorch ones of every parity record; returns the detection count */
async function expectParity(model: string, parityFile: string): Promise<number> {
  const records = JSON.parse(fs.readFileSync(parityFile, 'utf8')) as ParityRecord[];
  expect(records.length).toBeGreaterThan(0);
  const det = await OnnxDetector.open(model, { threads: 1 });
  let total = 0;
  try {
    for (const rec of records) {
      const buf = fs.readFileSync(path.join(path.dirname(parityFile), rec.file));
      const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      const out = await det.run(input, rec.dims, rec.size[0], rec.size[1]);
      const where = `${path.basename(model)} on ${rec.image}`;
      expect({ where, count: out.scores.length }).toEqual({ where, count: rec.scores.length });
      expect({ where, labels: Array.from(out.labels, Number) }).toEqual({ where, labels: rec.labels });
      for (let k = 0; k < rec.scores.length; ++k) {
        if (Math.abs(out.scores[k] - rec.scores[k]) > 1e-4) throw new Error(`${where}: score ${k} ${out.scores[k]} vs libtorch ${rec.scores[k]}`);
        for (let c = 0; c < 4; ++c) {
          const a = out.boxes[4 * k + c],
            b = rec.boxes[4 * k + c];
          if (Math.abs(a - b) > 1e-3 * Math.max(1, Math.abs(b)))
            throw new Error(`${where}: box ${k} coordinate ${c} ${a} vs libtorch ${b}`);
        }
      }
      total += rec.scores.length;
    }
  } finally {
    await det.close();
  }
  return total;
}

describe('ONNX export: onnxruntime-node gives the libtorch detections', () => {
  beforeAll(() => requireTrainer());
  const data = () => shapesDataset(16, 6, 64, 5);

  const cases: { name: string; arch: string; norm: DetectionRecipe['norm']; score?: number }[] = [
    { name: 'ResNet + FPN + RPN + 2fc (BN)', arch: '64x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc', norm: 'bn' },
    { name: 'ResNeXt + FPN (P2-P5) + cascade (GN+WS)', arch: '64x64/Xbottleneck_16_11-21-21-21/fpn(P2-P5,c=16)/rpn/cascade(n=3)', norm: 'gn+ws' },
    // RetinaNet's prior keeps every score near 0.01 after a few iterations: a low threshold lets candidates through
    { name: 'RetinaNet (GN)', arch: '64x64/basicblock_8_1-21-21-21/fpn(P1-P5,c=16)/none/retina', norm: 'gn', score: 0.005 },
    { name: 'MobileNetV2 without FPN + RPN + 2fc (BN)', arch: '64x64/mobilenet_v2/none/rpn/2fc', norm: 'bn' },
    // the deformable feature adaption as GridSample + Conv (onnxruntime has no DeformConv kernel)
    { name: 'ResNet + FPN + GA-RPN + 2fc (BN)', arch: '64x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/ga-rpn/2fc', norm: 'bn' },
  ];

  for (const c of cases) {
    it(`${c.name}: fixed input, checker, parity`, async () => {
      const weightsDir = await trainTiny(c.arch, recipeFor(c.norm, c.score), data());
      const work = tmpDir('onnx-export');
      const model = path.join(work, 'model.onnx');
      const r = await exportModel({ weightsDir, out: model, inputSize: [64, 64], parityImages: 4, workDir: work });
      expect(r.input).toBe('64x64');
      onnxChecker(model);
      const n = await expectParity(model, r.parity!);
      expect(n).toBeGreaterThan(0);
    });
  }

  it('dynamic input size: parity, runOnnxDetector on the image files reproduces the trainer evaluation, smnas detect, the campaign export', async () => {
    // 96x64 (width x height) on 96px images: resized to 64x64 (TypeScript's resize is checked too), padded to 96x64
    const arch = '96x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc';
    const data = () => shapesDataset(16, 6, 96, 5);
    const weightsDir = await trainTiny(arch, recipeFor('bn'), data());
    const work = tmpDir('onnx-dynamic');
    const model = path.join(work, 'model.onnx');
    const r = await exportModel({ weightsDir, out: model, inputSize: 'dynamic', parityImages: 3, workDir: work });
    expect(r.input).toBe('dynamic');
    onnxChecker(model);
    expect(await expectParity(model, r.parity!)).toBeGreaterThan(0);

    // end to end: decode, resize, normalise, pad in TypeScript; detections in the original frame
    const gt = JSON.parse(fs.readFileSync(path.join(data(), 'annotations', 'instances_val.json'), 'utf8')) as {
      images: { id: number; file_name: string }[];
    };
    const trainerDets = JSON.parse(fs.readFileSync(path.join(weightsDir, 'detections_val.json'), 'utf8')) as {
      image_id: number;
      category_id: number;
      bbox: number[];
      score: number;
    }[];
    const images = gt.images.slice(0, 3);
    const run = await runOnnxDetector(
      model,
      images.map((im) => path.join(data(), 'val', im.file_name)),
      { threads: 1 },
    );
    // the trainer's own threshold applies (toy-stage-two: 0.05); --score 0 below keeps the same set
    expect(run.failures).toEqual([]);
    let compared = 0;
    images.forEach((im, i) => {
      const mine = run.images[i].detections;
      const theirs = trainerDets.filter((d) => d.image_id === im.id);
      expect({ image: im.file_name, count: mine.length }).toEqual({ image: im.file_name, count: theirs.length });
      mine.forEach((d, k) => {
        expect(d.category_id).toBe(theirs[k].category_id);
        expect(Math.abs(d.score - theirs[k].score)).toBeLessThanOrEqual(1e-4 + 1e-5);
        d.bbox.forEach((v, c) => expect(Math.abs(v - theirs[k].bbox[c])).toBeLessThanOrEqual(0.02 + 1e-3 * Math.abs(theirs[k].bbox[c])));
        compared++;
      });
      expect(run.images[i].ms).toBeGreaterThan(0);
    });
    expect(compared).toBeGreaterThan(0);

    // `smnas detect` on a folder with an unreadable image, the model given as the weights folder
    // (exported on the fly): the readable image is processed and drawn, the other named, exit 1
    const folder = tmpDir('onnx-detect-in');
    fs.copyFileSync(path.join(data(), 'val', images[0].file_name), path.join(folder, 'a.png'));
    fs.writeFileSync(path.join(folder, 'broken.png'), 'not an image');
    const outDir = tmpDir('onnx-detect-out');
    const stderr: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr.push(String(chunk));
      return true;
    });
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    let code: number;
    try {
      code = await detectCommand.main(['--model', weightsDir, folder, '--out', outDir, '--score', '0']);
    } finally {
      spy.mockRestore();
      stdout.mockRestore();
    }
    expect(code).toBe(1);
    expect(stderr.join('')).toMatch(/broken\.png: .*skipped/);
    const written = JSON.parse(fs.readFileSync(path.join(outDir, 'detections.json'), 'utf8')) as { images: unknown[]; detections: CocoLike[] };
    expect(written.images).toHaveLength(1);
    expect(written.detections.length).toBe(trainerDets.filter((d) => d.image_id === images[0].id).length);
    const png = fs.readFileSync(path.join(outDir, 'a.png'));
    expect(png.subarray(1, 4).toString()).toBe('PNG');

    // the campaign's export of its final models (control activity): a model without weights is
    // reported, not fatal; the exported one loads in onnxruntime
    const campaignDir = tmpDir('onnx-campaign');
    const { exportFinalModels } = makeOnnxActivities({ artifactRoot: campaignDir, trainerBin: requireTrainer(), devices: ['cpu'], logger: pino({ level: 'silent' }) });
    const exported = await exportFinalModels({
      campaignDir,
      models: [
        { arch, weights: path.join(weightsDir, 'weights') },
        { arch: 'other', weights: null },
      ],
    });
    expect(exported.other).toEqual({ model: null, error: 'no final weights' });
    expect(exported[arch].model).toBe(path.join(campaignDir, 'models', 'E0_96x64_basicblock_8_1-21-21-21_fpn_P1-P4_c=16_rpn_2fc.onnx'));
    const loaded = await OnnxDetector.open(exported[arch].model!);
    expect(loaded.info.input).toBe('dynamic');
    await loaded.close();
  });

  it('a fixed input size that is not a multiple of 32 is an invalid job naming the field', async () => {
    const outDir = tmpDir('onnx-badsize');
    const job = {
      ...buildDetectionJob({
        command: 'export',
        arch: '64x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc',
        recipe: recipeFor('bn'),
        numClasses: 4,
        outDir,
        export: { out: path.join(outDir, 'model.onnx'), inputSize: [64, 64] },
      }),
    };
    (job.export as { inputSize: unknown }).inputSize = [64, 70];
    const run = await runTrainer(job);
    expect(run.code).toBe(2);
    expect(resultOrError(run)).toMatchObject({ kind: 'invalid_job', field: 'export.inputSize' });
  });
});

function resultOrError(run: Awaited<ReturnType<typeof runTrainer>>) {
  const e = run.messages.find((m) => m.type === 'error');
  return e ?? resultOf(run);
}
