/**
 * ImageNet-style class folders for backbone pretraining: <root>/<split>/<class>/<image>.
 * Classes are the sorted folder names (label = index), shared by all splits (taken from train
 * when it exists, so val folders missing a class do not shift labels).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DatasetError } from './coco';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.bmp'];

export interface ClassFolderSplit {
  root: string;
  split: string;
  classes: string[];
  images: { path: string; label: number }[];
  /** images per class, same order as classes */
  counts: number[];
}

export function listClassFolders(root: string, split: string, classes?: string[]): ClassFolderSplit {
  const dir = path.join(root, split);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new DatasetError(`${dir}: no such folder (expected <root>/${split}/<class>/*.jpg|png)`);
  const found = fs
    .readdirSync(dir)
    .filter((d) => fs.statSync(path.join(dir, d)).isDirectory())
    .sort();
  if (!classes) {
    const train = path.join(root, 'train');
    classes =
      split !== 'train' && fs.existsSync(train)
        ? fs
            .readdirSync(train)
            .filter((d) => fs.statSync(path.join(train, d)).isDirectory())
            .sort()
        : found;
  }
  if (classes.length < 2) throw new DatasetError(`${dir}: need at least 2 class folders, found ${classes.length}`);
  const extra = found.filter((c) => !classes!.includes(c));
  if (extra.length) throw new DatasetError(`${dir}: class folder(s) ${extra.join(', ')} are not classes of the train split`);
  const images: ClassFolderSplit['images'] = [];
  const counts = classes.map((c, label) => {
    const cdir = path.join(dir, c);
    if (!fs.existsSync(cdir)) return 0;
    const files = fs
      .readdirSync(cdir)
      .filter((f) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase()))
      .sort();
    for (const f of files) images.push({ path: path.join(cdir, f), label });
    return files.length;
  });
  if (images.length === 0) throw new DatasetError(`${dir}: no images (${IMAGE_EXTENSIONS.join(', ')}) in the class folders`);
  return { root, split, classes, images, counts };
}
