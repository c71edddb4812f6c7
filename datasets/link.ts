/** Put an image into a converted data set: symlink (default, absolute target) or copy. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export function placeImage(src: string, dest: string, copy: boolean): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  try {
    fs.unlinkSync(dest);
  } catch {
    /* not there yet */
  }
  if (copy) fs.copyFileSync(src, dest);
  else fs.symlinkSync(path.resolve(src), dest);
}

export function writeJsonAtomic(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file + '.tmp', JSON.stringify(value));
  fs.renameSync(file + '.tmp', file);
}
