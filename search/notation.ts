/**
 * Architecture notation (SPEC 2): the one identity of a candidate.
 *
 *     <W>x<H>/<backbone>/<neck>/<rpn>/<head>
 *     e.g. 800x600/basicblock_48_12-11111-211-1112/fpn(P1-P5,c=128)/rpn/cascade(n=3)
 *
 * `ArchSchema` is the JSON form; `parseArch` / `formatArch` convert between the two.
 * `formatArch` is canonical: an encoded backbone that is exactly a named ResNet / ResNeXt
 * (e.g. `basicblock_64_11-21-21-21`) is written with its name (`resnet18`), so one architecture
 * has one string, and `parseArch` returns that canonical JSON form.
 *
 * Used layers: a detector builds only the backbone stages its neck reads (`usedBackboneStages`:
 * stages 1..3 without a neck, 1..min(b, 4) for fpn(P<a>-P<b>)). Two encodings that differ only in
 * stages the detector never builds are the same network. `markUnusedStages` gives the form that
 * says so: every stage the detector does not build is written `x`, e.g.
 * `basicblock_48_12-11111-211-x/fpn(P1-P3,c=128)/...`. `x` is legal only on a stage the neck does
 * not use. Named backbones stay named: their name also stands for their ImageNet weights, which
 * differ between e.g. resnet50 and resnet101 even where the built layers have the same shapes.
 *
 * Pure: zod only, no Node APIs (Temporal workflow code imports this).
 */
import { z } from 'zod';

export const NAMED_BACKBONES = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnext50_32x4d', 'resnext101_32x4d', 'mobilenet_v2'] as const;
export type NamedBackbone = (typeof NAMED_BACKBONES)[number];

export const BLOCK_KINDS = ['basicblock', 'bottleneck', 'Xbottleneck', 'mbblock'] as const;
export type BlockKind = (typeof BLOCK_KINDS)[number];

export const RPN_KINDS = ['none', 'rpn', 'ga-rpn'] as const;
export type RpnKind = (typeof RPN_KINDS)[number];

/** The paper's input sizes (width x height): legal although 600, 1080 and 720 are not multiples of 32. */
export const PAPER_INPUTS: readonly (readonly [number, number])[] = [
  [512, 512],
  [800, 600],
  [1080, 720],
  [1333, 800],
];

/** Limits that keep the notation meaningful and the cost model bounded. */
export const LIMITS = {
  maxInputSide: 8192,
  maxBase: 1024,
  maxTotalBlocks: 256,
  /** widest block (planes after all doublings) */
  maxPlanes: 16384,
  maxFpnChannels: 4096,
} as const;

/** The named ResNets / ResNeXts are exactly these encodings (SPEC 2). mobilenet_v2 is not an encoding. */
const R50_CODE = ['111', '2111', '211111', '211'];
const R101_CODE = ['111', '2111', '2' + '1'.repeat(22), '211'];
export const NAMED_ENCODINGS: Record<Exclude<NamedBackbone, 'mobilenet_v2'>, { block: BlockKind; base: number; stages: string[] }> = {
  resnet18: { block: 'basicblock', base: 64, stages: ['11', '21', '21', '21'] },
  resnet34: { block: 'basicblock', base: 64, stages: R50_CODE },
  resnet50: { block: 'bottleneck', base: 64, stages: R50_CODE },
  resnet101: { block: 'bottleneck', base: 64, stages: R101_CODE },
  resnext50_32x4d: { block: 'Xbottleneck', base: 64, stages: R50_CODE },
  resnext101_32x4d: { block: 'Xbottleneck', base: 64, stages: R101_CODE },
};

