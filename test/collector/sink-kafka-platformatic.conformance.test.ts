import { sinkConformance } from '../../collector/sinks/sink.conformance.ts';
import { kafkaHarness } from './sink-harnesses.ts';

sinkConformance('Kafka (@platformatic/kafka)', kafkaHarness('platformatic'));
