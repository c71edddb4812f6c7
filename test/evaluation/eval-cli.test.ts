/** `smnas eval` input errors: one line naming the record; an empty results file is valid. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { command } from '../../cli/commands/eval';
import { makeCase } from '../support/coco-cases';

describe('smnas eval', () => {
  let dir: string;
  let gtFile: string;
  const c = makeCase(77, { images: 5, categories: 3 });
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-evalcli-'));
    gtFile = path.join(dir, 'gt.json');
    fs.writeFileSync(gtFile, JSON.stringify(c.gt));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function runEval(dets: string, extra: string[] = []): Promise<string> {
    const f = path.join(dir, 'dets.json');
    fs.writeFileSync(f, dets);
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      expect(await command.main(['--gt', gtFile, '--dets', f, ...extra])).toBe(0);
    } finally {
      spy.mockRestore();
    }
    return out.join('');
  }
  const det = (o: object) => ({ image_id: c.gt.images[0].id, category_id: c.gt.categories[0].id, bbox: [1, 2, 3, 4], score: 0.5, ...o });

  it('--json prints one line with the 12 stats and per-class figures', async () => {
    const text = await runEval(JSON.stringify(c.dets), ['--json']);
    expect(text.trim().split('\n')).toHaveLength(1);
    const r = JSON.parse(text);
    expect(Object.keys(r.stats)).toEqual(['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl']);
    expect(Object.keys(r.perClass)).toHaveLength(3);
  });

  it('an empty detections array gives zeros', async () => {
    const r = JSON.parse(await runEval('[]', ['--json']));
    expect(r.stats.AP).toBe(0);
    expect(r.stats.AR100).toBe(0);
  });

  it.each([
    [[det({}), det({ image_id: 987654 })], /dets\.json: record 1: image_id 987654 is not an image of the ground truth/],
    [[det({ category_id: 555 })], /record 0: category_id 555 is not a category/],
    [[det({}), det({}), det({ score: null })], /record 2: score must be a finite number, got null/],
    [[det({ bbox: [0, 0, -1, 5] })], /record 0: bbox has a negative size \(w=-1, h=5\)/],
    [[det({ bbox: [0, 0, 1] })], /record 0: bbox must be \[x, y, w, h\]/],
  ])('rejects bad records naming them (%#)', async (dets, msg) => {
    const f = path.join(dir, 'dets.json');
    fs.writeFileSync(f, JSON.stringify(dets));
    await expect(command.main(['--gt', gtFile, '--dets', f])).rejects.toThrow(msg);
  });

  it('a NaN score (as Python writes it) names record, line and column', async () => {
    const f = path.join(dir, 'dets.json');
    fs.writeFileSync(f, `[${JSON.stringify(det({}))},\n${JSON.stringify(det({})).replace('0.5', 'NaN')}]`);
    await expect(command.main(['--gt', gtFile, '--dets', f])).rejects.toThrow(/invalid JSON value NaN .* at line 2, column \d+ \(record 1\)/);
  });

  it('--metric voc prints mAP', async () => {
    const r = JSON.parse(await runEval(JSON.stringify(c.dets), ['--metric', 'voc', '--json']));
    expect(r.metric).toBe('voc2010');
    expect(r.mAP).toBeGreaterThan(0);
  });
});
