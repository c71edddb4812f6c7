#!/usr/bin/env node
/**
 * One screenshot of the dashboard or of a static report, with Debian's chromium (puppeteer-core):
 *   node scripts/screenshot.js <url> <out.png> [--click stage-two]
 * Waits until the page has drawn its charts; --click clicks the first point of that chart first,
 * so the details panel shows an architecture. Used by scripts/screenshots.sh.
 */
'use strict';
const puppeteer = require('puppeteer-core');

async function main() {
  const [url, out, flag, chart] = process.argv.slice(2);
  if (!url || !out) {
    process.stderr.write('usage: node scripts/screenshot.js <url> <out.png> [--click stage-one|stage-two]\n');
    process.exit(2);
  }
  const browser = await puppeteer.launch({
    executablePath: process.env.SMNAS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1440, height: 900, deviceScaleFactor: 1 });
    await page.goto(url);
    await page.waitForFunction(() => window.smnas && window.smnas.ready && window.smnas.renders > 0, { timeout: 30000 });
    if (flag === '--click') {
      const layer = chart === 'stage-one' ? 'stage_one_points_marks' : 'stage_two_points_marks';
      const el = await page.$(`#chart-${chart} g.${layer} path`);
      if (!el) throw new Error(`no point in chart ${chart}`);
      await el.scrollIntoView();
      const box = await el.boundingBox();
      await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await page.waitForSelector('#detail-arch', { timeout: 5000 });
      await page.evaluate(() => window.scrollTo(0, 0));
    }
    await page.screenshot({ path: out, fullPage: true });
  } finally {
    await browser.close();
  }
}
main().catch((e) => {
  process.stderr.write(`screenshot: ${e.message}\n`);
  process.exit(1);
});
