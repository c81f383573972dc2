// The agent side of fleet control (issue 15 capabilities 2-4): takes signed desired-state documents from
// the downlink, applies them through the reload path, watches health for `fleet.healthDeadline`, keeps
// the last-known-good, rolls back, and reports each transition in the status at once.
//
//   downlink payload ─▶ verify (pinned key) ─▶ version > seen ─▶ allowed keys ─▶ merge over local YAML
//     ─▶ validate as check-config ─▶ persist pending ─▶ reload ─▶ healthy within deadline?
//          yes ─▶ last-known-good := doc, `applied`        no ─▶ reload last-known-good, `rolled_back`
//
// A process that dies while a document is pending finds the marker at its next start (open()) and starts
// on the last-known-good instead (after `fleet.crashRetries` more tries): a crash loop on a pushed
// config ends on the old config, not in a dead gateway.
import { createHash, type KeyObject } from 'node:crypto';
import { type Clock, systemClock } from '../../shared/clock.ts';
import { type DesiredState, type FleetReport, verifyDesiredState } from '../../shared/fleet.ts';
import type { Logger } from '../../shared/log.ts';
import type { AgentConfig } from '../config.ts';
import { type Watchdog, watchdogGrace } from '../runtime/hang-watchdog.ts';
import { disallowedKeys, mergeConfig } from './allow.ts';
import type { FleetConfig } from './config.ts';
import type { FleetHealth, FleetHost, FleetStatusFields } from './host.ts';
import { type AppliedDoc, EMPTY_STATE, type FleetState, type FleetStore } from './store.ts';
import { validateAgentConfig } from './validate.ts';

type Obj = Record<string, unknown>;

/** How often health is looked at while a pushed config is pending (a cheap status read). */
const HEALTH_POLL_MS = 200;
const REASON_MAX = 1024;
/** What lastKnownGood says when the agent runs its local file alone. */
const LOCAL_ONLY = { version: 0, hash: 'local' };

export interface FleetControllerOptions {
  agentId: string;
  fleet: FleetConfig;
  /** The local YAML (raw shape) and its validated form. */
  localRaw: Obj;
  localConfig: AgentConfig;
  publicKey: KeyObject;
  store: FleetStore;
  log: Logger;
  clock?: Clock;
  /**
   * TEST ONLY (EDGEFLOW_TEST_FLEET_CRASH_VERSION / _HANG_VERSION, agent/fleet/open.ts): called with the version about to
   * run, after its pending marker is durable; the test hook kills the process there. No configuration
   * crashes the agent for real, so the crash-loop path is tested through it.
   */
  beforeRun?: (version: number) => void;
  /**
   * Arms a watchdog for `ms` while a pushed configuration is pending (agent/runtime/hang-watchdog.ts): a
   * configuration that hangs the event loop cannot run the deadline timer, so the process is killed and
   * the next start counts it as a crash. Production wiring (open.ts) only: tests on a fake clock have none.
   */
  watchdog?: (ms: number) => Watchdog;
}

export class FleetController {
  /** The configuration the process starts with (local file, last-known-good or a retried pending doc). */
  readonly startConfig: AgentConfig;
  private readonly o: FleetControllerOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private state: FleetState;
  private localRaw: Obj;
  private localConfig: AgentConfig;
  private host: FleetHost | null = null;
  /** The newest payload not handled yet: documents replace each other, only the latest matters. */
  private latest: Buffer | null = null;
  private draining = false;
  private started = false;
  private stopped = false;
  /** A pending document kept across a restart (crashRetries > 0), watched once started. */
  private resume: AppliedDoc | null = null;
  private lastDigest = '';
  private healthTimer: object | null = null;
  private healthDone: ((h: FleetHealth | null) => void) | null = null;
  /** Armed while a document is pending (from before its reload, or from the start of a resumed one). */
  private dog: Watchdog | null = null;

  constructor(o: FleetControllerOptions) {
    this.o = o;
    this.clock = o.clock ?? systemClock;
    this.log = o.log;
    this.localRaw = o.localRaw;
    this.localConfig = o.localConfig;
    try {
      this.state = o.store.read();
    } catch (err) {
      // Nothing in it is data (store.ts): start on the local file; the retained document comes again.
      this.log.error({ err, path: o.store.path }, 'fleet state unreadable; starting on the local config');
      this.state = structuredClone(EMPTY_STATE);
    }
    this.startConfig = this.chooseStartConfig();
  }

