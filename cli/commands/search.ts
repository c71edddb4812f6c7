/**
 * `smnas search`: start and steer campaigns (the `smnasSearch` workflow) on Temporal.
 *   start --profile toy|paper | --campaign file   validate, then start (optionally follow)
 *   status | watch | pause | resume | stop-stage | cancel | pareto | result   <campaign id>
 * Campaign ids map to workflow ids with workflows/api.ts campaignWorkflowId (smnas-<id>).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { bool, int, parseFlags, printJson, str, type Command, type ParsedFlags } from '../../common/cli';
import { describeZodError, UserError } from '../../common/errors';
import { log } from '../../common/log';
import { STATE_DIR } from '../../common/paths';
import { describeUnknownFields, unknownFields } from '../../protocol/unknown-fields';
import { CampaignIdSchema, CampaignSchema, makePaperCampaign, makeToyCampaign, parseCampaign, type Campaign } from '../../protocol/campaign';
import {
  campaignWorkflowId,
  candidatesQuery,
  FrontsSchema,
  frontsQuery,
  pauseUpdate,
  ProgressSchema,
  progressQuery,
  resumeUpdate,
  stopStageUpdate,
  type Fronts,
  type Progress,
} from '../../workflows/api';
import { CONNECTION_FLAGS, CONNECTION_HELP, connectClient, resolveConnectionSettings } from '../../worker/connection';
import { renderFinalTable, renderFronts, renderProgress, type FinalRowView } from '../campaign-view';

const NAME = 'smnas search';
const WORKFLOW_TYPE = 'smnasSearch';
const ID_COMMANDS = ['status', 'watch', 'pause', 'resume', 'stop-stage', 'cancel', 'pareto', 'result', 'report'] as const;

const HELP = `usage: smnas search start (--profile toy|paper [--data dir] | --campaign file.json) [--id id] [--seed n]
                          [--follow] [--json]
       smnas search status|watch|pause|resume|stop-stage|cancel|pareto|result <campaign-id> [--json]
       smnas search report <campaign-id> [--out dir] [--artifacts dir] [--web-ui url] [--json]

start       validate the campaign (zod; errors name the field), then start the smnasSearch workflow
            on the campaign's control queue (smnas-control) with workflow id smnas-<id>.
            --profile toy: generated data under --data (default $SMNAS_STATE/data/toy; the
            workflow's data step generates what is missing). --profile paper: --data is the COCO
            root (annotations/instances_train2017.json, train2017/, val2017/).
            --campaign file: a campaign JSON (fields left out take the profile's defaults);
            --id / --seed override its id / seed.
            --follow: watch until the campaign ends, then print the fronts and the final table;
            exit status 1 when it failed or was cancelled.
status      one progress snapshot (stage, evaluated/planned, running, failed, best mAP per band)
watch       live progress bars per stage and the trainings in flight, until the campaign ends
pause       finish running evaluations, start none;  resume: start them again
stop-stage  keep what finished in the current stage and move to the next  [--stage name]
cancel      cancel the campaign (running trainings are stopped)
pareto      the current fronts (stage one, and each candidate's stage two) as a table
result      the finished campaign's result (fronts, final table, report folder)
report      write the campaign's report from the artifact store (no Temporal needed): report.html
            (the dashboard's views in one self-contained file: opens offline, no server),
            paper-style figures pareto-structural, pareto-modular, correlation, gpu-hours as .svg
            and .png, and report.md. The campaign writes the same files at its end.
  --out dir       where to write (default: the campaign's folder <artifacts>/campaigns/<id>)
  --artifacts dir artifact store root (default $SMNAS_STATE/artifacts)
  --web-ui url    Temporal Web UI base for the links to workflows (default http://localhost:8233)
  --interval s   refresh period of watch/--follow (default 2)

The same workflow starts without this CLI:
  temporal workflow start --type smnasSearch --task-queue smnas-control --workflow-id smnas-<id> \\
    --input-file campaign.json

${CONNECTION_HELP}`;

const FLAGS = {
  profile: { type: 'string' },
  data: { type: 'string' },
  id: { type: 'string' },
  seed: { type: 'string' },
  campaign: { type: 'string' },
  follow: { type: 'boolean' },
  json: { type: 'boolean' },
  stage: { type: 'string' },
  interval: { type: 'string' },
  out: { type: 'string' },
  artifacts: { type: 'string' },
  'web-ui': { type: 'string' },
  ...CONNECTION_FLAGS,
} as const;

/** Builds and validates the campaign of `search start` (pure but for reading --campaign). */
export function campaignFromFlags(flags: ParsedFlags, stateDir = STATE_DIR): Campaign {
  const file = str(flags, 'campaign');
  const id = str(flags, 'id');
  const seed = int(NAME, flags, 'seed');
  const profile = str(flags, 'profile');
  if (file) {
    if (profile !== undefined || str(flags, 'data') !== undefined)
      throw new UserError(`${NAME} start: --campaign already says the profile and data; drop --profile/--data`);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new UserError(`${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message.split('\n')[0]}`);
    }
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      if (id !== undefined) (raw as Record<string, unknown>).id = id;
      if (seed !== undefined) (raw as Record<string, unknown>).seed = seed;
    }
    const r = parseCampaign(raw);
    if (!r.success) throw new UserError(describeZodError(file, r.error));
    // a misspelt field would silently keep its default: refuse it, naming the path
    const unknown = describeUnknownFields(file, unknownFields(CampaignSchema, raw));
    if (unknown) throw new UserError(unknown);
    return r.data;
  }
  if (profile === undefined) throw new UserError(`${NAME} start: give --profile toy|paper or --campaign <file> (see '${NAME} --help')`);
  if (id !== undefined) {
    const r = CampaignIdSchema.safeParse(id);
    if (!r.success) throw new UserError(`${NAME} start: --id '${id}': ${r.error.issues[0].message}`);
  }
  const data = str(flags, 'data');
  try {
    if (profile === 'toy') {
      return makeToyCampaign({ id, seed, dataRoot: path.resolve(data ?? path.join(stateDir, 'data', 'toy')) });
    }
    if (profile === 'paper') {
      if (!data) throw new UserError(`${NAME} start: --profile paper needs --data <COCO root>`);
      return makePaperCampaign({ id, seed, cocoRoot: path.resolve(data) });
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${NAME} start: ${(e as Error).message}`);
  }
  throw new UserError(`${NAME} start: --profile must be 'toy' or 'paper', got '${profile}'`);
}

function handleOf(client: Client, campaignId: string): WorkflowHandle {
  return client.workflow.getHandle(campaignWorkflowId(campaignId));
}

/** Turns "workflow not found" into a user error naming the campaign. */
async function guard<T>(campaignId: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    const err = e as Error;
    if (err.name === 'WorkflowNotFoundError' || /not found/i.test(err.message)) {
      throw new UserError(`${NAME}: no campaign '${campaignId}' (workflow ${campaignWorkflowId(campaignId)}) on this server`);
    }
    if (err.name === 'QueryNotRegisteredError') throw new UserError(`${NAME}: campaign '${campaignId}' does not answer ${err.message}`);
    throw e;
  }
}

async function queryProgress(h: WorkflowHandle, id: string): Promise<Progress> {
  return ProgressSchema.parse(await guard(id, h.query(progressQuery)));
}

async function queryFronts(h: WorkflowHandle, id: string): Promise<Fronts> {
  return FrontsSchema.parse(await guard(id, h.query(frontsQuery)));
}

/** Redraws a block of lines in place on a TTY; prints it when it changed (at most every minGapMs) otherwise. */
class BlockRenderer {
  private drawn = 0;
  private last = '';
  private lastAt = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  constructor(private readonly minGapMs = 15_000) {}
  draw(lines: string[], force = false): void {
    const text = lines.join('\n');
    if (this.tty) {
      if (this.drawn > 0) process.stderr.write(`\x1b[${this.drawn}A\x1b[J`);
      process.stderr.write(text + '\n');
      this.drawn = lines.length;
      return;
    }
    // logs of scripts and CI: only when something changed, and not too often
    const key = text.replace(/elapsed: \S+/, '');
    if (!force && (key === this.last || Date.now() - this.lastAt < this.minGapMs)) return;
    this.last = key;
    this.lastAt = Date.now();
    process.stderr.write(text + '\n');
  }
}

/** Polls progress until the workflow closes; returns its final status name. */
async function watch(client: Client, id: string, intervalMs: number, json: boolean): Promise<string> {
  const h = handleOf(client, id);
  const r = new BlockRenderer();
  for (;;) {
    const desc = await guard(id, h.describe());
    let progress: Progress | undefined;
    try {
      progress = await queryProgress(h, id);
    } catch (e) {
      if (e instanceof UserError) throw e;
      log.debug({ err: (e as Error).message }, 'progress query failed (worker busy or restarting); retrying');
    }
    const closed = desc.status.name !== 'RUNNING';
    if (progress) {
      if (json) printJson({ status: desc.status.name, progress });
      else r.draw(renderProgress(progress, Date.now()), closed);
    }
    if (closed) return desc.status.name;
    await new Promise((res) => setTimeout(res, intervalMs));
  }
}

/** The part of smnasSearch's result this command prints (workflows/campaign.ts). */
interface CampaignResultView {
  finalTable?: FinalRowView[];
  fronts?: Fronts;
  artifactDir?: string;
}

async function printOutcome(client: Client, id: string, status: string, json: boolean): Promise<number> {
  const h = handleOf(client, id);
  if (status !== 'COMPLETED') {
    let reason = '';
    try {
      await h.result();
    } catch (e) {
      const cause = (e as { cause?: Error }).cause;
      reason = (cause?.message ?? (e as Error).message).split('\n')[0];
    }
    if (json) printJson({ campaignId: id, status, error: reason });
    else process.stdout.write(`campaign ${id}: ${status}${reason ? `: ${reason}` : ''}\n`);
    return 1;
  }
  const result = (await h.result()) as CampaignResultView;
  const parsedFronts = FrontsSchema.safeParse(result?.fronts);
  const fronts = parsedFronts.success ? parsedFronts.data : await queryFronts(h, id).catch(() => undefined);
  if (json) {
    printJson({ campaignId: id, status, fronts, result });
    return 0;
  }
  const out: string[] = [`campaign ${id}: COMPLETED`];
  if (fronts) out.push('', 'Pareto fronts:', ...renderFronts(fronts));
  if (result?.finalTable?.length) out.push('', 'final models (pretrain top-1, final mAP, cost, transfer mAP):', ...renderFinalTable(result.finalTable));
  if (result?.artifactDir) out.push('', `report and results: ${result.artifactDir}`);
  process.stdout.write(out.join('\n') + '\n');
  return 0;
}

async function start(client: Client, flags: ParsedFlags): Promise<number> {
  const campaign = campaignFromFlags(flags);
  const workflowId = campaignWorkflowId(campaign.id);
  const json = bool(flags, 'json');
  try {
    await client.workflow.start(WORKFLOW_TYPE, { taskQueue: campaign.queues.control, workflowId, args: [campaign] });
  } catch (e) {
    if ((e as Error).name === 'WorkflowExecutionAlreadyStartedError') {
      throw new UserError(
        `${NAME} start: campaign '${campaign.id}' is already running (watch it: bin/smnas search watch ${campaign.id}; or pick another --id)`,
      );
    }
    throw e;
  }
  log.info({ campaign: campaign.id, workflowId, profile: campaign.profile, taskQueue: campaign.queues.control }, 'campaign started');
  if (!bool(flags, 'follow')) {
    if (json) printJson({ campaignId: campaign.id, workflowId, taskQueue: campaign.queues.control });
    else process.stdout.write(`started campaign ${campaign.id} (workflow ${workflowId}); follow it with: bin/smnas search watch ${campaign.id}\n`);
    return 0;
  }
  const status = await watch(client, campaign.id, intervalMs(flags), false);
  return await printOutcome(client, campaign.id, status, json);
}

function intervalMs(flags: ParsedFlags): number {
  const v = str(flags, 'interval');
  if (v === undefined) return 2000;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw new UserError(`${NAME}: --interval must be a positive number of seconds, got '${v}'`);
  return Number(v) * 1000;
}

/** `search report <id>`: the report files from the artifact store alone. */
async function report(id: string, flags: ParsedFlags, json: boolean): Promise<number> {
  const { readCampaign } = await import('../../dashboard/store-reader');
  const { writeCampaignReport } = await import('../../dashboard/report-files');
  const { offInfo } = await import('../../dashboard/source');
  const root = path.resolve(str(flags, 'artifacts') ?? path.join(STATE_DIR, 'artifacts'));
  const snapshot = readCampaign(root, id);
  if (!snapshot) throw new UserError(`${NAME} report: no campaign '${id}' in ${root} (no folder ${path.join(root, 'campaigns', id)}; see --artifacts)`);
  const out = path.resolve(str(flags, 'out') ?? snapshot.dir);
  const settings = resolveConnectionSettings(flags, process.env);
  const { view, files } = await writeCampaignReport(
    snapshot,
    offInfo(null),
    { webUi: str(flags, 'web-ui') ?? 'http://localhost:8233', namespace: settings.namespace },
    out,
  );
  log.info({ campaign: id, out, files: files.length }, 'report written');
  if (json) printJson({ campaignId: id, out, files, counts: view.counts });
  else process.stdout.write(`${view.countsSentence}\nreport: ${path.join(out, 'report.html')}\nfiles: ${files.join(', ')}\n`);
  return 0;
}

export const command: Command = {
  summary: 'start, watch and steer SM-NAS campaigns (status, pause, resume, stop-stage, cancel, pareto)',
  help: HELP,
  async main(argv) {
    const flags = parseFlags(NAME, argv, FLAGS);
    const [sub, id, extra] = flags.positionals;
    if (!sub) throw new UserError(`${NAME}: missing sub-command (start, ${ID_COMMANDS.join(', ')}; see '${NAME} --help')`);
    if (sub !== 'start' && !(ID_COMMANDS as readonly string[]).includes(sub))
      throw new UserError(`${NAME}: unknown sub-command '${sub}' (see '${NAME} --help')`);
    if (sub === 'start') {
      if (id !== undefined) throw new UserError(`${NAME} start: unexpected argument '${id}' (the campaign id is --id)`);
      campaignFromFlags(flags); // validate before touching the network
    } else {
      if (!id) throw new UserError(`${NAME} ${sub}: missing <campaign-id>`);
      if (extra !== undefined) throw new UserError(`${NAME} ${sub}: unexpected argument '${extra}'`);
    }
    const json = bool(flags, 'json');
    if (sub === 'report') return await report(id, flags, json);
    const client = await connectClient(resolveConnectionSettings(flags, process.env));
    try {
      if (sub === 'start') return await start(client, flags);
      const h = handleOf(client, id);
      switch (sub) {
        case 'status': {
          const desc = await guard(id, h.describe());
          const progress = await queryProgress(h, id);
          if (json) printJson({ status: desc.status.name, progress });
          else process.stdout.write([`status: ${desc.status.name}`, ...renderProgress(progress, Date.now())].join('\n') + '\n');
          return 0;
        }
        case 'watch': {
          const status = await watch(client, id, intervalMs(flags), json);
          return await printOutcome(client, id, status, json);
        }
        case 'result': {
          const desc = await guard(id, h.describe());
          if (desc.status.name === 'RUNNING') throw new UserError(`${NAME} result: campaign '${id}' is still running (bin/smnas search watch ${id})`);
          return await printOutcome(client, id, desc.status.name, json);
        }
        case 'pause':
        case 'resume':
        case 'stop-stage': {
          const progress = ProgressSchema.parse(
            await guard(
              id,
              sub === 'pause'
                ? h.executeUpdate(pauseUpdate)
                : sub === 'resume'
                  ? h.executeUpdate(resumeUpdate)
                  : str(flags, 'stage') === undefined
                    ? h.executeUpdate<Progress, []>(stopStageUpdate.name)
                    : h.executeUpdate<Progress, [string]>(stopStageUpdate.name, { args: [str(flags, 'stage')!] }),
            ),
          );
          if (json) printJson(progress);
          else process.stdout.write(`${sub}: done; phase ${progress.phase}${progress.paused ? ' (paused)' : ''}, ${progress.evaluated} evaluated\n`);
          return 0;
        }
        case 'cancel': {
          await guard(id, h.cancel());
          if (json) printJson({ campaignId: id, cancelRequested: true });
          else process.stdout.write(`cancellation of campaign ${id} requested; running trainings are being stopped\n`);
          return 0;
        }
        case 'pareto': {
          const fronts = await queryFronts(h, id);
          if (json) {
            const candidates = await guard(id, h.query(candidatesQuery)).catch(() => undefined);
            printJson({ ...fronts, ...(candidates ? { candidates } : {}) });
          } else process.stdout.write(renderFronts(fronts).join('\n') + '\n');
          return 0;
        }
      }
      return 2;
    } finally {
      await client.connection.close().catch(() => undefined);
    }
  },
};
