// A hostile authenticated agent against an in-process collector (issue 12, items 9-12): the payloads of
// the report (100k invalid items, a 30M-element array, an item nested 10,000 deep, a status with 40k
// counters) published in a loop while a legitimate agent publishes and an HTTP client polls /healthz.
// A baseline phase with the same legitimate agent and /healthz loop and no attacker runs first, in the
// same process: on a shared machine the ratio says more than the absolute figures.
//
// Run alone: `node --import tsx bench/hostile-agent.ts`. Env: EDGEFLOW_BENCH_HOSTILE_ROUNDS (10).
import { startHarness } from '../collector/test-support/harness.ts';
import { type AttackReport, hostileAttack } from '../collector/test-support/hostile.ts';
import { type BenchResult, isMain, load1, percentiles, printResult } from './lib.ts';

function row(name: string, r: AttackReport) {
  const hz = percentiles([...r.healthzMs]);
  return {
    case: name,
    'healthz n': hz.n,
    'healthz p50 ms': Math.round(hz.p50 * 10) / 10,
    'healthz p99 ms': Math.round(hz.p99 * 10) / 10,
    'healthz max ms': Math.round(hz.max * 10) / 10,
    'loop delay p99 / max ms': `${r.loopDelayMs.p99.toFixed(0)} / ${r.loopDelayMs.max.toFixed(0)}`,
    'legit PUBACKs/s': Math.round((r.legitAcked / r.durationMs) * 1000),
    'hostile publishes': r.hostilePublishes,
    'RSS before / peak / after MiB': `${r.rssBeforeMb.toFixed(0)} / ${r.rssPeakMb.toFixed(0)} / ${r.rssAfterMb.toFixed(0)}`,
    load1: load1(),
  };
}

export async function benchHostileAgent(): Promise<BenchResult> {
  const rounds = Number(process.env.EDGEFLOW_BENCH_HOSTILE_ROUNDS ?? 10);
  const h = await startHarness({
    mqttExtra: 'listen: [tcp://127.0.0.1:0], maxPacketSize: 1MB, maxBatchBytes: 16MB',
  });
  try {
    const attack = await hostileAttack(h, { hostile: 'gw-2', legit: 'gw-1', rounds });
    const baseline = await hostileAttack(h, {
      hostile: 'gw-2',
      legit: 'gw-1',
      rounds: 0,
      idleMs: attack.durationMs,
    });
    return {
      rows: [
        row('baseline: legit agent + /healthz loop, no attacker', baseline),
        row(`hostile agent, ${rounds} rounds of 4 payloads`, attack),
      ],
      notes: [
        "collector, attacker, legit agent and HTTP client share one process and one event loop (loop delay is the collector's too)",
        'mqtt.maxBatchBytes 16MB here (default 4MB) so that the 100k-item batch is refused on its item count, as in the report',
      ],
    };
  } finally {
    await h.stop();
  }
}

if (isMain(import.meta.url)) {
  printResult('hostile-agent', await benchHostileAgent());
  process.exit(0);
}