  /** Status fields: labels always, the report once there is one. */
  statusFields(): FleetStatusFields {
    const out: FleetStatusFields = {};
    if (Object.keys(this.o.fleet.labels).length > 0) out.labels = this.o.fleet.labels;
    if (this.state.report) out.fleet = this.state.report;
    return out;
  }

  get current(): Readonly<FleetState> {
    return this.state;
  }

  /** Before the agent starts: the downlink handler and the status fields (the first status has them). */
  attach(host: FleetHost): void {
    this.host = host;
    host.statusFields(() => this.statusFields());
    host.onDownlink((payload) => {
      this.latest = payload;
      void this.drain();
    });
  }

  /** After the agent started: handle what arrived meanwhile, and watch a resumed pending document. */
  start(): void {
    this.started = true;
    const resume = this.resume;
    this.resume = null;
    void (async () => {
      if (resume) await this.watch(resume);
      await this.drain();
    })().catch((err: unknown) => this.log.error({ err }, 'fleet: unexpected failure'));
  }

  stop(): void {
    this.stopped = true;
    // A clean stop (SIGTERM, a service restart) while a document is pending is not a crash: the next
    // start tries it again with a fresh deadline instead of counting a death against it.
    if (this.state.pending && !this.state.pending.stoppedCleanly) {
      this.state.pending = { ...this.state.pending, stoppedCleanly: true };
      this.persist();
    }
    if (this.healthTimer) this.clock.clearTimeout(this.healthTimer);
    this.healthTimer = null;
    this.healthDone?.(null);
    this.disarm();
  }

  /**
   * SIGHUP: the local file changed; documents are merged over the new one from now on. Reloads the new
   * file with the running document over it (the pending one while its health is watched, else the
   * last-known-good), through the host, so it is serialised with the controller's own reloads.
   */
  async localReloaded(localRaw: Obj, localConfig: AgentConfig): Promise<void> {
    this.localRaw = localRaw;
    this.localConfig = localConfig;
    const pending = this.state.pending;
    const merged = pending ? validateAgentConfig(mergeConfig(localRaw, pending.config)) : null;
    await this.host?.reload(merged?.ok ? merged.config : this.lastKnownGoodConfig());
  }

  // ---- start ---------------------------------------------------------------------------------

  private chooseStartConfig(): AgentConfig {
    const st = this.state;
    const pending = st.pending;
    if (pending) {
      if (pending.stoppedCleanly) {
        const merged = validateAgentConfig(mergeConfig(this.localRaw, pending.config));
        if (merged.ok) {
          const { stoppedCleanly: _, ...again } = pending;
          st.pending = again;
          this.persist();
          this.resume = again;
          this.arm(); // from the process start: a hang while starting on it counts too
          this.log.info(
            { version: pending.version },
            'fleet: stopped while a configuration was pending; watching it again',
          );
          return merged.config;
        }
      }
      if (pending.starts >= this.o.fleet.crashRetries) {
        const tries = pending.starts + 1;
        this.finish(
          pending,
          'rolled_back',
          `crashed: the agent stopped while version ${pending.version} was pending (${tries} ${tries === 1 ? 'start' : 'starts'}); started on the last-known-good`,
        );
        this.log.error({ version: pending.version, starts: tries }, 'fleet: rolled back after a crash');
      } else {
        const merged = validateAgentConfig(mergeConfig(this.localRaw, pending.config));
        if (merged.ok) {
          st.pending = { ...pending, starts: pending.starts + 1 };
          this.persist();
          this.resume = pending;
          this.arm();
          this.log.warn(
            { version: pending.version, starts: pending.starts + 1 },
            'fleet: the agent stopped while a configuration was pending; trying it again',
          );
          return merged.config;
        }
        this.finish(pending, 'rolled_back', `invalid over the local config: ${merged.problems.join('; ')}`);
      }
    }
    return this.lastKnownGoodConfig();
  }

