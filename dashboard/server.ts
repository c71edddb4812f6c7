/**
 * The dashboard's HTTP server (node:http, no framework). Read-only: it answers GET and HEAD
 * only and never writes a file.
 *
 *   /                         the page (polls the API)
 *   /vendor/<vega build>      vega, vega-lite, vega-embed from node_modules
 *   /api/campaigns            campaigns in the store and on Temporal, with status and evaluation counts
 *   /api/campaigns/<id>       one campaign: {version, view, specs} (dashboard/page.ts CampaignPayload)
 *   /artifacts/<path>         files and folder listings under the artifact root (links from a point)
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Logger } from '../common/log';
import { CampaignIdSchema } from '../protocol/campaign';
import type { ViewOptions } from './model';
import { livePage } from './page';
import { vegaScriptPath } from './render';
import { campaignDir, StoreReadError } from './store-reader';
import { readResultsText } from '../activities/artifact-store';
import { emptySnapshot, listStoreCampaigns, payloadOf, readCampaign, type TemporalSource } from './source';

export interface DashboardOptions {
  artifactRoot: string;
  campaign: string | null;
  intervalMs: number;
  view: ViewOptions;
  temporal: TemporalSource;
  logger: Logger;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(body);
}
const json = (res: http.ServerResponse, status: number, value: unknown) => send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));

const TYPES: Record<string, string> = {
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.html': 'text/html; charset=utf-8',
};

export function createDashboardServer(o: DashboardOptions): http.Server {
  const rootReal = () => {
    try {
      return fs.realpathSync(o.artifactRoot);
    } catch {
      return path.resolve(o.artifactRoot);
    }
  };

  async function campaigns() {
    const store = listStoreCampaigns(o.artifactRoot);
    const onTemporal = await o.temporal.listCampaigns();
    const ids = [...new Set([...store.map((c) => c.campaignId), ...onTemporal.keys()])];
    const rows = ids.map((id) => {
      let evaluations = 0;
      let error: string | null = null;
      try {
        evaluations = readCampaign(o.artifactRoot, id)?.results.length ?? 0;
      } catch (e) {
        error = (e as Error).message;
      }
      return { campaignId: id, status: onTemporal.get(id) ?? null, evaluations, error, mtimeMs: store.find((c) => c.campaignId === id)?.mtimeMs ?? Date.now() };
    });
    rows.sort((a, b) => (a.status === 'RUNNING' ? 0 : 1) - (b.status === 'RUNNING' ? 0 : 1) || b.mtimeMs - a.mtimeMs);
    return { artifactRoot: o.artifactRoot, temporalNote: o.temporal.note(), campaigns: o.campaign ? rows.filter((r) => r.campaignId === o.campaign) : rows };
  }

  async function campaign(res: http.ServerResponse, id: string) {
    if (!CampaignIdSchema.safeParse(id).success) return json(res, 400, { error: `'${id}' is not a campaign id` });
    let snapshot;
    try {
      snapshot = readCampaign(o.artifactRoot, id);
    } catch (e) {
      if (e instanceof StoreReadError) return json(res, 422, { error: e.message });
      throw e;
    }
    const info = await o.temporal.campaignInfo(id);
    if (!snapshot) {
      if (info.state !== 'ok' && info.state !== 'closed' && info.state !== 'no-answer')
        return json(res, 404, { error: `no campaign '${id}' in ${o.artifactRoot}${o.temporal.address ? ` or on Temporal at ${o.temporal.address}` : ''}` });
      snapshot = emptySnapshot(o.artifactRoot, id, campaignDir(o.artifactRoot, id));
    }
    return json(res, 200, payloadOf(snapshot, info, o.view));
  }

  function artifact(res: http.ServerResponse, rel: string) {
    const root = rootReal();
    // a campaign's results log: the merged log (one file per line under results.d/, plus an older
    // or exported results.jsonl), as the export will write it, also while the campaign runs
    const log = /^campaigns\/([^/]+)\/results\.jsonl$/.exec(rel);
    if (log && fs.existsSync(path.join(root, 'campaigns', log[1], 'results.d'))) {
      const dir = fs.realpathSync(path.join(root, 'campaigns', log[1]));
      if (!dir.startsWith(root + path.sep)) return send(res, 403, 'text/plain; charset=utf-8', 'outside the artifact store');
      return send(res, 200, 'text/plain; charset=utf-8', readResultsText(dir));
    }
    let file: string;
    try {
      file = fs.realpathSync(path.join(root, rel));
    } catch {
      return send(res, 404, 'text/plain; charset=utf-8', `not found: ${rel}`);
    }
    if (file !== root && !file.startsWith(root + path.sep)) return send(res, 403, 'text/plain; charset=utf-8', 'outside the artifact store');
    const st = fs.statSync(file);
    if (st.isDirectory()) {
      const entries = fs.readdirSync(file, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
      const base = '/artifacts/' + path.relative(root, file).split(path.sep).map(encodeURIComponent).join('/');
      const items = entries.map(
        (e) =>
          `<li><a href="${esc(`${base.replace(/\/$/, '')}/${encodeURIComponent(e.name)}${e.isDirectory() ? '/' : ''}`)}">${esc(e.name)}${e.isDirectory() ? '/' : ''}</a></li>`,
      );
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        `<!doctype html><meta charset="utf-8"><title>${esc(rel)}</title><h3>${esc(file)}</h3><ul>${items.join('')}</ul>`,
      );
    }
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, { 'content-type': type, 'content-length': st.size, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    fs.createReadStream(file).pipe(res);
  }

  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'the dashboard is read-only');
    const p = decodeURIComponent(url.pathname);
    (async () => {
      if (p === '/' || p === '/index.html') return send(res, 200, 'text/html; charset=utf-8', livePage({ campaign: o.campaign, intervalMs: o.intervalMs }));
      if (p.startsWith('/vendor/')) {
        const file = vegaScriptPath(p.slice('/vendor/'.length));
        if (!file) return send(res, 404, 'text/plain; charset=utf-8', 'not found');
        return send(res, 200, 'text/javascript; charset=utf-8', fs.readFileSync(file));
      }
      if (p === '/api/campaigns') return json(res, 200, await campaigns());
      if (p.startsWith('/api/campaigns/')) return campaign(res, p.slice('/api/campaigns/'.length));
      if (p.startsWith('/artifacts/')) return artifact(res, p.slice('/artifacts/'.length));
      return send(res, 404, 'text/plain; charset=utf-8', 'not found');
    })().catch((e: unknown) => {
      o.logger.error({ err: (e as Error).message, path: p }, 'dashboard request failed');
      if (!res.headersSent) json(res, 500, { error: (e as Error).message });
      else res.end();
    });
  });
}
