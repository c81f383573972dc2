// The trial's deadline enforced from a second thread (issue 16). updater.ts rolls a new binary back when
// it is not healthy within update.healthDeadline, with a timer on the main event loop; a binary that
// hangs that loop (a busy loop, a synchronous wait) would never fire it and stay in trial, answering
// nothing, forever. This thread sleeps in Atomics.wait until the deadline plus a grace period; if the
// main thread has not settled the trial by then (committed or rolled back), it SIGKILLs the process.
// The service manager restarts it and the start is counted like a crash (install.ts recover(), the
// systemd guard): after MAX_TRIAL_STARTS such starts the previous binary is put back.
//
// The worker is inline source (eval), not a module file: the single executable has no file to point
// at. It exists only during a trial (a few MB for at most the deadline), not in normal operation.
import { Worker } from 'node:worker_threads';

const WATCHDOG_SOURCE = `
const { workerData } = require('node:worker_threads');
const state = new Int32Array(workerData.state);
// Returns 'timed-out' at the deadline, or earlier when the main thread settles (notify).
if (Atomics.wait(state, 0, 0, workerData.ms) === 'timed-out' && Atomics.compareExchange(state, 0, 0, 2) === 0)
  process.kill(process.pid, 'SIGKILL');
`;

const OPEN = 0;
const SETTLED = 1;

export class TrialWatchdog {
  private readonly state = new Int32Array(new SharedArrayBuffer(4));
  private worker: Worker | null;

  /** Fires `ms` from now unless settle() is called first. */
  constructor(ms: number, onError: (err: Error) => void) {
    this.worker = new Worker(WATCHDOG_SOURCE, {
      eval: true,
      workerData: { state: this.state.buffer, ms },
      execArgv: [], // nothing of the agent's flags or loaders: the source above needs none
      stdout: false,
      stderr: false,
    });
    // A watchdog that cannot run (no memory for a thread) leaves the deadline to the main thread's timer.
    this.worker.on('error', onError);
    this.worker.unref(); // never keeps the process alive
  }

  /**
   * The main thread decides the trial (commit or roll back). False when the watchdog already fired: the
   * process is being killed and the caller must not act on the trial.
   */
  settle(): boolean {
    const won = Atomics.compareExchange(this.state, 0, OPEN, SETTLED) === OPEN;
    Atomics.notify(this.state, 0);
    void this.worker?.terminate();
    this.worker = null;
    return won;
  }
}

/** Time past the health deadline before the watchdog fires: the main thread's own timer goes first. */
export function watchdogGrace(healthDeadlineMs: number): number {
  return Math.max(5_000, Math.round(healthDeadlineMs * 0.25));
}
