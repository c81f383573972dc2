import { type ConfigResult, loadConfigFile } from '../shared/config-file.ts';
import { type AgentConfig, agentConfigSchema } from './config.ts';

/** The schema of the built-in kinds; loadAgentConfig also sees kinds registered after import. */
export const agentSchema = agentConfigSchema();

export function loadAgentConfig(path: string): ConfigResult<AgentConfig> {
  return loadConfigFile(path, agentConfigSchema());
}
