// `artifacts:` in the collector config (issue 16): where the releases it serves to agents live.
import { z } from 'zod';

export const artifactsSchema = z
  .object({
    /** Directory of releases: `<version>/edgeflow-agent-linux-<arch>` and its `.manifest.json` (docs/updates.md). */
    dir: z.string().min(1),
  })
  .strict();
export type ArtifactsConfig = z.output<typeof artifactsSchema>;
