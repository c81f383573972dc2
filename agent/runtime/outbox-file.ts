// The agent's outbox file: `${agent.dataDir}/outbox.db` (SQLite), created with its directory.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeflowError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { AgentConfig } from '../config.ts';
import type { Outbox } from '../outbox/outbox.ts';
import { SqliteOutbox } from '../outbox/sqlite.ts';

export function openOutbox(config: AgentConfig, log: Logger): Outbox {
  const { agent, buffer } = config;
  try {
    mkdirSync(agent.dataDir, { recursive: true });
  } catch (err) {
    throw new EdgeflowError(
      'STORE_WRITE_FAILED',
      `cannot create the data directory ${agent.dataDir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      { cause: err, retriable: false },
    );
  }
  return SqliteOutbox.open(join(agent.dataDir, 'outbox.db'), {
    maxBytes: buffer.maxBytes,
    onFull: buffer.onFull,
    synchronous: buffer.synchronous,
    // Small WAL: the agent's commits are small and periodic; a large WAL could fill a small data
    // partition by itself and then never be checkpointed (test/agent/storage.test.ts, disk full).
    walAutocheckpointBytes: 256 * 1024,
    log,
  });
}
