/**
 * Every file in infra/ is checked here (a file no check covers fails the first test): Kubernetes
 * manifests parsed and cross-referenced (selectors, volumes, secrets, probe ports, GPU limits,
 * graceful-termination budget), the Temporal Helm values (PostgreSQL, mTLS), Dockerfiles linted
 * (pinned bases, multi-stage, non-root USER, no ADD of URLs, COPY sources that exist, health
 * check), systemd units (`systemd-analyze verify` plus their own rules), the env example, and
 * the local-cluster scripts (bash -n; certs.sh run for real and checked with openssl; up.sh fails
 * loudly without PostgreSQL). Nothing here needs a network, Docker or a Kubernetes cluster.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { safeLoadAll } from 'js-yaml';
import { PROJECT_ROOT } from '../../common/paths';
import { command as workerCommand } from '../../cli/commands/worker';

const INFRA = path.join(PROJECT_ROOT, 'infra');
const rel = (f: string) => path.relative(PROJECT_ROOT, f);
function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}
const ALL = walk(INFRA).map(rel).sort();
const YAMLS = ALL.filter((f) => /\.ya?ml$/.test(f));
const K8S = YAMLS.filter((f) => f.startsWith('infra/k8s/'));
const HELM = YAMLS.filter((f) => f.startsWith('infra/helm/'));
const DOCKERFILES = ALL.filter((f) => /(^|\/)Dockerfile(\.[a-z0-9]+)?$/.test(f));
const UNITS = ALL.filter((f) => /\.service$/.test(f));
const SCRIPTS = ALL.filter((f) => f.endsWith('.sh'));
const ENV_EXAMPLES = ALL.filter((f) => f.endsWith('.env.example'));

test('every file in infra/ has a check here', () => {
  const covered = new Set([...YAMLS, ...DOCKERFILES, ...UNITS, ...SCRIPTS, ...ENV_EXAMPLES]);
  expect(ALL.filter((f) => !covered.has(f))).toEqual([]);
  expect(K8S.length).toBeGreaterThan(0);
  expect(HELM.length).toBeGreaterThan(0);
  expect(DOCKERFILES.sort()).toEqual(['infra/docker/Dockerfile.control', 'infra/docker/Dockerfile.gpu']);
});

// ---------------------------------------------------------------- Kubernetes
type Obj = Record<string, any>;
const docsOf = (f: string) => safeLoadAll(fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8')).filter((d) => d !== null && d !== undefined) as Obj[];
/** Secrets a manifest expects to exist before it is applied: named in its header's `kubectl create secret` lines */
const externalSecrets = (f: string) => [...fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8').matchAll(/create secret \w+ ([a-z0-9-]+)/g)].map((m) => m[1]);
const workerFlags = [...workerCommand.help.matchAll(/--([a-z][a-z-]+)/g)].map((m) => m[1]);

describe.each(K8S)('%s', (file) => {
  const docs = docsOf(file);
  const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
  const names = (kind: string) => new Set(byKind(kind).map((d) => d.metadata.name));

  test('objects have apiVersion, kind, metadata.name, and one namespace', () => {
    expect(docs.length).toBeGreaterThan(0);
    for (const d of docs) {
      expect(typeof d.apiVersion).toBe('string');
      expect(typeof d.kind).toBe('string');
      expect(d.metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    const nss = new Set(docs.filter((d) => d.kind !== 'Namespace').map((d) => d.metadata.namespace));
    expect(nss.size).toBe(1);
    const ns = [...nss][0];
    if (names('Namespace').size) expect(names('Namespace').has(ns)).toBe(true);
  });

  test('deployments: selectors, images, volumes, secrets, config, probes, termination', () => {
    const secrets = new Set([...names('Secret'), ...externalSecrets(file)]);
    const deployments = byKind('Deployment');
    expect(deployments.length).toBeGreaterThan(0);
    for (const d of deployments) {
      const where = `${file} ${d.metadata.name}`;
      const spec = d.spec.template.spec;
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect([where, d.spec.template.metadata.labels[k]]).toEqual([where, v]);
      const volumes = new Map<string, Obj>(spec.volumes.map((v: Obj) => [v.name, v]));
      for (const v of volumes.values()) {
        if (v.persistentVolumeClaim) expect([where, names('PersistentVolumeClaim').has(v.persistentVolumeClaim.claimName)]).toEqual([where, true]);
        if (v.secret) expect([where, secrets.has(v.secret.secretName)]).toEqual([where, true]);
        if (v.configMap) expect([where, names('ConfigMap').has(v.configMap.name)]).toEqual([where, true]);
      }
      expect(spec.securityContext?.runAsNonRoot).toBe(true);
      for (const c of spec.containers) {
        expect(c.image).toMatch(/:[0-9][\w.-]*$/); // a version tag, never :latest
        for (const m of c.volumeMounts ?? []) expect([where, m.name, volumes.has(m.name)]).toEqual([where, m.name, true]);
        for (const e of c.envFrom ?? []) {
          if (e.configMapRef) expect(names('ConfigMap').has(e.configMapRef.name)).toBe(true);
          if (e.secretRef) expect(secrets.has(e.secretRef.name)).toBe(true);
        }
        // the worker's flags exist
        expect(c.args[0]).toBe('worker');
        for (const a of c.args.filter((x: string) => x.startsWith('--'))) expect([where, a, workerFlags.includes(a.slice(2))]).toEqual([where, a, true]);
        const queue = c.args[c.args.indexOf('--queue') + 1];
        expect(['control', 'gpu']).toContain(queue);
        // probes hit the worker's own health endpoint on a declared port
        const ports = new Map<string, number>((c.ports ?? []).map((p: Obj) => [p.name, p.containerPort]));
        for (const probe of ['livenessProbe', 'readinessProbe']) {
          const g = c[probe]?.httpGet;
          expect([where, probe, g?.path]).toEqual([where, probe, probe === 'livenessProbe' ? '/livez' : '/readyz']);
          expect(ports.has(g.port) || [...ports.values()].includes(g.port)).toBe(true);
        }
        // TLS files come from a mounted secret; the health port is the one the probes use
        const cfg = Object.assign(
          {},
          ...byKind('ConfigMap')
            .filter((m) => (c.envFrom ?? []).some((e: Obj) => e.configMapRef?.name === m.metadata.name))
            .map((m) => m.data),
        );
        for (const k of ['TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_CA']) {
          const mount = (c.volumeMounts ?? []).find((m: Obj) => cfg[k]?.startsWith(m.mountPath + '/'));
          expect([where, k, mount && volumes.get(mount.name)?.secret !== undefined]).toEqual([where, k, true]);
        }
        expect(Number(cfg.SMNAS_HEALTH_PORT)).toBe(ports.get('health'));
        expect(cfg.SMNAS_STATE).toBe((c.volumeMounts ?? []).find((m: Obj) => volumes.get(m.name)?.persistentVolumeClaim)?.mountPath);
        const grace = Number(c.args[c.args.indexOf('--shutdown-grace') + 1] ?? 15);
        // activities get --shutdown-grace, then the trainer its 10 s kill grace: the pod must outlive both
        expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(grace + 10 + 10);
        if (queue === 'gpu') {
          expect(Number(c.resources.limits['nvidia.com/gpu'])).toBeGreaterThanOrEqual(1);
          expect(c.args[c.args.indexOf('--gpus') + 1]).toBe('0');
        }
      }
    }
    // the artifact store is shared between pods and nodes
    for (const pvc of byKind('PersistentVolumeClaim')) expect(pvc.spec.accessModes).toContain('ReadWriteMany');
  });
});

// ---------------------------------------------------------------- Helm values (Temporal's chart)
describe.each(HELM)('%s', (file) => {
  test('PostgreSQL for persistence and visibility, mTLS, the smnas namespace', () => {
    const [v] = docsOf(file);
    const p = v.server.config.persistence;
    for (const store of [p.defaultStore, p.visibilityStore]) {
      const sql = p.datastores[store].sql;
      expect(sql.pluginName).toBe('postgres12');
      expect(sql.existingSecret ?? sql.password).toBeTruthy();
      expect(sql.maxConns).toBeGreaterThan(0);
    }
    expect(Number.isInteger(Math.log2(p.numHistoryShards))).toBe(true);
    expect(v.server.tls.frontend).toMatchObject({ enabled: true, requireClientAuth: true });
    expect(v.server.tls.internode.enabled).toBe(true);
    expect(v.web.tls.enabled).toBe(true);
    expect(v.server.config.namespaces.namespace.map((n: Obj) => n.name)).toContain('smnas');
    for (const off of ['cassandra', 'mysql', 'elasticsearch']) expect(v[off].enabled).toBe(false);
    // the workers' manifest points at this cluster's frontend and namespace
    const cfg = K8S.flatMap(docsOf).find((d) => d.kind === 'ConfigMap' && d.data?.TEMPORAL_ADDRESS)!.data;
    expect(cfg.TEMPORAL_NAMESPACE).toBe('smnas');
    expect(cfg.TEMPORAL_TLS_SERVER_NAME).toBe(v.server.tls.frontend.serverName);
  });
});

// ---------------------------------------------------------------- Dockerfiles
describe.each(DOCKERFILES)('%s', (file) => {
  const text = fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = new Map(lines.filter((l) => /^ARG \w+=/.test(l)).map((l) => l.slice(4).split('=', 2) as [string, string]));
  const froms = lines.filter((l) => l.startsWith('FROM '));
  const stages = new Set(froms.map((l) => / AS (\S+)/i.exec(l)?.[1]).filter(Boolean));

  test('multi-stage, every base pinned to a version, no ADD of URLs, no latest', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) {
      let image = f.split(/\s+/)[1];
      image = image.replace(/^\$\{(\w+)\}$/, (_, a) => args.get(a) ?? `<unset ARG ${a}>`);
      if (stages.has(image)) continue; // an earlier stage
      expect([f, image]).toEqual([f, expect.stringMatching(/^[\w./-]+:\d[\w.-]*(@sha256:[0-9a-f]{64})?$/)]);
    }
    expect(lines.filter((l) => /^ADD\s+.*https?:\/\//i.test(l))).toEqual([]);
    expect(text).not.toMatch(/:latest\b/);
  });

  test('final stage runs as a non-root user, with a health check on the worker endpoint', () => {
    const last = lines.slice(lines.lastIndexOf(froms[froms.length - 1]));
    const user = last.filter((l) => l.startsWith('USER ')).pop();
    expect(user).toBeDefined();
    expect(user!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(last.some((l) => l.startsWith('HEALTHCHECK') && l.includes('/livez'))).toBe(true);
    expect(last.some((l) => l.startsWith('ENTRYPOINT') && l.includes('dist/cli/smnas.js'))).toBe(true);
  });

  test('COPY sources from the build context exist and are not excluded by .dockerignore', () => {
    const ignore = fs
      .readFileSync(path.join(PROJECT_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignore).toEqual(expect.arrayContaining(['.git', 'node_modules', 'dist', 'native/build', '.state']));
    for (const l of lines.filter((x) => /^COPY /.test(x) && !/--from=/.test(x))) {
      const parts = l
        .split(/\s+/)
        .slice(1)
        .filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        expect([l, fs.existsSync(path.join(PROJECT_ROOT, src))]).toEqual([l, true]);
        expect([l, ignore.includes(src)]).toEqual([l, false]);
      }
    }
  });
});

// ---------------------------------------------------------------- systemd units
describe('systemd units', () => {
  test('sections, keys, worker flags, stop timeout against the shutdown grace', () => {
    expect(UNITS.length).toBeGreaterThanOrEqual(2);
    for (const f of UNITS) {
      const text = fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8');
      const sections = [...text.matchAll(/^\[(\w+)\]$/gm)].map((m) => m[1]);
      expect([f, sections]).toEqual([f, ['Unit', 'Service', 'Install']]);
      const kv = new Map([...text.matchAll(/^(\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
      const exec = kv.get('ExecStart')!.split(/\s+/);
      expect(exec.slice(1, 2)).toEqual(['worker']);
      for (const a of exec.filter((x) => x.startsWith('--'))) expect([f, a, workerFlags.includes(a.slice(2))]).toEqual([f, a, true]);
      const grace = Number(exec[exec.indexOf('--shutdown-grace') + 1] ?? 15);
      expect(Number(kv.get('TimeoutStopSec'))).toBeGreaterThanOrEqual(grace + 10 + 10);
      expect(kv.get('User')).toBe('smnas');
      expect(kv.get('RequiresMountsFor')).toBe('/shared/smnas');
    }
  });

  const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
  test(`systemd-analyze verify ${analyze ? '' : '(not installed here: the rules above only)'}`, () => {
    if (!analyze) return;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-units-'));
    try {
      const files: string[] = [];
      for (const f of UNITS) {
        // the units name the install location; verify against a program that exists here
        const text = fs.readFileSync(path.join(PROJECT_ROOT, f), 'utf8').replace(/\/opt\/smnas\/bin\/smnas/g, '/bin/true');
        const name = path.basename(f).replace('@.service', '@0.service');
        fs.writeFileSync(path.join(dir, name), text);
        files.push(path.join(dir, name));
      }
      const r = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
      expect([r.status, (r.stdout + r.stderr).trim()]).toEqual([0, '']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------- env example, scripts
test.each(ENV_EXAMPLES)('%s: only settings the workers read', (file) => {
  const keys = [...fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8').matchAll(/^#?([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
  // read by the code (worker/, common/, cli/, activities/) and documented in docs/runtime.md
  const code = ['worker', 'common', 'cli', 'activities']
    .flatMap((d) => walk(path.join(PROJECT_ROOT, d)).filter((f) => f.endsWith('.ts')))
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
  const docs = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'runtime.md'), 'utf8');
  expect(keys.length).toBeGreaterThan(5);
  for (const k of keys) expect([k, code.includes(k), docs.includes(k)]).toEqual([k, true, true]);
});

test.each(SCRIPTS)('%s: bash -n', (file) => {
  execFileSync('bash', ['-n', path.join(PROJECT_ROOT, file)]);
});

test('certs.sh: a CA, a server certificate for localhost and the cluster names, client certificates; idempotent', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-certs-'));
  try {
    const certs = path.join(dir, 'tls');
    execFileSync('bash', [path.join(INFRA, 'local', 'certs.sh'), certs, 'control', 'gpu-0'], { stdio: 'pipe' });
    const ca = path.join(certs, 'ca.pem');
    for (const n of ['server', 'control', 'gpu-0']) {
      expect(execFileSync('openssl', ['verify', '-CAfile', ca, path.join(certs, `${n}.pem`)], { encoding: 'utf8' })).toContain(': OK');
      expect(fs.statSync(path.join(certs, `${n}.key`)).mode & 0o077).toBe(0);
    }
    const server = execFileSync('openssl', ['x509', '-in', path.join(certs, 'server.pem'), '-noout', '-ext', 'subjectAltName,extendedKeyUsage'], {
      encoding: 'utf8',
    });
    expect(server).toContain('DNS:localhost');
    expect(server).toContain('IP Address:127.0.0.1');
    expect(server).toContain('DNS:temporal-frontend');
    expect(server).toContain('TLS Web Client Authentication'); // internode: the services dial each other with it
    const client = execFileSync('openssl', ['x509', '-in', path.join(certs, 'gpu-0.pem'), '-noout', '-subject', '-ext', 'extendedKeyUsage'], {
      encoding: 'utf8',
    });
    expect(client).toContain('CN = smnas-gpu-0');
    expect(client).not.toContain('Server Authentication');
    const before = fs.readFileSync(path.join(certs, 'control.pem'), 'utf8');
    execFileSync('bash', [path.join(INFRA, 'local', 'certs.sh'), certs, 'control', 'gpu-1'], { stdio: 'pipe' });
    expect(fs.readFileSync(path.join(certs, 'control.pem'), 'utf8')).toBe(before);
    expect(fs.existsSync(path.join(certs, 'gpu-1.pem'))).toBe(true);
    const bad = spawnSync('bash', [path.join(INFRA, 'local', 'certs.sh'), certs, 'Bad_Name'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('up.sh fails loudly when PostgreSQL is missing (before building or starting anything)', () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'smnas-up-'));
  try {
    const r = spawnSync('bash', [path.join(INFRA, 'local', 'up.sh')], {
      encoding: 'utf8',
      env: { ...process.env, SMNAS_PG_BIN: path.join(state, 'no-postgres'), SMNAS_INFRA_STATE: state },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('PostgreSQL 15 server not found');
    expect(fs.readdirSync(state)).toEqual([]);
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
});
