/**
 * How workers and the CLI reach a Temporal cluster: the local dev server by default, or a
 * production cluster / Temporal Cloud through flags or the environment. The environment names
 * are the Temporal CLI's own (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_TLS_CERT,
 * TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA, TEMPORAL_TLS_SERVER_NAME, TEMPORAL_API_KEY), so one
 * environment file serves both `temporal` and `bin/smnas`. Flags win over the environment.
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import type { FlagSpec, ParsedFlags } from '../common/cli';
import { describeZodError, UserError } from '../common/errors';

export const DEFAULT_ADDRESS = 'localhost:7233';
export const DEFAULT_NAMESPACE = 'default';

export const ConnectionSettingsSchema = z
  .object({
    address: z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port'),
    namespace: z.string().min(1),
    /** TLS on without client certificates (e.g. an API key against Temporal Cloud) */
    tls: z.boolean(),
    tlsCertFile: z.string().min(1).optional(),
    tlsKeyFile: z.string().min(1).optional(),
    tlsCaFile: z.string().min(1).optional(),
    tlsServerName: z.string().min(1).optional(),
    apiKey: z.string().min(1).optional(),
  })
  .refine((s) => Boolean(s.tlsCertFile) === Boolean(s.tlsKeyFile), {
    message: 'a TLS client certificate needs both --tls-cert and --tls-key',
    path: ['tlsKeyFile'],
  });
export type ConnectionSettings = z.infer<typeof ConnectionSettingsSchema>;

/** The connection flags every command that talks to Temporal accepts. */
export const CONNECTION_FLAGS: FlagSpec = {
  address: { type: 'string' },
  namespace: { type: 'string' },
  tls: { type: 'boolean' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-server-name': { type: 'string' },
  'api-key': { type: 'string' },
};

export const CONNECTION_HELP = `connection (flags win over the environment):
  --address host:port        TEMPORAL_ADDRESS     (default ${DEFAULT_ADDRESS})
  --namespace name           TEMPORAL_NAMESPACE   (default ${DEFAULT_NAMESPACE})
  --tls                      TEMPORAL_TLS=true    TLS without client certificates
  --tls-cert file            TEMPORAL_TLS_CERT    client certificate (PEM; implies TLS)
  --tls-key file             TEMPORAL_TLS_KEY     its private key
  --tls-ca file              TEMPORAL_TLS_CA      CA bundle of the server
  --tls-server-name name     TEMPORAL_TLS_SERVER_NAME
  --api-key key              TEMPORAL_API_KEY     (implies TLS, as Temporal Cloud requires)`;

/** Pure: settings from parsed flags and an environment. Throws UserError naming the bad field. */
export function resolveConnectionSettings(flags: ParsedFlags | undefined, env: NodeJS.ProcessEnv): ConnectionSettings {
  const flag = (name: string): string | undefined => {
    const v = flags?.values[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const envStr = (name: string): string | undefined => (env[name] ? env[name] : undefined);
  const envTls = envStr('TEMPORAL_TLS');
  const raw = {
    address: flag('address') ?? envStr('TEMPORAL_ADDRESS') ?? DEFAULT_ADDRESS,
    namespace: flag('namespace') ?? envStr('TEMPORAL_NAMESPACE') ?? DEFAULT_NAMESPACE,
    tls: flags?.values.tls === true || envTls === 'true' || envTls === '1',
    tlsCertFile: flag('tls-cert') ?? envStr('TEMPORAL_TLS_CERT'),
    tlsKeyFile: flag('tls-key') ?? envStr('TEMPORAL_TLS_KEY'),
    tlsCaFile: flag('tls-ca') ?? envStr('TEMPORAL_TLS_CA'),
    tlsServerName: flag('tls-server-name') ?? envStr('TEMPORAL_TLS_SERVER_NAME'),
    apiKey: flag('api-key') ?? envStr('TEMPORAL_API_KEY'),
  };
  const r = ConnectionSettingsSchema.safeParse(raw);
  if (!r.success) throw new UserError(describeZodError('connection settings', r.error));
  return r.data;
}

/** TLS config for the SDK's connection options (reads the PEM files; errors name the file). */
export function tlsOptions(s: ConnectionSettings) {
  const wantsTls = s.tls || s.apiKey !== undefined || s.tlsCertFile !== undefined || s.tlsCaFile !== undefined;
  if (!wantsTls) return undefined;
  const read = (what: string, file?: string) => {
    if (!file) return undefined;
    try {
      return fs.readFileSync(file);
    } catch (e) {
      throw new UserError(`${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const crt = read('TLS client certificate', s.tlsCertFile);
  const key = read('TLS client key', s.tlsKeyFile);
  return {
    ...(crt && key ? { clientCertPair: { crt, key } } : {}),
    ...(s.tlsCaFile ? { serverRootCACertificate: read('TLS CA file', s.tlsCaFile) } : {}),
    ...(s.tlsServerName ? { serverNameOverride: s.tlsServerName } : {}),
  };
}

/** Options for NativeConnection.connect (workers) and Connection.connect (clients): same shape. */
export function connectOptions(s: ConnectionSettings) {
  const tls = tlsOptions(s);
  return {
    address: s.address,
    ...(tls ? { tls } : {}),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
  };
}

/** A client of the configured cluster, with a clear error when nothing answers. */
export async function connectClient(s: ConnectionSettings) {
  const { Client, Connection } = await import('@temporalio/client');
  try {
    const connection = await Connection.connect({ ...connectOptions(s), connectTimeout: 5000 });
    return new Client({ connection, namespace: s.namespace });
  } catch (e) {
    throw new UserError(
      `cannot reach Temporal at ${s.address} (${(e as Error).message.split('\n')[0]}); start it with 'bin/smnas dev' or set --address / TEMPORAL_ADDRESS`,
    );
  }
}
