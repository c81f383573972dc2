import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type PartitionerArgs, Partitioners } from 'kafkajs';
import { memoizedDefaultPartitioner } from './kafka.ts';

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
