/**
 * One call that converts a source data set (VOC or BDD100K) into the canonical COCO form with
 * the splits a campaign uses (train and val by default). Synchronous. Used by the campaign's data
 * activity (activities/data.ts) for transfer data sets.
 */
import { convertBdd } from './bdd';
import type { ConvertResult } from './voc';
import { convertVoc } from './voc';

export interface ConvertToCocoOptions {
  format: 'voc' | 'bdd';
  /** VOCdevkit (or its parent, or one VOC<year>) / the bdd100k root */
  src: string;
  out: string;
  splits?: string[];
  copy?: boolean;
}

export function convertToCoco(o: ConvertToCocoOptions): ConvertResult[] {
  const splits = o.splits ?? ['train', 'val'];
  if (o.format === 'voc') {
    // fix the class list from the first split so every split gets the same category ids
    const first = convertVoc({ input: o.src, split: splits[0], out: o.out, copy: o.copy });
    return [first, ...splits.slice(1).map((split) => convertVoc({ input: o.src, split, out: o.out, copy: o.copy, classes: first.categories }))];
  }
  return splits.map((split) => convertBdd({ input: o.src, split, out: o.out, copy: o.copy }));
}
