/**
 * Wall time of the paper-space checks of test/native/paper-space-*.test.ts, one at a time: the first
 * N architectures of each stage's fixed sample, each built, trained one step, checkpointed and
 * evaluated by the trainer exactly as the tests do (checkArchitecture). Prints a line per check and
 * the total; BENCHMARKS.md, "Suite time".
 *   npm run build && node dist/bench/paper-space-timing.js [N=6]
 */
import { checkArchitecture, stageOneSample, stageTwoSample } from '../test/native/helpers/paper-space';

async function main() {
  const n = Number(process.argv[2] ?? 6);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error(`N must be an integer in 1..100, got '${process.argv[2]}'`);
  const cases = [
    ...stageOneSample(100)
      .slice(0, n)
      .map((arch) => ({ arch, recipe: 'paper-stage-one' as const })),
    ...stageTwoSample(10, 10)
      .slice(0, n)
      .map((arch) => ({ arch, recipe: 'paper-stage-two' as const })),
  ];
  let total = 0;
  for (const c of cases) {
    const t0 = process.hrtime.bigint();
    const r = await checkArchitecture(c);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    total += s;
    console.log(`${s.toFixed(1).padStart(6)} s  exit ${r.code}  ${c.recipe}  ${c.arch}`);
    if (r.code !== 0) throw new Error(`${c.arch}: trainer exit ${r.code}\n${r.stderr}`);
  }
  console.log(`${cases.length} checks: ${total.toFixed(1)} s`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
