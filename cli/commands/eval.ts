/** `smnas eval`: COCO bbox (pycocotools-identical) or Pascal VOC mAP of a results file. */
import { bool, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { ProgressBar } from '../../common/progress';
import { DatasetError } from '../../datasets/coco';
import { evaluateCocoFiles, evaluateVocFiles } from '../../evaluation/coco-eval-io';
import { COCO_STAT_NAMES } from '../../protocol/trainer-messages';

const STAT_LABELS: Record<(typeof COCO_STAT_NAMES)[number], string> = {
  AP: 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]',
  AP50: 'Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]',
  AP75: 'Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]',
  APs: 'Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]',
  APm: 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]',
  APl: 'Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]',
  AR1: 'Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]',
  AR10: 'Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]',
  AR100: 'Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]',
  ARs: 'Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]',
  ARm: 'Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]',
  ARl: 'Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]',
};

export const command: Command = {
  summary: 'evaluate detections: COCO bbox stats (same as pycocotools) or VOC mAP',
  help: `usage: smnas eval --gt <instances.json> --dets <detections.json> [--metric coco|voc] [--voc07] [--json]

  --gt       COCO instances file (ground truth; iscrowd=1 = crowd region / VOC difficult)
  --dets     COCO results file: [{"image_id", "category_id", "bbox": [x,y,w,h], "score"}, ...]
             (an empty array is valid; unknown images/categories, NaN scores and negative
             sizes are errors naming the record)
  --metric   coco (default): the 12 COCOeval bbox statistics, identical to pycocotools
             voc: Pascal VOC mAP@0.5, all-points (VOC2010+); add --voc07 for the 11-point metric
  --json     one line: coco {"stats": {AP, AP50, ...}, "perClass": {name: {id, AP, AP50, AP75, AR100, numGt, numDets}}}
                        voc  {"mAP", "metric", "iouThr", "perClass": {name: {id, AP, numGt, numDets}}}
             statistics are -1 where pycocotools prints -1 (no ground truth in that range),
             per-class values null for classes without ground truth.

examples:
  smnas eval --gt data/toy/annotations/instances_val.json --dets out/dets_val.json
  smnas eval --gt voc/annotations/instances_test.json --dets dets.json --metric voc --voc07 --json
`,
  async main(argv) {
    const cmd = 'smnas eval';
    const flags = parseFlags(
      cmd,
      argv,
      {
        gt: { type: 'string' },
        dets: { type: 'string' },
        metric: { type: 'string' },
        voc07: { type: 'boolean' },
        json: { type: 'boolean' },
      },
      false,
    );
    const gt = requireStr(cmd, flags, 'gt');
    const dets = requireStr(cmd, flags, 'dets');
    const metric = str(flags, 'metric') ?? 'coco';
    if (metric !== 'coco' && metric !== 'voc') throw new UserError(`${cmd}: --metric must be coco or voc, got '${metric}'`);
    if (bool(flags, 'voc07') && metric !== 'voc') throw new UserError(`${cmd}: --voc07 needs --metric voc`);
    const started = process.hrtime.bigint();
    try {
      if (metric === 'coco') {
        // a progress bar only for big evaluations (or a terminal): the trainer calls this per epoch
        let bar: ProgressBar | undefined;
        const r = await evaluateCocoFiles(gt, dets, (d, t, n) => {
          if (!bar && (process.stderr.isTTY || n >= 200_000)) bar = new ProgressBar('eval classes', t);
          bar?.update(d);
        });
        log.debug({ ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'coco evaluation done');
        if (bool(flags, 'json')) printJson(r);
        else {
          for (const name of COCO_STAT_NAMES) process.stdout.write(` ${STAT_LABELS[name]} = ${r.stats[name].toFixed(3)}\n`);
          process.stdout.write('\nper class (AP, AP50):\n');
          for (const [name, c] of Object.entries(r.perClass)) {
            process.stdout.write(
              `  ${name.padEnd(24)} ${c.AP === null ? '   -  ' : c.AP.toFixed(4)} ${c.AP50 === null ? '   -  ' : c.AP50.toFixed(4)}  (gt ${c.numGt}, dets ${c.numDets})\n`,
            );
          }
        }
      } else {
        const r = await evaluateVocFiles(gt, dets, { voc07: bool(flags, 'voc07') });
        if (bool(flags, 'json')) printJson(r);
        else {
          process.stdout.write(`mAP@${r.iouThr} (${r.metric === 'voc07' ? 'VOC2007 11-point' : 'VOC2010+ all-points'}) = ${r.mAP.toFixed(4)}\n`);
          for (const [name, c] of Object.entries(r.perClass)) {
            process.stdout.write(`  ${name.padEnd(24)} ${c.AP === null ? '   -  ' : c.AP.toFixed(4)}  (gt ${c.numGt}, dets ${c.numDets})\n`);
          }
        }
      }
    } catch (e) {
      if (e instanceof DatasetError) throw new UserError(e.message);
      throw e;
    }
    return 0;
  },
};
