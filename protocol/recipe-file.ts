/** Recipe files (`--recipe <file>`): JSON validated with zod, errors naming the file and field. */
import * as fs from 'node:fs';
import type { z } from 'zod';
import { describeUnknownFields, unknownFields } from './unknown-fields';
import { UserError, describeZodError } from '../common/errors';
import { ClassificationRecipeSchema, DetectionRecipeSchema, type ClassificationRecipe, type DetectionRecipe } from './recipe';
import { getClassificationRecipe, getDetectionRecipe, isClassificationRecipeName, isDetectionRecipeName } from './recipes';

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`${file}: cannot read recipe file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${file}: not valid JSON: ${(e as Error).message}`);
  }
}

/** Load and validate a detection recipe file (JSON); errors name the file and the field. */
export function loadDetectionRecipeFile(file: string): DetectionRecipe {
  const raw = readJsonFile(file);
  const r = DetectionRecipeSchema.safeParse(raw);
  if (!r.success) throw new UserError(describeZodError(file, r.error));
  refuseUnknownFields(file, DetectionRecipeSchema, raw);
  return r.data;
}

export function loadClassificationRecipeFile(file: string): ClassificationRecipe {
  const raw = readJsonFile(file);
  const r = ClassificationRecipeSchema.safeParse(raw);
  if (!r.success) throw new UserError(describeZodError(file, r.error));
  refuseUnknownFields(file, ClassificationRecipeSchema, raw);
  return r.data;
}

/** A misspelt recipe field would silently keep its default: refuse it, naming the path. */
function refuseUnknownFields(file: string, schema: z.ZodType, raw: unknown): void {
  const msg = describeUnknownFields(file, unknownFields(schema, raw));
  if (msg) throw new UserError(msg);
}

/** `--recipe` value: a known name/alias, else a path to a recipe file. */
export function resolveDetectionRecipe(nameOrFile: string): DetectionRecipe {
  if (isDetectionRecipeName(nameOrFile)) return getDetectionRecipe(nameOrFile);
  if (fs.existsSync(nameOrFile)) return loadDetectionRecipeFile(nameOrFile);
  return getDetectionRecipe(nameOrFile); // throws the "unknown recipe" error listing the names
}

export function resolveClassificationRecipe(nameOrFile: string): ClassificationRecipe {
  if (isClassificationRecipeName(nameOrFile)) return getClassificationRecipe(nameOrFile);
  if (fs.existsSync(nameOrFile)) return loadClassificationRecipeFile(nameOrFile);
  return getClassificationRecipe(nameOrFile);
}
