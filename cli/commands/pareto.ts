/** `smnas pareto <file>`: Pareto fronts (minimise cost, maximise score) of a results file. */
import * as fs from 'node:fs';
import { z } from 'zod';
import { bool, parseFlags, printJson, str, type Command } from '../../common/cli';
import { UserError, describeZodError } from '../../common/errors';
import { log } from '../../common/log';
import { ProgressBar } from '../../common/progress';
import { crowdingDistance, nonDominatedSort } from '../../search/pareto';

const HELP = `usage: smnas pareto <file|-> [--cost-key K] [--score-key K] [--id-key K] [--json]

Reads a JSON array, or JSON lines (one object per line; blank lines skipped), of records with an
id, a cost (minimised) and a score (maximised); default keys id, cost, map. Ties and exact
duplicates share a rank. O(N log N): a million records take about a second.

  --json   print {"fronts": [[ids of rank 0], [ids of rank 1], ...]}
           (each front ordered by cost ascending)
  default  a table of the Pareto front (rank 0) with crowding distances

Bad input (unreadable file, bad JSON line, a missing key, a non-numeric or non-finite value)
exits non-zero with one line naming the file, line and field.`;

interface Row {
  id: string | number;
  cost: number;
  score: number;
}

/** Parse + validate the records; errors name file:line (JSON lines) or file: record N (array). */
export function readRecords(file: string, text: string, keys: { id: string; cost: string; score: string }): Row[] {
  const num = z.number({
    error: (iss) =>
      iss.input === undefined ? 'missing' : `must be a finite number, got ${typeof iss.input === 'number' ? String(iss.input) : JSON.stringify(iss.input)}`,
  });
  const schema = z.object({
    [keys.id]: z.union([z.string(), z.number()], { error: (iss) => (iss.input === undefined ? 'missing' : 'must be a string or a number') }),
    [keys.cost]: num,
    [keys.score]: num,
  });
  const rows: Row[] = [];
  const take = (rec: unknown, where: string) => {
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec))
      throw new UserError(`${where}: expected a JSON object with keys ${keys.id}, ${keys.cost}, ${keys.score}`);
    const r = schema.safeParse(rec);
    if (!r.success) throw new UserError(describeZodError(where, r.error));
    const o = r.data as Record<string, unknown>;
    rows.push({ id: o[keys.id] as string | number, cost: o[keys.cost] as number, score: o[keys.score] as number });
  };
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let arr: unknown;
    try {
      arr = JSON.parse(text);
    } catch (e) {
      throw new UserError(`${file}: bad JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(arr)) throw new UserError(`${file}: expected a JSON array of records`);
    arr.forEach((rec, i) => take(rec, `${file}: record ${i + 1}`));
    return rows;
  }
  const lines = text.split('\n');
  const bar = lines.length > 200000 ? new ProgressBar('reading', lines.length) : undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (bar && i % 50000 === 0) bar.update(i);
    if (line === '') continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new UserError(`${file}:${i + 1}: bad JSON line: ${(e as Error).message}`);
    }
    take(rec, `${file}:${i + 1}`);
  }
  bar?.done();
  return rows;
}

export const command: Command = {
  summary: 'Pareto fronts (min cost, max score) of a JSON / JSON-lines results file',
  help: HELP,
  async main(argv) {
    const cmd = 'smnas pareto';
    const flags = parseFlags(cmd, argv, {
      'cost-key': { type: 'string' },
      'score-key': { type: 'string' },
      'id-key': { type: 'string' },
      json: { type: 'boolean' },
    });
    const file = flags.positionals[0];
    if (file === undefined) throw new UserError(`${cmd}: give a results file (JSON array or JSON lines), or - for stdin`);
    if (flags.positionals.length > 1) throw new UserError(`${cmd}: one file at a time, got ${flags.positionals.length}`);
    const keys = { id: str(flags, 'id-key') ?? 'id', cost: str(flags, 'cost-key') ?? 'cost', score: str(flags, 'score-key') ?? 'map' };
    let text: string;
    try {
      text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (e) {
      throw new UserError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const rows = readRecords(file === '-' ? '<stdin>' : file, text, keys);
    const t0 = Date.now();
    const { fronts } = nonDominatedSort(rows);
    log.debug({ records: rows.length, fronts: fronts.length, ms: Date.now() - t0 }, 'sorted');
    if (bool(flags, 'json')) {
      printJson({ fronts: fronts.map((f) => f.map((i) => rows[i].id)) });
      return 0;
    }
    const front = fronts[0] ?? [];
    const crowd = crowdingDistance(rows, front);
    const table = [
      ['rank', keys.id, keys.cost, keys.score, 'crowding'],
      ...front.map((i, k) => ['0', String(rows[i].id), String(rows[i].cost), String(rows[i].score), crowd[k] === Infinity ? 'inf' : crowd[k].toFixed(4)]),
    ];
    const w = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
    process.stdout.write(`${rows.length} records, ${fronts.length} fronts; Pareto front (${front.length}):\n`);
    process.stdout.write(table.map((r) => r.map((x, c) => (c === 1 ? x.padEnd(w[c]) : x.padStart(w[c]))).join('  ')).join('\n') + '\n');
    return 0;
  },
};
