/**
 * The dashboard's HTTP server without a browser: read-only (GET/HEAD only, nothing written), the
 * API, artifact files confined to the store, a damaged results log named by file and line, an
 * unknown campaign a 404; and the `dashboard` / `search report` commands' user errors.
 */
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { command as dashboard } from '../../cli/commands/dashboard';
import { command as search } from '../../cli/commands/search';
import { UserError } from '../../common/errors';
import { createDashboardServer } from '../../dashboard/server';
import { TemporalSource } from '../../dashboard/source';
import { tmpDir } from '../activities/mock-trainer';
import { buildCampaignStore, STRUCTURAL } from '../support/campaign-store';
import { ArtifactStore } from '../../activities/artifact-store';

const work = tmpDir('smnas-dash-srv-');
const root = path.join(work, 'store');
let base = '';
let server: ReturnType<typeof createDashboardServer>;

/** every file under a folder with its size and mtime, to prove nothing was written */
function listing(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const f = path.join(e.parentPath, e.name);
      const st = fs.statSync(f);
      return `${f} ${st.size} ${st.mtimeMs}`;
    })
    .sort();
}

beforeAll(async () => {
  await buildCampaignStore(root, 'ok', { upTo: 'structural' });
  const bad = await buildCampaignStore(root, 'bad', { upTo: 'structural' });
  // the exported results.jsonl (6 lines), then a damaged 7th line appended to it
  new ArtifactStore(root).exportResultsLog('bad');
  fs.appendFileSync(path.join(bad.dir, 'results.jsonl'), '{"key":"x","stage":"structural"}\n');
  fs.writeFileSync(path.join(work, 'secret.txt'), 'outside the store');
  const temporal = new TemporalSource(null, pino({ level: 'silent' }));
  server = createDashboardServer({
    artifactRoot: root,
    campaign: null,
    intervalMs: 5000,
    view: { webUi: 'http://localhost:8233', namespace: 'default' },
    temporal,
    logger: pino({ level: 'silent' }),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  fs.rmSync(work, { recursive: true, force: true });
});

test('API, vega builds, artifacts; read-only; errors name the file and line', async () => {
  const before = listing(root);
  const page = await fetch(base + '/');
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('<script src="vendor/vega-lite.min.js">');
  const vega = await fetch(base + '/vendor/vega.min.js');
  expect(vega.status).toBe(200);
  expect((await vega.text()).length).toBeGreaterThan(100_000);

  const list = (await (await fetch(base + '/api/campaigns')).json()) as {
    campaigns: { campaignId: string; evaluations: number; error: string | null }[];
    temporalNote: string;
  };
  expect(list.temporalNote).toContain('--no-temporal');
  const ok = list.campaigns.find((c) => c.campaignId === 'ok')!;
  expect(ok).toMatchObject({ evaluations: STRUCTURAL.length, error: null });
  expect(list.campaigns.find((c) => c.campaignId === 'bad')!.error).toMatch(/results\.jsonl: line 7: /);

  const one = await fetch(base + '/api/campaigns/ok');
  const payload = (await one.json()) as { version: string; view: { points: unknown[] }; specs: Record<string, unknown> };
  expect(payload.view.points).toHaveLength(STRUCTURAL.length);
  expect(Object.keys(payload.specs)).toContain('stage-one');
  // the same store gives the same version (the page redraws only on change)
  expect(((await (await fetch(base + '/api/campaigns/ok')).json()) as { version: string }).version).toBe(payload.version);

  const bad = await fetch(base + '/api/campaigns/bad');
  expect(bad.status).toBe(422);
  expect(((await bad.json()) as { error: string }).error).toMatch(/campaigns\/bad\/results\.jsonl: line 7: (arch|recipe)/);
  expect((await fetch(base + '/api/campaigns/nope')).status).toBe(404);
  expect((await fetch(base + '/api/campaigns/..%2F..')).status).toBe(400);

  const log = await fetch(base + '/artifacts/campaigns/ok/results.jsonl');
  expect(log.status).toBe(200);
  expect((await log.text()).trim().split('\n')).toHaveLength(STRUCTURAL.length);
  expect((await fetch(base + '/artifacts/campaigns/ok/')).status).toBe(200);
  expect((await fetch(base + '/artifacts/%2e%2e/secret.txt')).status).toBe(404); // the URL parser resolves '..' first
  fs.symlinkSync(path.join(work, 'secret.txt'), path.join(root, 'link.txt'));
  expect((await fetch(base + '/artifacts/link.txt')).status).toBe(403);
  fs.unlinkSync(path.join(root, 'link.txt'));

  for (const method of ['POST', 'PUT', 'DELETE']) expect((await fetch(base + '/api/campaigns/ok', { method })).status).toBe(405);
  expect(listing(root)).toEqual(before);
});

test('commands: --port, --campaign, a missing campaign are user errors', async () => {
  await expect(dashboard.main(['--port', '70000'])).rejects.toThrow(new UserError('smnas dashboard: --port must be 0..65535, got 70000'));
  await expect(dashboard.main(['--campaign', 'a/b'])).rejects.toThrow(/--campaign 'a\/b' is not a campaign id/);
  await expect(dashboard.main(['--web-ui', 'localhost'])).rejects.toThrow(/--web-ui must be an http\(s\) URL/);
  await expect(search.main(['report', 'nope', '--artifacts', root])).rejects.toThrow(`smnas search report: no campaign 'nope' in ${root}`);
  await expect(search.main(['report', 'bad', '--artifacts', root, '--out', path.join(work, 'out')])).rejects.toThrow(/results\.jsonl: line 7/);
  expect(fs.existsSync(path.join(work, 'out'))).toBe(false);
});
