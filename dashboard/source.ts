/**
 * Where the dashboard's data comes from: the artifact store (always) and Temporal (when it
 * answers). Temporal is asked only read-only things: the list of smnasSearch workflows, describe,
 * and the campaign's progress / fronts / candidates queries. When it is unreachable, or no worker
 * answers a query, the view says so and shows what the store holds.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Logger } from '../common/log';
import { CandidatesSchema, FrontsSchema, ProgressSchema, campaignWorkflowId, candidatesQuery, frontsQuery, progressQuery } from '../workflows/api';
import type { ConnectionSettings } from '../worker/connection';
import { connectClient } from '../worker/connection';
import { campaignCharts } from './charts';
import { buildCampaignView, type TemporalInfo, type ViewOptions } from './model';
import type { CampaignPayload } from './page';
import { listStoreCampaigns, readCampaign, type CampaignSnapshot } from './store-reader';

const offInfo = (note: string | null): TemporalInfo => ({ state: 'off', status: null, note, progress: null, fronts: null, candidates: null });

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

/** Temporal, optional: connects lazily, retries a lost connection at most every `retryMs`. */
export class TemporalSource {
  private client: Client | null = null;
  private failedAt = 0;
  private failure: string | null = null;
  private connecting: Promise<void> | null = null;
  constructor(
    private readonly settings: ConnectionSettings | null,
    private readonly logger: Logger,
    private readonly o: { queryTimeoutMs: number; retryMs: number } = { queryTimeoutMs: 3000, retryMs: 15000 },
  ) {}

  get address(): string | null {
    return this.settings?.address ?? null;
  }

  /** a line for the page when Temporal is not there (null when it is, or when it is off on purpose) */
  note(): string | null {
    if (!this.settings) return 'Temporal not asked (--no-temporal): showing the artifact store only.';
    if (!this.client && this.failure === null) return `Connecting to Temporal at ${this.settings.address}: showing the artifact store meanwhile.`;
    if (this.failure)
      return `Temporal at ${this.settings.address} is unreachable (${this.failure}): showing the artifact store only; stage status, planned counts and running trainings need Temporal.`;
    return null;
  }

  /**
   * The client, or null while there is none. Connecting happens in the background (a connection
   * attempt to an unreachable server takes seconds): requests never wait for it, the page shows
   * the store meanwhile, and a lost server is tried again at most every `retryMs`.
   */
  private async getClient(): Promise<Client | null> {
    if (!this.settings) return null;
    if (this.client) return this.client;
    if (!this.connecting && (this.failure === null || Date.now() - this.failedAt >= this.o.retryMs)) {
      const settings = this.settings;
      this.connecting = connectClient(settings)
        .then(
          (c) => {
            this.client = c;
            this.failure = null;
          },
          (e: unknown) => this.lost(e),
        )
        .finally(() => {
          this.connecting = null;
        });
    }
    return null;
  }

  /** resolves once the current connection attempt (if any) has finished */
  async settled(): Promise<void> {
    await this.connecting;
  }

  private lost(e: unknown) {
    const msg = (e as Error).message.split('\n')[0];
    if (this.failure === null)
      this.logger.warn({ address: this.settings?.address, err: msg }, 'Temporal unreachable; the dashboard shows the artifact store only');
    this.failure = msg.length > 160 ? msg.slice(0, 160) + '...' : msg;
    this.failedAt = Date.now();
    const c = this.client;
    this.client = null;
    c?.connection.close().catch(() => undefined);
  }

  /** campaign id -> workflow status of every smnasSearch workflow (empty when unreachable) */
  async listCampaigns(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const client = await this.getClient();
    if (!client) return out;
    try {
      await withTimeout(
        (async () => {
          for await (const w of client.workflow.list({ query: "WorkflowType='smnasSearch'", pageSize: 200 })) {
            if (!w.workflowId.startsWith('smnas-')) continue;
            const id = w.workflowId.slice('smnas-'.length);
            if (!out.has(id)) out.set(id, w.status.name);
            if (out.size >= 500) break;
          }
        })(),
        this.o.queryTimeoutMs * 2,
        'listing campaigns',
      );
    } catch (e) {
      if (/unavailable|connect|unreachable|no answer/i.test((e as Error).message)) this.lost(e);
      else this.logger.warn({ err: (e as Error).message }, 'listing campaigns on Temporal failed');
    }
    return out;
  }

  async campaignInfo(campaignId: string): Promise<TemporalInfo> {
    const client = await this.getClient();
    if (!client) return offInfo(this.note());
    const h = client.workflow.getHandle(campaignWorkflowId(campaignId));
    let status: string;
    try {
      status = (await withTimeout(h.describe(), this.o.queryTimeoutMs, 'describe')).status.name;
    } catch (e) {
      const err = e as Error;
      if (err.name === 'WorkflowNotFoundError' || /not found/i.test(err.message)) {
        return {
          state: 'not-found',
          status: null,
          note: `Temporal has no workflow ${campaignWorkflowId(campaignId)} (retention may have removed it): showing the artifact store only.`,
          progress: null,
          fronts: null,
          candidates: null,
        };
      }
      this.lost(e);
      return offInfo(this.note());
    }
    if (status !== 'RUNNING') return { state: 'closed', status, note: null, progress: null, fronts: null, candidates: null };
    try {
      const [p, f, c] = await Promise.all([
        withTimeout(h.query(progressQuery), this.o.queryTimeoutMs, 'progress query'),
        withTimeout(h.query(frontsQuery), this.o.queryTimeoutMs, 'fronts query'),
        withTimeout(h.query(candidatesQuery), this.o.queryTimeoutMs, 'candidates query'),
      ]);
      return { state: 'ok', status, note: null, progress: ProgressSchema.parse(p), fronts: FrontsSchema.parse(f), candidates: CandidatesSchema.parse(c) };
    } catch (e) {
      return {
        state: 'no-answer',
        status,
        note: `The campaign's workflow is running but did not answer its queries (${(e as Error).message.split('\n')[0]}; is a control worker running?): showing the artifact store only.`,
        progress: null,
        fronts: null,
        candidates: null,
      };
    }
  }

  async close(): Promise<void> {
    await this.client?.connection.close().catch(() => undefined);
    this.client = null;
  }
}

/** The view's identity for polling: what the page shows, without the query's wall-clock stamp. */
export function payloadVersion(view: unknown): string {
  return createHash('sha1')
    .update(JSON.stringify(view, (k, v) => (k === 'updatedAt' ? undefined : v)))
    .digest('hex')
    .slice(0, 16);
}

export function payloadOf(snapshot: CampaignSnapshot, info: TemporalInfo, o: ViewOptions): CampaignPayload {
  const view = buildCampaignView(snapshot, info, o);
  return { version: payloadVersion(view), view, specs: campaignCharts(view) };
}

/** An empty snapshot for a campaign Temporal knows but that has written nothing to the store yet. */
export function emptySnapshot(artifactRoot: string, campaignId: string, dir: string): CampaignSnapshot {
  return {
    campaignId,
    dir,
    artifactRoot,
    results: [],
    logLines: 0,
    fronts: null,
    selected: null,
    finalTable: null,
    data: null,
    transferDataset: {},
    mtimeMs: 0,
  };
}

export { listStoreCampaigns, readCampaign, offInfo };
