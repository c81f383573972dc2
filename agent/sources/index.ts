// The sources' public surface. createSource(config) builds the source for one entry of `sources:`
// (SPEC.md 2) through its descriptor (registry.ts). Construction has no side effects (nothing opens or
// listens before start()), so a config can be checked without touching devices.
export { createSource, type SourceConfig, sourceSchema, sources } from './registry.ts';
export type {
  RawFrame,
  Source,
  SourceContext,
  SourceDescriptor,
  SourceHooks,
  SourceState,
  SourceStatus,
} from './source.ts';
