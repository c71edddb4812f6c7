/** The arch and pareto commands, run in-process (their main() with stdout captured). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { command as arch } from '../../cli/commands/arch';
import { command as pareto } from '../../cli/commands/pareto';
import { UserError } from '../../common/errors';

async function run(cmd: typeof arch, argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    const code = await cmd.main(argv);
    return { code, out };
  } finally {
    spy.mockRestore();
  }
}

async function userError(cmd: typeof arch, argv: string[]): Promise<string> {
  try {
    await run(cmd, argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg.includes('\n')).toBe(false);
    return msg;
  }
  throw new Error(`expected a UserError from ${argv.join(' ')}`);
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-search-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('smnas arch', () => {
  test('cost --backbone --json: top-level flops and params', async () => {
    const { code, out } = await run(arch, ['cost', '--backbone', 'resnet50', '--input', '224x224', '--classifier', '1000', '--json']);
    expect(code).toBe(0);
    const j = JSON.parse(out);
    expect(j.flops).toBe(4089184256);
    expect(j.params).toBe(25557032);
    expect(typeof j.mac).toBe('number');
  });

  test('cost --arch --json: per-module breakdown at the stated RoIs', async () => {
    const { out } = await run(arch, ['cost', '--arch', '512x512/resnet18/fpn(P2-P5,c=128)/rpn/2fc', '--rois', '100', '--json']);
    const j = JSON.parse(out);
    expect(j.rois).toBe(100);
    expect(Object.keys(j.modules)).toEqual(['backbone', 'neck', 'rpn', 'head']);
    expect(j.flops).toBe(j.modules.backbone.flops + j.modules.neck.flops + j.modules.rpn.flops + j.modules.head.flops);
  });

  test('sample is reproducible and check prints the canonical form', async () => {
    const a = await run(arch, ['sample', '--stage', 'one', '--profile', 'toy', '--seed', '3', '--count', '5', '--json']);
    const b = await run(arch, ['sample', '--stage', 'one', '--profile', 'toy', '--seed', '3', '--count', '5', '--json']);
    expect(a.out).toBe(b.out);
    expect(JSON.parse(a.out).archs.length).toBe(5);
    const two = JSON.parse(
      (await run(arch, ['sample', '--stage', 'two', '--from', JSON.parse(a.out).archs[0], '--profile', 'toy', '--seed', '1', '--count', '4', '--json'])).out,
    );
    expect(two.archs.length).toBe(4);
    expect((await run(arch, ['check', '512x512/basicblock_64_11-21-21-21/none/rpn/2fc'])).out).toBe('512x512/resnet18/none/rpn/2fc\n');
    const layout = JSON.parse((await run(arch, ['layout', '128x128/resnet18/fpn(P1-P4,c=64)/rpn/2fc', '--classes', '3'])).out);
    expect(layout.head).toEqual({ kind: '2fc', roiSize: 7, fcWidth: 1024, numClasses: 3 });
  });

  test('space prints the exact size and the choices', async () => {
    const one = JSON.parse((await run(arch, ['space', '--stage', 'one', '--profile', 'paper', '--json'])).out);
    expect(one.size).toBe(4788);
    expect(one.space.stage).toBe('one');
    const human = (await run(arch, ['space', '--stage', 'two', '--from', '512x512/resnet18/none/rpn/2fc'])).out;
    expect(human).toMatch(/^stage two \(paper\) around 512x512\/resnet18\/none\/rpn\/2fc: \d+ architectures/);
    expect(human).toMatch(/block basicblock, bases 48\/56\/64\/72, 4\.\.12 blocks, exactly 3 doublings/);
    expect(await userError(arch, ['space', '--stage', 'two', '--from', '512x512/resnet18/none/rpn/2fc', '--min-blocks', '2'])).toMatch(
      /block range 2\.\.12 is empty or below 4/,
    );
  });

  test('bad input: one line naming the flag and the part', async () => {
    expect(await userError(arch, ['cost', '--backbone', 'resnet5', '--input', '224x224'])).toMatch(/^--backbone: backbone 'resnet5': unknown backbone/);
    expect(await userError(arch, ['cost', '--arch', '512x512/resnet18/none/none/2fc'])).toMatch(/^--arch: rpn 'none' with head '2fc'/);
    expect(await userError(arch, ['cost', '--backbone', 'resnet18', '--input', '224'])).toMatch(/--input must be <W>x<H>/);
    expect(await userError(arch, ['sample', '--stage', 'three', '--seed', '1', '--count', '1'])).toMatch(/--stage must be 'one' or 'two'/);
    expect(await userError(arch, ['sample', '--stage', 'one', '--count', '1'])).toMatch(/--seed is required/);
    expect(await userError(arch, ['check', '512x512/resnet18/fpn(P2-P7,c=1)/rpn/2fc'])).toMatch(/neck fpn\(P2-P7\): the last level/);
    expect(await userError(arch, ['frobnicate'])).toMatch(/unknown sub-command 'frobnicate'/);
  });
});

describe('smnas pareto', () => {
  const write = (name: string, text: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text);
    return p;
  };

  test('JSON lines and JSON arrays, custom keys, fronts by rank', async () => {
    const jl = write(
      'r.jsonl',
      '{"id":"a","cost":1,"map":0.3}\n{"id":"b","cost":2,"map":0.5}\n\n{"id":"c","cost":2,"map":0.4}\n{"id":"d","cost":1,"map":0.3}\n',
    );
    expect(JSON.parse((await run(pareto, [jl, '--json'])).out)).toEqual({ fronts: [['a', 'd', 'b'], ['c']] });
    const arr = write('r.json', '[{"id":1,"lat":3,"ap":0.2},{"id":2,"lat":1,"ap":0.1},{"id":3,"lat":4,"ap":0.1}]');
    expect(JSON.parse((await run(pareto, [arr, '--cost-key', 'lat', '--score-key', 'ap', '--json'])).out)).toEqual({ fronts: [[2, 1], [3]] });
    const human = (await run(pareto, [jl])).out;
    expect(human).toMatch(/4 records, 2 fronts; Pareto front \(3\)/);
    expect(human).toMatch(/\bb\s+2\s+0\.5/);
  });

  test('bad input names file, line and field', async () => {
    expect(await userError(pareto, [write('nan.jsonl', '{"id":"a","cost":1,"map":0.3}\n{"id":"b","cost":NaN,"map":0.5}\n')])).toMatch(
      /nan\.jsonl:2: bad JSON line/,
    );
    expect(await userError(pareto, [write('str.jsonl', '{"id":"a","cost":"1","map":0.3}\n')])).toMatch(/str\.jsonl:1: cost: must be a finite number, got "1"/);
    expect(await userError(pareto, [write('miss.jsonl', '{"id":"a","cost":1}\n')])).toMatch(/miss\.jsonl:1: map: missing/);
    expect(await userError(pareto, [write('arr.json', '[{"id":"a","cost":1,"map":1},{"cost":1,"map":1}]')])).toMatch(/arr\.json: record 2: id: missing/);
    expect(await userError(pareto, [path.join(dir, 'absent.json')])).toMatch(/absent\.json: cannot read: ENOENT/);
    expect(await userError(pareto, [write('nobj.jsonl', '[1]\n')])).toMatch(/record 1: expected a JSON object/);
  });
});
