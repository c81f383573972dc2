// How every long-running collector command runs (`run`, an ingest node, `forward`): one machine-readable
// ready line on stdout (ports resolved, for scripts and tests using port 0), logs on stderr, SIGTERM and
// SIGINT stop cleanly (exit 0), a start failure exits 1, or 2 for a configuration problem.
import { EdgeflowError } from '../shared/errors.ts';
import type { Logger } from '../shared/log.ts';

const EXIT_CONFIG = 2;

export interface Service {
  /** What the ready line reports besides `ready: true` (listen addresses). */
  start(): Promise<object>;
  stop(): Promise<void>;
}

export async function serve(name: string, svc: Service, log: Logger): Promise<void> {
  try {
    const r = await svc.start();
    process.stdout.write(`${JSON.stringify({ ready: true, ...r })}\n`);
  } catch (err) {
    log.fatal({ err, code: (err as EdgeflowError).code }, `${name} failed to start`);
    log.flush?.();
    await svc.stop().catch(() => {});
    process.exit(err instanceof EdgeflowError && err.code.startsWith('CONFIG') ? EXIT_CONFIG : 1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    svc.stop().then(
      () => {
        log.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
