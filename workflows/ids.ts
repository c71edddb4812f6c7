/**
 * Stable workflow ids. Everything of a campaign derives from its id, the stage and the candidate's
 * canonical string, so a restarted campaign (or a replayed one) addresses the same children and
 * never starts an evaluation twice. Pure.
 */
import { campaignWorkflowId } from './api';

/** Canonical strings contain '/', '(', ',', '=': keep [A-Za-z0-9._-], write anything else as ~hh. */
export function safeEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    if (/[A-Za-z0-9._-]/.test(ch)) out += ch;
    else {
      const code = ch.codePointAt(0)!;
      out += code < 256 ? `~${code.toString(16).padStart(2, '0')}` : `~u${code.toString(16)}~`;
    }
  }
  return out;
}

export function safeDecode(s: string): string {
  return s.replace(/~u([0-9a-f]+)~|~([0-9a-f]{2})/g, (_m, u: string | undefined, h: string | undefined) => String.fromCodePoint(parseInt((u ?? h)!, 16)));
}

/** stage children: smnas-<id>/structural, smnas-<id>/modular/<candidate>, smnas-<id>/transfer/<dataset> */
export function stageWorkflowId(campaignId: string, stage: string, scope?: string): string {
  return `${campaignWorkflowId(campaignId)}/${stage}${scope ? `/${safeEncode(scope)}` : ''}`;
}

/** evaluation children: smnas-<id>/eval/<stage>[/<scope>]/<safe(arch)> */
export function evaluationWorkflowId(campaignId: string, stage: string, arch: string, scope?: string): string {
  return `${campaignWorkflowId(campaignId)}/eval/${stage}${scope ? `/${safeEncode(scope)}` : ''}/${safeEncode(arch)}`;
}
