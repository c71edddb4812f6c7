/** `smnas arch`: architecture notation, cost model, layouts and search-space sampling (search/). */
import { bool, int, parseFlags, printJson, requireStr, str, type Command, type ParsedFlags } from '../../common/cli';
import { UserError } from '../../common/errors';
import { log } from '../../common/log';
import { ProgressBar } from '../../common/progress';
import { DEFAULT_ROIS, backboneCost, detectorCost } from '../../search/cost';
import { resolveLayout } from '../../search/layout-resolve';
import { ArchError, formatArch, formatBackbone, formatHead, formatNeck, parseArch, parseBackbone } from '../../search/notation';
import { Rng } from '../../search/rng';
import { PROFILES, type Profile, type SearchSpace, getSearchSpaces, sampleArch, spaceSize, stageTwoSpaceFrom } from '../../search/space';

const HELP = `usage:
  smnas arch check '<notation>' [--json]
      validate a notation and print its canonical form
  smnas arch cost --backbone <named|encoded> --input <W>x<H> [--classifier <N>] [--json]
      backbone alone (no pooling/FC); with --classifier N adds global pooling + an N-way FC
  smnas arch cost --arch '<notation>' [--rois <N>] [--classes <N>] [--fc-width <W>] [--json]
      whole detector with the per-module breakdown (backbone, neck, rpn, head);
      the RoI head is costed for --rois RoIs (default ${DEFAULT_ROIS}); --classes default 80, --fc-width default 1024
  smnas arch layout '<notation>' --classes <N> [--fc-width <W>]
      print the resolved DetectorLayout JSON (what the native trainer builds)
  smnas arch sample --stage one|two [--from '<notation>'] [--profile paper|toy] --seed <S> --count <K>
                    [--min-blocks <n>] [--max-blocks <n>] [--json]
      K distinct architectures drawn uniformly from the space (stage two: the space around --from)
  smnas arch space --stage one|two [--from '<notation>'] [--profile paper|toy] [--min-blocks <n>] [--max-blocks <n>] [--json]
      the space's exact size and its choices

FLOPs are multiply-accumulates (torchvision's convention); params count norm affine parameters;
mac is the memory access cost (inputs + outputs + weights of every conv/FC layer).
Notation: <W>x<H>/<backbone>/<neck>/<rpn>/<head>, e.g. 800x600/resnet50/fpn(P1-P5,c=256)/rpn/cascade(n=3).
See docs/search.md.`;

/** ArchError -> one-line UserError naming where the notation came from */
function notation<T>(source: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ArchError) throw new UserError(`${source}: ${e.message}`);
    throw e;
  }
}

function positiveInt(cmd: string, flags: ParsedFlags, name: string, dflt?: number): number | undefined {
  const v = int(cmd, flags, name, dflt);
  if (v !== undefined && v <= 0) throw new UserError(`${cmd}: --${name} must be a positive integer, got ${v}`);
  return v;
}

