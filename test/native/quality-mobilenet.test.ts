/**
 * The quality bar (test/native/helpers/quality.ts) with a MobileNetV2 backbone: mobilenet_v2 FPN,
 * RPN, 2fc. Measured with bench/trainer-quality.sh on 2026-11-30 (BENCHMARKS.md): AP50 1.00 / AP 0.84
 * in 193 s.
 */
import { QUALITY_MOBILENET_ARCH } from '../../bench/quality-job';
import { qualityTest } from './helpers/quality';

qualityTest(QUALITY_MOBILENET_ARCH);
