/**
 * zod schemas of the canonical data set form: COCO "instances" JSON (images, annotations,
 * categories). Types are derived from the schemas. Extra fields (segmentation, licenses, info,
 * flickr urls ...) are allowed and ignored.
 */
import { z } from 'zod';

/**
 * Largest image side a data set may declare. Decoding is width x height x 3 bytes per image per
 * loader thread; a header or annotation claiming more is hostile or broken, and is refused before
 * anything is decoded.
 */
export const MAX_IMAGE_SIDE = 16384;

/**
 * Why a `file_name` may not be used as a path below its split's images folder, or undefined when
 * it may: it must be relative, without `..` segments, backslashes or NUL bytes. (Symlinks that
 * lead out of the folder are caught where the data set is admitted: datasets/confine.ts.)
 */
export function unsafeFileName(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/')) return 'is an absolute path';
  if (name.split('/').includes('..')) return "has a '..' segment";
  return undefined;
}

export const CocoImageSchema = z.looseObject({
  id: z.number().int(),
  file_name: z.string().superRefine((name, ctx) => {
    const why = unsafeFileName(name);
    if (why) ctx.addIssue({ code: 'custom', message: `'${name}' ${why} (images are read only from inside the split's images folder)` });
  }),
  width: z.number().int().positive().max(MAX_IMAGE_SIDE),
  height: z.number().int().positive().max(MAX_IMAGE_SIDE),
});
export type CocoImage = z.infer<typeof CocoImageSchema>;

export const CocoAnnotationSchema = z.looseObject({
  id: z.number().int(),
  image_id: z.number().int(),
  category_id: z.number().int(),
  /** [x, y, width, height] in pixels, x/y of the top-left corner */
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]),
  /** segmentation area on real COCO; bbox w*h for converted and generated data (used for the S/M/L ranges) */
  area: z.number().nonnegative(),
  /** 1 = crowd region / ignored (VOC `difficult` is mapped here): never a false negative, never a true positive */
  iscrowd: z.union([z.literal(0), z.literal(1)]).default(0),
});
export type CocoAnnotation = z.infer<typeof CocoAnnotationSchema>;

export const CocoCategorySchema = z.looseObject({
  id: z.number().int(),
  name: z.string().min(1),
  supercategory: z.string().optional(),
});
export type CocoCategory = z.infer<typeof CocoCategorySchema>;

export const CocoInstancesSchema = z.looseObject({
  images: z.array(CocoImageSchema),
  annotations: z.array(CocoAnnotationSchema),
  categories: z.array(CocoCategorySchema),
});
export type CocoInstances = z.infer<typeof CocoInstancesSchema>;

/** One detection of a COCO results file (`loadRes` input). */
export const CocoDetectionSchema = z.looseObject({
  image_id: z.number().int(),
  category_id: z.number().int(),
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]),
  score: z.number(),
});
export type CocoDetection = z.infer<typeof CocoDetectionSchema>;

/** The canonical layout of a data set directory. */
export function instancesPath(dir: string, split: string): string {
  return `${dir}/annotations/instances_${split}.json`;
}
export function imagesDir(dir: string, split: string): string {
  return `${dir}/${split}`;
}
