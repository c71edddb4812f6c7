/** The text views of `search status|watch`: the header counts evaluations as the results log does. */
import { evaluationCounts, renderProgress } from '../../cli/campaign-view';
import type { Progress, StageProgress } from '../../workflows/api';

const stage = (status: StageProgress['status'], evaluated: number, planned = evaluated): StageProgress => ({
  status,
  evaluated,
  planned,
  running: 0,
  failed: 0,
  reused: 0,
  gpuSeconds: 0,
  runningArchs: [],
});

test('the header says evaluations (as results.jsonl counts them) and names the selected and pretrained apart', () => {
  // the toy campaign of 2026-11-30: progress.evaluated was 18, its results log 15 lines
  const p: Progress = {
    campaignId: 'toy',
    profile: 'toy',
    phase: 'done',
    paused: false,
    stages: {
      structural: stage('done', 6),
      selection: stage('done', 2),
      modular: stage('done', 6),
      pretrain: stage('done', 1),
      final: stage('done', 1),
      transfer: stage('done', 2),
    },
    bestMapByCostBand: [],
    bestMap: 0.1616,
    evaluated: 18,
    startedAt: 1000,
    updatedAt: 61000,
    artifactDir: null,
    error: null,
  };
  expect(evaluationCounts(p)).toEqual({ evaluations: 15, selected: 2, pretrained: 1 });
  expect(renderProgress(p)[0]).toBe('campaign toy (toy)  phase: done  evaluations: 15 (+ 2 selected, 1 pretrained)  best mAP%: 16.16  elapsed: 1m00s');
});
