import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs (pino). The CLI sends them to a file under _runs/<run_id>/ or to
 * stderr with --log-level; libraries take a Logger argument and never make their own.
 */
export function createLogger(opts: { level?: string; destination?: string | number } = {}): Logger {
  const level = opts.level ?? process.env.GENOLAKE_LOG_LEVEL ?? 'info';
  const dest = pino.destination({ dest: opts.destination ?? 2, sync: true, mkdir: true });
  return pino({ level, base: { app: 'genolake' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

/** A logger that drops everything: for tests and library callers that do not care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
