// Config value types shared by the collector config and the sink descriptors (collector/sinks/*.descriptor.ts).
import { z } from 'zod';

export const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[a-zA-Z0-9.-]*):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9465');
