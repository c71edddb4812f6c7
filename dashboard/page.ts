/**
 * The dashboard page and the static report: one HTML template, one client script. Live mode
 * loads the vega builds from the dashboard's own server (/vendor/...) and polls its JSON API;
 * static mode inlines the vega builds, the campaign's view and its chart specs, so the file opens
 * offline with no server. Everything the page shows from the data is written with textContent
 * (architecture strings and ids never become markup).
 */
import type { ChartName, Spec } from './charts';
import { CHART_NAMES, CHART_TITLES } from './charts';
import type { CampaignView } from './model';
import { VEGA_SCRIPTS, vegaScriptText } from './render';

export interface CampaignPayload {
  /** changes whenever what the page shows changes (the page re-draws only then) */
  version: string;
  view: CampaignView;
  specs: Record<ChartName, Spec>;
}

type Boot =
  { mode: 'live'; campaign: string | null; intervalMs: number; artifactBase: string } | { mode: 'static'; payload: CampaignPayload; artifactBase: string };

/** JSON that is safe inside a <script> element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const escHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const STYLE = `
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:10px 18px;display:flex;gap:18px;align-items:baseline}
header h1{font-size:18px;margin:0}
header .sub{opacity:.8;font-size:13px}
#note{margin:8px 18px;padding:6px 10px;background:#fff4d6;border:1px solid #e8c66d;font-size:13px;display:none}
#note.show{display:block}
#layout{display:flex;gap:0}
nav{min-width:220px;max-width:260px;padding:10px;border-right:1px solid #ddd;background:#fff;font-size:13px}
nav a{display:block;padding:5px 6px;color:#1f3b57;text-decoration:none;border-radius:3px;word-break:break-all}
nav a.sel{background:#dfe9f3;font-weight:bold}
nav .meta{color:#777;font-size:11px}
main{flex:1;padding:10px 18px;min-width:0}
h2{font-size:15px;margin:18px 0 6px}
.summary{font-size:13px;line-height:1.6}
table{border-collapse:collapse;font-size:12px;background:#fff}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}
td.l,th.l{text-align:left}
.bar{display:inline-block;width:120px;height:10px;background:#e6e6e6;vertical-align:middle}
.bar span{display:block;height:10px;background:#2ca02c}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.card{background:#fff;border:1px solid #ddd;padding:8px}
.card h3{font-size:13px;margin:0 0 6px;font-weight:normal}
#details{min-width:280px;max-width:420px;font-size:12px}
#details code{font-size:12px;word-break:break-all;background:#f1f1f1;padding:2px 4px;display:block}
#details table{margin-top:6px}
.muted{color:#777}
`;

/** The client: draws a CampaignPayload; in live mode lists campaigns and polls. */
const CLIENT = String.raw`
(function () {
  var BOOT = window.SMNAS_BOOT;
  var state = { views: {}, ready: false, renders: 0, polls: 0, campaign: null, version: null, payload: null, navKey: null };
  window.smnas = state;
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(id) { var e = document.getElementById(id); while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function fmt(v, d) { return v === null || v === undefined ? '-' : Number(v).toFixed(d); }
  function note(text) { var n = document.getElementById('note'); n.textContent = text || ''; n.className = text ? 'show' : ''; }
  function link(href, text) { var a = el('a', { href: href, target: '_blank', rel: 'noopener' }, text); return a; }

  function showDetails(d) {
    var v = state.payload && state.payload.view;
    if (!v || !d) return;
    var p = null;
    if (d.key) p = v.points.find(function (x) { return x.key === d.key && (!d.group || x.group === d.group); });
    if (!p && d.arch) p = v.points.find(function (x) { return x.arch === d.arch && (!d.group || x.group === d.group); });
    if (!p) return;
    var box = clear('details');
    box.appendChild(el('h3', {}, p.group + (p.front ? ' \u00b7 on the Pareto front' : '')));
    box.appendChild(el('code', { id: 'detail-arch' }, p.arch));
    var t = el('table');
    var rows = [['mAP %', fmt(p.mapPct, 2)], ['latency ms', fmt(p.latencyMs, 2)], ['GFLOPs', fmt(p.gflops, 3)], ['M params', fmt(p.mparams, 2)],
      ['stage', p.stage], ['candidate', p.candidateArch ? p.candidate + ' ' + p.candidateArch : '-'], ['result', p.kind + (p.reused ? ' (reused)' : '')],
      ['device s', fmt(p.gpuSeconds, 1)], ['attempts', p.attempts], ['finished', p.finishedAt], ['key', p.key.slice(0, 16) + '\u2026']];
    rows.forEach(function (r) { var tr = el('tr'); tr.appendChild(el('th', { class: 'l' }, r[0])); tr.appendChild(el('td', { class: 'l' }, r[1])); t.appendChild(tr); });
    box.appendChild(t);
    var links = el('p');
    links.appendChild(link(p.workflowUrl, 'Temporal workflow')); links.appendChild(document.createTextNode(' \u00b7 '));
    links.appendChild(link(BOOT.artifactBase + p.recordPath, 'evaluation record')); links.appendChild(document.createTextNode(' \u00b7 '));
    links.appendChild(link(BOOT.artifactBase + p.runPath, 'run folder'));
    box.appendChild(links);
    box.appendChild(el('p', { class: 'muted' }, 'workflow id: ' + p.workflowId));
  }

  function drawTables(v) {
    var s = clear('summary');
    s.appendChild(el('div', {}, 'campaign ' + v.campaignId + ' \u00b7 phase: ' + v.phase + (v.temporal.status ? ' \u00b7 workflow: ' + v.temporal.status : '') +
      ' \u00b7 best search mAP: ' + (v.bestMap === null ? '-' : (v.bestMap * 100).toFixed(2) + ' %') + ' \u00b7 device hours: ' + v.gpuHoursTotal.toFixed(3)));
    s.appendChild(el('div', { id: 'counts' }, v.countsSentence));
    s.appendChild(el('div', { class: 'muted' }, 'artifacts: ' + v.dir));
    var t = clear('stages');
    var head = el('tr');
    ['stage', 'status', 'progress', 'done', 'planned', 'running', 'failed', 'reused', 'device h'].forEach(function (h, i) { head.appendChild(el('th', { class: i < 2 ? 'l' : '' }, h)); });
    t.appendChild(head);
    v.stages.forEach(function (r) {
      var tr = el('tr', { 'data-stage': r.stage });
      tr.appendChild(el('td', { class: 'l' }, r.stage));
      tr.appendChild(el('td', { class: 'l' }, r.status));
      var td = el('td'); var bar = el('span', { class: 'bar' }); var fill = el('span');
      var frac = r.planned ? Math.min(1, r.done / r.planned) : (r.status === 'done' ? 1 : 0);
      fill.style.width = Math.round(frac * 100) + '%'; bar.appendChild(fill); td.appendChild(bar); tr.appendChild(td);
      tr.appendChild(el('td', {}, r.done + ' ' + (r.done === 1 ? r.unit.replace(/s$/, '') : r.unit)));
      tr.appendChild(el('td', {}, r.planned === null ? '-' : r.planned));
      tr.appendChild(el('td', {}, r.running)); tr.appendChild(el('td', {}, r.failed)); tr.appendChild(el('td', {}, r.reused));
      tr.appendChild(el('td', {}, r.unit === 'evaluations' ? r.gpuHours.toFixed(3) : '-'));
      t.appendChild(tr);
    });
    var f = clear('final');
    if (!v.finalTable || v.finalTable.length === 0) { f.appendChild(el('caption', { class: 'muted' }, 'no final models yet')); }
    else {
      var hr = el('tr');
      ['model', 'architecture', 'pretrain top-1 %', 'final mAP %', 'GFLOPs', 'latency ms'].concat(v.transferColumns.map(function (c) { return c.title + ' %'; }))
        .forEach(function (h, i) { hr.appendChild(el('th', { class: i < 2 ? 'l' : '' }, h)); });
      f.appendChild(hr);
      v.finalTable.forEach(function (r, i) {
        var tr = el('tr');
        tr.appendChild(el('td', { class: 'l' }, 'E' + i)); tr.appendChild(el('td', { class: 'l' }, r.arch));
        tr.appendChild(el('td', {}, r.pretrainTop1 === null ? '-' : (r.pretrainTop1 * 100).toFixed(1)));
        tr.appendChild(el('td', {}, r.finalMap === null ? '-' : (r.finalMap * 100).toFixed(2)));
        tr.appendChild(el('td', {}, fmt(r.gflops, 3))); tr.appendChild(el('td', {}, fmt(r.latencyMs, 2)));
        v.transferColumns.forEach(function (c) { var m = (r[c.field] || {})[c.dataset]; tr.appendChild(el('td', {}, m === null || m === undefined ? '-' : (m * 100).toFixed(2))); });
        f.appendChild(tr);
      });
    }
    var c = clear('cands');
    v.candidates.forEach(function (x) { c.appendChild(el('li', {}, x.label + ': ' + x.arch)); });
  }

  async function draw(payload) {
    state.ready = false;
    state.payload = payload;
    var v = payload.view;
    drawTables(v);
    note(v.temporal.note);
    for (var i = 0; i < NAMES.length; i++) {
      var name = NAMES[i];
      var spec = Object.assign({}, payload.specs[name], { datasets: { points: v.points, fronts: v.fronts, stages: v.stages } });
      if (state.views[name]) { try { state.views[name].finalize(); } catch (e) {} }
      var res = await vegaEmbed('#chart-' + name, spec, { renderer: 'svg', actions: false });
      state.views[name] = res.view;
      res.view.addEventListener('click', function (ev, item) { if (item && item.datum) showDetails(item.datum); });
    }
    state.renders++;
    state.ready = true;
  }

  async function getJson(url) {
    var r = await fetch(url, { cache: 'no-store' });
    var body = await r.json();
    if (!r.ok) throw new Error(body && body.error ? body.error : r.status + ' ' + r.statusText);
    return body;
  }

  async function poll() {
    try {
      var list = await getJson('api/campaigns');
      var want = decodeURIComponent(location.hash.slice(1)) || state.campaign || BOOT.campaign || (list.campaigns[0] && list.campaigns[0].campaignId);
      var items = list.campaigns.map(function (c) {
        return { id: c.campaignId, sel: c.campaignId === want, meta: (c.status || 'store only') + ' \u00b7 ' + c.evaluations + ' evaluations' };
      });
      // rebuilt only when it changes: a link replaced between a press and its release takes no click
      var navKey = JSON.stringify(items);
      if (navKey !== state.navKey) {
        state.navKey = navKey;
        var nav = clear('campaign-list');
        items.forEach(function (c) {
          var a = el('a', { href: '#' + encodeURIComponent(c.id), class: c.sel ? 'sel' : '' }, c.id);
          a.appendChild(el('div', { class: 'meta' }, c.meta));
          nav.appendChild(a);
        });
      }
      if (!want) { clear('summary').appendChild(el('div', {}, 'no campaigns in ' + list.artifactRoot)); state.ready = true; return; }
      var payload = await getJson('api/campaigns/' + encodeURIComponent(want));
      if (want !== state.campaign || payload.version !== state.version) {
        state.campaign = want; state.version = payload.version;
        await draw(payload);
      }
      note(list.temporalNote || payload.view.temporal.note);
    } catch (e) {
      note('dashboard: ' + e.message);
      state.ready = true;
    } finally {
      state.polls++;
    }
  }

  var NAMES = ${JSON.stringify(CHART_NAMES)};
  if (BOOT.mode === 'static') { draw(BOOT.payload); }
  else {
    window.addEventListener('hashchange', function () { state.version = null; poll(); });
    poll();
    setInterval(poll, BOOT.intervalMs);
  }
})();
`;

