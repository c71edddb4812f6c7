/**
 * The latency section of a campaign (protocol/campaign.ts LatencySchema) and the pure helpers of
 * protocol/latency.ts: settings with the profile's defaults, the task queue of a device
 * requirement, the worker's --latency-device parsing and the device match.
 */
import { parseCampaign } from '../../protocol/campaign';
import { deviceMeets, latencyQueueName, latencySettings, parseLatencyDevice } from '../../protocol/latency';

const base = { id: 'lat', profile: 'paper', data: { detection: { root: '/data/coco', trainSplit: 'train2017', valSplit: 'val2017' } } };

test('a campaign may require a latency device; bad requirements are refused naming the field', () => {
  const ok = parseCampaign({ ...base, latency: { device: { kind: 'cuda', model: 'V100' }, rounds: 20 } });
  expect(ok.success).toBe(true);
  if (!ok.success) return;
  expect(latencySettings(ok.data)).toEqual({
    device: { kind: 'cuda', model: 'V100' },
    backend: 'native',
    images: 20,
    rounds: 20,
    warmup: 10, // the paper profile's bench.warmup
    maxSpread: 0.1,
    maxMeasurements: 3,
    seed: 0,
  });
  const bad = parseCampaign({ ...base, latency: { device: { kind: 'tpu' } } });
  expect(bad.success).toBe(false);
  if (!bad.success) expect(bad.error.issues[0].path).toEqual(['latency', 'device', 'kind']);
  const backend = parseCampaign({ ...base, latency: { backend: 'tensorrt' } });
  expect(backend.success).toBe(false);
  expect(parseCampaign({ ...base, latency: { rounds: 1 } }).success).toBe(false); // a spread needs rounds
});

test('without a latency section: the toy profile defaults, no device requirement', () => {
  const c = parseCampaign({ ...base, profile: 'toy', seed: 4 });
  expect(c.success).toBe(true);
  if (c.success) expect(latencySettings(c.data)).toEqual({ backend: 'native', images: 4, rounds: 5, warmup: 1, maxSpread: 0.25, maxMeasurements: 3, seed: 4 });
});

test('queue names, --latency-device and the device match', () => {
  expect(latencyQueueName({ kind: 'cuda', model: 'V100' })).toBe('smnas-latency-cuda-v100');
  expect(latencyQueueName({ kind: 'cuda', model: 'A100 SXM4' })).toBe('smnas-latency-cuda-a100-sxm4');
  expect(latencyQueueName({ kind: 'cpu' })).toBe('smnas-latency-cpu');
  expect(parseLatencyDevice('cuda:V100')).toEqual({ kind: 'cuda', model: 'V100' });
  expect(parseLatencyDevice('cpu')).toEqual({ kind: 'cpu' });
  expect(parseLatencyDevice('gpu:V100')).toBeNull();
  expect(deviceMeets({ kind: 'cuda', model: 'v100' }, { deviceKind: 'cuda', deviceModel: 'Tesla V100-SXM2-16GB' })).toEqual({ ok: true });
  expect(deviceMeets({ kind: 'cuda', model: 'V100' }, { deviceKind: 'cuda', deviceModel: 'NVIDIA A100-SXM4-40GB' })).toEqual({
    ok: false,
    reason: 'NVIDIA A100-SXM4-40GB is not a V100',
  });
  expect(deviceMeets({ kind: 'cuda' }, { deviceKind: 'cpu', deviceModel: 'AMD EPYC 7B13' })).toEqual({
    ok: false,
    reason: 'a cpu device (AMD EPYC 7B13), not cuda',
  });
});
