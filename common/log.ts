/** Structured logs (pino) go to stderr, so stdout stays free for results and --json output. */
import pino from 'pino';

export const log = pino({ name: 'smnas', level: process.env.SMNAS_LOG_LEVEL ?? 'info' }, pino.destination({ fd: 2, sync: true }));
export type Logger = typeof log;
