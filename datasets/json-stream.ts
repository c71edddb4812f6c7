/**
 * Streaming reader for big JSON files whose bulk is top-level arrays (COCO instances: images,
 * annotations, categories; results files: one array). It reads the file in chunks, finds each
 * array element's byte range with a small scanner (strings, nesting) and JSON.parses elements one
 * at a time, so a 450 MB train2017 file never becomes one giant string or DOM. Errors carry the
 * byte offset, line and column, and the element index.
 */
import * as fs from 'node:fs';

export class JsonLocationError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    readonly line: number,
    readonly column: number,
    /** e.g. "annotations[17]" */
    readonly record?: string,
  ) {
    super(message);
  }
}

const CHUNK = 8 << 20;
/** elements parsed together in one JSON.parse call (fewer calls; errors are then located one by one) */
const BATCH_BYTES = 1 << 20;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * End (exclusive) of the JSON value starting at `pos` in buf[..end], or -1 when the buffer ends
 * first. Only structure is checked here; JSON.parse checks the rest.
 */
function scanValue(buf: Buffer, pos: number, end: number): number {
  const c0 = buf[pos];
  if (c0 === 0x22) return scanString(buf, pos, end);
  if (c0 === 0x7b || c0 === 0x5b) {
    let depth = 0;
    let i = pos;
    while (i < end) {
      const c = buf[i];
      if (c === 0x22) {
        const e = scanString(buf, i, end);
        if (e < 0) return -1;
        i = e;
        continue;
      }
      if (c === 0x7b || c === 0x5b) depth++;
      else if (c === 0x7d || c === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return -1;
  }
  // number / true / false / null / NaN ...: up to a delimiter
  let i = pos;
  while (i < end) {
    const c = buf[i];
    if (c === 0x2c || c === 0x5d || c === 0x7d || isWs(c)) return i;
    i++;
  }
  return -1;
}

function scanString(buf: Buffer, pos: number, end: number): number {
  let i = pos + 1;
  while (i < end) {
    const c = buf[i];
    if (c === 0x5c) i += 2;
    else if (c === 0x22) return i + 1;
    else i++;
  }
  return -1;
}

/** line/column (1-based) of a byte offset, by re-reading the file (only on the error path). */
export function locateOffset(file: string, offset: number): { line: number; column: number } {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(CHUNK);
    let line = 1;
    let lineStart = 0;
    let base = 0;
    while (base < offset) {
      const n = fs.readSync(fd, buf, 0, Math.min(CHUNK, offset - base), base);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        if (buf[i] === 0x0a) {
          line++;
          lineStart = base + i + 1;
        }
      }
      base += n;
    }
    return { line, column: offset - lineStart + 1 };
  } finally {
    fs.closeSync(fd);
  }
}

export interface StreamHandlers {
  /** called for each element of the top-level array (file is an array) or of arrays under these keys */
  element: (key: string, value: unknown, index: number) => void;
  /** top-level object keys whose array elements are streamed; other keys' values go to `other` */
  arrayKeys?: ReadonlySet<string>;
  other?: (key: string, value: unknown) => void;
  /** called when a streamed array starts (also for empty arrays) */
  arrayStart?: (key: string) => void;
  progress?: (bytesDone: number, bytesTotal: number) => void;
  /** read size (tests use tiny chunks to exercise elements split across reads) */
  chunkSize?: number;
}

/** A read the parser needs: fill `buf` from file offset `pos`; the driver resumes it with the byte count. */
interface ReadRequest {
  buf: Buffer;
  pos: number;
}
type Gen<T> = Generator<ReadRequest, T, number>;

/**
 * The parser as a generator that yields its reads, so the same code runs with async reads
 * (streamJson: yields to the event loop between chunks, for activities that heartbeat) and with
 * sync reads (streamJsonSync: for synchronous callers).
 */
