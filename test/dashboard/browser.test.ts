/**
 * The dashboard and the static report in a real browser: Debian's chromium (scripts/setup.sh)
 * driven by puppeteer-core, on a fixture artifact store (test/support/campaign-store). Page loads,
 * charts render one mark per evaluation, a click on a point shows its architecture; the report
 * loads nothing from the network; the dashboard redraws when the results log grows and says that
 * Temporal is unreachable. SMNAS_CHROMIUM names another browser binary.
 */
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import pino from 'pino';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { createDashboardServer } from '../../dashboard/server';
import { offInfo, payloadOf, TemporalSource } from '../../dashboard/source';
import { staticReport } from '../../dashboard/page';
import { readCampaign } from '../../dashboard/store-reader';
import { tmpDir } from '../activities/mock-trainer';
import { buildCampaignStore, MODULAR, STRUCTURAL, writeReportInputFiles } from '../support/campaign-store';

/** browser globals inside page functions (the project compiles without the DOM library) */
declare const window: any;
declare const document: any;

const CHROMIUM = process.env.SMNAS_CHROMIUM ?? '/usr/bin/chromium';
const work = tmpDir('smnas-dash-');
const root = path.join(work, 'store');
const logger = pino({ level: 'silent' });
let browser: Browser;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: scripts/setup.sh installs Debian's chromium (or set SMNAS_CHROMIUM)`);
  browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
});
afterAll(async () => {
  await browser?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

const marks = (page: Page, chart: string, layer: string) => page.$$eval(`#chart-${chart} g.${layer} path`, (els) => els.length);

async function waitDrawn(page: Page, renders = 1) {
  await page.waitForFunction((n: number) => (window as any).smnas?.ready === true && (window as any).smnas.renders >= n, { timeout: 15000 }, renders);
}

/** clicks the centre of the first mark of a layer; returns the architecture the details panel shows */
async function clickFirst(page: Page, chart: string, layer: string): Promise<string> {
  const el = await page.$(`#chart-${chart} g.${layer} path`);
  await el!.scrollIntoView();
  const box = await el!.boundingBox();
  await page.mouse.click(box!.x + box!.width / 2, box!.y + box!.height / 2);
  await page.waitForSelector('#detail-arch', { timeout: 5000 });
  return page.$eval('#detail-arch', (e) => e.textContent ?? '');
}

test('static report: opens offline from a file, draws every evaluation, a click shows the architecture', async () => {
  writeReportInputFiles(await buildCampaignStore(root, 'finished'));
  // report.html as writeCampaignReport writes it (its figures are checked in test/activities/report.test.ts)
  const out = path.join(work, 'report');
  fs.mkdirSync(out);
  fs.writeFileSync(
    path.join(out, 'report.html'),
    staticReport(payloadOf(readCampaign(root, 'finished')!, offInfo(null), { webUi: 'http://localhost:8233', namespace: 'default' })),
  );

  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  const remote: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) remote.push(r.url());
  });
  await page.goto('file://' + path.join(out, 'report.html'));
  await waitDrawn(page);
  expect(await marks(page, 'stage-one', 'stage_one_points_marks')).toBe(STRUCTURAL.length);
  expect(await marks(page, 'stage-two', 'stage_two_points_marks')).toBe(MODULAR.length);
  expect(await marks(page, 'stage-two', 'stage_two_final_marks')).toBe(1);
  expect(await page.$$eval('#chart-stage-two g.stage_two_front_marks', (e) => e.length)).toBe(2); // a staircase per candidate
  expect(await marks(page, 'correlation', 'corr_mapPct_input_points_marks')).toBe(STRUCTURAL.length);
  expect(await page.$eval('#counts', (e) => e.textContent)).toContain('Evaluations: 15 in results.jsonl (structural 6, modular 6, final 1, transfer 2)');
  expect(await page.$$eval('#final tr', (rows) => rows.length)).toBe(2);
  const arch = await clickFirst(page, 'stage-one', 'stage_one_points_marks');
  expect(STRUCTURAL.map(([a]) => a)).toContain(arch);
  const wf = await page.$eval('#details a', (a) => (a as unknown as { href: string }).href);
  expect(decodeURIComponent(wf)).toContain('WorkflowId="smnas-finished/eval/structural/');
  expect(remote).toEqual([]);
  await page.close();
});

test('dashboard: lists campaigns, draws one, redraws when the results log grows, says Temporal is unreachable', async () => {
  const running = await buildCampaignStore(root, 'running', { upTo: 'structural' });
  // an address nothing listens on: the page must work from the store and say so
  const temporal = new TemporalSource({ address: '127.0.0.1:1', namespace: 'default', tls: false }, logger, { queryTimeoutMs: 1000, retryMs: 60000 });
  const server = createDashboardServer({
    artifactRoot: root,
    campaign: null,
    intervalMs: 500,
    view: { webUi: 'http://localhost:8233', namespace: 'default' },
    temporal,
    logger,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  try {
    await page.goto(url + '#running');
    await waitDrawn(page);
    expect(await page.$$eval('#campaign-list a', (as) => as.map((a) => a.firstChild?.textContent).sort())).toEqual(['finished', 'running']);
    expect(await marks(page, 'stage-one', 'stage_one_points_marks')).toBe(STRUCTURAL.length);
    expect(await page.$$eval('#chart-stage-two g.stage_two_points_marks path', (e) => e.length)).toBe(0);
    const arch = await clickFirst(page, 'stage-one', 'stage_one_points_marks');
    expect(STRUCTURAL.map(([a]) => a)).toContain(arch);

    // live: a stage-two evaluation finishes (the real record activity appends its line), the page redraws
    const renders = await page.evaluate(() => (window as any).smnas.renders as number);
    const { makeStoreActivities } = await import('../../activities/store-activities');
    const { ArtifactStore } = await import('../../activities/artifact-store');
    const rec = {
      ...running.records[0],
      key: 'f'.repeat(64),
      stage: 'modular',
      arch: MODULAR[1][1],
      cost: { gflops: 0.254, backboneGflops: 0.1, mparams: 1, mmac: null },
      latency: null,
    };
    await makeStoreActivities({ artifactRoot: root } as any, (r?: string) => new ArtifactStore(r ?? root)).recordEvaluation({
      record: rec,
      artifactRoot: root,
    });
    await waitDrawn(page, renders + 1);
    expect(await marks(page, 'stage-two', 'stage_two_points_marks')).toBe(1);

    // the list is rebuilt only when it changes (a link replaced under the pointer takes no click)
    const polls = await page.evaluate(() => {
      document.querySelector('#campaign-list a').dataset.probe = 'kept';
      return (window as any).smnas.polls as number;
    });
    await page.waitForFunction((n: number) => (window as any).smnas.polls >= n + 2, { timeout: 10000 }, polls);
    expect(await page.$eval('#campaign-list a', (a) => (a as any).dataset.probe)).toBe('kept');

    // the other campaign, by the list
    await page.click('#campaign-list a[href="#finished"]');
    await page.waitForFunction(() => (window as any).smnas.campaign === 'finished' && (window as any).smnas.ready, { timeout: 10000 });
    expect(await marks(page, 'stage-two', 'stage_two_points_marks')).toBe(MODULAR.length);

    // Temporal: connecting in the background, then unreachable; the page keeps working meanwhile
    await page.waitForFunction(() => /unreachable/.test(document.getElementById('note')?.textContent ?? ''), { timeout: 15000 });
    expect(await page.$eval('#note', (e) => e.textContent)).toContain('Temporal at 127.0.0.1:1 is unreachable');
  } finally {
    await page.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await temporal.close();
  }
});
