/**
 * `smnas dashboard`: a live, read-only web page of the campaigns (dashboard/server.ts): the
 * artifact store plus, when it answers, Temporal's queries.
 */
import * as path from 'node:path';
import { bool, int, parseFlags, printJson, str, type Command } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { STATE_DIR } from '../../common/paths';
import { CampaignIdSchema } from '../../protocol/campaign';
import { CONNECTION_FLAGS, CONNECTION_HELP, resolveConnectionSettings } from '../../worker/connection';

const NAME = 'smnas dashboard';

const HELP = `usage: smnas dashboard [--port 8080] [--host 127.0.0.1] [--campaign id] [--artifacts dir]
                       [--interval s] [--web-ui url] [--no-temporal] [--json]

A web page of SM-NAS campaigns, live while they run (the page polls): the campaign list; per
campaign the stage progress, device hours per stage, every evaluated model as a point coloured by
stage and candidate with the Pareto fronts as staircases (stage one: mAP vs latency; stage two:
mAP vs GFLOPs per candidate), a click on a point shows its architecture, metrics and links to its
Temporal workflow and its artifacts; the final table; the paper's Fig. 5 correlations.

It reads the artifact store and asks Temporal (list, describe, the campaign's progress / fronts /
candidates queries); it never writes. When Temporal is unreachable the page says so and shows
what the store holds. Charts: Vega-Lite, served from node_modules (no network needed).

  --port n         port to listen on (default 8080; 0 picks a free one)
  --host addr      address to listen on (default 127.0.0.1)
  --campaign id    show only this campaign
  --artifacts dir  artifact store root (default $SMNAS_STATE/artifacts)
  --interval s     how often the page polls (default 5)
  --web-ui url     Temporal Web UI for the links to workflows (default http://localhost:8233)
  --no-temporal    do not ask Temporal (the store only)
  --json           print {"url": ...} once listening (for scripts)

${CONNECTION_HELP}`;

const FLAGS = {
  port: { type: 'string' },
  host: { type: 'string' },
  campaign: { type: 'string' },
  artifacts: { type: 'string' },
  interval: { type: 'string' },
  'web-ui': { type: 'string' },
  'no-temporal': { type: 'boolean' },
  json: { type: 'boolean' },
  ...CONNECTION_FLAGS,
} as const;

export const command: Command = {
  summary: 'live read-only web dashboard of campaigns (progress, fronts, final table, correlations)',
  help: HELP,
  async main(argv) {
    const flags = parseFlags(NAME, argv, FLAGS, false);
    const port = int(NAME, flags, 'port', 8080)!;
    if (port < 0 || port > 65535) throw new UserError(`${NAME}: --port must be 0..65535, got ${port}`);
    const campaign = str(flags, 'campaign') ?? null;
    if (campaign !== null && !CampaignIdSchema.safeParse(campaign).success) throw new UserError(`${NAME}: --campaign '${campaign}' is not a campaign id`);
    const iv = str(flags, 'interval') ?? '5';
    if (!/^\d+(\.\d+)?$/.test(iv) || Number(iv) <= 0) throw new UserError(`${NAME}: --interval must be a positive number of seconds, got '${iv}'`);
    const artifactRoot = path.resolve(str(flags, 'artifacts') ?? path.join(STATE_DIR, 'artifacts'));
    const settings = resolveConnectionSettings(flags, process.env);
    const webUi = str(flags, 'web-ui') ?? 'http://localhost:8233';
    if (!/^https?:\/\//.test(webUi)) throw new UserError(`${NAME}: --web-ui must be an http(s) URL, got '${webUi}'`);

    const { TemporalSource } = await import('../../dashboard/source');
    const { createDashboardServer } = await import('../../dashboard/server');
    const temporal = new TemporalSource(bool(flags, 'no-temporal') ? null : settings, log);
    const server = createDashboardServer({
      artifactRoot,
      campaign,
      intervalMs: Number(iv) * 1000,
      view: { webUi, namespace: settings.namespace },
      temporal,
      logger: log,
    });
    const host = str(flags, 'host') ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new UserError(`${NAME}: cannot listen on ${host}:${port}: ${e.code ?? e.message}`)));
      server.listen(port, host, () => resolve());
    });
    const addr = server.address();
    const url = `http://${host}:${typeof addr === 'object' && addr ? addr.port : port}/${campaign ? `#${encodeURIComponent(campaign)}` : ''}`;
    log.info({ url, artifactRoot, temporal: bool(flags, 'no-temporal') ? null : settings.address }, 'dashboard listening');
    if (bool(flags, 'json')) printJson({ url, artifactRoot });
    else process.stdout.write(`dashboard: ${url}  (artifacts: ${artifactRoot}; Ctrl-C stops it)\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        server.close(() => resolve());
        server.closeAllConnections();
        void temporal.close();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
