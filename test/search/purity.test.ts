/**
 * The search library runs inside Temporal's deterministic workflow sandbox: it may import only
 * zod and its own modules, and must not touch Node APIs, the clock or Math.random.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = path.join(__dirname, '..', '..', 'search');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));

test.each(files)('search/%s is pure', (f) => {
  const src = fs.readFileSync(path.join(dir, f), 'utf8');
  const imports = [...src.matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
  for (const i of imports) expect(i === 'zod' || i.startsWith('./') ? 'ok' : `${f} imports '${i}'`).toBe('ok');
  const code = src.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ''); // comments may mention what is forbidden
  for (const bad of [/\bprocess\./, /\brequire\(/, /Math\.random/, /\bDate\b/, /\bsetTimeout\b/, /\bperformance\./])
    expect(bad.test(code) ? `${f} uses ${bad}` : 'ok').toBe('ok');
});
