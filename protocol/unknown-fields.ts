/**
 * Fields of a user-written file that its zod schema does not know. zod objects strip unknown keys
 * silently, so a misspelt field (`maxEvalutions`, `lr ` ...) would otherwise leave its default in
 * place without a word; the loaders of user-written files (campaign and recipe files) refuse them
 * naming the path. Pure (zod only).
 */
import type { z } from 'zod';

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
};
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

export interface UnknownField {
  path: (string | number)[];
  /** the fields the schema knows at that place */
  known: string[];
}

/** Every key of `value` that `schema` has no field for (objects with a catch-all accept any). */
export function unknownFields(schema: z.ZodType, value: unknown, path: (string | number)[] = []): UnknownField[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
      return unknownFields(def.innerType!, value, path);
    case 'pipe':
      return unknownFields(def.in!, value, path);
    case 'array':
      return Array.isArray(value) ? value.flatMap((v, i) => unknownFields(def.element!, v, [...path, i])) : [];
    case 'record':
      return isPlainObject(value) ? Object.entries(value).flatMap(([k, v]) => unknownFields(def.valueType!, v, [...path, k])) : [];
    case 'object': {
      if (!isPlainObject(value)) return [];
      const shape = def.shape!;
      const open = def.catchall !== undefined && defOf(def.catchall).type !== 'never';
      return Object.entries(value).flatMap(([k, v]) => {
        if (Object.prototype.hasOwnProperty.call(shape, k)) return unknownFields(shape[k], v, [...path, k]);
        return open ? [] : [{ path: [...path, k], known: Object.keys(shape) }];
      });
    }
    default:
      return []; // unions and scalars: the schema itself decides
  }
}

/** "a.b.c: unknown field (known: x, y)" for the first few, or undefined when there are none. */
export function describeUnknownFields(source: string, found: UnknownField[]): string | undefined {
  if (found.length === 0) return undefined;
  const parts = found.slice(0, 3).map((f) => `${f.path.map(String).join('.')}: unknown field (known here: ${f.known.join(', ')})`);
  const more = found.length > 3 ? ` (and ${found.length - 3} more)` : '';
  return `${source}: ${parts.join('; ')}${more}`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
