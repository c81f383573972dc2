import { sinkConformance } from '../../collector/sinks/sink.conformance.ts';
import { influxV2Harness } from './sink-harnesses.ts';

sinkConformance('InfluxDB v2 write API (VictoriaMetrics)', influxV2Harness());
