/**
 * Random COCO evaluation cases that stress pycocotools' corner cases: crowd GT, areas exactly at
 * 32^2 / 96^2 and GT `area` different from w*h, classes without GT, images without detections,
 * score ties, more than 100 detections per image and category, GT id 0, unsorted and gappy ids.
 */
import type { CocoDetection, CocoInstances } from '../../datasets/coco-schema';
import { Rng } from '../../datasets/prng';

export interface CaseOptions {
  images?: number;
  categories?: number;
  /** include an annotation with id 0 (pycocotools' sentinel quirk) */
  idZero?: boolean;
  /** detections per image for the "crowded" images (>100 to exercise maxDets truncation) */
  crowdedDets?: number;
}

function shuffle<T>(rng: Rng, a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export function makeCase(seed: number, o: CaseOptions = {}): { gt: CocoInstances; dets: CocoDetection[] } {
  const rng = new Rng(seed);
  const nImg = o.images ?? rng.int(1, 25);
  const nCat = o.categories ?? rng.int(1, 6);
  // gappy, unsorted ids
  const gappy = (n: number, first: number) => {
    const ids: number[] = [];
    for (let i = 0, id = first; i < n; i++, id += rng.int(1, 3)) ids.push(id);
    return shuffle(rng, ids);
  };
  const imgIds = gappy(nImg, 1 + (seed % 7));
  const catIds = gappy(nCat, 1);
  const size = () => rng.int(40, 700);
  const images = imgIds.map((id) => ({ id, file_name: `${id}.jpg`, width: size(), height: size() }));
  const gtLessCat = nCat > 1 && rng.next() < 0.5 ? catIds[0] : undefined;
  const annotations: CocoInstances['annotations'] = [];
  let annId = o.idZero ? 0 : rng.int(1, 50);
  const quantScores = rng.next() < 0.4; // many exact ties
  const pickBox = (W: number, H: number): [number, number, number, number] => {
    const r = rng.next();
    let w: number;
    let h: number;
    if (r < 0.1)
      [w, h] = [32, 32]; // area exactly 1024
    else if (r < 0.2)
      [w, h] = [96, 96]; // exactly 9216
    else if (r < 0.3)
      [w, h] = [16, 64]; // 1024 again, other shape
    else if (r < 0.5) [w, h] = [rng.uniform(2, 40), rng.uniform(2, 40)];
    else [w, h] = [rng.uniform(5, Math.min(W, 300)), rng.uniform(5, Math.min(H, 300))];
    const x = rng.uniform(0, Math.max(1, W - w));
    const y = rng.uniform(0, Math.max(1, H - h));
    return rng.next() < 0.3 ? [Math.round(x), Math.round(y), Math.round(w), Math.round(h)] : [x, y, w, h];
  };
  for (const im of images) {
    const n = rng.next() < 0.15 ? 0 : rng.int(1, 8);
    for (let q = 0; q < n; q++) {
      const cats = catIds.filter((c) => c !== gtLessCat);
      const bbox = pickBox(im.width, im.height);
      const r = rng.next();
      // area from the `area` field: usually w*h, sometimes a "segmentation" area or an exact boundary
      const area =
        r < 0.6 ? bbox[2] * bbox[3] : r < 0.75 ? bbox[2] * bbox[3] * rng.uniform(0.4, 0.95) : r < 0.85 ? 1024 : r < 0.92 ? 9216 : bbox[2] * bbox[3] * 1.1;
      annotations.push({
        id: annId,
        image_id: im.id,
        category_id: cats[rng.int(0, cats.length - 1)],
        bbox,
        area,
        iscrowd: rng.next() < 0.1 ? 1 : 0,
      });
      annId += rng.int(1, 3);
    }
  }
  shuffle(rng, annotations);
  const dets: CocoDetection[] = [];
  const score = () => (quantScores ? Math.round(rng.next() * 5) / 5 : rng.next());
  for (const im of images) {
    if (rng.next() < 0.15) continue; // image without detections
    const crowded = o.crowdedDets && rng.next() < 0.3;
    const gts = annotations.filter((a) => a.image_id === im.id);
    // detections near ground truth (hits, duplicates, wrong class)
    for (const g of gts) {
      const copies = rng.int(0, 3);
      for (let c = 0; c < copies; c++) {
        const [x, y, w, h] = g.bbox;
        const j = () => rng.uniform(-0.25, 0.25);
        const exact = rng.next() < 0.15;
        dets.push({
          image_id: im.id,
          category_id: rng.next() < 0.85 ? g.category_id : catIds[rng.int(0, nCat - 1)],
          bbox: exact ? [x, y, w, h] : [x + j() * w, y + j() * h, Math.max(0, w * (1 + j())), Math.max(0, h * (1 + j()))],
          score: score(),
        });
      }
    }
    const extra = crowded ? o.crowdedDets! : rng.int(0, 6);
    const crowdedCat = catIds[rng.int(0, nCat - 1)];
    for (let q = 0; q < extra; q++) {
      dets.push({
        image_id: im.id,
        category_id: crowded ? crowdedCat : catIds[rng.int(0, nCat - 1)],
        bbox: pickBox(im.width, im.height),
        score: score(),
      });
    }
  }
  shuffle(rng, dets);
  const categories = catIds.map((id) => ({ id, name: `c${id}`, supercategory: 'x' }));
  return { gt: { images: shuffle(rng, images), annotations, categories }, dets };
}
