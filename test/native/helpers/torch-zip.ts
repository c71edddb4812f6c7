/**
 * The raw storages of a file written by torch::save / torch.save (a zip archive of
 * `<archive>/data/<n>` entries holding each tensor's bytes, little-endian), read without a zip
 * library: the central directory gives each entry's name, method and offset.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

export function torchStorages(file: string): Map<string, Buffer> {
  const buf = fs.readFileSync(file);
  // end of central directory: signature 0x06054b50 within the last 64 KiB + 22 bytes
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65_558); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip archive (no end of central directory)`);
  let entries = buf.readUInt16LE(eocd + 10);
  let cd = buf.readUInt32LE(eocd + 16);
  if (entries === 0xffff || cd === 0xffffffff) {
    // zip64: the locator precedes the end record
    const rec = Number(buf.readBigUInt64LE(eocd - 20 + 8));
    entries = Number(buf.readBigUInt64LE(rec + 32));
    cd = Number(buf.readBigUInt64LE(rec + 48));
  }
  const out = new Map<string, Buffer>();
  for (let k = 0; k < entries; k++) {
    if (buf.readUInt32LE(cd) !== 0x02014b50) throw new Error(`${file}: bad central directory entry ${k}`);
    const method = buf.readUInt16LE(cd + 10);
    let csize = buf.readUInt32LE(cd + 20);
    const nameLen = buf.readUInt16LE(cd + 28), extraLen = buf.readUInt16LE(cd + 30), commentLen = buf.readUInt16LE(cd + 32);
    let local = buf.readUInt32LE(cd + 42);
    const name = buf.toString('utf8', cd + 46, cd + 46 + nameLen);
    if (csize === 0xffffffff || local === 0xffffffff) {
      // zip64 extra field: the 64-bit sizes/offset in order of the 32-bit fields that overflowed
      let p = cd + 46 + nameLen;
      const end = p + extraLen;
      while (p < end) {
        const id = buf.readUInt16LE(p), size = buf.readUInt16LE(p + 2);
        if (id === 1) {
          let q = p + 4;
          if (buf.readUInt32LE(cd + 24) === 0xffffffff) q += 8;
          if (csize === 0xffffffff) {
            csize = Number(buf.readBigUInt64LE(q));
            q += 8;
          }
          if (local === 0xffffffff) local = Number(buf.readBigUInt64LE(q));
        }
        p += 4 + size;
      }
    }
    const dataStart = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(dataStart, dataStart + csize);
    if (/\/data\/\d+$/.test(name)) out.set(name.replace(/^[^/]*\//, ''), method === 8 ? zlib.inflateRawSync(raw) : Buffer.from(raw));
    cd += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Every float32 storage of a weights file, by entry name. */
export function torchFloatStorages(file: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, b] of torchStorages(file)) out.set(k, new Float32Array(b.buffer, b.byteOffset, b.length / 4));
  return out;
}
