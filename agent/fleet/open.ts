// Wiring for `edgeflow-agent run` (agent/main.ts): the controller from the local config, before the
// agent is built, because it picks the configuration the agent starts with.
import { readFileSync } from 'node:fs';
import { parsePublicKey } from '../../shared/fleet.ts';
import type { Logger } from '../../shared/log.ts';
import type { AgentConfig } from '../config.ts';
import { HangWatchdog } from '../runtime/hang-watchdog.ts';
import { FleetController } from './controller.ts';
import { FleetStore } from './store.ts';
import { readRawConfig } from './validate.ts';

/**
 * TEST ONLY: the agent SIGKILLs itself when it runs (reloads to, or starts on) this fleet version, after
 * the pending marker is durable. It stands for a configuration that crashes the process, which no
 * configuration does for real today (test/agent/fleet.test.ts, crash loop). Never set in production.
 */
export const TEST_CRASH_ENV = 'EDGEFLOW_TEST_FLEET_CRASH_VERSION';
/** TEST ONLY, likewise: the agent blocks its event loop for good on this version (a hung configuration). */
export const TEST_HANG_ENV = 'EDGEFLOW_TEST_FLEET_HANG_VERSION';

export function openFleet(configPath: string, local: AgentConfig, log: Logger): FleetController {
  const fleet = local.fleet;
  if (!fleet) throw new Error('openFleet: no fleet block');
  const crashAt = process.env[TEST_CRASH_ENV];
  const hangAt = process.env[TEST_HANG_ENV];
  return new FleetController({
    agentId: local.agent.id,
    fleet,
    localRaw: readRawConfig(configPath),
    localConfig: local,
    // Checked by check-config (config-files.ts) before we get here.
    publicKey: parsePublicKey(readFileSync(fleet.publicKeyFile)),
    store: new FleetStore(local.agent.dataDir),
    log: log.child({ component: 'fleet' }),
    watchdog: (ms) =>
      new HangWatchdog(ms, (err) =>
        log.warn(
          { err: err.message },
          'fleet: watchdog thread failed; only the main thread keeps the deadline',
        ),
      ),
    ...(crashAt || hangAt
      ? {
          beforeRun: (version: number) => {
            if (String(version) === crashAt) {
              log.fatal({ version }, `${TEST_CRASH_ENV}: crashing on purpose (test only)`);
              log.flush?.();
              process.kill(process.pid, 'SIGKILL');
            }
            if (String(version) === hangAt) {
              log.fatal({ version }, `${TEST_HANG_ENV}: hanging on purpose (test only)`);
              log.flush?.();
              for (;;) {} // the event loop never runs again
            }
          },
        }
      : {}),
  });
}
