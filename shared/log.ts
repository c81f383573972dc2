// JSON logs on stderr (pino), secrets redacted wherever they appear in a logged object.
import pino, { type Logger } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'token',
  '*.token',
  '*.*.password',
  '*.*.token',
  'authorization',
  '*.authorization',
];

export function createLogger(name: string, level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    { name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { name } },
    destination ?? pino.destination({ fd: 2, sync: false }),
  );
}

/** A silent logger for unit tests. */
export function nullLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Logs at most `perInterval` messages per key per interval and then one summary of how many were
 * suppressed, so a stream of bad frames can never flood the log (STYLE.md: bounded-rate logging).
 */
export class RateLimitedLog {
  private windows = new Map<string, { start: number; logged: number; suppressed: number }>();
  constructor(
    private readonly log: Logger,
    private readonly perInterval = 5,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  warn(key: string, obj: Record<string, unknown>, msg: string): void {
    const t = this.now();
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.intervalMs) {
      if (w && w.suppressed > 0)
        this.log.warn({ key, suppressed: w.suppressed }, `${key}: suppressed similar messages`);
      w = { start: t, logged: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (w.logged < this.perInterval) {
      w.logged++;
      this.log.warn(obj, msg);
    } else {
      w.suppressed++;
    }
  }
}
