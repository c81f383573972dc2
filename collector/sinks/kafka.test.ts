import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type PartitionerArgs, Partitioners } from 'kafkajs';
import { memoizedDefaultPartitioner } from './kafka-kafkajs.ts';
import { memoizedMurmur2Partitioner } from './kafka-platformatic.ts';

function meta(n: number): PartitionerArgs['partitionMetadata'] {
  return Array.from({ length: n }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    partitionErrorCode: 0,
    replicas: [1],
    isr: [1],
  }));
}

test('the memoized partitioner picks the same partition as kafkajs DefaultPartitioner (murmur2), also on repeats', () => {
  const memo = memoizedDefaultPartitioner();
  const plain = Partitioners.DefaultPartitioner();
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.string({ maxLength: 40 }), fc.integer({ min: 1, max: 64 }), fc.constantFrom('a', 'b')),
        {
          minLength: 1,
          maxLength: 50,
        },
      ),
      (calls) => {
        for (const [key, n, topic] of [...calls, ...calls]) {
          const args = { topic, partitionMetadata: meta(n), message: { key, value: 'v' } };
          assert.equal(memo(args), plain(args), `key ${JSON.stringify(key)} over ${n} partitions`);
        }
      },
    ),
  );
  // An explicit partition wins, as in kafkajs.
  assert.equal(
    memo({ topic: 'a', partitionMetadata: meta(3), message: { key: 'k', value: 'v', partition: 2 } }),
    2,
  );
});

test('the @platformatic/kafka partitioner maps every key to the partition kafkajs DefaultPartitioner picks', () => {
  const memo = memoizedMurmur2Partitioner();
  const plain = Partitioners.DefaultPartitioner();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.string({ maxLength: 40, unit: 'binary' }), fc.integer({ min: 1, max: 64 })), {
        minLength: 1,
        maxLength: 50,
      }),
      (calls) => {
        for (const [key, n] of [...calls, ...calls]) {
          // The library takes the partitioner's result modulo the partition count (producer.js #performSend).
          const ours = memo({ topic: 't', key, value: Buffer.from('v') }, Buffer.from(key)) % n;
          const theirs = plain({ topic: 't', partitionMetadata: meta(n), message: { key, value: 'v' } });
          assert.equal(ours, theirs, `key ${JSON.stringify(key)} over ${n} partitions`);
        }
      },
    ),
  );
});
