// A deadline kept from a second thread, for the two moments the agent bets on something new: an update's
// trial (agent/update/updater.ts, issue 16) and a pushed configuration waiting to prove healthy
// (agent/fleet/controller.ts, issue 15). Both roll back with a timer on the main event loop when health
// does not come within the deadline; a new binary or configuration that hangs that loop (a busy loop, a
// synchronous wait) would never fire it and leave the gateway alive but deaf, forever. This thread
// sleeps in Atomics.wait until the deadline plus a grace period; if the main thread has not settled by
// then, it SIGKILLs the process. The service manager restarts it and the death counts like a crash:
// the update guard / install.ts recover() put the previous binary back after MAX_TRIAL_STARTS, the fleet
// controller starts on the last-known-good after `fleet.crashRetries`.
//
// The worker is inline source (eval), not a module file: the single executable has no file to point
// at. It exists only while something is on trial (a few MB for at most the deadline).
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

export class HangWatchdog {
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
   * The main thread decided (commit or roll back, or a clean stop). False when the watchdog already fired:
   * the process is being killed and the caller must not record a decision.
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

/** What the fleet controller and the updater hold: settle() as above. */
export type Watchdog = Pick<HangWatchdog, 'settle'>;
