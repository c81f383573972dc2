// Fleet control on the collector (issue 15): turns the fleet directory into signed per-agent documents,
// publishes them retained on each agent's downlink in stages (canary first), follows the agents' reports
// and halts a rollout whose failures pass `rollout.maxFailureShare`. Transport comes in as `publish`
// (the embedded broker), time as a clock, state goes to FleetStore: a restart keeps versions, rollouts
// and reports, and re-publishes every agent's current document (aedes keeps retained messages in memory).

import type { KeyObject } from 'node:crypto';
import { type FSWatcher, readFileSync, watch } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Clock, Timer } from '../../shared/clock.ts';
import { configHash, keyIdOf, parsePrivateKey, signDesiredState } from '../../shared/fleet.ts';
import type { Logger } from '../../shared/log.ts';
import type { Alert, Status } from '../../shared/model.ts';
import { downlinkTopic } from '../../shared/topics.ts';
import type { FleetConfig } from './config.ts';
import {
  type AgentFacts,
  checkAgentConfig,
  desiredFor,
  loadFleet,
  readFleetDir,
  selects,
} from './desired.ts';
import { createFleetMetrics } from './metrics.ts';
import type { AgentRecord, Progress, Rollout } from './model.ts';
import { FleetStore } from './store.ts';

export type { AgentRecord, Progress, Rollout, RolloutState, SentDoc } from './model.ts';

export interface FleetDeps {
  log: Logger;
  clock: Clock;
  registry: Registry;
  dataDir: string;
  /** Publishes retained at QoS 1 (resolves once the broker has stored it). */
  publish(topic: string, payload: Buffer): Promise<void>;
  /** Agent ids with a credential (the fleet's members even before they first report). */
  knownAgents(): string[];
}

export type ApplyResult =
  | { ok: true; rollout: Rollout | null; changed: string[]; unchanged: number }
  | { ok: false; problems: string[] };

/** The wanted agent release a fleet config carries (`update.version`, issue 16), if any. */
function updateVersionOf(config: Record<string, unknown> | undefined): string | undefined {
  const u = config?.update;
  if (u === null || typeof u !== 'object') return undefined;
  const v = (u as { version?: unknown }).version;
  return typeof v === 'string' ? v : undefined;
}

const TERMINAL = new Set(['applied', 'rejected', 'rolled_back']);

export class FleetController {
  private store: FleetStore | null = null;
  private key: KeyObject | null = null;
  private readonly agents = new Map<string, AgentRecord>();
  /** Open MQTT sessions per agent id. */
  private readonly sessions = new Map<string, number>();
  private readonly rollouts = new Map<string, Rollout>();
  private version = 0;
  private current: string | null = null;
  private lastDirHash: string | null = null;
  private lastProblems: string[] = [];
  private watcher: FSWatcher | null = null;
  private debounceTimer: ReturnType<typeof setTimeout> | null = null;
  private recheckTimer: Timer | null = null;
  private readonly metrics: ReturnType<typeof createFleetMetrics>;

  constructor(
    private readonly cfg: FleetConfig,
    private readonly deps: FleetDeps,
  ) {
    this.metrics = createFleetMetrics(deps.registry, this);
  }

  /** Reads the key and the saved state (before the broker opens, so no report arrives before it). */
  open(): void {
    if (this.store) return;
    this.key = parsePrivateKey(readFileSync(this.cfg.signingKeyFile));
    const store = new FleetStore(this.deps.dataDir);
    this.store = store;
    for (const [id, a] of store.all<AgentRecord>('agents')) this.agents.set(id, { ...a, online: false });
    for (const [id, r] of store.all<Rollout>('rollouts')) this.rollouts.set(id, r);
    const meta = store.all<unknown>('meta');
    this.version = (meta.get('version') as number | undefined) ?? 0;
    this.current = (meta.get('current') as string | undefined) ?? null;
    this.lastDirHash = (meta.get('dirHash') as string | undefined) ?? null;
  }

