/** Fixed class lists of the public data sets (order = category id - 1 in the canonical form). */

/** Pascal VOC's 20 classes in the devkit's order. */
export const VOC_CLASSES = [
  'aeroplane',
  'bicycle',
  'bird',
  'boat',
  'bottle',
  'bus',
  'car',
  'cat',
  'chair',
  'cow',
  'diningtable',
  'dog',
  'horse',
  'motorbike',
  'person',
  'pottedplant',
  'sheep',
  'sofa',
  'train',
  'tvmonitor',
] as const;

/** BDD100K's 10 detection classes (det_20 names). */
export const BDD_CLASSES = ['pedestrian', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle', 'traffic light', 'traffic sign'] as const;

/**
 * Other names of the same classes: the 2018 release (bdd100k_labels_images_*.json) and the
 * BDD100K toolkit's detection config (bdd100k/configs/det.toml `name_mapping`).
 */
export const BDD_ALIASES: Record<string, (typeof BDD_CLASSES)[number]> = {
  person: 'pedestrian',
  bike: 'bicycle',
  motor: 'motorcycle',
  caravan: 'car',
  van: 'car',
};

/**
 * Boxed categories BDD's detection evaluation treats as ignore regions of a class (det.toml
 * `ignore_mapping`): a detection there is neither a true nor a false positive. Written as
 * iscrowd = 1 annotations, which the COCO evaluation treats the same way.
 */
export const BDD_IGNORED: Record<string, (typeof BDD_CLASSES)[number]> = {
  'other person': 'pedestrian',
  'other vehicle': 'car',
  trailer: 'truck',
};