function body(title: string, live: boolean): string {
  const charts = (names: ChartName[]) => names.map((n) => `<div class="card"><h3>${escHtml(CHART_TITLES[n])}</h3><div id="chart-${n}"></div></div>`).join('\n');
  return `<header><h1>${escHtml(title)}</h1><span class="sub">SM-NAS${live ? ' dashboard (live, read-only)' : ' campaign report'}</span></header>
<div id="note"></div>
<div id="layout">
${live ? '<nav><b>Campaigns</b><div id="campaign-list"></div></nav>' : ''}
<main>
<section class="summary" id="summary"></section>
<h2>Stages</h2><table id="stages"></table>
<h2>Every evaluated model and the Pareto fronts</h2>
<div class="row">${charts(['stage-one', 'stage-two'])}
<div class="card" id="details"><span class="muted">Click a point to see its architecture, metrics and links.</span></div></div>
<h2>Candidates</h2><ul id="cands"></ul>
<h2>Final models</h2><table id="final"></table>
<h2>Correlations (paper Fig. 5)</h2>
<div class="row">${charts(['correlation'])}</div>
<h2>Device hours</h2>
<div class="row">${charts(['gpu-hours'])}</div>
</main></div>`;
}

function page(title: string, boot: Boot, scripts: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escHtml(title)}</title>
<style>${STYLE}</style>
${scripts}
</head><body>
${body(title, boot.mode === 'live')}
<script>window.SMNAS_BOOT = ${scriptJson(boot)};</script>
<script>${CLIENT}</script>
</body></html>
`;
}

/** The live dashboard's page (vega builds from /vendor/, data from /api/). */
export function livePage(o: { campaign: string | null; intervalMs: number }): string {
  const scripts = VEGA_SCRIPTS.map((s) => `<script src="vendor/${s.name}"></script>`).join('\n');
  return page('SM-NAS campaigns', { mode: 'live', campaign: o.campaign, intervalMs: o.intervalMs, artifactBase: 'artifacts/' }, scripts);
}

/** One self-contained HTML file: vega builds, data and specs inlined; artifact links as file:// URLs. */
export function staticReport(payload: CampaignPayload): string {
  const scripts = VEGA_SCRIPTS.map((s) => `<script>${vegaScriptText(s.name).replace(/<\/script/gi, '<\\/script')}</script>`).join('\n');
  const base = 'file://' + payload.view.artifactRoot.replace(/\/?$/, '/');
  return page(`SM-NAS campaign ${payload.view.campaignId}`, { mode: 'static', payload, artifactBase: base }, scripts);
}
