/** `smnas protocol export-schema`: writes the job file's JSON Schema for the native trainer and docs. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { parseFlags, str, type Command } from '../../common/cli';
import { PROJECT_ROOT } from '../../common/paths';
import { JobSchema } from '../../protocol/job';

export const command: Command = {
  summary: 'export the trainer job JSON Schema (protocol owned by protocol/job.ts)',
  help: `usage: smnas protocol export-schema [--out <file>]

Writes the JSON Schema of the trainer job file (protocol/job.ts) to
native/schema/job.schema.json (or --out).`,
  async main(argv) {
    const flags = parseFlags('smnas protocol', argv, { out: { type: 'string' } });
    if (flags.positionals[0] !== 'export-schema') {
      process.stderr.write(this.help + '\n');
      return 2;
    }
    const out = str(flags, 'out') ?? path.join(PROJECT_ROOT, 'native', 'schema', 'job.schema.json');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const schema = z.toJSONSchema(JobSchema, { io: 'input', unrepresentable: 'any' });
    fs.writeFileSync(out + '.tmp', JSON.stringify(schema, null, 2) + '\n');
    fs.renameSync(out + '.tmp', out);
    process.stdout.write(`${out}\n`);
    return 0;
  },
};
