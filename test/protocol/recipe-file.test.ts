/**
 * Recipe files (`--recipe <file>`) under hostile input: mutations of the shipped recipes, and
 * unreadable or malformed files. Each is accepted as a valid recipe or rejected with a UserError
 * naming the file and the path of the bad field; never a crash.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { UserError } from '../../common/errors';
import { ClassificationRecipeSchema, DetectionRecipeSchema } from '../../protocol/recipe';
import { loadClassificationRecipeFile, loadDetectionRecipeFile } from '../../protocol/recipe-file';
import { CLASSIFICATION_RECIPE_NAMES, DETECTION_RECIPE_NAMES, getClassificationRecipe, getDetectionRecipe } from '../../protocol/recipes';
import { unknownFields } from '../../protocol/unknown-fields';
import { mutationOf, namesPath } from '../support/mutate';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-recipe-fuzz-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cases = [
  { kind: 'detection', load: loadDetectionRecipeFile, schema: DetectionRecipeSchema, docs: DETECTION_RECIPE_NAMES.map(getDetectionRecipe) },
  {
    kind: 'classification',
    load: loadClassificationRecipeFile,
    schema: ClassificationRecipeSchema,
    docs: CLASSIFICATION_RECIPE_NAMES.map(getClassificationRecipe),
  },
] as const;

describe.each(cases)('$kind recipe files', ({ load, schema, docs }) => {
  test('mutations are accepted, or rejected naming the file and the field', () => {
    let n = 0;
    let rejected = 0;
    fc.assert(
      fc.property(mutationOf(docs as unknown[]), (m) => {
        const file = path.join(tmp, `r${n++}.json`);
        fs.writeFileSync(file, JSON.stringify(m.value));
        let err: unknown;
        try {
          expect(schema.safeParse(load(file)).success).toBe(true);
        } catch (e) {
          err = e;
        }
        fs.rmSync(file);
        if (!err) {
          expect(unknownFields(schema, m.value)).toEqual([]);
          return;
        }
        rejected++;
        expect(err).toBeInstanceOf(UserError);
        const msg = (err as Error).message;
        expect(msg.startsWith(`${file}: `)).toBe(true);
        const parsed = schema.safeParse(m.value);
        if (parsed.success) {
          // valid but for a field the schema does not know (a misspelling would keep its default)
          const unknown = unknownFields(schema, m.value);
          expect(unknown.length).toBeGreaterThan(0);
          expect(unknown.every((u) => namesPath(u.path, m.path))).toBe(true);
          expect(msg).toContain(`${unknown[0].path.join('.')}: unknown field (known here: `);
          return;
        }
        const issues = parsed.error.issues.slice(0, 3);
        const named = issues.find((i) => namesPath(i.path, m.path));
        expect({ mutation: m.path.join('.'), message: msg, named: Boolean(named) }).toMatchObject({ named: true });
        expect(msg).toContain(named!.path.map(String).join('.'));
      }),
      { numRuns: 300, seed: 15 },
    );
    expect(rejected).toBeGreaterThan(50);
  });

  test('missing, empty, truncated and non-object files name the file', () => {
    const good = JSON.stringify(docs[0]);
    const files: [string, string | undefined, RegExp][] = [
      ['missing.json', undefined, /cannot read recipe file \(ENOENT\)/],
      ['empty.json', '', /not valid JSON/],
      ['trunc.json', good.slice(0, good.length >> 1), /not valid JSON/],
      ['array.json', '[1,2]', /<root>: /],
      ['null.json', 'null', /<root>: /],
    ];
    for (const [name, text, want] of files) {
      const file = path.join(tmp, name);
      if (text !== undefined) fs.writeFileSync(file, text);
      expect(() => load(file)).toThrow(UserError);
      expect(() => load(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: ${want.source}`));
    }
  });
});

describe("a detection recipe's init scheme and RPN min_pos_iou", () => {
  const write = (name: string, doc: unknown) => {
    const file = path.join(tmp, name);
    fs.writeFileSync(file, JSON.stringify(doc));
    return file;
  };
  const toy = getDetectionRecipe('toy-train');

  test("toy-train uses torchvision's initialisation and low-quality matching; both are optional", () => {
    expect(toy.initScheme).toBe('torchvision');
    expect(toy.rpn.minPosIou).toBe(0);
    const { initScheme: _scheme, ...rest } = toy;
    const plain = loadDetectionRecipeFile(write('plain.json', { ...rest, rpn: { ...toy.rpn, minPosIou: undefined } }));
    expect(plain.initScheme).toBeUndefined();
    expect(plain.rpn.minPosIou).toBeUndefined();
    expect(loadDetectionRecipeFile(write('mmdet.json', { ...toy, initScheme: 'mmdet', rpn: { ...toy.rpn, minPosIou: 0.3 } })).initScheme).toBe('mmdet');
  });

  test('an unknown scheme or an IoU outside [0, 1] is refused, naming the field', () => {
    const caffe = write('caffe.json', { ...toy, initScheme: 'caffe2' });
    expect(() => loadDetectionRecipeFile(caffe)).toThrow(UserError);
    expect(() => loadDetectionRecipeFile(caffe)).toThrow(/: initScheme: /);
    const far = write('far.json', { ...toy, rpn: { ...toy.rpn, minPosIou: 1.5 } });
    expect(() => loadDetectionRecipeFile(far)).toThrow(/: rpn\.minPosIou: /);
  });
});