  /** Once the broker is up: re-publishes every current document, applies the directory, watches it. */
  async start(): Promise<void> {
    this.open();
    if (!this.key) throw new Error('fleet: no signing key');
    // aedes keeps retained messages in memory: put every agent's current document back.
    let republished = 0;
    for (const a of this.agents.values()) {
      if (!a.desired) continue;
      await this.deps.publish(downlinkTopic(a.id), Buffer.from(a.desired.payload));
      republished++;
    }
    this.deps.log.info(
      { version: this.version, agents: this.agents.size, republished, keyId: keyIdOf(this.key) },
      'fleet control started',
    );
    if (this.cfg.autoApply) {
      const r = await this.apply({ onlyIfDirChanged: true });
      if (!r.ok)
        this.deps.log.error({ problems: r.problems }, 'fleet directory refused at start; nothing sent');
    }
    try {
      this.watcher = watch(this.cfg.dir, { recursive: true }, () => this.scheduleReload());
      this.watcher.on('error', (err) =>
        this.deps.log.warn({ err: err.message }, 'fleet directory watch failed'),
      );
    } catch (e) {
      this.deps.log.warn(
        { err: (e as Error).message, dir: this.cfg.dir },
        'cannot watch the fleet directory; use `fleet apply`',
      );
    }
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = null;
    if (this.recheckTimer) this.deps.clock.clearTimeout(this.recheckTimer);
    this.recheckTimer = null;
    this.store?.close();
    this.store = null;
  }

