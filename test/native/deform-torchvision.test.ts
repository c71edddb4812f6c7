/**
 * The deformable convolution against torchvision.ops.deform_conv2d (Debian's python3-torchvision
 * 0.14, installed by scripts/setup.sh): native/tools/deform_conv_torchvision.py writes five cases
 * (fp64 and fp32, strides, dilation, groups, deformable groups 1-4, GA-RPN's 64-channel 3x3 with 4
 * groups) with torchvision's outputs and gradients; the CTest case DeformConv.MatchesTorchvisionDump
 * compares the trainer's op with them (values and the input / offset / weight / bias gradients).
 * CTest alone skips that case (it needs the file); this test runs it, so it is part of the suite.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../common/paths';
import { tmpDir } from './helpers/trainer';

const UNIT_TESTS = path.join(PROJECT_ROOT, 'native', 'build', 'smnas-unit-tests');

it('deformConv2d equals torchvision.ops.deform_conv2d (values and gradients)', () => {
  expect({ unitTests: fs.existsSync(UNIT_TESTS) }).toEqual({ unitTests: true });
  const dump = path.join(tmpDir('deform-tv'), 'cases.pt');
  const py = spawnSync('/usr/bin/python3', [path.join(PROJECT_ROOT, 'native', 'tools', 'deform_conv_torchvision.py'), dump], { encoding: 'utf8' });
  expect({ status: py.status, stderr: py.status === 0 ? '' : py.stderr }).toEqual({ status: 0, stderr: '' });
  const run = spawnSync(UNIT_TESTS, ['--gtest_filter=DeformConv.MatchesTorchvisionDump'], {
    encoding: 'utf8',
    env: { ...process.env, SMNAS_DEFORM_TORCHVISION: dump },
  });
  expect({ status: run.status, out: run.status === 0 ? '' : run.stdout.slice(-2000) }).toEqual({ status: 0, out: '' });
  expect(run.stdout).toContain('[  PASSED  ] 1 test');
  expect(run.stdout).not.toContain('SKIPPED');
}, 120_000);
