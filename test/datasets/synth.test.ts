/** Generated data sets: valid PNGs, deterministic given the seed, boxes that match the drawn pixels. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { crc32, encodePngRgb } from '../../datasets/png';
import { parseImageHeader } from '../../datasets/image-header';
import { makeScene } from '../../datasets/synth/scene';
import { writeSynthDetection } from '../../datasets/synth/detection';
import { writeSynthClassification } from '../../datasets/synth/classification';
import { listClassFolders } from '../../datasets/imagenet';

/** Decode our own subset of PNG (RGB8, filter 0) checking every chunk CRC. */
function decodePng(buf: Buffer): { width: number; height: number; rgb: Buffer } {
  expect(buf.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  let p = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (p < buf.length) {
    const len = buf.readUInt32BE(p);
    const type = buf.toString('ascii', p + 4, p + 8);
    const data = buf.subarray(p + 8, p + 8 + len);
    expect(buf.readUInt32BE(p + 8 + len)).toBe((crc32(data, crc32(buf.subarray(p + 4, p + 8))) ^ 0xffffffff) >>> 0);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      expect([data[8], data[9]]).toEqual([8, 2]);
    } else if (type === 'IDAT') idat.push(data);
    p += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    expect(raw[y * (width * 3 + 1)]).toBe(0);
    raw.copy(rgb, y * width * 3, y * (width * 3 + 1) + 1, (y + 1) * (width * 3 + 1));
  }
  return { width, height, rgb };
}

describe('data synth', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-synth-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('crc32 matches the standard check value', () => {
    expect((crc32(Buffer.from('123456789')) ^ 0xffffffff) >>> 0).toBe(0xcbf43926);
  });

  it('writes PNGs that decode back to the pixels', () => {
    const rgb = new Uint8Array(7 * 5 * 3).map((_, i) => (i * 37) & 255);
    const png = encodePngRgb(7, 5, rgb);
    const d = decodePng(png);
    expect([d.width, d.height]).toEqual([7, 5]);
    expect(new Uint8Array(d.rgb)).toEqual(rgb);
    expect(parseImageHeader(png)).toEqual({ format: 'png', width: 7, height: 5 });
  });

  it('scenes are deterministic, 1-6 objects, boxes inside the image and tight around object colour', () => {
    const a = makeScene(3, { size: 128, classes: 4, seed: 9 });
    const b = makeScene(3, { size: 128, classes: 4, seed: 9 });
    expect(Buffer.from(a.rgb).equals(Buffer.from(b.rgb))).toBe(true);
    expect(a.objects).toEqual(b.objects);
    expect(Buffer.from(makeScene(3, { size: 128, classes: 4, seed: 10 }).rgb).equals(Buffer.from(a.rgb))).toBe(false);
    let small = 0;
    let total = 0;
    for (let i = 0; i < 40; i++) {
      const s = makeScene(i, { size: 128, classes: 4, seed: 1 });
      expect(s.objects.length).toBeGreaterThanOrEqual(1);
      expect(s.objects.length).toBeLessThanOrEqual(6);
      for (const o of s.objects) {
        const [x, y, w, h] = o.bbox;
        expect(x >= 0 && y >= 0 && x + w <= 128 && y + h <= 128 && w >= 8 && h >= 8).toBe(true);
        if (w * h < 32 * 32) small++;
        total++;
      }
    }
    // a mix of small and medium objects
    expect(small / total).toBeGreaterThan(0.2);
    expect(small / total).toBeLessThan(0.8);
  });

  it('non-square scenes (--size WxH): the canvas and boxes fit WxH; square scenes are the same as before', () => {
    for (let i = 0; i < 20; i++) {
      const s = makeScene(i, { size: 200, height: 150, classes: 4, seed: 1 });
      expect([s.width, s.height, s.rgb.length]).toEqual([200, 150, 200 * 150 * 3]);
      for (const o of s.objects) {
        const [x, y, w, h] = o.bbox;
        expect(x >= 0 && y >= 0 && x + w <= 200 && y + h <= 150).toBe(true);
      }
    }
    // height equal to size is the square scene; the square stream is pinned to what the code drew
    // before non-square sizes existed (sha256 of pixels + objects, from the earlier makeScene)
    const sq = makeScene(3, { size: 128, classes: 4, seed: 9 });
    expect(makeScene(3, { size: 128, height: 128, classes: 4, seed: 9 })).toEqual(sq);
    const digest = createHash('sha256').update(Buffer.from(sq.rgb)).update(JSON.stringify(sq.objects)).digest('hex');
    expect(digest.slice(0, 16)).toBe('c983d4c33dffe6eb');
  });

  it('writes the canonical COCO layout, identical for the same seed', () => {
    const o = { format: 'coco' as const, train: 6, val: 3, size: 64, classes: 3, seed: 5 };
    writeSynthDetection({ ...o, out: path.join(dir, 'a') });
    writeSynthDetection({ ...o, out: path.join(dir, 'b') });
    const ja = fs.readFileSync(path.join(dir, 'a/annotations/instances_train.json'), 'utf8');
    expect(fs.readFileSync(path.join(dir, 'b/annotations/instances_train.json'), 'utf8')).toBe(ja);
    const inst = JSON.parse(ja);
    expect(inst.images).toHaveLength(6);
    expect(inst.categories.map((c: { id: number }) => c.id)).toEqual([1, 2, 3]);
    for (const im of inst.images) {
      const png = fs.readFileSync(path.join(dir, 'a/train', im.file_name));
      expect(png.equals(fs.readFileSync(path.join(dir, 'b/train', im.file_name)))).toBe(true);
      const d = decodePng(png);
      expect([d.width, d.height]).toEqual([im.width, im.height]);
    }
    for (const a of inst.annotations) expect(a.area).toBe(a.bbox[2] * a.bbox[3]);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'a/annotations/instances_val.json'), 'utf8')).images).toHaveLength(3);
  });

  it('writes class folders readable by the ImageNet-style reader', () => {
    const out = path.join(dir, 'cls');
    writeSynthClassification({ out, train: 3, val: 2, size: 32, classes: 4, seed: 1 });
    const train = listClassFolders(out, 'train');
    expect(train.classes).toHaveLength(4);
    expect(train.images).toHaveLength(12);
    expect(train.counts).toEqual([3, 3, 3, 3]);
    const val = listClassFolders(out, 'val');
    expect(val.classes).toEqual(train.classes);
    expect(val.images.map((i) => i.label).sort()).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });
});