  private scheduleReload(): void {
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      if (!this.cfg.autoApply) {
        this.lastProblems = this.check();
        if (this.lastProblems.length > 0)
          this.deps.log.error({ problems: this.lastProblems }, 'fleet directory does not validate');
        return;
      }
      this.apply({ onlyIfDirChanged: true }).then(
        (r) => {
          if (!r.ok) this.deps.log.error({ problems: r.problems }, 'fleet directory refused; nothing sent');
        },
        (err: Error) => this.deps.log.error({ err: err.message }, 'fleet apply failed'),
      );
    }, this.cfg.debounce);
  }

  private record(id: string): AgentRecord {
    let a = this.agents.get(id);
    if (!a) {
      a = {
        id,
        labels: {},
        online: false,
        lastSeen: null,
        lastConnect: null,
        agentVersion: null,
        backlog: null,
        firing: {},
        desired: null,
        previous: null,
        report: null,
      };
      this.agents.set(id, a);
    }
    return a;
  }

  private save(a: AgentRecord): void {
    this.store?.put('agents', a.id, a);
  }
  private saveRollout(r: Rollout): void {
    this.store?.put('rollouts', r.id, r);
  }
  private saveMeta(): void {
    this.store?.put('meta', 'version', this.version);
    this.store?.put('meta', 'current', this.current);
    this.store?.put('meta', 'dirHash', this.lastDirHash);
  }

  private facts(): AgentFacts[] {
    const ids = new Set([...this.deps.knownAgents(), ...this.agents.keys()]);
    return [...ids].sort().map((id) => ({ id, labels: this.agents.get(id)?.labels ?? {} }));
  }

  /** Validation only: the problems `apply` would refuse with. */
  check(): string[] {
    const r = loadFleet(this.cfg.dir, this.cfg.allowedKeys, this.facts());
    return r.ok ? [] : r.problems;
  }

  /** What an apply would change, per agent (nothing is sent). */
  diff():
    | {
        ok: true;
        changes: { agent: string; from: string | null; to: string; docs: string[]; keys: string[] }[];
      }
    | { ok: false; problems: string[] } {
    const r = loadFleet(this.cfg.dir, this.cfg.allowedKeys, this.facts());
    if (!r.ok) return r;
    const changes = [];
    for (const [id, d] of r.desired) {
      const cur = this.agents.get(id)?.desired;
      if (cur?.hash === d.hash) continue;
      const before = cur?.config ?? {};
      const keys = [...new Set([...Object.keys(before), ...Object.keys(d.config)])].filter(
        (k) => JSON.stringify(before[k]) !== JSON.stringify(d.config[k]),
      );
      changes.push({ agent: id, from: cur?.hash ?? null, to: d.hash, docs: d.from, keys });
    }
    return { ok: true, changes };
  }

  /** Loads the directory and, if it validates and changes anything, starts a rollout (a new version). */
  async apply(opts: { onlyIfDirChanged?: boolean } = {}): Promise<ApplyResult> {
    const r = loadFleet(this.cfg.dir, this.cfg.allowedKeys, this.facts());
    if (!r.ok) {
      this.metrics.refused.inc();
      this.lastProblems = r.problems;
      return r;
    }
    this.lastProblems = [];
    if (opts.onlyIfDirChanged && r.dirHash === this.lastDirHash)
      return { ok: true, rollout: null, changed: [], unchanged: r.desired.size };
    const cur = this.currentRollout();
    if (
      cur &&
      cur.kind === 'apply' &&
      cur.dirHash === r.dirHash &&
      cur.state !== 'superseded' &&
      cur.state !== 'complete'
    ) {
      // The same content again (`fleet apply` after the watcher did it): a halted rollout stays halted
      // (resume or rollback decide), one in progress goes on; never a second rollout past the canary.
      return { ok: true, rollout: cur, changed: [], unchanged: r.desired.size };
    }
    this.lastDirHash = r.dirHash;
    const targets: Rollout['targets'] = {};
    let unchanged = 0;
    for (const [id, d] of r.desired) {
      if (this.agents.get(id)?.desired?.hash === d.hash) unchanged++;
      else targets[id] = { hash: d.hash, config: d.config, from: d.from };
    }
    const changed = Object.keys(targets).sort();
    if (changed.length === 0) {
      this.saveMeta();
      return { ok: true, rollout: null, changed, unchanged };
    }
    const rollout = this.newRollout('apply', targets, r.dirHash);
    await this.advance(rollout);
    return { ok: true, rollout, changed, unchanged };
  }

  private newRollout(kind: Rollout['kind'], targets: Rollout['targets'], dirHash: string | null): Rollout {
    const prev = this.currentRollout();
    if (prev && prev.state !== 'complete' && prev.state !== 'superseded') {
      prev.state = 'superseded';
      this.saveRollout(prev);
    }
    this.version++;
    const ids = Object.keys(targets).sort();
    const stages = kind === 'rollback' ? [[], ids] : this.splitCanary(ids);
    const rollout: Rollout = {
      id: `r${this.version}`,
      version: this.version,
      kind,
      createdAt: this.deps.clock.now(),
      state: stages[0]!.length > 0 ? 'canary' : 'rolling',
      haltReason: null,
      stages,
      stagesSent: 0,
      targets,
      dirHash,
    };
    this.rollouts.set(rollout.id, rollout);
    this.current = rollout.id;
    this.saveRollout(rollout);
    this.saveMeta();
    this.deps.log.info(
      { rollout: rollout.id, kind, agents: ids.length, canary: stages[0]!.length },
      'fleet rollout started',
    );
    return rollout;
  }

  /** Canary: the agents `rollout.canary` selects, else a share of them, online ones first (they report). */
  private splitCanary(ids: string[]): string[][] {
    const rc = this.cfg.rollout;
    let canary: string[] = [];
    if (rc.canary)
      canary = ids.filter((id) => selects(rc.canary!, { id, labels: this.agents.get(id)?.labels ?? {} }));
    if (canary.length === 0 && rc.canaryShare > 0 && ids.length > 1) {
      const n = Math.max(1, Math.ceil(ids.length * rc.canaryShare));
      const online = ids.filter((id) => this.agents.get(id)?.online);
      const offline = ids.filter((id) => !this.agents.get(id)?.online);
      canary = [...online, ...offline].slice(0, n);
    }
    if (canary.length >= ids.length) return [[], ids];
    const set = new Set(canary);
    return [canary, ids.filter((id) => !set.has(id))];
  }

  get agentRecords(): Iterable<AgentRecord> {
    return this.agents.values();
  }
  get currentVersion(): number {
    return this.version;
  }

  currentRollout(): Rollout | null {
    return this.current ? (this.rollouts.get(this.current) ?? null) : null;
  }

  /** Publishes the next stage when the one before is through; marks the rollout complete. */
  private async advance(r: Rollout): Promise<void> {
    if (r.state === 'halted' || r.state === 'superseded') return;
    while (r.stagesSent < r.stages.length) {
      if (r.stagesSent > 0) {
        const prevStage = r.stages[r.stagesSent - 1]!;
        // Through when every canary agent that holds the stage has reported, and at least one has. An
        // agent online holds it; so does one that went offline after the stage was sent, for
        // rollout.offlineGrace (it is likely restarting into the release it was sent). One offline before
        // that (for a week, say) does not hold the fleet back: it converges later from the retained copy.
        const done = (id: string) => TERMINAL.has(this.reportFor(id, r) ?? '');
        const now = this.deps.clock.now();
        const graceEnds = (id: string): number | null => {
          const a = this.agents.get(id);
          if (!a || a.online || a.lastSeen === null || r.stageSentAt === undefined) return null;
          return a.lastSeen >= r.stageSentAt ? a.lastSeen + this.cfg.rollout.offlineGrace : null;
        };
        const holds = (id: string) => this.agents.get(id)?.online || (graceEnds(id) ?? 0) > now;
        // No canary stage (canaryShare 0, a rollback) has nothing to wait for.
        const waiting = prevStage.filter((id) => !done(id) && holds(id));
        const through = prevStage.length === 0 || (prevStage.some(done) && waiting.length === 0);
        if (!through) {
          // Agents held only by their grace: look again when the first grace ends.
          const ends = waiting.map(graceEnds).filter((t): t is number => t !== null);
          if (ends.length > 0) this.recheckAt(r, Math.min(...ends));
          return;
        }
      }
      const stage = r.stages[r.stagesSent]!;
      r.stagesSent++;
      r.stageSentAt = this.deps.clock.now();
      if (r.stagesSent > 1 || stage.length > 0) r.state = r.stagesSent >= 2 ? 'rolling' : 'canary';
      this.saveRollout(r);
      await this.publishStage(r, stage);
      if (this.checkHalt(r)) return;
    }
    const p = this.progress(r);
    if (p.applied === p.targeted && r.state !== 'complete') {
      r.state = 'complete';
      this.saveRollout(r);
      this.deps.log.info({ rollout: r.id }, 'fleet rollout complete');
    }
  }

  private async publishStage(r: Rollout, ids: string[]): Promise<void> {
    const key = this.key;
    if (!key) throw new Error('fleet control not started');
    const now = this.deps.clock.now();
    await Promise.all(
      ids.map(async (id) => {
        const t = r.targets[id];
        if (!t) return;
        const doc = signDesiredState(
          {
            v: 1,
            kind: 'desired',
            agent: id,
            version: r.version,
            rollout: r.id,
            hash: t.hash,
            issuedAt: now,
            config: t.config,
          },
          key,
        );
        const payload = JSON.stringify(doc);
        const a = this.record(id);
        if (a.desired && r.kind === 'apply')
          a.previous = {
            version: a.desired.version,
            hash: a.desired.hash,
            config: a.desired.config,
            from: a.desired.from,
          };
        a.desired = {
          version: r.version,
          hash: t.hash,
          rollout: r.id,
          config: t.config,
          from: t.from,
          payload,
          sentAt: now,
        };
        this.save(a);
        await this.deps.publish(downlinkTopic(id), Buffer.from(payload));
        this.metrics.published.inc();
      }),
    );
  }

  /** The agent's reported state for this rollout, or undefined while it has not reported on it. */
  private reportFor(id: string, r: Rollout): string | undefined {
    const rep = this.agents.get(id)?.report;
    if (!rep) return undefined;
    // An agent that stays on or returns to an older config reports that version with its reason;
    // rejected/rolled_back name the document they refused (rep.version = the refused version).
    if (rep.version !== r.version) return undefined;
    // A document that carries the wanted agent release (issue 16) is through only when the agent runs
    // that release: applying the config starts the download, the swap and the trial; a release the agent
    // refused or rolled back counts as a failure of this rollout (canary and halt, as for configuration).
    const wanted = updateVersionOf(r.targets[id]?.config);
    if (rep.state !== 'applied' || wanted === undefined) return rep.state;
    const a = this.agents.get(id)!;
    if (a.agentVersion === wanted) return 'applied';
    const up = a.update;
    if (
      up &&
      up.wanted === wanted &&
      (up.state === 'rolled_back' || up.state === 'refused' || up.state === 'failed')
    )
      return 'rolled_back';
    return 'pending';
  }

  progress(r: Rollout): Progress {
    const p: Progress = {
      targeted: 0,
      applied: 0,
      rejected: 0,
      rolled_back: 0,
      pending: 0,
      sent: 0,
      waiting: 0,
    };
    const sent = new Set(r.stages.slice(0, r.stagesSent).flat());
    for (const id of Object.keys(r.targets)) {
      p.targeted++;
      const st = this.reportFor(id, r);
      if (st === 'applied' || st === 'rejected' || st === 'rolled_back' || st === 'pending') p[st]++;
      else if (sent.has(id) && this.agents.get(id)?.desired?.version === r.version) p.sent++;
      else p.waiting++;
    }
    return p;
  }

  /** Halts when more than maxFailureShare of the agents sent this rollout rejected or rolled back. */
  private checkHalt(r: Rollout): boolean {
    if (r.state === 'halted' || r.state === 'superseded' || r.kind === 'rollback')
      return r.state === 'halted';
    const p = this.progress(r);
    const sentCount = r.stages.slice(0, r.stagesSent).flat().length;
    const failed = p.rejected + p.rolled_back;
    if (sentCount > 0 && failed / sentCount > this.cfg.rollout.maxFailureShare) {
      r.state = 'halted';
      r.haltReason = `${failed} of ${sentCount} agents sent the rollout rejected or rolled back (over ${this.cfg.rollout.maxFailureShare})`;
      this.saveRollout(r);
      this.deps.log.error(
        { rollout: r.id, failed, sent: sentCount, reason: r.haltReason },
        'fleet rollout halted',
      );
      return true;
    }
    return false;
  }

  /** `fleet resume`: a halted rollout goes on with its next stage. */
  async resume(): Promise<{ ok: boolean; rollout?: Rollout; error?: string }> {
    const r = this.currentRollout();
    if (r?.state !== 'halted') return { ok: false, error: 'no halted rollout to resume' };
    r.state = 'rolling';
    r.haltReason = null;
    // The operator accepted the failures so far: the stage in progress counts as through.
    const force = r.stagesSent < r.stages.length;
    if (force) {
      const stage = r.stages[r.stagesSent]!;
      r.stagesSent++;
      this.saveRollout(r);
      await this.publishStage(r, stage);
    }
    await this.advance(r);
    return { ok: true, rollout: r };
  }

  /**
   * `fleet rollback`: a new version, published at once to every agent that was sent the current (or
   * given) apply rollout, carrying the config each had before it (`{}`, its local file only, if none).
   */
  async rollback(): Promise<{ ok: boolean; rollout?: Rollout; error?: string }> {
    const r = this.currentRollout();
    if (r?.kind !== 'apply') return { ok: false, error: 'no applied rollout to roll back' };
    const targets: Rollout['targets'] = {};
    for (const a of this.agents.values()) {
      if (a.desired?.version !== r.version) continue;
      const prev = a.previous ?? { config: {}, from: [] as string[] };
      targets[a.id] = { hash: configHash(prev.config), config: prev.config, from: prev.from };
    }
    if (Object.keys(targets).length === 0) {
      r.state = 'superseded';
      this.saveRollout(r);
      return { ok: false, error: `no agent was sent ${r.id}; it is cancelled` };
    }
    const rb = this.newRollout('rollback', targets, null);
    await this.advance(rb);
    return { ok: true, rollout: rb };
  }

  onConnect(agent: string): void {
    this.sessions.set(agent, (this.sessions.get(agent) ?? 0) + 1);
    const a = this.record(agent);
    a.online = true;
    a.lastConnect = this.deps.clock.now();
    a.lastSeen = a.lastConnect;
    this.save(a);
  }

  onDisconnect(agent: string): void {
    // One agent id may hold more than one session (client ids differ): offline when the last one goes.
    const n = (this.sessions.get(agent) ?? 1) - 1;
    if (n > 0) this.sessions.set(agent, n);
    else this.sessions.delete(agent);
    const a = this.agents.get(agent);
    if (!a || n > 0) return;
    a.online = false;
    a.lastSeen = this.deps.clock.now();
    this.save(a);
    // A canary agent that leaves no longer holds its stage (see advance).
    const r = this.currentRollout();
    if (r?.state === 'canary' && r.stages[0]?.includes(agent))
      this.advance(r).catch((err: Error) =>
        this.deps.log.error({ err: err.message }, 'fleet rollout advance failed'),
      );
  }

  /** One pending re-check of the current rollout (an offline canary agent's grace ending). */
  private recheckAt(r: Rollout, at: number): void {
    if (this.recheckTimer) this.deps.clock.clearTimeout(this.recheckTimer);
    this.recheckTimer = this.deps.clock.setTimeout(
      () => {
        this.recheckTimer = null;
        if (this.currentRollout() !== r) return;
        this.advance(r).catch((err: Error) =>
          this.deps.log.error({ err: err.message }, 'fleet rollout advance failed'),
        );
      },
      Math.max(0, at - this.deps.clock.now()) + 1,
    );
  }

  /** A report on the current rollout changed: halt it, or go on with its next stage. */
  private reconsider(version: number): void {
    const r = this.currentRollout();
    if (r && version === r.version && !this.checkHalt(r)) {
      this.advance(r).catch((err: Error) =>
        this.deps.log.error({ err: err.message }, 'fleet rollout advance failed'),
      );
    }
  }

  onStatus(st: Status): void {
    const a = this.record(st.agent);
    a.lastSeen = this.deps.clock.now();
    a.agentVersion = st.version;
    const updateChanged =
      st.update !== undefined && JSON.stringify(st.update) !== JSON.stringify(a.update ?? null);
    if (st.update !== undefined) a.update = st.update;
    a.backlog = { items: st.outbox.items, bytes: st.outbox.bytes, oldestTs: st.outbox.oldestTs };
    const labelsChanged = st.labels && JSON.stringify(st.labels) !== JSON.stringify(a.labels);
    if (st.labels) a.labels = st.labels;
    const rep = st.fleet;
    if (
      rep &&
      (a.report?.version !== rep.version || a.report?.state !== rep.state || a.report?.hash !== rep.hash)
    ) {
      a.report = rep;
      this.metrics.reports.inc({ state: rep.state });
      if (rep.state === 'rejected' || rep.state === 'rolled_back')
        this.deps.log.warn(
          { agent: a.id, version: rep.version, state: rep.state, reason: rep.reason },
          'agent refused a fleet document',
        );
      this.reconsider(rep.version);
    } else if (rep && updateChanged) this.reconsider(rep.version);
    this.save(a);
    if (labelsChanged) this.joinLate(a);
  }

  /**
   * An agent that appears (or changes labels) after a rollout started gets that rollout's document for
   * it, unless the rollout is halted (it then keeps what it has, like the rest).
   */
  private joinLate(a: AgentRecord): void {
    const r = this.currentRollout();
    if (r?.kind !== 'apply' || r.state === 'halted' || r.state === 'canary') return;
    const { docs, problems } = readFleetDir(this.cfg.dir, this.cfg.allowedKeys);
    if (problems.length > 0) return;
    const d = desiredFor(docs, { id: a.id, labels: a.labels });
    if (!d || checkAgentConfig(a.id, d.config).length > 0) return;
    const hash = configHash(d.config);
    if (a.desired?.hash === hash) return;
    r.targets[a.id] = { hash, config: d.config, from: d.from };
    r.stages[r.stages.length - 1]!.push(a.id);
    this.saveRollout(r);
    this.publishStage(r, [a.id]).catch((err: Error) =>
      this.deps.log.warn({ err: err.message, agent: a.id }, 'late join failed'),
    );
  }

  onAlert(agent: string, al: Alert): void {
    const a = this.record(agent);
    const key = `${al.rule}/${al.device}/${al.metric}`;
    if (al.state === 'firing')
      a.firing[key] = {
        rule: al.rule,
        device: al.device,
        metric: al.metric,
        severity: al.severity,
        since: al.ts,
        message: al.message,
      };
    else delete a.firing[key];
    this.save(a);
  }

  agent(id: string): AgentRecord | undefined {
    return this.agents.get(id);
  }

  /** `/fleet`: the current rollout with its progress, and every agent's state (no configs). */
  view() {
    const now = this.deps.clock.now();
    const r = this.currentRollout();
    return {
      version: this.version,
      problems: this.lastProblems,
      rollout: r ? this.rolloutView(r) : null,
      rollouts: [...this.rollouts.values()]
        .sort((x, y) => y.version - x.version)
        .slice(0, 20)
        .map((x) => ({
          id: x.id,
          version: x.version,
          kind: x.kind,
          state: x.state,
          createdAt: x.createdAt,
          agents: Object.keys(x.targets).length,
        })),
      agents: [...this.agents.values()]
        .sort((x, y) => (x.id < y.id ? -1 : 1))
        .map((a) => ({
          id: a.id,
          online: a.online,
          /** Online, but no status for fleet.staleAfter (a hung agent keeps its TCP session). */
          stale: a.online && a.lastSeen !== null && now - a.lastSeen > this.cfg.staleAfter,
          lastSeen: a.lastSeen,
          labels: a.labels,
          agentVersion: a.agentVersion,
          update: a.update ?? null,
          desired: a.desired
            ? { version: a.desired.version, hash: a.desired.hash, rollout: a.desired.rollout }
            : null,
          report: a.report,
          backlog: a.backlog,
          firingAlerts: Object.keys(a.firing).length,
        })),
    };
  }

  rolloutView(r: Rollout) {
    return {
      id: r.id,
      version: r.version,
      kind: r.kind,
      state: r.state,
      haltReason: r.haltReason,
      createdAt: r.createdAt,
      stages: r.stages.map((s, i) => ({
        agents: s.length,
        sent: i < r.stagesSent,
        name: i === 0 ? 'canary' : 'rest',
      })),
      progress: this.progress(r),
    };
  }
}
