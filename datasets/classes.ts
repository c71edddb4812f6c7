/** Fixed class lists of the public data sets (order = category id - 1 in the canonical form). */

/** Pascal VOC's 20 classes in the devkit's order. */
export const VOC_CLASSES = [
  'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
  'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor',
] as const;

/** BDD100K's 10 detection classes (det_20 names). */
export const BDD_CLASSES = [
  'pedestrian', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle', 'bicycle', 'traffic light', 'traffic sign',
] as const;

/** Names used by the 2018 release (bdd100k_labels_images_*.json) for the same classes. */
export const BDD_ALIASES: Record<string, (typeof BDD_CLASSES)[number]> = {
  person: 'pedestrian',
  bike: 'bicycle',
  motor: 'motorcycle',
};