describe('smnas data synth / summary (CLI)', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { command } = require('../../cli/commands/data') as typeof import('../../cli/commands/data');
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-synthcli-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function capture(argv: string[]): Promise<string> {
    const out: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    try {
      expect(await command.main(argv)).toBe(0);
    } finally {
      spy.mockRestore();
    }
    return out.join('');
  }

  it('generates and summarizes both kinds, --json for scripts', async () => {
    const det = JSON.parse(await capture(['synth', '--out', path.join(dir, 'd'), '--train', '3', '--val', '2', '--size', '48', '--classes', '2', '--json']));
    expect(det).toMatchObject({ kind: 'detection', format: 'coco', images: 5, classes: 2 });
    const s = JSON.parse(await capture(['summary', path.join(dir, 'd'), '--json']));
    expect(s).toMatchObject({ kind: 'detection', numClasses: 2, splits: { train: { images: 3 }, val: { images: 2 } } });
    await capture(['synth', '--kind', 'classification', '--out', path.join(dir, 'c'), '--train', '2', '--val', '1', '--size', '24', '--classes', '3']);
    const c = JSON.parse(await capture(['summary', path.join(dir, 'c'), '--json']));
    expect(c).toMatchObject({ kind: 'classification', numClasses: 3, splits: { train: { images: 6 }, val: { images: 3 } } });
  });

  it('rejects bad options with one-line errors', async () => {
    await expect(command.main(['synth', '--out', dir, '--format', 'yolo'])).rejects.toThrow("--format must be coco, voc or bdd, got 'yolo'");
    await expect(command.main(['synth', '--out', dir, '--format', 'bdd', '--classes', '11'])).rejects.toThrow(
      '--classes must be between 1 and 10 for --format bdd',
    );
    await expect(command.main(['synth', '--out', dir, '--train', 'x'])).rejects.toThrow("--train must be an integer, got 'x'");
    await expect(command.main(['synth'])).rejects.toThrow('--out is required');
    await expect(command.main(['convert', '--from', 'coco', '--input', dir, '--split', 'train', '--out', dir])).rejects.toThrow(
      "--from must be voc or bdd, got 'coco'",
    );
  });
});
