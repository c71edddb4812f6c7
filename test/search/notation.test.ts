import fc from 'fast-check';
import { ArchError, ArchSchema, canonicalArch, formatArch, isLegalArch, parseArch } from '../../search/notation';
import { archArb } from './arbitraries';

describe('notation round trip', () => {
  test('parse(format(a)) equals the canonical form of a, and format is a fixed point', () => {
    fc.assert(
      fc.property(archArb, (a) => {
        expect(isLegalArch(a)).toBe(true);
        const s = formatArch(a);
        const back = parseArch(s);
        expect(back).toEqual(canonicalArch(a));
        expect(formatArch(back)).toBe(s);
        expect(ArchSchema.safeParse(back).success).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  test('the spec examples parse and format back verbatim', () => {
    for (const s of [
      '800x600/basicblock_48_12-11111-211-1112/fpn(P1-P5,c=128)/rpn/cascade(n=3)',
      '512x512/resnet18/fpn(P2-P5,c=128)/rpn/2fc',
      '1333x800/resnet50/fpn(P1-P5,c=256)/none/retina',
      '1080x720/mobilenet_v2/none/ga-rpn/2fc',
      '800x608/mbblock_24_12-21-211-21/fpn(P2-P6,c=512)/ga-rpn/cascade(n=4)',
    ])
      expect(formatArch(parseArch(s))).toBe(s);
  });

  test('named ResNets are exactly their encodings, and the name is canonical', () => {
    expect(formatArch(parseArch('512x512/basicblock_64_11-21-21-21/none/rpn/2fc'))).toBe('512x512/resnet18/none/rpn/2fc');
    expect(formatArch(parseArch('512x512/bottleneck_64_111-2111-211111-211/none/rpn/2fc'))).toBe('512x512/resnet50/none/rpn/2fc');
    expect(formatArch(parseArch('512x512/Xbottleneck_64_111-2111-21111111111111111111111-211/none/rpn/2fc'))).toBe('512x512/resnext101_32x4d/none/rpn/2fc');
    // base 48 is not a named model
    expect(formatArch(parseArch('512x512/basicblock_48_11-21-21-21/none/rpn/2fc'))).toBe('512x512/basicblock_48_11-21-21-21/none/rpn/2fc');
  });
});

describe('notation rejects illegal input with a message naming the part', () => {
  const cases: [string, string, RegExp][] = [
    ['512x512/foo_64_11-21-21-21/none/rpn/2fc', 'backbone', /unknown block 'foo'.*basicblock\|bottleneck\|Xbottleneck\|mbblock/],
    ['512x512/resnet19/none/rpn/2fc', 'backbone', /unknown backbone.*resnet18/],
    ['512x512/basicblock_64_11-21-21/none/rpn/2fc', 'backbone', /exactly four stages.*got 3/],
    ['512x512/basicblock_64_11-21-21-21-1/none/rpn/2fc', 'backbone', /exactly four stages.*got 5/],
    ['512x512/basicblock_64_11-31-21-21/none/rpn/2fc', 'backbone', /character '3'.*only '1' \(keep\) and '2' \(double\)/],
    ['512x512/basicblock_64_11--21-21/none/rpn/2fc', 'backbone', /empty stage/],
    ['512x512/Xbottleneck_8_11-21-21-21/none/rpn/2fc', 'backbone', /Xbottleneck needs base >= 16/],
    ['512x512/basicblock_64_222222222-1-1-1/none/rpn/2fc', 'backbone', /9 doublings widen base 64 to 32768 channels, at most 16384/],
    ['512x512/resnet18/fpn(P1-P5,c=256)/rpn/retina', 'rpn', /retina head is one-stage, use rpn 'none'/],
    ['512x512/resnet18/fpn(P1-P5,c=256)/none/2fc', 'rpn', /two-stage heads.*need 'rpn' or 'ga-rpn'/],
    ['512x512/resnet18/fpn(P1-P5,c=256)/none/cascade(n=3)', 'rpn', /two-stage heads/],
    ['512x512/resnet18/fpn(P0-P5,c=256)/rpn/2fc', 'neck', /first level must be P1..P4/],
    ['512x512/resnet18/fpn(P5-P6,c=256)/rpn/2fc', 'neck', /first level must be P1..P4/],
    ['512x512/resnet18/fpn(P2-P7,c=256)/rpn/2fc', 'neck', /last level must be between the first level and P6/],
    ['512x512/resnet18/fpn(P3-P2,c=256)/rpn/2fc', 'neck', /last level must be between/],
    ['512x512/resnet18/fpn(P1-P5)/rpn/2fc', 'neck', /expected 'none' or fpn\(P<a>-P<b>,c=<channels>\)/],
    ['512x512/resnet18/none/rpn/cascade(n=5)', 'head', /n must be 2, 3 or 4/],
    ['512x512/resnet18/none/rpn/3fc', 'head', /allowed: 2fc, retina, cascade/],
    ['512x512/resnet18/none/frpn/2fc', 'rpn', /allowed: none, rpn, ga-rpn/],
    ['500x512/resnet18/none/rpn/2fc', 'input', /input width 500: must be a positive multiple of 32/],
    ['512/resnet18/none/rpn/2fc', 'input', /expected <W>x<H>/],
    ['512x512/resnet18/none/rpn', 'notation', /expected 5 parts/],
    ['1333x600/resnet18/none/rpn/2fc', 'input', /input width 1333: must be a positive multiple of 32.*1333x800/],
    ['512*512/resnet18/none/rpn/2fc', 'input', /expected <W>x<H>/],
  ];
  test.each(cases)('%s -> %s', (s, part, msg) => {
    let err: unknown;
    try {
      parseArch(s);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ArchError);
    expect((err as ArchError).part).toBe(part);
    expect((err as ArchError).message).toMatch(msg);
  });

  test('the zod schema reports the same rule with the part as its path', () => {
    const r = ArchSchema.safeParse({
      input: { width: 512, height: 512 },
      backbone: { kind: 'named', name: 'resnet18' },
      neck: { kind: 'none' },
      rpn: 'rpn',
      head: { kind: 'retina' },
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0].path).toEqual(['rpn']);
  });
});

describe('notation under hostile input (mutated and truncated strings)', () => {
  const PARTS = ['notation', 'input', 'backbone', 'neck', 'rpn', 'head'];
  /** valid strings, then one of: truncation, a character replaced / inserted / deleted, two parts swapped */
  const mutated = fc
    .tuple(archArb.map(formatArch), fc.nat(), fc.nat(), fc.constantFrom(...'0123456789x/_-(),=Pcn abfgikmoprtvX.\u00e9\u0000'), fc.integer({ min: 0, max: 4 }))
    .map(([s, i, j, ch, kind]) => {
      const at = i % (s.length + 1);
      if (kind === 0) return s.slice(0, at);
      if (kind === 1) return s.slice(0, at) + ch + s.slice(at + 1);
      if (kind === 2) return s.slice(0, at) + ch + s.slice(at);
      if (kind === 3) return s.slice(0, at) + s.slice(at + 1);
      const parts = s.split('/');
      const a = i % parts.length,
        b = j % parts.length;
      [parts[a], parts[b]] = [parts[b], parts[a]];
      return parts.join('/');
    });

  test('every mutation parses to a legal architecture that round-trips, or throws an ArchError naming the part', () => {
    fc.assert(
      fc.property(mutated, (s) => {
        let a;
        try {
          a = parseArch(s);
        } catch (e) {
          expect(e).toBeInstanceOf(ArchError);
          const err = e as ArchError;
          expect(PARTS).toContain(err.part);
          expect(err.message).not.toMatch(/undefined|NaN|\[object/);
          // the message quotes the offending token, or names the part when the rule spans parts
          const tokens = s.trim().split('/');
          if (err.part !== 'notation' && tokens.length === 5) {
            const token = tokens[PARTS.indexOf(err.part) - 1];
            const rule = /one-stage|two-stage|P\d|doublings|input (width|height)|base|stride|level|channels/;
            expect(err.message.includes(token) || rule.test(err.message)).toBe(true);
          }
          return;
        }
        expect(isLegalArch(a)).toBe(true);
        expect(parseArch(formatArch(a))).toEqual(a);
      }),
      { numRuns: 2000 },
    );
  });

  test('random strings never crash the parser', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        try {
          const a = parseArch(s);
          expect(parseArch(formatArch(a))).toEqual(a);
        } catch (e) {
          expect(e).toBeInstanceOf(ArchError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