export const NamedBackboneSchema = z.object({ kind: z.literal('named'), name: z.enum(NAMED_BACKBONES) });
export const EncodedBackboneSchema = z.object({
  kind: z.literal('encoded'),
  block: z.enum(BLOCK_KINDS),
  /** channel count (planes) of the first residual stage */
  base: z.number().int().positive(),
  /** exactly four stages; one character per block: '1' keeps the channel count, '2' doubles it; 'x': a stage the detector does not build */
  stages: z.array(z.string().regex(/^([12]+|x)$/, "a stage is a non-empty string of '1' and '2', or 'x' (not built)")).length(4),
});
export const BackboneSchema = z.discriminatedUnion('kind', [NamedBackboneSchema, EncodedBackboneSchema]);
export type Backbone = z.infer<typeof BackboneSchema>;
export type EncodedBackbone = z.infer<typeof EncodedBackboneSchema>;

export const NeckSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }),
  z.object({
    kind: z.literal('fpn'),
    from: z.number().int(),
    to: z.number().int(),
    channels: z.number().int().positive(),
  }),
]);
export type Neck = z.infer<typeof NeckSchema>;

export const HeadSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('2fc') }),
  z.object({ kind: z.literal('retina') }),
  z.object({ kind: z.literal('cascade'), stages: z.number().int() }),
]);
export type Head = z.infer<typeof HeadSchema>;

/** The shape of the JSON form, without the cross-field rules (see ArchSchema). */
export const ArchShapeSchema = z.object({
  input: z.object({ width: z.number().int(), height: z.number().int() }),
  backbone: BackboneSchema,
  neck: NeckSchema,
  rpn: z.enum(RPN_KINDS),
  head: HeadSchema,
});
export type Arch = z.infer<typeof ArchShapeSchema>;

/** A notation problem: `part` is the notation part at fault (input, backbone, neck, rpn, head). */
export class ArchError extends Error {
  constructor(
    readonly part: string,
    message: string,
  ) {
    super(message);
    this.name = 'ArchError';
  }
}

/** The code of an encoded backbone stage that the detector does not build (see `markUnusedStages`). */
export const UNUSED_STAGE = 'x';

/** Backbone stages a detector with this neck builds: 3 without a neck (stride-16 map of stage 3), min(last FPN level, 4) with one (P5/P6 come from P4). */
export function usedBackboneStages(neck: { kind: 'none' } | { kind: 'fpn'; to: number }): number {
  return neck.kind === 'none' ? 3 : Math.min(neck.to, 4);
}

/** Blocks of one stage code ('x': none built). */
export const stageBlockCount = (code: string): number => (code === UNUSED_STAGE ? 0 : code.length);

const ALLOWED_BACKBONES = `${NAMED_BACKBONES.join(', ')}, or <block>_<base>_<code> with block ${BLOCK_KINDS.join('|')}, ` + `e.g. basicblock_64_11-21-21-21`;

/**
 * Every rule the notation imposes beyond the JSON shape, as [part, message] pairs (empty when
 * legal). One function so parsing, the zod schema and `isLegalArch` agree.
 */