  /** The local file with the last-known-good document over it (or the local file alone). */
  private lastKnownGoodConfig(): AgentConfig {
    const lkg = this.state.lastKnownGood;
    if (!lkg) return this.localConfig;
    const merged = validateAgentConfig(mergeConfig(this.localRaw, lkg.config));
    if (merged.ok) return merged.config;
    // The local file changed under it (an operator's edit): the file wins, loudly.
    this.log.error(
      { version: lkg.version, problems: merged.problems.slice(0, 20) },
      'fleet: the last-known-good configuration no longer validates over the local file; running the local file alone',
    );
    return this.localConfig;
  }

  // ---- documents -----------------------------------------------------------------------------

  private async drain(): Promise<void> {
    if (this.draining || !this.started || this.stopped || !this.host) return;
    this.draining = true;
    try {
      while (this.latest && !this.stopped) {
        const payload = this.latest;
        this.latest = null;
        await this.handle(payload);
      }
    } catch (err) {
      this.log.error({ err }, 'fleet: document handling failed');
    } finally {
      this.draining = false;
    }
  }

  private async handle(payload: Buffer): Promise<void> {
    if (payload.length === 0) return; // the retained document was cleared
    // The retained document comes again on every reconnect: the same bytes are handled once.
    const digest = createHash('sha256').update(payload).digest('hex');
    if (digest === this.lastDigest) return;
    this.lastDigest = digest;
    const res = verifyDesiredState(payload, this.o.agentId, this.o.publicKey);
    if (!res.ok) {
      // Unverified: its version is not believed (a forged version 10^9 must not block real ones), so
      // `seen` stays; the report names what it claimed to be.
      const claim = peek(payload);
      this.log.warn({ reason: res.reason, claimedVersion: claim.version }, 'fleet: document rejected');
      this.report({ ...claim, state: 'rejected', reason: res.reason });
      return;
    }
    const doc = res.doc;
    const st = this.state;
    const applied = st.lastKnownGood?.version ?? 0;
    if (doc.version <= st.seen || doc.version <= applied) {
      this.log.debug({ version: doc.version, seen: st.seen }, 'fleet: document not newer; ignored');
      return;
    }
    const refuse = (reason: string) => {
      st.seen = doc.version;
      this.log.warn({ version: doc.version, reason }, 'fleet: document rejected');
      this.report({ ...about(doc), state: 'rejected', reason });
    };
    const notAllowed = disallowedKeys(doc.config, this.o.fleet.allow, this.localRaw);
    if (notAllowed.length > 0) return refuse(`keys not allowed: ${notAllowed.join('; ')}`);
    const merged = validateAgentConfig(mergeConfig(this.localRaw, doc.config));
    if (!merged.ok) return refuse(`invalid: ${merged.problems.join('; ')}`);

    const entry: AppliedDoc = {
      version: doc.version,
      hash: doc.hash,
      rollout: doc.rollout,
      config: doc.config,
    };
    // Durable before anything changes: a death from here on is seen at the next start.
    st.seen = doc.version;
    st.pending = { ...entry, starts: 0 };
    this.report({ ...about(doc), state: 'pending' });
    this.log.info({ version: doc.version, rollout: doc.rollout }, 'fleet: applying configuration');
    this.arm();
    try {
      await this.host!.reload(merged.config);
    } catch (err) {
      return this.rollback(entry, `reload failed: ${(err as Error).message}`);
    }
    await this.watch(entry);
  }

  /** Waits for health within the deadline, then makes the document last-known-good or rolls back. */
  private async watch(entry: AppliedDoc): Promise<void> {
    this.o.beforeRun?.(entry.version);
    const unhealthy = await this.waitHealthy(this.o.fleet.healthDeadline);
    if (this.stopped) return; // pending stays: the next start decides (chooseStartConfig)
    if (unhealthy !== null)
      return this.rollback(entry, `unhealthy after ${this.o.fleet.healthDeadline} ms: ${unhealthy}`);
    this.state.lastKnownGood = entry;
    this.log.info({ version: entry.version }, 'fleet: configuration applied and healthy');
    this.finish(entry, 'applied');
  }

