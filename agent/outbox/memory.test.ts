import { MemoryOutbox } from './memory.ts';
import { outboxConformance } from './outbox.conformance.ts';

outboxConformance('MemoryOutbox', (limits) => new MemoryOutbox(limits));
