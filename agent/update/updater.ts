// The agent's updater (issue 16): compares `update.version` with the running version on start and on
// every reload, downloads and verifies the wanted release (download.ts), installs it (install.ts) and
// asks for a restart through the service manager (exit 75); on the first start of a new binary it
// watches health until `update.healthDeadline` and commits, or rolls back and restarts into the
// previous binary. Its report goes into the agent's status as `update` (shared/release.ts).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parsePublicKey } from '../../shared/fleet.ts';
import type { Logger } from '../../shared/log.ts';
import type { ReleaseArch, UpdateReport, UpdateState } from '../../shared/release.ts';
import { HangWatchdog, watchdogGrace } from '../runtime/hang-watchdog.ts';
import type { AgentHealth } from '../runtime/status.ts';
import type { UpdateConfig } from './config.ts';
import { downloadRelease } from './download.ts';
import {
  commit,
  type DiskState,
  EXIT_RESTART_FOR_UPDATE,
  install,
  readDiskState,
  recover,
  rollback,
  type SwapPaths,
  swapPaths,
} from './install.ts';

/**
 * Healthy = every source open, the uplink connected (when configured) and a checkpoint cycle completed
 * without failing. `missing` says what is not there yet (the rollback reason). Reads the runtime's
 * health view (agent/runtime/status.ts): plain fields, no engine walk, cheap to poll during a trial.
 */
export function healthOf(h: AgentHealth): { ok: boolean; missing: string[] } {
  const missing: string[] = [];
  for (const s of h.sources) if (!s.open) missing.push(`source ${s.name} not open`);
  if (h.uplinkConnected === false) missing.push('uplink not connected');
  if (h.lastCheckpointAt === null || h.checkpointFailing > 0) missing.push('no checkpoint written');
  return { ok: missing.length === 0, missing };
}

export interface UpdaterDeps {
  log: Logger;
  /** The running agent's version. */
  version: string;
  dataDir: string;
  uplink?: { username?: string; passwordFile?: string; ca?: string };
  health: () => { ok: boolean; missing: string[] };
  /** Stop the agent cleanly and exit with this code (75: restart into the swapped binary). */
  restart: (code: number, why: string) => void;
  now?: () => number;
  arch?: ReleaseArch;
  /** How often the trial checks health (default 500 ms). */
  healthPollMs?: number;
}

/** The executable to swap: update.binary, or this process's when it is the single executable. */
export function defaultBinary(): string | undefined {
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  const sea = get?.call(process, 'node:sea') as { isSea?: () => boolean } | undefined;
  return sea?.isSea?.() ? process.execPath : undefined;
}

export class Updater {
  private cfg: UpdateConfig;
  private readonly deps: UpdaterDeps;
  private readonly now: () => number;
  private readonly paths: SwapPaths | null;
  private report: UpdateReport;
  private trial: { timer: NodeJS.Timeout; poll: NodeJS.Timeout; watchdog: HangWatchdog } | null = null;
  private retry: NodeJS.Timeout | null = null;
  private busy: Promise<void> | null = null;
  private abort = new AbortController();
  private stopped = false;

  constructor(cfg: UpdateConfig, deps: UpdaterDeps) {
    this.cfg = cfg;
    this.deps = deps;
    this.now = deps.now ?? Date.now;
    const binary = cfg.binary ?? defaultBinary();
    this.paths = binary ? swapPaths(binary) : null;
    this.report = { running: deps.version, wanted: cfg.version, state: 'idle', at: this.now() };
  }

  /** `update` for the status. */
  status(): UpdateReport {
    return this.report;
  }

  private set(state: UpdateState, reason?: string, extra: Partial<UpdateReport> = {}): void {
    this.report = {
      running: this.deps.version,
      wanted: this.cfg.version,
      state,
      // The collector refuses a status whose update.reason is over 1024 characters (shared/release.ts).
      ...(reason ? { reason: reason.slice(0, 1000) } : {}),
      ...extra,
      at: this.now(),
    };
  }

  /**
   * Before the agent starts: finish what a power loss interrupted. Returns false when this process must
   * not start the agent but restart (into the binary now at update.binary).
   */
  boot(): boolean {
    if (!this.paths) return true;
    const r = recover(this.paths, this.deps.version, this.now);
    if (r.action === 'restart') {
      this.deps.log.warn({ state: r.state }, 'update: restarting into the installed binary');
      this.deps.restart(
        EXIT_RESTART_FOR_UPDATE,
        r.state.phase === 'rolled_back' ? 'rolled back' : 'swap finished',
      );
      return false;
    }
    this.fromDisk(r.state);
    // The deadline runs from the process start, not from a successful agent start: a new binary whose
    // agent never finishes starting must be rolled back too.
    if (r.action === 'trial') this.startTrial(r.state);
    return true;
  }

  private fromDisk(s: DiskState | null): void {
    if (!s) return;
    if (s.phase === 'rolled_back' && s.to === this.cfg.version) this.set('rolled_back', s.reason);
    else if (s.phase === 'committed' && s.to === this.deps.version) this.set('committed');
    else if (s.phase === 'trial' && s.to === this.deps.version) this.set('trial');
  }

  /** After the agent started: a trial watches health; otherwise compare versions. */
  start(): void {
    if (!this.trial) this.check();
  }

  /** The agent's health, or not healthy while it is not there yet. */
  private health(): { ok: boolean; missing: string[] } {
    try {
      return this.deps.health();
    } catch {
      return { ok: false, missing: ['agent not started'] };
    }
  }

  reload(cfg: UpdateConfig | undefined): void {
    if (!cfg) return;
    const changed = cfg.version !== this.cfg.version;
    this.cfg = cfg;
    this.report = { ...this.report, wanted: cfg.version };
    if (changed && !this.trial) this.check();
  }

