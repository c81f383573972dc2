// The running sources: built from the configuration, each with its decoder, started with the ingress as
// their frame handler, stopped together (on reload when `sources:` changed, and at shutdown).
import type { Clock } from '../../shared/clock.ts';
import type { Logger } from '../../shared/log.ts';
import type { AgentConfig } from '../config.ts';
import { createDecoder } from '../decoders/index.ts';
import { sources } from '../sources/index.ts';
import type { Source, SourceContext } from '../sources/source.ts';
import type { SourceEntry } from './backpressure.ts';
import type { Checkpointer } from './checkpoint.ts';
import type { Ingress } from './ingress.ts';

export type SourceFactory = (
  cfg: AgentConfig['sources'][number],
  agentId: string,
  ctx: SourceContext,
) => Source | Promise<Source>;

export class SourceSet {
  entries: SourceEntry[] = [];

  constructor(
    private readonly factory: SourceFactory,
    private readonly ctx: { log: Logger; clock: Clock; metrics: SourceContext['metrics'] },
  ) {}

  async start(config: AgentConfig, ingress: Ingress, checkpointer: Checkpointer): Promise<void> {
    for (const cfg of config.sources) {
      const source = await this.factory(cfg, config.agent.id, {
        ...this.ctx,
        log: this.ctx.log.child({ source: cfg.name }),
      });
      // A source that cannot redeliver (serial lines) is never paused by back-pressure (backpressure.ts);
      // the capability comes from its descriptor.
      const entry: SourceEntry = {
        source,
        decoder: createDecoder(cfg.format),
        device: 'device' in cfg ? cfg.device : undefined,
        redeliverable: sources.get(cfg.type).capabilities.replayable,
        counts: ingress.sourceCounts(cfg.name),
      };
      this.entries.push(entry);
      if (!entry.redeliverable) checkpointer.trackAtRisk(source.name);
      checkpointer.restoreDelivered(source);
      await source.start((frame) => ingress.onFrame(entry, frame), {
        onBadFrame: (reason) => ingress.sourceBadFrame(source.name, reason),
      });
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.entries.map(({ source }) => source.stop()));
    this.entries = [];
  }
}