function* parseJsonStream(file: string, total: number, h: StreamHandlers): Gen<void> {
  let buf = Buffer.alloc(0);
  let bufBase = 0; // file offset of buf[0]
  let eof = false;
  let pos = 0;
  const chunkSize = h.chunkSize ?? CHUNK;

  const fail = (msg: string, at: number, record?: string): never => {
    const { line, column } = locateOffset(file, at);
    throw new JsonLocationError(`${msg} at line ${line}, column ${column}${record ? ` (${record})` : ''}`, at, line, column, record);
  };
  /** make sure buf holds at least `need` bytes after pos (or EOF); false at EOF */
  function* fill(need: number): Gen<boolean> {
    while (buf.length - pos < need && !eof) {
      const chunk = Buffer.alloc(Math.max(chunkSize, need));
      const bytesRead = yield { buf: chunk, pos: bufBase + buf.length };
      if (bytesRead === 0) eof = true;
      buf = Buffer.concat([buf.subarray(pos), chunk.subarray(0, bytesRead)]);
      bufBase += pos;
      pos = 0;
      h.progress?.(bufBase, total);
    }
    return buf.length - pos >= need;
  }
  function* skipWs(): Gen<number> {
    for (;;) {
      while (pos < buf.length && isWs(buf[pos])) pos++;
      if (pos < buf.length) return buf[pos];
      if (!(yield* fill(1))) return -1;
    }
  }
  /** the complete value at pos, parsed; advances pos */
  function* readValue(record: string): Gen<unknown> {
    let need = 1;
    for (;;) {
      const e = scanValue(buf, pos, buf.length);
      if (e >= 0 && (e < buf.length || eof)) {
        const text = buf.toString('utf8', pos, e);
        const at = bufBase + pos;
        if (e === pos) return fail(`expected a value, found '${String.fromCharCode(buf[pos])}'`, at, record);
        pos = e;
        try {
          return JSON.parse(text);
        } catch (err) {
          // locate the fault: a Python-style NaN/Infinity token, else the parser's position, else the element start
          const bad = /([:[,]\s*)(-?(?:NaN|Infinity))(?=\s*[,\]}])/.exec(text) ?? /^(\s*)(-?(?:NaN|Infinity))$/.exec(text);
          const msg = (err as Error).message.split('\n')[0];
          const posm = /at position (\d+)/.exec(msg);
          const charOff = bad ? bad.index + bad[1].length : posm ? Number(posm[1]) : 0;
          const off = at + Buffer.byteLength(text.slice(0, charOff));
          const what = bad
            ? `invalid JSON value ${bad[2]} (not a finite number)`
            : `malformed JSON: ${msg.replace(/ in JSON at position \d+.*$/, '').replace(/, ".*" is not valid JSON$/, '')}`;
          return fail(what, off, record);
        }
      }
      if (eof) return fail('unexpected end of file', bufBase + buf.length, record);
      need = buf.length - pos + chunkSize;
      yield* fill(need);
    }
  }
  function* expect(ch: number, what: string, record?: string): Gen<void> {
    const c = yield* skipWs();
    if (c !== ch) fail(c < 0 ? `unexpected end of file, expected ${what}` : `expected ${what}, found '${String.fromCharCode(c)}'`, bufBase + pos, record);
    pos++;
  }
  /**
   * Complete elements from pos that are already in the buffer (up to BATCH_BYTES): their byte
   * range, count, where the next element starts (or the closing bracket, when `closed`).
   */
  function batch(): { start: number; end: number; count: number; next: number; closed: boolean } | null {
    let p = pos;
    let count = 0;
    let end = -1;
    let next = -1;
    let closed = false;
    while (p < buf.length && p - pos < BATCH_BYTES) {
      const e = scanValue(buf, p, buf.length);
      if (e <= p || e >= buf.length) break; // incomplete, empty, or a number that may continue
      let q = e;
      while (q < buf.length && isWs(buf[q])) q++;
      if (q >= buf.length) break;
      if (buf[q] === 0x2c) {
        q++;
        while (q < buf.length && isWs(buf[q])) q++;
        count++;
        end = e;
        next = q;
        p = q;
        continue;
      }
      if (buf[q] === 0x5d) {
        count++;
        end = e;
        next = q;
        closed = true;
      }
      break;
    }
    return count > 0 ? { start: pos, end, count, next, closed } : null;
  }

  function* streamArray(key: string): Gen<void> {
    yield* expect(0x5b, `'[' (the value of "${key}" must be an array)`);
    h.arrayStart?.(key);
    let index = 0;
    let c = yield* skipWs();
    if (c === 0x5d) {
      pos++;
      return;
    }
    // after a batch fails to parse, go element by element up to its end so the error is located
    let slowUntil = -1;
    for (;;) {
      if (c >= 0 && bufBase + pos >= slowUntil) {
        // fast path: the run of complete elements already in the buffer, parsed in one JSON.parse
        const b = batch();
        if (b) {
          let arr: unknown[] | null = null;
          try {
            arr = JSON.parse('[' + buf.toString('utf8', b.start, b.end) + ']') as unknown[];
          } catch {
            arr = null;
          }
          if (arr && arr.length === b.count) {
            for (const v of arr) h.element(key, v, index++);
            pos = b.next;
            if (b.closed) {
              pos++;
              return;
            }
            c = yield* skipWs();
            continue;
          }
          slowUntil = bufBase + b.end;
        }
      }
      const record = key ? `${key}[${index}]` : `record ${index}`;
      if (c < 0) fail('unexpected end of file', bufBase + pos, record);
      const value = yield* readValue(record);
      h.element(key, value, index++);
      c = yield* skipWs();
      if (c === 0x2c) {
        pos++;
        c = yield* skipWs();
        continue;
      }
      if (c === 0x5d) {
        pos++;
        return;
      }
      fail(c < 0 ? 'unexpected end of file' : `expected ',' or ']' after ${record}, found '${String.fromCharCode(c)}'`, bufBase + pos, record);
    }
  }

  {
    const first = yield* skipWs();
    if (first === 0x5b) {
      yield* streamArray('');
    } else if (first === 0x7b) {
      pos++;
      let c = yield* skipWs();
      if (c === 0x7d) pos++;
      else {
        for (;;) {
          if (c !== 0x22) fail('expected a key string', bufBase + pos);
          const key = (yield* readValue('key')) as string;
          yield* expect(0x3a, `':' after "${key}"`);
          yield* skipWs();
          if (h.arrayKeys?.has(key)) yield* streamArray(key);
          else {
            const v = yield* readValue(key);
            h.other?.(key, v);
          }
          c = yield* skipWs();
          if (c === 0x2c) {
            pos++;
            c = yield* skipWs();
            continue;
          }
          if (c === 0x7d) {
            pos++;
            break;
          }
          fail(c < 0 ? 'unexpected end of file' : `expected ',' or '}' after the value of "${key}"`, bufBase + pos);
        }
      }
    } else {
      fail(first < 0 ? 'empty file' : 'expected a JSON object or array', bufBase + pos);
    }
    const tail = yield* skipWs();
    if (tail >= 0) fail('unexpected data after the end of the JSON document', bufBase + pos);
  }
}

/**
 * Stream a JSON file that is either an array (key "" for its elements) or an object whose
 * `arrayKeys` hold arrays. Async: yields to the event loop between chunks.
 */
export async function streamJson(file: string, h: StreamHandlers): Promise<void> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const gen = parseJsonStream(file, (await fh.stat()).size, h);
    let r = gen.next();
    while (!r.done) {
      const { bytesRead } = await fh.read(r.value.buf, 0, r.value.buf.length, r.value.pos);
      r = gen.next(bytesRead);
    }
  } finally {
    await fh.close();
  }
}

/** The same, with synchronous reads. */
export function streamJsonSync(file: string, h: StreamHandlers): void {
  const fd = fs.openSync(file, 'r');
  try {
    const gen = parseJsonStream(file, fs.fstatSync(fd).size, h);
    let r = gen.next();
    while (!r.done) r = gen.next(fs.readSync(fd, r.value.buf, 0, r.value.buf.length, r.value.pos));
  } finally {
    fs.closeSync(fd);
  }
}
