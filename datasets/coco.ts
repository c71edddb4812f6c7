/**
 * Strict loading of COCO instances files. Every record is validated with the zod schemas of
 * coco-schema.ts; problems name the file and the record (and line/column for malformed JSON).
 * Files above STREAM_THRESHOLD bytes are streamed element by element (json-stream.ts) and the
 * annotations' `segmentation` (the bulk of train2017) is dropped, since detection does not use it.
 */
import * as fs from 'node:fs';
import { describeZodError } from '../common/errors';
import {
  CocoAnnotationSchema,
  CocoCategorySchema,
  CocoImageSchema,
  type CocoAnnotation,
  type CocoCategory,
  type CocoImage,
  type CocoInstances,
} from './coco-schema';
import { JsonLocationError, streamJson } from './json-stream';
import type { Problem } from './problems';

/** Above this size a file is streamed instead of read whole (JSON.parse needs the whole string). */
export const STREAM_THRESHOLD = 64 << 20;

export class DatasetError extends Error {
  constructor(
    message: string,
    readonly problem?: Problem,
  ) {
    super(message);
    this.name = 'DatasetError';
  }
}

export interface LoadOptions {
  /** collect problems instead of throwing on the first one (invalid records are then left out) */
  onProblem?: (p: Problem) => void;
  progress?: (bytesDone: number, bytesTotal: number) => void;
  /** force the streaming path, optionally with tiny reads (tests) */
  stream?: boolean;
  chunkSize?: number;
}

const SECTIONS = ['images', 'annotations', 'categories'] as const;
type Section = (typeof SECTIONS)[number];
const SCHEMAS = { images: CocoImageSchema, annotations: CocoAnnotationSchema, categories: CocoCategorySchema };

function recordName(section: string, index: number, value: unknown): string {
  const id = value && typeof value === 'object' && 'id' in value ? (value as { id: unknown }).id : undefined;
  return `${section}[${index}]${id !== undefined ? ` (id ${JSON.stringify(id)})` : ''}`;
}

/**
 * A loaded record's index in its file's array. Invalid records are dropped while loading, so the
 * position in the loaded array can differ; problems name records by their index in the file.
 */
export const sourceIndex = new WeakMap<object, number>();

export async function loadCocoInstances(file: string, opts: LoadOptions = {}): Promise<CocoInstances> {
  const report = (p: Problem): void => {
    if (opts.onProblem) opts.onProblem(p);
    else throw new DatasetError(`${p.file}: ${p.record ? p.record + ': ' : ''}${p.message}`, p);
  };
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DatasetError(`${file}: ${code === 'ENOENT' ? 'no such file' : `cannot read (${code})`}`);
  }
  const out: CocoInstances = { images: [], annotations: [], categories: [] };
  const seen = new Set<Section>();
  const take = (section: Section, value: unknown, index: number): void => {
    if (section === 'annotations' && value && typeof value === 'object') delete (value as Record<string, unknown>).segmentation;
    const r = SCHEMAS[section].safeParse(value);
    if (!r.success) {
      report({
        severity: 'error',
        code: 'invalid_record',
        file,
        record: recordName(section, index, value),
        message: describeZodError('invalid', r.error).replace(/^invalid: /, ''),
      });
      return;
    }
    (out[section] as unknown[]).push(r.data);
    sourceIndex.set(r.data, index);
  };

  if (size <= STREAM_THRESHOLD && !opts.stream) {
    const text = fs.readFileSync(file, 'utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      // re-read with the streaming scanner, which reports line, column and record
      return loadStreaming();
    }
    opts.progress?.(size, size);
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new DatasetError(`${file}: expected a COCO instances object with images, annotations and categories`);
    }
    for (const section of SECTIONS) {
      const arr = (raw as Record<string, unknown>)[section];
      if (arr === undefined) continue;
      if (!Array.isArray(arr)) throw new DatasetError(`${file}: "${section}" must be an array`);
      seen.add(section);
      arr.forEach((v, i) => take(section, v, i));
    }
    return finish();
  }
  return loadStreaming();

  async function loadStreaming(): Promise<CocoInstances> {
    out.images = [];
    out.annotations = [];
    out.categories = [];
    try {
      await streamJson(file, {
        arrayKeys: new Set(SECTIONS),
        arrayStart: (key) => seen.add(key as Section),
        element: (key, value, index) => {
          take(key as Section, value, index);
        },
        progress: opts.progress,
        chunkSize: opts.chunkSize,
      });
    } catch (e) {
      if (e instanceof JsonLocationError) {
        throw new DatasetError(`${file}: ${e.message}`, { severity: 'error', code: 'malformed_json', file, record: e.record, message: e.message });
      }
      if (e instanceof DatasetError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code) throw new DatasetError(`${file}: cannot read (${code})`);
      throw e;
    }
    return finish();
  }

  function finish(): CocoInstances {
    for (const section of SECTIONS) {
      if (!seen.has(section)) {
        report({ severity: 'error', code: 'missing_section', file, message: `no "${section}" array` });
      }
    }
    return out;
  }
}

export type { CocoAnnotation, CocoCategory, CocoImage, CocoInstances };
