/**
 * fast-check arbitraries for hostile-input tests: one mutation of a valid JSON document (a field
 * replaced by a hostile value, deleted, or an unknown field added), with the path of the change,
 * so a test can check that a rejection names that path.
 */
import fc from 'fast-check';

export type JsonPath = (string | number)[];
export interface Mutation {
  value: unknown;
  path: JsonPath;
  op: 'replace' | 'delete' | 'add';
}

/** Every path in a JSON document (objects and arrays included, the root excluded). */
export function jsonPaths(doc: unknown, prefix: JsonPath = []): JsonPath[] {
  if (Array.isArray(doc)) return doc.flatMap((v, i) => [[...prefix, i], ...jsonPaths(v, [...prefix, i])]);
  if (doc && typeof doc === 'object') return Object.entries(doc).flatMap(([k, v]) => [[...prefix, k], ...jsonPaths(v, [...prefix, k])]);
  return [];
}

/** Values a hostile or careless file holds where something else was expected. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    -0.5,
    0.5,
    1e308,
    -1e308,
    2 ** 53 + 2,
    '',
    ' ',
    '0',
    'NaN',
    '../../etc/passwd',
    '/etc/passwd',
    '\u0000',
    'x'.repeat(10_000),
    [],
    {},
    [null],
    { '': 1 },
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 20 }),
  fc.jsonValue({ maxDepth: 2 }),
);

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

function apply(doc: unknown, m: Omit<Mutation, 'value'>, v: unknown): unknown {
  const out = clone(doc);
  let parent = out as Record<string | number, unknown>;
  for (const k of m.path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = m.path[m.path.length - 1];
  if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else Object.defineProperty(parent, last, { value: v, enumerable: true, writable: true, configurable: true }); // '__proto__' too
  return out;
}

/** One mutation of `doc` (pass the documents to start from; all paths of each are candidates). */
export function mutationOf(docs: unknown[]): fc.Arbitrary<Mutation> {
  const targets = docs.flatMap((doc) => jsonPaths(doc).map((path) => ({ doc, path })));
  const containers = docs.flatMap((doc) =>
    [[], ...jsonPaths(doc)]
      .filter((p) => {
        let v: unknown = doc;
        for (const k of p) v = (v as Record<string | number, unknown>)[k];
        return v !== null && typeof v === 'object' && !Array.isArray(v);
      })
      .map((path) => ({ doc, path })),
  );
  return fc.oneof(
    fc
      .tuple(fc.constantFrom(...targets), hostileValue)
      .map(([t, v]) => ({ value: apply(t.doc, { path: t.path, op: 'replace' }, v), path: t.path, op: 'replace' as const })),
    fc.constantFrom(...targets).map((t) => ({ value: apply(t.doc, { path: t.path, op: 'delete' }, undefined), path: t.path, op: 'delete' as const })),
    fc.tuple(fc.constantFrom(...containers), fc.string({ minLength: 1, maxLength: 12 }), hostileValue).map(([t, k, v]) => {
      const path = [...t.path, k];
      return { value: apply(t.doc, { path, op: 'add' }, v), path, op: 'add' as const };
    }),
  );
}

/** Whether an error path names the mutated field: the same path, a field inside it, or a field containing it. */
export function namesPath(issuePath: readonly PropertyKey[], mutated: JsonPath): boolean {
  const a = issuePath.map(String);
  const b = mutated.map(String);
  const n = Math.min(a.length, b.length);
  return n > 0 && a.slice(0, n).join('\u0001') === b.slice(0, n).join('\u0001');
}
