/** Image sizes from headers only: PNG IHDR and JPEG SOFn (after APPn/EXIF segments), with clear errors. */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseImageHeader, readImageHeader, readImageHeaderAsync } from '../../datasets/image-header';
import { encodePngRgb } from '../../datasets/png';

function jpegHeader(width: number, height: number, app1Bytes: number, sof = 0xc2): Buffer {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
  const app1 = Buffer.alloc(4 + app1Bytes);
  app1.writeUInt16BE(0xffe1, 0);
  app1.writeUInt16BE(2 + app1Bytes, 2);
  const sofSeg = Buffer.from([0xff, sof, 0x00, 0x11, 0x08, height >> 8, height & 255, width >> 8, width & 255, 0x03, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, app1, sofSeg, Buffer.from([0xff, 0xda])]);
}

describe('image headers', () => {
  it('reads PNG and JPEG (baseline and progressive) sizes', () => {
    expect(parseImageHeader(encodePngRgb(3, 2, new Uint8Array(18)))).toEqual({ format: 'png', width: 3, height: 2 });
    expect(parseImageHeader(jpegHeader(640, 427, 100, 0xc0))).toEqual({ format: 'jpeg', width: 640, height: 427 });
    expect(parseImageHeader(jpegHeader(1280, 720, 10, 0xc2))).toEqual({ format: 'jpeg', width: 1280, height: 720 });
  });

  it('reads past a large EXIF block and reports broken files', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-hdr-'));
    try {
      const big = path.join(dir, 'big.jpg');
      fs.writeFileSync(big, jpegHeader(800, 600, 60000));
      expect(readImageHeader(big)).toEqual({ format: 'jpeg', width: 800, height: 600 });
      expect(await readImageHeaderAsync(big)).toEqual({ format: 'jpeg', width: 800, height: 600 });
      const trunc = path.join(dir, 't.jpg');
      fs.writeFileSync(trunc, jpegHeader(800, 600, 60000).subarray(0, 5000));
      expect(readImageHeader(trunc)).toMatch(/^JPEG header truncated/);
      fs.writeFileSync(path.join(dir, 'x.png'), 'hello');
      expect(readImageHeader(path.join(dir, 'x.png'))).toBe('not a PNG or JPEG file');
      expect(await readImageHeaderAsync(path.join(dir, 'none.png'))).toBe('missing');
      fs.writeFileSync(path.join(dir, 'empty.png'), '');
      expect(readImageHeader(path.join(dir, 'empty.png'))).toBe('empty file');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('image headers under hostile bytes', () => {
  const valid = [encodePngRgb(7, 5, new Uint8Array(7 * 5 * 3)), jpegHeader(640, 427, 100, 0xc0), jpegHeader(33, 1000, 0, 0xc2)];
  const want = [
    { format: 'png', width: 7, height: 5 },
    { format: 'jpeg', width: 640, height: 427 },
    { format: 'jpeg', width: 33, height: 1000 },
  ];

  it('truncated headers give the right size or an error string, never a wrong size or an exception', () => {
    fc.assert(
      fc.property(fc.nat(2), fc.nat(), (k, cut) => {
        const buf = valid[k].subarray(0, cut % (valid[k].length + 1));
        const r = parseImageHeader(buf);
        if (typeof r !== 'string') expect(r).toEqual(want[k]);
        else expect(r.length).toBeGreaterThan(0);
      }),
      { numRuns: 500 },
    );
  });

  it('corrupted headers and random bytes never throw and always terminate', () => {
    const corrupted = fc.tuple(fc.nat(2), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })).map(([k, flips]) => {
      const b = Buffer.from(valid[k]);
      for (const [at, v] of flips) b[at % b.length] = v;
      return b;
    });
    const random = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
    const jpegish = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.from(a)]));
    fc.assert(
      fc.property(fc.oneof(corrupted, random, jpegish), (buf) => {
        const r = parseImageHeader(buf);
        if (typeof r !== 'string') {
          expect(['png', 'jpeg']).toContain(r.format);
          expect(Number.isInteger(r.width) && Number.isInteger(r.height)).toBe(true);
        }
      }),
      { numRuns: 1500 },
    );
  });
});
