// `type: serial` (SPEC.md 2): line-framed frames from a serial port. Not replayable: a line not taken
// is gone, which is why the runtime never pauses this source (agent/runtime).
import { z } from 'zod';
import { lazily } from '../../shared/registry.ts';
import { sizeSchema } from '../../shared/units.ts';
import { name } from '../config-common.ts';
import { formatSchema } from '../decoders/registry.ts';
import type { SourceDescriptor } from './source.ts';

const schema = lazily(() =>
  z
    .object({
      type: z.literal('serial'),
      name,
      path: z.string().min(1),
      baudRate: z.number().int().positive().default(115200),
      dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8),
      parity: z.enum(['none', 'even', 'odd', 'mark', 'space']).default('none'),
      stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)]).default(1),
      format: formatSchema({ withTopics: false, default: 'json' }),
      device: z.string().min(1).optional(),
      maxFrameLength: sizeSchema.default(4096),
    })
    .strict(),
);

export const serialSource = {
  type: 'serial',
  get schema() {
    return schema();
  },
  summary: 'lines from a serial port (or pty), one frame per line',
  capabilities: { replayable: false, needsTty: true, topics: false, listens: false },
  async create(cfg, _agentId, ctx) {
    const { SerialSource } = await import('./serial.ts');
    return new SerialSource(cfg, ctx);
  },
} as const satisfies SourceDescriptor<ReturnType<typeof schema>>;