function parseSize(cmd: string, s: string): { width: number; height: number } {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(s);
  if (!m || Number(m[1]) === 0 || Number(m[2]) === 0) throw new UserError(`${cmd}: --input must be <W>x<H> with positive integers, e.g. 224x224; got '${s}'`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

const fmtG = (x: number) => (x / 1e9).toFixed(3);
const fmtM = (x: number) => (x / 1e6).toFixed(3);

function costCmd(argv: string[]): number {
  const cmd = 'smnas arch cost';
  const flags = parseFlags(
    cmd,
    argv,
    {
      backbone: { type: 'string' },
      input: { type: 'string' },
      classifier: { type: 'string' },
      arch: { type: 'string' },
      rois: { type: 'string' },
      classes: { type: 'string' },
      'fc-width': { type: 'string' },
      json: { type: 'boolean' },
    },
    false,
  );
  const json = bool(flags, 'json');
  const archStr = str(flags, 'arch');
  if (archStr !== undefined) {
    if (str(flags, 'backbone') !== undefined) throw new UserError(`${cmd}: give either --arch or --backbone, not both`);
    const rois = int(cmd, flags, 'rois', DEFAULT_ROIS)!;
    if (rois < 0) throw new UserError(`${cmd}: --rois must be a non-negative integer, got ${rois}`);
    const numClasses = positiveInt(cmd, flags, 'classes', 80)!;
    const fcWidth = positiveInt(cmd, flags, 'fc-width', 1024)!;
    const c = notation('--arch', () => detectorCost(archStr, { numClasses, fcWidth, rois }));
    if (json) printJson({ ...c, numClasses, fcWidth });
    else {
      const rows = [
        ['module', 'GFLOPs', 'Mparams', 'MAC (M)'],
        ...Object.entries(c.modules).map(([k, v]) => [k, fmtG(v.flops), fmtM(v.params), fmtM(v.mac)]),
        ['total', fmtG(c.flops), fmtM(c.params), fmtM(c.mac)],
      ];
      process.stdout.write(
        `${c.arch}  (input ${c.input.width}x${c.input.height} after padding to multiples of 32, ${numClasses} classes, fc ${fcWidth}, ${rois} RoIs)\n${table(rows)}`,
      );
    }
    return 0;
  }
  const bbStr = requireStr(cmd, flags, 'backbone');
  const input = parseSize(cmd, requireStr(cmd, flags, 'input'));
  const classifier = positiveInt(cmd, flags, 'classifier');
  const backbone = notation('--backbone', () => parseBackbone(bbStr));
  const c = backboneCost(backbone, input, { classifier });
  const name = formatBackbone(backbone);
  if (json) printJson({ backbone: name, input, ...(classifier !== undefined ? { classifier } : {}), flops: c.flops, params: c.params, mac: c.mac });
  else
    process.stdout.write(
      `${name} at ${input.width}x${input.height}${classifier !== undefined ? ` with a ${classifier}-class classifier` : ' (backbone alone)'}: ${fmtG(c.flops)} GFLOPs (MACs), ${fmtM(c.params)} M params, ${fmtM(c.mac)} M MAC\n`,
    );
  return 0;
}

function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ')).join('\n') + '\n';
}

function checkCmd(argv: string[]): number {
  const cmd = 'smnas arch check';
  const flags = parseFlags(cmd, argv, { json: { type: 'boolean' } });
  const s = flags.positionals[0];
  if (s === undefined) throw new UserError(`${cmd}: give the notation to check, e.g. '512x512/resnet18/fpn(P2-P5,c=128)/rpn/2fc'`);
  const a = notation(`'${s}'`, () => parseArch(s));
  if (bool(flags, 'json')) printJson({ ok: true, canonical: formatArch(a), arch: a });
  else process.stdout.write(formatArch(a) + '\n');
  return 0;
}

function layoutCmd(argv: string[]): number {
  const cmd = 'smnas arch layout';
  const flags = parseFlags(cmd, argv, { classes: { type: 'string' }, 'fc-width': { type: 'string' }, json: { type: 'boolean' } });
  const s = flags.positionals[0];
  if (s === undefined) throw new UserError(`${cmd}: give the notation, e.g. smnas arch layout '512x512/resnet18/none/rpn/2fc' --classes 80`);
  const numClasses = positiveInt(cmd, flags, 'classes');
  if (numClasses === undefined) throw new UserError(`${cmd}: --classes is required (object classes without background)`);
  const fcWidth = positiveInt(cmd, flags, 'fc-width', 1024)!;
  const layout = notation(`'${s}'`, () => resolveLayout(s, { numClasses, fcWidth }));
  process.stdout.write(JSON.stringify(layout, null, 2) + '\n');
  return 0;
}

/** --stage/--profile/--from/--min-blocks/--max-blocks -> a search space */
function spaceFromFlags(cmd: string, flags: ParsedFlags): { space: SearchSpace; profile: Profile; stage: 'one' | 'two' } {
  const stage = requireStr(cmd, flags, 'stage');
  if (stage !== 'one' && stage !== 'two') throw new UserError(`${cmd}: --stage must be 'one' or 'two', got '${stage}'`);
  const profile = (str(flags, 'profile') ?? 'paper') as Profile;
  if (!PROFILES.includes(profile)) throw new UserError(`${cmd}: --profile must be one of ${PROFILES.join(', ')}, got '${profile}'`);
  let space: SearchSpace;
  if (stage === 'one') {
    if (str(flags, 'from') !== undefined) throw new UserError(`${cmd}: --from is only for --stage two`);
    space = getSearchSpaces(profile).stageOne;
  } else {
    const from = str(flags, 'from');
    if (from === undefined) throw new UserError(`${cmd}: --stage two needs --from '<stage-one candidate notation>'`);
    const candidate = notation('--from', () => parseArch(from));
    const minBlocks = positiveInt(cmd, flags, 'min-blocks');
    const maxBlocks = positiveInt(cmd, flags, 'max-blocks');
    try {
      space = stageTwoSpaceFrom(candidate, { profile, minBlocks, maxBlocks });
    } catch (e) {
      throw new UserError(`${cmd}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  return { space, profile, stage };
}

function spaceCmd(argv: string[]): number {
  const cmd = 'smnas arch space';
  const flags = parseFlags(
    cmd,
    argv,
    {
      stage: { type: 'string' },
      from: { type: 'string' },
      profile: { type: 'string' },
      'min-blocks': { type: 'string' },
      'max-blocks': { type: 'string' },
      json: { type: 'boolean' },
    },
    false,
  );
  const { space } = spaceFromFlags(cmd, flags);
  const size = spaceSize(space);
  if (bool(flags, 'json')) {
    printJson({ size, space });
    return 0;
  }
  const lines =
    space.stage === 'one'
      ? [
          `stage one (${space.profile}): ${size} architectures = ${space.inputs.length} inputs x ${space.backbones.length} backbones x ${space.necks.length} necks x ${space.rpnHeads.length} rpn/head pairs`,
          `  inputs:    ${space.inputs.map((i) => `${i.width}x${i.height}`).join(', ')}`,
          `  backbones: ${space.backbones.map(formatBackbone).join(', ')}`,
          `  necks:     ${space.necks.map(formatNeck).join(', ')}`,
          `  rpn/head:  ${space.rpnHeads.map((r) => `${r.rpn}/${formatHead(r.head)}`).join(', ')}`,
        ]
      : [
          `stage two (${space.profile}) around ${formatArch(space.template)}: ${size} architectures`,
          `  block ${space.block}, bases ${space.bases.join('/')}, ${space.minBlocks}..${space.maxBlocks} blocks, exactly ${space.doublings} doublings`,
          `  FPN channels: ${space.fpnChannels.length ? space.fpnChannels.join('/') : '(no FPN: kept)'}`,
        ];
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

function sampleCmd(argv: string[]): number {
  const cmd = 'smnas arch sample';
  const flags = parseFlags(
    cmd,
    argv,
    {
      stage: { type: 'string' },
      from: { type: 'string' },
      profile: { type: 'string' },
      seed: { type: 'string' },
      count: { type: 'string' },
      'min-blocks': { type: 'string' },
      'max-blocks': { type: 'string' },
      json: { type: 'boolean' },
    },
    false,
  );
  if (str(flags, 'seed') === undefined) throw new UserError(`${cmd}: --seed is required (runs are reproducible from it)`);
  const seed = int(cmd, flags, 'seed')!;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UserError(`${cmd}: --seed must be a non-negative integer, got ${seed}`);
  const count = positiveInt(cmd, flags, 'count');
  if (count === undefined) throw new UserError(`${cmd}: --count is required`);
  const { space, profile, stage } = spaceFromFlags(cmd, flags);
  const size = spaceSize(space);
  const want = Math.min(count, size);
  if (want < count) log.warn({ count, spaceSize: size }, 'the space has fewer architectures than --count; printing all of them');
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const out: string[] = [];
  const bar = want > 20000 ? new ProgressBar('sampling', want) : undefined;
  while (out.length < want) {
    const s = formatArch(sampleArch(space, rng));
    if (seen.has(s)) continue;
    seen.add(s);
    out.push(s);
    bar?.update(out.length);
  }
  bar?.done();
  if (bool(flags, 'json')) printJson({ stage, profile, seed, spaceSize: size, archs: out });
  else process.stdout.write(out.join('\n') + '\n');
  return 0;
}

export const command: Command = {
  summary: 'architecture notation: check, cost (FLOPs/params/MAC), layout, search spaces (space, sample)',
  help: HELP,
  async main(argv) {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'cost':
        return costCmd(rest);
      case 'check':
        return checkCmd(rest);
      case 'layout':
        return layoutCmd(rest);
      case 'sample':
        return sampleCmd(rest);
      case 'space':
        return spaceCmd(rest);
      default:
        throw new UserError(
          `smnas arch: ${sub === undefined ? 'missing sub-command' : `unknown sub-command '${sub}'`}; one of check, cost, layout, sample, space (see 'smnas arch --help')`,
        );
    }
  },
};
