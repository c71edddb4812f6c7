/**
 * `smnas search`: campaign validation before anything starts, argument errors, and the steering
 * sub-commands against the real test server with a FAKE smnasSearch (fixtures/fake-campaign.ts)
 * that answers the campaign interface with labelled test data.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseFlags } from '../../common/cli';
import { command as search, campaignFromFlags } from '../../cli/commands/search';
import { campaignWorkflowId } from '../../workflows/api';
import { closeTestClients, ensureTestServer, uniqueId, withTestWorker } from '../support/temporal-server';

afterAll(closeTestClients);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-search-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const startFlags = (...argv: string[]) =>
  parseFlags('smnas search', ['start', ...argv], {
    profile: { type: 'string' },
    data: { type: 'string' },
    id: { type: 'string' },
    seed: { type: 'string' },
    campaign: { type: 'string' },
  });

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  try {
    return { code: await search.main(argv), out };
  } finally {
    spy.mockRestore();
  }
}

describe('campaign of search start', () => {
  test('toy profile: generated data under --data (or the state folder)', () => {
    const c = campaignFromFlags(startFlags('--profile', 'toy', '--data', path.join(tmp, 'd'), '--id', 'toy-1', '--seed', '3'), tmp);
    expect(c).toMatchObject({ id: 'toy-1', profile: 'toy', seed: 3, queues: { control: 'smnas-control', gpu: 'smnas-gpu' } });
    expect(c.data.synthesize?.root).toBe(path.join(tmp, 'd'));
    expect(campaignFromFlags(startFlags('--profile', 'toy'), tmp).data.detection.root).toBe(path.join(tmp, 'data', 'toy', 'coco'));
  });

  test('paper profile needs the COCO root', () => {
    expect(() => campaignFromFlags(startFlags('--profile', 'paper'), tmp)).toThrow(/--profile paper needs --data/);
    expect(campaignFromFlags(startFlags('--profile', 'paper', '--data', '/data/coco'), tmp).data.detection).toMatchObject({
      root: '/data/coco',
      trainSplit: 'train2017',
    });
  });

  test('campaign files: errors name the file and the field', () => {
    const bad = path.join(tmp, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ id: 'x', profile: 'toy', data: { detection: { root: '/d' } }, candidates: 0 }));
    expect(() => campaignFromFlags(startFlags('--campaign', bad))).toThrow(new RegExp(`^${bad}: candidates: `));
    const broken = path.join(tmp, 'broken.json');
    fs.writeFileSync(broken, '{"id": ');
    expect(() => campaignFromFlags(startFlags('--campaign', broken))).toThrow(new RegExp(`^${broken}: .*JSON`));
    expect(() => campaignFromFlags(startFlags('--campaign', path.join(tmp, 'none.json')))).toThrow(/none.json: no such file/);
    const good = path.join(tmp, 'good.json');
    fs.writeFileSync(good, JSON.stringify({ id: 'x', profile: 'toy', data: { detection: { root: '/d' } } }));
    expect(campaignFromFlags(startFlags('--campaign', good, '--id', 'y')).id).toBe('y');
  });

  test.each([
    [['--profile', 'big'], /--profile must be 'toy' or 'paper', got 'big'/],
    [[], /give --profile toy\|paper or --campaign/],
    [['--profile', 'toy', '--id', 'bad id!'], /--id 'bad id!': must start with a letter or digit/],
    [['--profile', 'toy', '--seed', 'x'], /--seed must be an integer/],
  ])('start %j is refused', (argv, message) => {
    expect(() => campaignFromFlags(startFlags(...argv), tmp)).toThrow(message);
  });
});

describe('search sub-commands', () => {
  test.each([
    [[], /missing sub-command/],
    [['frobnicate'], /unknown sub-command 'frobnicate'/],
    [['status'], /status: missing <campaign-id>/],
    [['pause', 'a', 'b'], /unexpected argument 'b'/],
    [['watch', 'a', '--interval', '0'], /--interval must be a positive number/],
  ])('%j is a user error', async (argv, message) => {
    const address = await ensureTestServer();
    await expect(search.main([...argv, '--address', address])).rejects.toMatchObject({ name: 'UserError', message: expect.stringMatching(message) });
  });

  test('an unknown campaign is named in the error', async () => {
    const address = await ensureTestServer();
    await expect(search.main(['status', 'no-such-campaign', '--address', address])).rejects.toThrow(/no campaign 'no-such-campaign'/);
  });

  test('start, status, pause, resume, stop-stage, pareto, result (fake campaign workflow)', async () => {
    const address = await ensureTestServer();
    await withTestWorker({ workflowsPath: path.join(__dirname, 'fixtures', 'fake-campaign.ts') }, async ({ client, taskQueue }) => {
      const id = uniqueId('cli');
      const file = path.join(tmp, `${id}.json`);
      fs.writeFileSync(file, JSON.stringify({ id, profile: 'toy', data: { detection: { root: '/d' } }, queues: { control: taskQueue } }));
      const a = ['--address', address, '--json'];
      const started = await run(['start', '--campaign', file, ...a]);
      expect(JSON.parse(started.out)).toEqual({ campaignId: id, workflowId: campaignWorkflowId(id), taskQueue });
      await expect(run(['start', '--campaign', file, ...a])).rejects.toThrow(/already running/);

      const status = JSON.parse((await run(['status', id, ...a])).out);
      expect(status).toMatchObject({ status: 'RUNNING', progress: { campaignId: id, paused: false, evaluated: 3 } });
      expect(JSON.parse((await run(['pause', id, ...a])).out).paused).toBe(true);
      expect(JSON.parse((await run(['resume', id, ...a])).out).paused).toBe(false);
      expect(JSON.parse((await run(['stop-stage', id, ...a])).out).stages.structural.evaluated).toBe(4);
      const pareto = JSON.parse((await run(['pareto', id, ...a])).out);
      expect(pareto.structural[0]).toMatchObject({ arch: '512x512/resnet18/none/rpn/2fc', mAP: 0.125 });
      expect(pareto.candidates.selected).toHaveLength(1);
      const table = (await run(['pareto', id, '--address', address])).out;
      expect(table).toMatch(/structural\s+4\.50 ms\s+12\.50\s+512x512\/resnet18\/none\/rpn\/2fc/);
      await expect(run(['result', id, ...a])).rejects.toThrow(/still running/);

      await client.workflow.getHandle(campaignWorkflowId(id)).signal('testFinish');
      const watched = await run(['watch', id, '--address', address, '--interval', '0.2']);
      expect(watched.code).toBe(0);
      expect(watched.out).toMatch(/campaign .* COMPLETED/);
      expect(watched.out).toMatch(/E0\s+50\.0\s+20\.00\s+1\.250\s+4\.50\s+30\.00\s+512x512/);
      expect(watched.out).toMatch(/report and results: \/tmp\/fake-report/);
    });
  });

  test('cancel ends a campaign as CANCELLED and watch exits 1', async () => {
    const address = await ensureTestServer();
    await withTestWorker({ workflowsPath: path.join(__dirname, 'fixtures', 'fake-campaign.ts') }, async ({ taskQueue }) => {
      const id = uniqueId('cancel');
      const file = path.join(tmp, `${id}.json`);
      fs.writeFileSync(file, JSON.stringify({ id, profile: 'toy', data: { detection: { root: '/d' } }, queues: { control: taskQueue } }));
      await run(['start', '--campaign', file, '--address', address]);
      expect((await run(['cancel', id, '--address', address])).code).toBe(0);
      const w = await run(['watch', id, '--address', address, '--interval', '0.2', '--json']);
      expect(w.code).toBe(1);
      expect(w.out).toMatch(/"status":"CANCELLED"/);
    });
  });
});
