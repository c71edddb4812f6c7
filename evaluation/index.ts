/** The evaluation library's public surface (one implementation, used by the CLI, the trainer's eval and the campaign). */
export {
  evaluateCocoColumns,
  IOU_THRS,
  REC_THRS,
  MAX_DETS,
  AREA_RANGES,
  type CocoEvalResult,
  type PerClassResult,
  type GtColumns,
  type DetColumns,
} from './coco-eval';
export { evaluateCoco, evaluateCocoFiles, evaluateVocFiles, indexGroundTruth, loadDetections, type CocoEvalReport, type VocEvalReport } from './coco-eval-io';
export { evaluateVocColumns, vocAp, type VocEvalResult } from './voc-eval';
