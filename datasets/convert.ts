/**
 * One call that converts a source data set (VOC or BDD100K) into the canonical COCO form with
 * the splits a campaign uses (train and val by default). Synchronous. Used by the campaign's data
 * activity (activities/data.ts) for transfer data sets.
 */
import { convertBdd } from './bdd';
import type { ConvertResult } from './voc';
import { convertVoc } from './voc';

/** A split to convert; VOC: from these VOC<year> folders only (default: every year found). */
export interface SplitToConvert {
  split: string;
  years?: string[];
}

export interface ConvertToCocoOptions {
  format: 'voc' | 'bdd';
  /** VOCdevkit (or its parent, or one VOC<year>) / the bdd100k root */
  src: string;
  out: string;
  /** split names or specs (default train, val); each is written as <out>/annotations/instances_<split>.json */
  splits?: (string | SplitToConvert)[];
  copy?: boolean;
}

export function convertToCoco(o: ConvertToCocoOptions): ConvertResult[] {
  const splits = (o.splits ?? ['train', 'val']).map((s) => (typeof s === 'string' ? { split: s } : s));
  const names = splits.map((s) => s.split);
  if (new Set(names).size !== names.length) throw new Error(`convertToCoco: split names must differ, got ${names.join(', ')}`);
  if (o.format === 'voc') {
    // fix the class list from the first split so every split gets the same category ids
    const first = convertVoc({ input: o.src, split: splits[0].split, years: splits[0].years, out: o.out, copy: o.copy });
    return [
      first,
      ...splits.slice(1).map((s) => convertVoc({ input: o.src, split: s.split, years: s.years, out: o.out, copy: o.copy, classes: first.categories })),
    ];
  }
  return splits.map((s) => convertBdd({ input: o.src, split: s.split, out: o.out, copy: o.copy }));
}
