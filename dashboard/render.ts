/**
 * Vega in Node: the browser builds of vega, vega-lite and vega-embed (served to and inlined in
 * pages: nothing comes from a CDN), and figure rendering: Vega-Lite spec -> SVG with
 * `vega.View(...).toSVG()`, SVG -> PNG with resvg (a Rust renderer whose binary ships in its npm
 * package; no browser, no cairo).
 *
 * vega 6 is an ES module with top-level await, which neither `require` nor jest's module system
 * loads; its UMD build (build/vega.js) is loaded instead, and vega-lite's UMD build is evaluated
 * with a `require` that hands it that same vega.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../common/paths';
import type { Spec } from './charts';

/** Browser builds, in the order a page loads them. */
export const VEGA_SCRIPTS = [
  { name: 'vega.min.js', file: 'node_modules/vega/build/vega.min.js' },
  { name: 'vega-lite.min.js', file: 'node_modules/vega-lite/build/vega-lite.min.js' },
  { name: 'vega-embed.min.js', file: 'node_modules/vega-embed/build/vega-embed.min.js' },
] as const;

export function vegaScriptPath(name: string): string | null {
  const s = VEGA_SCRIPTS.find((x) => x.name === name);
  return s ? path.join(PROJECT_ROOT, s.file) : null;
}

const scriptCache = new Map<string, string>();
export function vegaScriptText(name: string): string {
  const file = vegaScriptPath(name);
  if (!file) throw new Error(`no vega script '${name}'`);
  let text = scriptCache.get(file);
  if (text === undefined) {
    text = fs.readFileSync(file, 'utf8');
    scriptCache.set(file, text);
  }
  return text;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
interface VegaLibs {
  vega: any;
  vegaLite: any;
}
let libs: VegaLibs | null = null;

function evalUmd(file: string, deps: Record<string, unknown>): any {
  const code = fs.readFileSync(file, 'utf8');
  const module = { exports: {} as any };
  const req = (name: string) => {
    if (name in deps) return deps[name];
    throw new Error(`${path.basename(file)} requires '${name}', which is not provided`);
  };
  new Function('module', 'exports', 'require', code)(module, module.exports, req);
  return module.exports;
}

export function loadVega(): VegaLibs {
  if (!libs) {
    const vega = evalUmd(path.join(PROJECT_ROOT, 'node_modules/vega/build/vega.js'), {});
    const vegaLite = evalUmd(path.join(PROJECT_ROOT, 'node_modules/vega-lite/build/vega-lite.min.js'), { vega });
    libs = { vega, vegaLite };
  }
  return libs;
}

/** Vega-Lite spec (with its data) -> standalone SVG text. */
export async function renderSvg(spec: Spec): Promise<string> {
  const { vega, vegaLite } = loadVega();
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** SVG text -> PNG bytes at `scale` times its size (2: for slides and print). */
export function svgToPng(svg: string, scale = 2): Buffer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  const r = new Resvg(svg, { fitTo: { mode: 'zoom', value: scale }, background: 'white', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Serif' } });
  return Buffer.from(r.render().asPng());
}
