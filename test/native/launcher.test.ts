/**
 * The launcher (native/src/launcher.cpp): `smnas-trainer` sets the environment OpenMP and OpenBLAS
 * read when they load and execs smnas-trainer-core in its own process (libtorch loads once); a value
 * already in the environment wins; `--version` is the build id the trainer itself reports; the
 * trainer started directly says so; a launcher without its trainer fails naming the missing file.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TRAINER_BIN } from '../../common/paths';
import { buildDetectionJob } from '../../protocol/job-builder';
import { getDetectionRecipe } from '../../protocol/recipes';
import { parseTrainerLine } from '../../protocol/trainer-messages';
import { evaluatorArgv, requireTrainer, shapesDataset, tmpDir } from './helpers/trainer';

const CORE = path.join(path.dirname(TRAINER_BIN), 'smnas-trainer-core');
const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

beforeAll(() => requireTrainer());

test('--version is sha256 over the launcher and trainer files, the id the trainer reports', () => {
  const version = spawnSync(TRAINER_BIN, ['--version'], { encoding: 'utf8' });
  expect(version.status).toBe(0);
  const id = `sha256:${sha(sha(fs.readFileSync(TRAINER_BIN)) + sha(fs.readFileSync(CORE)))}`;
  expect(version.stdout.trim()).toBe(id);
  const env = spawnSync(TRAINER_BIN, ['env'], { encoding: 'utf8' });
  expect(env.status).toBe(0);
  const result = parseTrainerLine(env.stdout.trim().split('\n').pop()!);
  expect(result.ok && result.message.type === 'result' && (result.message as { environment?: { trainerVersion: string } }).environment?.trainerVersion).toBe(id);
  expect(env.stderr).not.toContain('without the smnas-trainer launcher');
});

test('the trainer runs in the launcher process with the math libraries environment; explicit values win', async () => {
  const recipe = getDetectionRecipe('toy-stage-two');
  recipe.maxIterations = 500; // killed once started
  recipe.batchSize = 2;
  const job = buildDetectionJob({
    command: 'train', arch: '64x64/basicblock_8_1-21-21-21/fpn(P1-P4,c=16)/rpn/2fc', recipe, numClasses: 4,
    dataRoot: shapesDataset(48, 16), outDir: tmpDir('launcher'), seed: 7, threads: 1, evaluator: evaluatorArgv(),
  });
  const jobFile = path.join(job.outDir, 'job.json');
  fs.writeFileSync(jobFile, JSON.stringify(job));
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: '3' };
  for (const k of ['GOMP_SPINCOUNT', 'OMP_WAIT_POLICY', 'OPENBLAS_CORETYPE', 'SMNAS_LAUNCHER']) delete env[k];
  const child = spawn(TRAINER_BIN, ['train', '--job', jobFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = await new Promise<{ exe: string; environ: Record<string, string> }>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      if (!buf.includes('"type":"started"')) return;
      const environ = Object.fromEntries(
        fs.readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      resolve({ exe: fs.readlinkSync(`/proc/${child.pid}/exe`), environ });
    });
    child.on('exit', (code) => reject(new Error(`trainer exited (${code}) before it started`)));
  });
  child.kill('SIGKILL');
  expect(seen.exe).toBe(fs.realpathSync(CORE));
  expect(seen.environ.SMNAS_LAUNCHER).toBe(fs.realpathSync(TRAINER_BIN));
  expect(seen.environ.OPENBLAS_NUM_THREADS).toBe('3'); // the caller's value
  // a short spin, or sleeping waits when the load average is at least twice the cores
  expect(seen.environ.GOMP_SPINCOUNT === '10000' || seen.environ.OMP_WAIT_POLICY === 'PASSIVE').toBe(true);
  const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)![1].split(/\s+/);
  const has = (...f: string[]) => f.every((x) => flags.includes(x));
  const coreType = has('avx512f', 'avx512bw', 'avx512dq', 'avx512vl') ? 'SkylakeX' : has('avx2', 'fma') ? 'Haswell' : undefined;
  expect(seen.environ.OPENBLAS_CORETYPE).toBe(coreType);
}, 120_000);

test('started directly, the trainer warns that the launcher did not set its environment', () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.SMNAS_LAUNCHER;
  const r = spawnSync(CORE, ['env'], { encoding: 'utf8', env });
  expect(r.status).toBe(0);
  expect(r.stderr).toContain('started without the smnas-trainer launcher');
});

test('a launcher without its trainer fails naming the missing file', () => {
  const dir = tmpDir('launcher-alone');
  fs.copyFileSync(TRAINER_BIN, path.join(dir, 'smnas-trainer'));
  fs.chmodSync(path.join(dir, 'smnas-trainer'), 0o755);
  const r = spawnSync(path.join(dir, 'smnas-trainer'), ['train', '--job', 'job.json'], { encoding: 'utf8' });
  expect(r.status).toBe(1);
  const line = parseTrainerLine(r.stdout.trim());
  expect(line.ok && line.message).toMatchObject({ type: 'error', kind: 'internal' });
  expect(r.stdout).toContain(path.join(dir, 'smnas-trainer-core'));
});