export function archProblems(a: Arch): [string, string][] {
  const out: [string, string][] = [];
  const { width, height } = a.input;
  if (!PAPER_INPUTS.some(([w, h]) => w === width && h === height)) {
    for (const [name, v] of [
      ['width', width],
      ['height', height],
    ] as const) {
      if (!(Number.isInteger(v) && v > 0 && v % 32 === 0 && v <= LIMITS.maxInputSide))
        out.push([
          'input',
          `input ${name} ${v}: must be a positive multiple of 32 up to ${LIMITS.maxInputSide} (or the size one of the paper's ${PAPER_INPUTS.map(([w, h]) => `${w}x${h}`).join(', ')})`,
        ]);
    }
  }
  const b = a.backbone;
  if (b.kind === 'encoded') {
    const label = `backbone '${b.block}_${b.base}_${b.stages.join('-')}'`;
    if (!Number.isInteger(b.base) || b.base < 1 || b.base > LIMITS.maxBase)
      out.push(['backbone', `${label}: base channels must be an integer in 1..${LIMITS.maxBase}`]);
    if (b.block === 'Xbottleneck' && Math.floor((b.base * 4) / 64) * 32 < 32)
      out.push(['backbone', `${label}: Xbottleneck needs base >= 16 (grouped width floor(base*4/64)*32 must be at least 32)`]);
    if (b.stages.length !== 4) out.push(['backbone', `${label}: the code needs exactly four stages separated by '-', got ${b.stages.length}`]);
    for (const s of b.stages)
      if (!/^([12]+|x)$/.test(s))
        out.push(['backbone', `${label}: stage '${s}' must be a non-empty string of '1' (keep) and '2' (double), or 'x' (not built)`]);
    const used = usedBackboneStages(a.neck);
    b.stages.forEach((s, i) => {
      if (s === UNUSED_STAGE && i < used)
        out.push(['backbone', `${label}: stage ${i + 1} is written 'x' (not built) but neck ${formatNeck(a.neck)} uses stages 1..${used}`]);
    });
    const total = b.stages.reduce((n, s) => n + stageBlockCount(s), 0);
    if (total > LIMITS.maxTotalBlocks) out.push(['backbone', `${label}: ${total} blocks, at most ${LIMITS.maxTotalBlocks} allowed`]);
    const doublings = b.stages
      .join('')
      .split('')
      .filter((c) => c === '2').length;
    if (b.base * 2 ** doublings > LIMITS.maxPlanes)
      out.push([
        'backbone',
        `${label}: ${doublings} doublings widen base ${b.base} to ${b.base * 2 ** doublings} channels, at most ${LIMITS.maxPlanes} allowed`,
      ]);
  }
  const n = a.neck;
  if (n.kind === 'fpn') {
    if (!(Number.isInteger(n.from) && n.from >= 1 && n.from <= 4)) out.push(['neck', `neck fpn(P${n.from}-P${n.to}): the first level must be P1..P4`]);
    if (!(Number.isInteger(n.to) && n.to >= n.from && n.to <= 6))
      out.push(['neck', `neck fpn(P${n.from}-P${n.to}): the last level must be between the first level and P6`]);
    if (!(Number.isInteger(n.channels) && n.channels >= 1 && n.channels <= LIMITS.maxFpnChannels))
      out.push(['neck', `neck fpn c=${n.channels}: channels must be an integer in 1..${LIMITS.maxFpnChannels}`]);
  }
  const h = a.head;
  if (h.kind === 'cascade' && !(Number.isInteger(h.stages) && h.stages >= 2 && h.stages <= 4))
    out.push(['head', `head cascade(n=${h.stages}): n must be 2, 3 or 4`]);
  if (h.kind === 'retina' && a.rpn !== 'none') out.push(['rpn', `rpn '${a.rpn}' with head 'retina': the retina head is one-stage, use rpn 'none'`]);
  if (h.kind !== 'retina' && a.rpn === 'none')
    out.push(['rpn', `rpn 'none' with head '${formatHead(h)}': two-stage heads (2fc, cascade) need 'rpn' or 'ga-rpn'`]);
  return out;
}

/** The JSON form with every notation rule; errors name the part. */
export const ArchSchema = ArchShapeSchema.superRefine((a, ctx) => {
  for (const [part, message] of archProblems(a)) ctx.addIssue({ code: 'custom', path: [part], message });
});

export function isLegalArch(a: unknown): a is Arch {
  const shape = ArchShapeSchema.safeParse(a);
  return shape.success && archProblems(shape.data).length === 0;
}

/** Throws ArchError naming the first problem. */
export function assertLegalArch(a: Arch): void {
  const problems = archProblems(a);
  if (problems.length > 0) throw new ArchError(problems[0][0], problems[0][1]);
}

/** The encoding of any residual backbone (named ResNets/ResNeXts expanded); undefined for mobilenet_v2. */
export function backboneEncoding(b: Backbone): EncodedBackbone | undefined {
  if (b.kind === 'encoded') return b;
  if (b.name === 'mobilenet_v2') return undefined;
  const e = NAMED_ENCODINGS[b.name];
  return { kind: 'encoded', block: e.block, base: e.base, stages: [...e.stages] };
}

