/** `smnas export`: a trained detector as an ONNX model with its post-processing (docs/deploy.md). */
import * as path from 'node:path';
import { bool, int, parseFlags, printJson, requireStr, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { exportModel } from '../../activities/onnx';

/** 'HxW' or 'dynamic' -> the export job's inputSize */
export function parseInputSize(cmd: string, v: string | undefined): [number, number] | 'dynamic' | undefined {
  if (v === undefined) return undefined;
  if (v === 'dynamic') return 'dynamic';
  const m = /^(\d+)x(\d+)$/.exec(v);
  if (!m) throw new UserError(`${cmd}: --input-size must be HxW (e.g. 512x512) or 'dynamic', got '${v}'`);
  const h = Number(m[1]),
    w = Number(m[2]);
  if (h % 32 !== 0 || w % 32 !== 0 || h < 32 || w < 32)
    throw new UserError(`${cmd}: --input-size ${v}: height and width must be positive multiples of 32 (evaluation pads images to them)`);
  return [h, w];
}

export const command: Command = {
  summary: 'export a trained detector to ONNX (weights and post-processing: proposals, RoIAlign, NMS, top-k)',
  help: `usage: smnas export --weights <dir> --out model.onnx [--input-size HxW|dynamic] [--opset N] [--json]

  --weights DIR      a detector training's output folder (weights + job-train.json: smnas train --out,
                     or a campaign's run folder)
  --out FILE         the ONNX model to write; FILE.json beside it records the architecture, input
                     size, normalisation and category names (smnas detect reads it)
  --input-size       HxW: a fixed input tensor (multiples of 32; default: the architecture's input
                     size rounded up to 32), or 'dynamic' (any padded size)
  --opset N          ONNX opset, 16..18 (default 17)
  --json             print the result as JSON

The model takes image [1,3,H,W] (RGB, (pixel - mean) / std, zero padded bottom/right) and
image_size [width, height] of the content, and returns boxes [N,4] (x1,y1,x2,y2 in the input
frame), scores [N] and labels [N] after the recipe's score threshold, per-class NMS and top-k.
Every architecture of the search space exports (GA-RPN's deformable conv as GridSample + Conv).

example:
  smnas export --weights /tmp/r18 --out /tmp/r18.onnx --input-size dynamic
`,
  async main(argv) {
    const cmd = 'smnas export';
    const flags = parseFlags(
      cmd,
      argv,
      { weights: { type: 'string' }, out: { type: 'string' }, 'input-size': { type: 'string' }, opset: { type: 'string' }, json: { type: 'boolean' } },
      false,
    );
    const weightsDir = path.resolve(requireStr(cmd, flags, 'weights'));
    const out = path.resolve(requireStr(cmd, flags, 'out'));
    const opset = int(cmd, flags, 'opset', 17)!;
    if (opset < 16 || opset > 18) throw new UserError(`${cmd}: --opset must be 16, 17 or 18`);
    const r = await exportModel({ weightsDir, out, inputSize: parseInputSize(cmd, str(flags, 'input-size')), opset });
    if (bool(flags, 'json')) printJson(r);
    else process.stdout.write(`wrote ${r.model} (input ${r.input}, ${r.nodes} nodes, ${(r.bytes / 1e6).toFixed(1)} MB) and ${r.sidecar}\n`);
    return 0;
  },
};
