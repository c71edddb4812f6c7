/**
 * Reads an image's width and height from its header only (PNG IHDR, JPEG SOFn), so `data check`
 * can compare the sizes of a whole data set against its annotations without decoding pixels.
 */
import * as fs from 'node:fs';

export type ImageHeader = { format: 'png' | 'jpeg'; width: number; height: number };

/** Parse a header from the first bytes of a file; returns an error string when it cannot. */
export function parseImageHeader(buf: Buffer): ImageHeader | string {
  if (buf.length >= 24 && buf.readUInt32BE(0) === 0x89504e47 && buf.readUInt32BE(4) === 0x0d0a1a0a) {
    if (buf.toString('ascii', 12, 16) !== 'IHDR') return 'PNG without IHDR chunk';
    return { format: 'png', width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
  }
  if (buf.length >= 4 && buf[0] === 0xff && buf[1] === 0xd8) {
    // walk the marker segments up to the first start-of-frame
    let i = 2;
    while (i + 4 <= buf.length) {
      if (buf[i] !== 0xff) return `JPEG marker expected at byte ${i}`;
      const marker = buf[i + 1];
      if (marker === 0xff) {
        i++; // fill byte
        continue;
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        i += 2;
        continue;
      }
      const len = buf.readUInt16BE(i + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) {
        if (i + 9 > buf.length) return 'JPEG header truncated';
        return { format: 'jpeg', height: buf.readUInt16BE(i + 5), width: buf.readUInt16BE(i + 7) };
      }
      if (marker === 0xda || marker === 0xd9) return 'JPEG without a frame header before the image data';
      i += 2 + len;
    }
    return 'JPEG header truncated (no frame header found)';
  }
  return 'not a PNG or JPEG file';
}

/** The problem text for a file that cannot be opened. */
function openFailure(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' ? 'missing' : `unreadable (${code ?? (e as Error).message})`;
}

/**
 * Whether a larger read may still find the header: only a JPEG whose frame header lies past the
 * bytes read (EXIF/ICC blocks), while the file had more to give, up to 4 MB.
 */
function needsMoreBytes(r: ImageHeader | string, bytesRead: number, size: number): boolean {
  return typeof r === 'string' && bytesRead >= size && size < 4 << 20 && r.startsWith('JPEG header truncated');
}

/** Read just enough of the file to find its size. */
export function readImageHeader(file: string): ImageHeader | string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    return openFailure(e);
  }
  try {
    // most headers fit in 4 KB; JPEG EXIF/ICC blocks can push the frame header further
    let size = 4096;
    for (;;) {
      const buf = Buffer.alloc(size);
      const n = fs.readSync(fd, buf, 0, size, 0);
      const r = parseImageHeader(buf.subarray(0, n));
      if (!needsMoreBytes(r, n, size)) return n === 0 ? 'empty file' : r;
      size *= 16;
    }
  } catch (e) {
    return `unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  } finally {
    fs.closeSync(fd);
  }
}

/** Async variant for checking whole data sets without blocking the event loop. */
export async function readImageHeaderAsync(file: string): Promise<ImageHeader | string> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    return openFailure(e);
  }
  try {
    let size = 4096;
    for (;;) {
      const buf = Buffer.alloc(size);
      const { bytesRead: n } = await fh.read(buf, 0, size, 0);
      if (n === 0) return 'empty file';
      const r = parseImageHeader(buf.subarray(0, n));
      if (!needsMoreBytes(r, n, size)) return r;
      size *= 16;
    }
  } catch (e) {
    return `unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  } finally {
    await fh.close();
  }
}

/** Bytes at the end of a file searched for the JPEG end-of-image marker (padding may follow it). */
const JPEG_TRAILER_BYTES = 1024;
const PNG_IEND = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/**
 * Whether the end of an image file is what a whole file ends with: the PNG IEND chunk, or the JPEG
 * end-of-image marker (FFD9) within the last KB. Returns a problem text, or undefined when whole.
 * A file cut short (copy interrupted, disk full) has a good header but no such end.
 */
export function parseImageTrailer(format: ImageHeader['format'], tail: Buffer): string | undefined {
  if (format === 'png')
    return tail.length >= 12 && tail.subarray(tail.length - 12).equals(PNG_IEND) ? undefined : 'PNG truncated (does not end with the IEND chunk)';
  for (let i = tail.length - 2; i >= 0; i--) if (tail[i] === 0xff && tail[i + 1] === 0xd9) return undefined;
  return 'JPEG truncated (no end-of-image marker)';
}

/** Reads the last bytes of an image and checks them with parseImageTrailer. */
export async function readImageTrailerAsync(file: string, format: ImageHeader['format']): Promise<string | undefined> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    return openFailure(e);
  }
  try {
    const { size } = await fh.stat();
    const n = Math.min(size, format === 'png' ? 12 : JPEG_TRAILER_BYTES);
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, size - n);
    return parseImageTrailer(format, buf);
  } catch (e) {
    return `unreadable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  } finally {
    await fh.close();
  }
}