/** The block kind of a backbone (mobilenet_v2 -> mbblock). */
export function backboneBlock(b: Backbone): BlockKind {
  return b.kind === 'encoded' ? b.block : b.name === 'mobilenet_v2' ? 'mbblock' : NAMED_ENCODINGS[b.name].block;
}

/** An encoded backbone that is exactly a named one becomes the named one (the canonical form). */
export function canonicalBackbone(b: Backbone): Backbone {
  if (b.kind === 'named') return { kind: 'named', name: b.name };
  for (const [name, e] of Object.entries(NAMED_ENCODINGS)) {
    if (e.block === b.block && e.base === b.base && e.stages.join('-') === b.stages.join('-')) return { kind: 'named', name: name as NamedBackbone };
  }
  return { kind: 'encoded', block: b.block, base: b.base, stages: [...b.stages] };
}

/** The canonical JSON form (fixed key order, named backbones where they apply). */
export function canonicalArch(a: Arch): Arch {
  const n = a.neck;
  const h = a.head;
  return {
    input: { width: a.input.width, height: a.input.height },
    backbone: canonicalBackbone(a.backbone),
    neck: n.kind === 'fpn' ? { kind: 'fpn', from: n.from, to: n.to, channels: n.channels } : { kind: 'none' },
    rpn: a.rpn,
    head: h.kind === 'cascade' ? { kind: 'cascade', stages: h.stages } : { kind: h.kind },
  };
}

export function formatBackbone(b: Backbone): string {
  const c = canonicalBackbone(b);
  return c.kind === 'named' ? c.name : `${c.block}_${c.base}_${c.stages.join('-')}`;
}

export function formatNeck(n: Neck): string {
  return n.kind === 'none' ? 'none' : `fpn(P${n.from}-P${n.to},c=${n.channels})`;
}

export function formatHead(h: Head): string {
  return h.kind === 'cascade' ? `cascade(n=${h.stages})` : h.kind;
}

/**
 * The used-layers form: `canonicalArch` with every backbone stage the detector does not build
 * written 'x' (named backbones unchanged, see the header). Architectures that differ only in
 * unbuilt stages have equal forms; different networks keep different forms.
 */
export function markUnusedStages(a: Arch): Arch {
  const c = canonicalArch(a);
  if (c.backbone.kind !== 'encoded') return c;
  const used = usedBackboneStages(c.neck);
  if (c.backbone.stages.every((_, i) => i < used)) return c;
  return { ...c, backbone: { ...c.backbone, stages: c.backbone.stages.map((s, i) => (i < used ? s : UNUSED_STAGE)) } };
}

/** `formatArch(markUnusedStages(parseArch(s)))`. */
export function usedLayersString(s: string): string {
  return formatArch(markUnusedStages(parseArch(s)));
}

/** The canonical string. Throws ArchError when the architecture is illegal. */
export function formatArch(a: Arch): string {
  assertLegalArch(a);
  return `${a.input.width}x${a.input.height}/${formatBackbone(a.backbone)}/${formatNeck(a.neck)}/${a.rpn}/${formatHead(a.head)}`;
}

