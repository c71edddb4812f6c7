/**
 * The figure of experiment (a) (bench/exp-norm.sh): COCO AP and AP50 per norm and seed, with the
 * mean per norm, as SVG and PNG in the dashboard's paper style (Vega-Lite rendered in Node).
 * Usage: node dist/bench/exp-norm-plot.js <runs dir (bench/out/exp-norm)> <out prefix>
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PAPER_CONFIG } from '../dashboard/charts';
import { renderSvg, svgToPng } from '../dashboard/render';

async function main(): Promise<void> {
  const [dir, out] = process.argv.slice(2);
  if (!dir || !out) {
    process.stderr.write('usage: exp-norm-plot <runs dir> <out prefix>\n');
    process.exit(2);
  }
  const rows: { norm: string; seed: number; metric: string; value: number }[] = [];
  for (const d of fs.readdirSync(dir).sort()) {
    const m = /^(bn|gn|gn\+ws)-s(\d+)$/.exec(d);
    const file = path.join(dir, d, 'result.json');
    if (!m || !fs.existsSync(file)) continue;
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as { metrics?: { stats?: { AP: number; AP50: number } } };
    if (!r.metrics?.stats) continue;
    rows.push({ norm: m[1], seed: Number(m[2]), metric: 'AP', value: r.metrics.stats.AP * 100 });
    rows.push({ norm: m[1], seed: Number(m[2]), metric: 'AP50', value: r.metrics.stats.AP50 * 100 });
  }
  if (rows.length === 0) throw new Error(`${dir}: no finished runs (<norm>-s<seed>/result.json)`);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'From scratch at batch 2: BN, GN, GN+WS (toy scale)',
    config: PAPER_CONFIG,
    data: { values: rows },
    facet: { column: { field: 'metric', type: 'nominal', title: null } },
    spec: {
      width: 220,
      height: 220,
      layer: [
        {
          mark: { type: 'point', filled: true, size: 60, opacity: 0.8 },
          encoding: {
            x: { field: 'norm', type: 'nominal', sort: ['bn', 'gn', 'gn+ws'], title: 'norm' },
            y: { field: 'value', type: 'quantitative', title: '% (val)', scale: { zero: false } },
            color: { field: 'seed', type: 'nominal', title: 'seed' },
          },
        },
        {
          mark: { type: 'tick', color: '#d62728', thickness: 2, size: 30 },
          encoding: { x: { field: 'norm', type: 'nominal', sort: ['bn', 'gn', 'gn+ws'] }, y: { aggregate: 'mean', field: 'value', type: 'quantitative' } },
        },
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
  const svg = await renderSvg(spec);
  fs.writeFileSync(`${out}.svg`, svg);
  fs.writeFileSync(`${out}.png`, svgToPng(svg));
  process.stdout.write(`${out}.svg, ${out}.png\n`);
}

main().catch((e) => {
  process.stderr.write(`exp-norm-plot: ${(e as Error).message}\n`);
  process.exit(1);
});
