import { type ConfigResult, loadConfigFile } from '../shared/config-file.ts';
import { type AgentConfig, agentConfigSchema } from './config.ts';
import { ruleSpecSchema } from './rules/schema.ts';

export const agentSchema = agentConfigSchema(ruleSpecSchema);

export function loadAgentConfig(path: string): ConfigResult<AgentConfig> {
  return loadConfigFile(path, agentSchema) as ConfigResult<AgentConfig>;
}
