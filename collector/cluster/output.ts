// Output records of cluster mode: the same layout as the single-node Kafka sink (SPEC.md section 4,
// sinks/kafka.ts): topic per kind, key `{agent}/{device}` (dead letters: `{agent}`), value = the item
// JSON with `agent`, header `edgeflow-id`; dead letters carry the raw payload, `edgeflow-error`,
// `edgeflow-agent`, `edgeflow-topic`. Partitioning is the producer's murmur2 partitioner
// (memoizedDefaultPartitioner), as in single-node mode, so a consumer cannot tell the modes apart.
// kafka.ts keeps this private inside KafkaSink (KafkaSink.message), so the
// layout is restated here; output.test.ts pins it to the SPEC's examples.
import type { KafkaConfig } from '../config.ts';
import { itemRecordJson } from '../sinks/sink.ts';
import type { SpoolItem } from '../spool/spool.ts';

export interface OutRecord {
  topic: string;
  key: string;
  value: string | Buffer;
  headers: Record<string, string>;
}

export function outputRecord(item: SpoolItem, topics: KafkaConfig['topics']): OutRecord {
  if (item.kind === 'deadletter') {
    const headers: Record<string, string> = {
      'edgeflow-error': item.error ?? 'unknown',
      'edgeflow-agent': item.agent,
    };
    if (item.topic) headers['edgeflow-topic'] = item.topic;
    if (item.itemId) headers['edgeflow-id'] = item.itemId;
    return { topic: topics.deadletter, key: item.agent, value: item.body, headers };
  }
  return {
    topic: topics[item.kind],
    key: item.device ? `${item.agent}/${item.device}` : item.agent,
    value: itemRecordJson(item),
    headers: { 'edgeflow-id': item.itemId ?? '' },
  };
}
