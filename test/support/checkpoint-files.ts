/**
 * Hand-made stand-ins for torchvision checkpoints, for tests of the campaign's weight checks
 * (activities/backbone-weights.ts): torchvision's key names, no real tensors. Not loadable by the
 * trainer (real files: test/support/torchvision_weights.py).
 */
import * as fs from 'node:fs';

/** torchvision key names of a ResNet with `blocks` per stage (bottleneck: conv3 / bn3) */
export function resnetKeys(blocks: number[], bottleneck: boolean): string[] {
  const keys = ['conv1.weight', ...['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((p) => `bn1.${p}`)];
  const convs = bottleneck ? [1, 2, 3] : [1, 2];
  blocks.forEach((n, s) => {
    for (let i = 0; i < n; i++)
      for (const k of convs) keys.push(`layer${s + 1}.${i}.conv${k}.weight`, `layer${s + 1}.${i}.bn${k}.weight`, `layer${s + 1}.${i}.bn${k}.running_var`);
  });
  return [...keys, 'fc.weight', 'fc.bias'];
}
export const R18 = resnetKeys([2, 2, 2, 2], false);
export const R50 = resnetKeys([3, 4, 6, 3], true);

/** a stand-in for torch.save's zip: local header magic, the data.pkl entry name, then the keys as pickle strings would hold them */
export function writePth(file: string, keys: string[]): string {
  const body = Buffer.from(`model/data.pkl\u0080\u0002}q\u0000(${keys.map((k) => `X${k}q`).join('')})`, 'latin1');
  const header = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 8, 8, 0, 0]);
  fs.writeFileSync(file, Buffer.concat([header, body, Buffer.alloc(64)]));
  return file;
}

export function writeSafetensors(file: string, keys: string[], conv2 = [64, 64, 3, 3]): string {
  return writeSafetensorsHeader(file, Object.fromEntries(keys.map((k) => [k, k === 'layer1.0.conv2.weight' ? conv2 : [1]])));
}

/** a safetensors file whose header names the given tensors and shapes; every tensor's data is the same 4 bytes */
export function writeSafetensorsHeader(file: string, shapes: Record<string, number[]>): string {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  for (const [k, shape] of Object.entries(shapes)) header[k] = { dtype: 'F32', shape, data_offsets: [0, 4] };
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, Buffer.alloc(4)]));
  return file;
}
