// The rule kinds (`rules[].kind`), one line each. Adding a kind: its file (spec schema via kindSchema,
// a Detector builder and a RuleKindDescriptor) and one line here; the `rules` union, check-config's
// messages and docs/agent-config.md follow from it.
import type { z } from 'zod';
import { Registry } from '../../shared/registry.ts';
import { anomalyKind } from './anomaly.ts';
import { changepointKind } from './changepoint.ts';
import { flatlineKind } from './flatline.ts';
import { missingKind } from './missing.ts';
import { patternKind } from './pattern.ts';
import { rateKind } from './rate.ts';
import type { RuleKindDescriptor } from './rule.ts';
import { spikeKind } from './spike.ts';
import { thresholdKind } from './threshold.ts';
import { zscoreKind } from './zscore.ts';

const BUILTIN = [
  thresholdKind,
  rateKind,
  zscoreKind,
  spikeKind,
  changepointKind,
  flatlineKind,
  missingKind,
  patternKind,
  anomalyKind,
] as const;

export const ruleKinds = new Registry<RuleKindDescriptor>('rule kind', BUILTIN);

/** A rule as the engine takes it: validated, defaults applied, durations in ms, `on` normalised. */
export type RuleSpec = z.output<(typeof BUILTIN)[number]['schema']>;
/** A rule as written in the config (durations as `30s` or ms, `on: "window:name"` allowed). */
export type RuleSpecInput = z.input<(typeof BUILTIN)[number]['schema']>;
