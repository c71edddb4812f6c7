/**
 * The issue's quality bar for the trainer (test/native/helpers/quality.ts): resnet18 FPN, RPN, 2fc.
 * Measured with bench/trainer-quality.sh on session 3's VM (BENCHMARKS.md): AP50 1.00 / AP 0.83 in
 * 315 s with 2 threads.
 */
import { QUALITY_ARCH } from '../../bench/quality-job';
import { qualityTest } from './helpers/quality';

qualityTest(QUALITY_ARCH);
