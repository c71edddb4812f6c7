/**
 * activities/trainer-process.ts on worker shutdown: stopAllTrainers stops every trainer this
 * process started (MOCK trainers: test/activities/mock-trainer.ts, and a shell script that ignores
 * SIGTERM) and resolves only once their process groups are gone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { liveTrainers, runTrainerProcess, stopAllTrainers } from '../../activities/trainer-process';
import { processGone, tmpDir, writeMockTrainer } from './mock-trainer';

const work = tmpDir('smnas-tp-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function waitFor(file: string): Promise<void> {
  for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
}

test('worker shutdown: SIGTERM stops a trainer and its subprocess; one that ignores SIGTERM gets SIGKILL after the grace', async () => {
  const outA = path.join(work, 'a');
  fs.mkdirSync(outA);
  const jobA = path.join(outA, 'job.json');
  fs.writeFileSync(jobA, JSON.stringify({ outDir: outA, arch: 'x', device: 'cpu', resume: false }));
  const a = runTrainerProcess({ bin: writeMockTrainer(work, 'hang'), command: 'train', jobFile: jobA, onMessage: () => {}, killGraceMs: 300 });
  // a trainer stuck where SIGTERM does not reach it (it ignores it), with a subprocess
  const outB = path.join(work, 'b');
  fs.mkdirSync(outB);
  const stubborn = path.join(work, 'stubborn.sh');
  fs.writeFileSync(stubborn, `#!/bin/sh\n# MOCK trainer that ignores SIGTERM\ntrap '' TERM\nsleep 300 &\necho "$$ $!" > ${outB}/pids\nwait\n`, { mode: 0o755 });
  const b = runTrainerProcess({ bin: stubborn, command: 'train', jobFile: path.join(outB, 'job.json'), onMessage: () => {}, killGraceMs: 300 });
  await waitFor(path.join(outA, 'pids.json'));
  await waitFor(path.join(outB, 'pids'));
  const pidsA = JSON.parse(fs.readFileSync(path.join(outA, 'pids.json'), 'utf8')) as number[];
  const pidsB = fs.readFileSync(path.join(outB, 'pids'), 'utf8').trim().split(' ').map(Number);
  expect(liveTrainers().sort()).toEqual([pidsA[0], pidsB[0]].sort());
  const t0 = Date.now();
  const stopped = await stopAllTrainers();
  const took = Date.now() - t0;
  expect(stopped.sort()).toEqual([pidsA[0], pidsB[0]].sort());
  expect([...pidsA, ...pidsB].map(processGone)).toEqual([true, true, true, true]);
  expect(took).toBeGreaterThanOrEqual(250); // the stubborn one had its grace before SIGKILL
  expect((await a).signal).toBe('SIGTERM');
  expect((await b).signal).toBe('SIGKILL');
  expect(liveTrainers()).toEqual([]);
});