  private async rollback(entry: AppliedDoc, reason: string): Promise<void> {
    this.log.error({ version: entry.version, reason }, 'fleet: rolling back to the last-known-good');
    try {
      await this.host!.reload(this.lastKnownGoodConfig());
    } catch (err) {
      // Still reported: the operator must know the agent is on neither.
      reason = `${reason}; reloading the last-known-good failed too: ${(err as Error).message}`;
    }
    this.finish(entry, 'rolled_back', reason);
  }

  /** null once healthy; else, at the deadline, why not. */
  private waitHealthy(deadlineMs: number): Promise<string | null> {
    const until = this.clock.monotonic() + deadlineMs;
    return new Promise((resolve) => {
      const check = () => {
        this.healthTimer = null;
        if (this.stopped) return resolve(null);
        const why = unhealthyReason(this.host!.health());
        if (why === null) return resolve(null);
        if (this.clock.monotonic() >= until) return resolve(why);
        this.healthTimer = this.clock.setTimeout(check, HEALTH_POLL_MS);
      };
      this.healthDone = () => resolve(null);
      check();
    });
  }

  // ---- state ---------------------------------------------------------------------------------

  private finish(entry: AppliedDoc, state: 'applied' | 'rolled_back', reason?: string): void {
    if (!this.disarm()) return; // the watchdog fired: the process is being killed, pending stays on disk
    this.state.pending = null;
    this.state.seen = Math.max(this.state.seen, entry.version);
    this.report({ version: entry.version, hash: entry.hash, rollout: entry.rollout, state, reason });
  }

  private arm(): void {
    const deadline = this.o.fleet.healthDeadline;
    this.dog ??= this.o.watchdog?.(deadline + watchdogGrace(deadline)) ?? null;
  }

  /** False when the watchdog already fired (see finish). */
  private disarm(): boolean {
    const dog = this.dog;
    this.dog = null;
    return dog ? dog.settle() : true;
  }

  /** Every transition: persisted with the rest of the state, then published at once. */
  private report(r: Omit<FleetReport, 'at' | 'lastKnownGood'>): void {
    const lkg = this.state.lastKnownGood;
    const report: FleetReport = {
      ...r,
      ...(r.reason !== undefined ? { reason: r.reason.slice(0, REASON_MAX) } : {}),
      at: this.clock.now(),
      lastKnownGood: lkg ? { version: lkg.version, hash: lkg.hash } : LOCAL_ONLY,
    };
    if (report.reason === undefined) delete report.reason;
    if (report.rollout === undefined) delete report.rollout;
    this.state.report = report;
    this.persist();
    this.host?.publishStatus();
  }

  private persist(): void {
    try {
      this.o.store.write(this.state);
    } catch (err) {
      // A full or read-only data dir: the agent runs on, but a crash now would not be recognised.
      this.log.error({ err, path: this.o.store.path }, 'fleet: cannot persist the fleet state');
    }
  }
}

/** Why a health view is not healthy, in one line; null when it is. */
export function unhealthyReason(h: FleetHealth): string | null {
  const bad: string[] = [];
  for (const s of h.sources)
    if (s.state !== 'up') bad.push(`source ${s.name} ${s.state}${s.lastError ? ` (${s.lastError})` : ''}`);
  if (h.uplink.configured && !h.uplink.connected)
    bad.push(`uplink not connected${h.uplink.lastError ? ` (${h.uplink.lastError})` : ''}`);
  return bad.length > 0 ? bad.join('; ') : null;
}

function about(doc: DesiredState): { version: number; hash: string; rollout: string } {
  return { version: doc.version, hash: doc.hash, rollout: doc.rollout };
}

/** What an unverified payload claims to be, for the report only. */
function peek(payload: Buffer): { version: number; hash: string; rollout?: string } {
  try {
    const raw = JSON.parse(payload.toString()) as Record<string, unknown>;
    const version =
      Number.isSafeInteger(raw.version) && (raw.version as number) >= 0 ? (raw.version as number) : 0;
    const hash = typeof raw.hash === 'string' ? raw.hash.slice(0, 80) : '';
    return typeof raw.rollout === 'string'
      ? { version, hash, rollout: raw.rollout.slice(0, 128) }
      : { version, hash };
  } catch {
    return { version: 0, hash: '' };
  }
}
