/**
 * Campaign files under hostile input: mutations of valid campaigns (a field replaced by a hostile
 * value, deleted, or an unknown field added) go through the entry point `search start --campaign`
 * uses (campaignFromFlags). Each is either accepted as a valid campaign or rejected with a
 * UserError naming the file and the path of the bad field; never a crash.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { campaignFromFlags } from '../../cli/commands/search';
import { parseFlags } from '../../common/cli';
import { UserError } from '../../common/errors';
import { CampaignSchema, parseCampaign } from '../../protocol/campaign';
import { PROJECT_ROOT } from '../../common/paths';
import { unknownFields } from '../../protocol/unknown-fields';
import { mutationOf, namesPath } from '../support/mutate';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-campaign-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** campaigns as users write them: the minimal toy form, and a paper campaign with every section */
const minimalToy = { id: 'toy-1', profile: 'toy', data: { detection: { root: '/data/coco' }, synthesize: { root: '/data' } } };
const fullPaper = {
  id: 'paper.2',
  profile: 'paper',
  space: 'paper',
  seed: 4,
  latencyDevice: 'cuda:0',
  artifactRoot: '/srv/artifacts',
  data: {
    detection: { root: '/data/coco', trainSplit: 'train2017', valSplit: 'val2017' },
    transfer: [{ name: 'voc', format: 'voc', root: '/data/VOCdevkit' }],
    classification: { root: '/data/imagenet' },
    backboneWeights: { resnet50: '/w/resnet50.pth' },
    missingBackboneWeights: 'exclude',
  },
  bench: { warmup: 10, iterations: 50 },
  candidates: 6,
  stages: {
    structural: { maxEvaluations: 500, population: 50, recipe: 'paper-stage-one' },
    modular: { maxEvaluationsPerCandidate: 200, population: 20, recipe: 'paper-stage-two', finalists: 6 },
    pretrain: { recipe: 'paper-pretrain' },
    final: { recipe: 'paper-final' },
    transfer: { recipe: 'paper-transfer' },
  },
  budgets: { maxConcurrentTrainings: 8, wallClockHours: 100, gpuHours: 1000 },
  timeouts: { trainingHours: 48, heartbeatSeconds: 180, maxAttempts: 3 },
  checkpoints: { everySeconds: 600, everyIterations: 0 },
  multiHost: { nodes: 2, masterAddr: 'gpu-a.internal', masterPort: 29600 },
};

const flagsFor = (file: string) => parseFlags('smnas search', ['start', '--campaign', file], { campaign: { type: 'string' } });

test('the starting campaigns are valid', () => {
  for (const c of [minimalToy, fullPaper]) expect(parseCampaign(c).success).toBe(true);
});

test('multiHost: defaults (64 ports, the final stage); fewer than 2 nodes or a privileged port names the field', () => {
  const r = parseCampaign(fullPaper);
  expect(r.success && r.data.multiHost).toEqual({ nodes: 2, masterAddr: 'gpu-a.internal', masterPort: 29600, ports: 64, stages: ['final'] });
  for (const [bad, field] of [
    [{ nodes: 1 }, 'nodes'],
    [{ masterPort: 80 }, 'masterPort'],
    [{ stages: ['pretrain'] }, 'stages'],
  ] as const) {
    const b = parseCampaign({ ...fullPaper, multiHost: { ...fullPaper.multiHost, ...bad } });
    expect(b.success).toBe(false);
    if (!b.success) expect(b.error.issues[0].path.slice(0, 2)).toEqual(['multiHost', field]);
  }
});

test('every mutation is accepted, or rejected by a UserError naming the file and the bad field', () => {
  let n = 0;
  let rejected = 0;
  fc.assert(
    fc.property(mutationOf([minimalToy, fullPaper]), (m) => {
      const file = path.join(tmp, `c${n++}.json`);
      fs.writeFileSync(file, JSON.stringify(m.value));
      let err: unknown;
      let campaign;
      try {
        campaign = campaignFromFlags(flagsFor(file), tmp);
      } catch (e) {
        err = e;
      }
      fs.rmSync(file);
      const r = parseCampaign(m.value);
      const unknown = unknownFields(CampaignSchema, m.value);
      if (!err) {
        expect(r.success).toBe(true);
        expect(unknown).toEqual([]);
        expect(CampaignSchema.safeParse(campaign).success).toBe(true);
        return;
      }
      rejected++;
      expect(err).toBeInstanceOf(UserError);
      const msg = (err as Error).message;
      expect(msg.startsWith(`${file}: `)).toBe(true);
      expect(msg).not.toMatch(/\n\s+at |undefined\.|\[object Object\]/);
      if (r.success) {
        // valid but for a field the schema does not know (a misspelling would keep its default)
        expect(unknown.length).toBeGreaterThan(0);
        expect(unknown.every((u) => namesPath(u.path, m.path))).toBe(true);
        expect(msg).toContain(`${unknown[0].path.join('.')}: unknown field (known here: `);
        return;
      }
      // the first issues are the ones the message shows; one of them names the mutated field
      const shown = r.error!.issues.slice(0, 3);
      const named = shown.find((i) => namesPath(i.path, m.path));
      expect({ mutation: m.path.join('.'), op: m.op, message: msg, named: Boolean(named) }).toMatchObject({ named: true });
      expect(msg).toContain(named!.path.map(String).join('.'));
    }),
    { numRuns: 400, seed: 15 },
  );
  // the generator exercises both outcomes
  expect(rejected).toBeGreaterThan(50);
});

test('the example campaign files are accepted; a misspelt field is refused naming its path', () => {
  for (const f of ['campaign-toy.json', 'campaign-paper-imagenet.json']) {
    expect(campaignFromFlags(flagsFor(path.join(PROJECT_ROOT, 'docs', 'examples', f)), tmp).id).toBeTruthy();
  }
  const file = path.join(tmp, 'typo.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      ...fullPaper,
      stages: { ...fullPaper.stages, structural: { population: 50, recipe: 'paper-stage-one', maxEvaluations: 9, maxEvalutions: 10 } },
    }),
  );
  expect(() => campaignFromFlags(flagsFor(file), tmp)).toThrow(
    `${file}: stages.structural.maxEvalutions: unknown field (known here: maxEvaluations, population, recipe)`,
  );
});

test('the CLI: a bad campaign file exits non-zero with one line naming the field, before any network', () => {
  const file = path.join(tmp, 'bad.json');
  fs.writeFileSync(file, JSON.stringify({ ...fullPaper, stages: { ...fullPaper.stages, structural: { ...fullPaper.stages.structural, population: -3 } } }));
  // an address nothing listens on: validation must come first
  const r = spawnSync(path.join(PROJECT_ROOT, 'bin/smnas'), ['search', 'start', '--campaign', file, '--address', '127.0.0.1:9'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain(`${file}: stages.structural.population`);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  fs.writeFileSync(file, '{"id": "x", "profile": "toy",');
  const r2 = spawnSync(path.join(PROJECT_ROOT, 'bin/smnas'), ['search', 'start', '--campaign', file, '--address', '127.0.0.1:9'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r2.status).not.toBe(0);
  expect(r2.stderr).toContain(file);
  expect(r2.stderr).not.toMatch(/\n\s+at /);
});