  stop(): void {
    this.stopped = true;
    this.abort.abort();
    if (this.trial) {
      clearTimeout(this.trial.timer);
      clearInterval(this.trial.poll);
      this.trial.watchdog.settle(); // a stop ends this process; the next start counts the trial again
      this.trial = null;
    }
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }

  private startTrial(s: DiskState): void {
    const log = this.deps.log;
    this.set('trial');
    log.info({ from: s.from, to: s.to, deadlineMs: this.cfg.healthDeadline }, 'update: trial start');
    /** Ends the trial here; false when the watchdog thread got there first (the process is being killed). */
    const finish = (): boolean => {
      if (!this.trial) return false;
      clearTimeout(this.trial.timer);
      clearInterval(this.trial.poll);
      const won = this.trial.watchdog.settle();
      this.trial = null;
      return won;
    };
    // A hung main thread cannot run the timer below; this thread kills the process then (runtime/hang-watchdog.ts).
    const watchdog = new HangWatchdog(
      this.cfg.healthDeadline + watchdogGrace(this.cfg.healthDeadline),
      (err) =>
        log.warn(
          { err: err.message },
          'update: trial watchdog thread failed; only the main thread keeps the deadline',
        ),
    );
    const poll = setInterval(() => {
      if (!this.health().ok || !this.paths) return;
      if (!finish()) return;
      commit(this.paths, this.now);
      this.set('committed');
      log.info({ from: s.from, version: s.to }, 'update: healthy, committed');
    }, this.deps.healthPollMs ?? 500);
    const timer = setTimeout(() => {
      if (!this.paths) return;
      if (!finish()) return;
      const h = this.health();
      const reason = `not healthy within ${Number((this.cfg.healthDeadline / 1000).toFixed(1))}s: ${h.missing.join(', ')}`;
      rollback(this.paths, reason, this.now);
      this.set('rolled_back', reason);
      log.error({ from: s.from, to: s.to, reason }, 'update: rolled back');
      this.deps.restart(EXIT_RESTART_FOR_UPDATE, 'rolled back');
    }, this.cfg.healthDeadline);
    this.trial = { timer, poll, watchdog };
  }

  /** Wanted ≠ running: download, verify, install, restart. One at a time. */
  private check(): void {
    if (this.stopped || this.busy) return;
    const wanted = this.cfg.version;
    if (!wanted || wanted === this.deps.version) {
      if (this.report.state !== 'committed') this.set('idle');
      return;
    }
    const disk = this.paths ? readDiskState(this.paths) : null;
    if (disk?.phase === 'rolled_back' && disk.to === wanted) {
      // Tried and failed health: not again until another version is wanted (docs/updates.md).
      this.set('rolled_back', disk.reason);
      return;
    }
    const refusedFile = join(this.dir(), wanted, 'refused');
    if (existsSync(refusedFile)) {
      this.set('refused', readFileSync(refusedFile, 'utf8'));
      return;
    }
    if (!this.paths) {
      this.set('failed', 'update.binary is not set and this agent is not running as a single executable');
      return;
    }
    this.busy = this.run(wanted, this.paths).finally(() => {
      this.busy = null;
    });
  }

  private dir(): string {
    return join(this.deps.dataDir, 'update');
  }

  private async run(wanted: string, paths: SwapPaths): Promise<void> {
    const log = this.deps.log;
    const c = this.cfg;
    try {
      const publicKey = parsePublicKey(readFileSync(c.publicKeyFile));
      const username = c.username ?? this.deps.uplink?.username;
      const pwFile = c.passwordFile ?? this.deps.uplink?.passwordFile;
      const password = pwFile ? readFileSync(pwFile, 'utf8').trim() : undefined;
      const caFile = c.ca ?? this.deps.uplink?.ca;
      const ca = caFile && c.url.startsWith('https:') ? readFileSync(caFile) : undefined;
      this.set('downloading', undefined, { bytes: 0 });
      log.info({ wanted, running: this.deps.version }, 'update: downloading');
      const res = await downloadRelease({
        url: c.url,
        version: wanted,
        arch: this.deps.arch ?? (process.arch === 'arm64' ? 'arm64' : 'x64'),
        username,
        password,
        publicKey,
        ca,
        dir: this.dir(),
        budgetBytes: c.budgetBytes,
        bandwidth: c.bandwidth,
        signal: this.abort.signal,
        onProgress: (bytes) => {
          this.report = { ...this.report, bytes };
        },
      });
      if (this.stopped || this.cfg.version !== wanted) return;
      if (!res.ok) {
        if (res.refused) {
          mkdirSync(join(this.dir(), wanted), { recursive: true });
          writeFileSync(join(this.dir(), wanted, 'refused'), res.reason);
          this.set('refused', res.reason);
          log.error({ wanted, reason: res.reason }, 'update: release refused');
          return;
        }
        this.set('failed', res.reason);
        log.warn({ wanted, reason: res.reason, retryMs: c.retryInterval }, 'update: download failed');
        this.retry = setTimeout(() => {
          this.retry = null;
          this.check();
        }, c.retryInterval);
        return;
      }
      this.set('verified');
      mkdirSync(dirname(paths.binary), { recursive: true });
      install(paths, res.file, { from: this.deps.version, to: res.manifest.version, now: this.now });
      log.info({ from: this.deps.version, to: wanted }, 'update: installed; restarting into it');
      this.deps.restart(EXIT_RESTART_FOR_UPDATE, `update to ${wanted}`);
    } catch (err) {
      if (this.stopped) return;
      const reason = (err as Error).message;
      this.set('failed', reason);
      log.error({ err, wanted }, 'update failed');
      this.retry = setTimeout(() => {
        this.retry = null;
        this.check();
      }, c.retryInterval);
    }
  }
}
