import { sinkConformance } from '../../collector/sinks/sink.conformance.ts';
import { influxV1Harness } from './sink-harnesses.ts';

sinkConformance('InfluxDB 1.x, v1 write API', influxV1Harness());