function parseInput(s: string): Arch['input'] {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(s);
  if (!m) throw new ArchError('input', `input '${s}': expected <W>x<H>, e.g. 800x600 (positive multiples of 32)`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

export function parseBackbone(s: string): Backbone {
  if ((NAMED_BACKBONES as readonly string[]).includes(s)) return { kind: 'named', name: s as NamedBackbone };
  const parts = s.split('_');
  if (parts.length !== 3 || !(BLOCK_KINDS as readonly string[]).includes(parts[0])) {
    const what = parts.length === 3 ? `unknown block '${parts[0]}'` : 'unknown backbone';
    throw new ArchError('backbone', `backbone '${s}': ${what}; allowed: ${ALLOWED_BACKBONES}`);
  }
  const [block, baseStr, code] = parts;
  if (!/^[1-9]\d{0,4}$/.test(baseStr))
    throw new ArchError('backbone', `backbone '${s}': base '${baseStr}' must be a positive integer (channels of the first stage)`);
  const stages = code.split('-');
  if (stages.length !== 4) throw new ArchError('backbone', `backbone '${s}': the code needs exactly four stages separated by '-', got ${stages.length}`);
  for (const st of stages) {
    if (st === '') throw new ArchError('backbone', `backbone '${s}': empty stage; every stage needs at least one block`);
    if (st === UNUSED_STAGE) continue; // not built: checked against the neck by archProblems
    const bad = st.match(/[^12]/);
    if (bad)
      throw new ArchError(
        'backbone',
        `backbone '${s}': character '${bad[0]}' in stage '${st}'; only '1' (keep) and '2' (double) are allowed, or a whole stage 'x' (not built)`,
      );
  }
  return { kind: 'encoded', block: block as BlockKind, base: Number(baseStr), stages };
}

function parseNeck(s: string): Neck {
  if (s === 'none') return { kind: 'none' };
  const m = /^fpn\(P(\d+)-P(\d+),c=(\d+)\)$/.exec(s);
  if (!m) throw new ArchError('neck', `neck '${s}': expected 'none' or fpn(P<a>-P<b>,c=<channels>) with 1 <= a <= 4, a <= b <= 6`);
  return { kind: 'fpn', from: Number(m[1]), to: Number(m[2]), channels: Number(m[3]) };
}

function parseRpn(s: string): RpnKind {
  if (!(RPN_KINDS as readonly string[]).includes(s)) throw new ArchError('rpn', `rpn '${s}': allowed: ${RPN_KINDS.join(', ')}`);
  return s as RpnKind;
}

function parseHead(s: string): Head {
  if (s === '2fc' || s === 'retina') return { kind: s };
  const m = /^cascade\(n=(\d+)\)$/.exec(s);
  if (!m) throw new ArchError('head', `head '${s}': allowed: 2fc, retina, cascade(n=2|3|4)`);
  return { kind: 'cascade', stages: Number(m[1]) };
}

/** Parse a notation string into its canonical JSON form; throws ArchError naming the part at fault. */
export function parseArch(s: string): Arch {
  if (typeof s !== 'string') throw new ArchError('notation', 'architecture notation must be a string');
  const parts = s.trim().split('/');
  if (parts.length !== 5) throw new ArchError('notation', `'${s}': expected 5 parts <W>x<H>/<backbone>/<neck>/<rpn>/<head>, got ${parts.length}`);
  const a: Arch = {
    input: parseInput(parts[0]),
    backbone: parseBackbone(parts[1]),
    neck: parseNeck(parts[2]),
    rpn: parseRpn(parts[3]),
    head: parseHead(parts[4]),
  };
  assertLegalArch(a);
  return canonicalArch(a);
}

/** Canonicalise a notation string (parse + format). */
export function canonicalString(s: string): string {
  return formatArch(parseArch(s));
}

/** Accepts a string or a JSON form and returns the canonical JSON form; throws ArchError. */
export function toArch(a: Arch | string): Arch {
  if (typeof a === 'string') return parseArch(a);
  const shape = ArchShapeSchema.safeParse(a);
  if (!shape.success) {
    const i = shape.error.issues[0];
    throw new ArchError(String(i.path[0] ?? 'arch'), `architecture JSON: ${i.path.join('.') || '<root>'}: ${i.message}`);
  }
  assertLegalArch(shape.data);
  return canonicalArch(shape.data);
}

/** Blocks per stage of any backbone (mobilenet_v2: 2, 3, 7, 4 as split by resolveLayout; an 'x' stage: 0). */
export function resolveBackboneBlocks(b: Backbone): number[] {
  const e = backboneEncoding(b);
  return e ? e.stages.map(stageBlockCount) : [2, 3, 7, 4];
}
