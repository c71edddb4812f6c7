/** The datasets library's public surface. */
export { checkDataset, summarizeDataset, discoverSplits, type CheckReport, type DatasetSummary, type SplitInfo } from './check';
export { loadCocoInstances, DatasetError, STREAM_THRESHOLD } from './coco';
export * from './coco-schema';
export { convertToCoco, type ConvertToCocoOptions } from './convert';
export { convertVoc, parseVocXml, type ConvertResult } from './voc';
export { convertBdd } from './bdd';
export { listClassFolders, type ClassFolderSplit } from './imagenet';
export { readImageHeader, readImageHeaderAsync } from './image-header';
export { writeSynthDetection, type SynthDetectionOptions, type SynthFormat } from './synth/detection';
export { writeSynthClassification, type SynthClassificationOptions } from './synth/classification';
export { VOC_CLASSES, BDD_CLASSES } from './classes';
export { formatProblem, type Problem } from './problems';
