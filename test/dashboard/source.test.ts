/**
 * The dashboard's Temporal side on the real test server, with the FAKE smnasSearch of the CLI
 * tests (test/runtime/fixtures/fake-campaign.ts: the real campaign interface, labelled test data):
 * list, describe and the three queries of a running campaign, a closed one, an unknown one; the
 * server answers for a campaign Temporal knows before it wrote anything to the store.
 */
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import { createDashboardServer } from '../../dashboard/server';
import { TemporalSource } from '../../dashboard/source';
import { campaignWorkflowId } from '../../workflows/api';
import { tmpDir } from '../activities/mock-trainer';
import { closeTestClients, ensureTestServer, testNamespace, uniqueId, withTestWorker } from '../support/temporal-server';

afterAll(closeTestClients);
const work = tmpDir('smnas-dash-src-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });

test('running, closed and unknown campaigns; the page data of a campaign with no files yet', async () => {
  const address = await ensureTestServer();
  await withTestWorker({ workflowsPath: path.join(__dirname, '..', 'runtime', 'fixtures', 'fake-campaign.ts') }, async ({ client, taskQueue }) => {
    const id = uniqueId('dash');
    const h = await client.workflow.start('smnasSearch', { workflowId: campaignWorkflowId(id), taskQueue, args: [{ id, profile: 'toy' }] });
    const source = new TemporalSource({ address, namespace: testNamespace, tls: false }, logger);
    try {
      // connecting happens in the background: the first answer is the store's, with a note
      expect((await source.campaignInfo(id)).note).toMatch(/^Connecting to Temporal at /);
      await source.settled();
      const info = await source.campaignInfo(id);
      expect(info).toMatchObject({ state: 'ok', status: 'RUNNING', note: null, progress: { campaignId: id, evaluated: 3 } });
      expect(info.fronts!.structural).toHaveLength(1);
      expect(info.candidates!.selected[0].arch).toBe('512x512/resnet18/none/rpn/2fc');
      expect(await source.campaignInfo(uniqueId('none'))).toMatchObject({ state: 'not-found', note: expect.stringMatching(/has no workflow smnas-/) });
      // visibility is eventually consistent
      let listed: string | undefined;
      for (let i = 0; i < 50 && listed === undefined; i++) {
        listed = (await source.listCampaigns()).get(id);
        if (listed === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      expect(listed).toBe('RUNNING');

      // the server: the campaign has no store folder yet, Temporal's progress fills the stage rows
      const server = createDashboardServer({
        artifactRoot: path.join(work, 'empty-store'),
        campaign: null,
        intervalMs: 5000,
        view: { webUi: 'http://localhost:8233', namespace: testNamespace },
        temporal: source,
        logger,
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      try {
        const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/campaigns/${id}`);
        expect(res.status).toBe(200);
        const { view } = (await res.json()) as {
          view: { points: unknown[]; phase: string; stages: { stage: string; planned: number | null; running: number }[]; temporal: { state: string } };
        };
        expect(view.temporal.state).toBe('ok');
        expect(view.phase).toBe('structural');
        expect(view.points).toEqual([]);
        expect(view.stages.find((s) => s.stage === 'structural')).toMatchObject({ planned: 6, running: 1 });
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }

      await h.signal('testFinish');
      await h.result();
      expect(await source.campaignInfo(id)).toMatchObject({ state: 'closed', status: 'COMPLETED', progress: null });
    } finally {
      await source.close();
    }
  });
});
