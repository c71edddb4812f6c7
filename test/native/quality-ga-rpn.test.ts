/**
 * The quality bar (test/native/helpers/quality.ts) with a GA-RPN: resnet18 FPN, GA-RPN, 2fc, with
 * mmdetection's 500-iteration warm-up (QUALITY_GA_RPN_WARMUP says why). Measured on 2026-12-01 with
 * one thread (BENCHMARKS.md, "Test suite time"): AP50 1.000 / AP 0.845 in 832 s beside another run.
 */
import { QUALITY_GA_RPN_ARCH, QUALITY_GA_RPN_WARMUP } from '../../bench/quality-job';
import { qualityTest } from './helpers/quality';

qualityTest(QUALITY_GA_RPN_ARCH, { warmupIterations: QUALITY_GA_RPN_WARMUP });
