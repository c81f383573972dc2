import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AckDecision, AckQueue } from './ack-queue.ts';

function queue(decide: AckDecision | ((gen: number) => AckDecision) = 'send') {
  const sent: number[] = [];
  const q = new AckQueue(
    (e) => (typeof decide === 'function' ? decide(e.gen) : decide),
    (e) => sent.push(e.messageId),
  );
  const push = (id: number, gen = 1) => q.push(id, gen, `${id}:k`);
  return { q, sent, push };
}

describe('AckQueue', () => {
  it('sends in arrival order whatever the ack order [MQTT-4.6.0-2]', () => {
    const { q, sent, push } = queue();
    const [a, b, c] = [push(1), push(2), push(3)];
    q.ack(c);
    assert.deepEqual(sent, []);
    q.ack(a);
    assert.deepEqual(sent, [1]);
    q.ack(b);
    assert.deepEqual(sent, [1, 2, 3]);
    q.ack(b); // idempotent
    assert.deepEqual(sent, [1, 2, 3]);
    assert.equal(q.size, 0);
  });
  it('waits while the owner says wait, drops what it says to drop', () => {
    let decision: AckDecision = 'wait';
    const { q, sent, push } = queue(() => decision);
    const a = push(1);
    const b = push(2);
    q.ack(a);
    q.ack(b);
    assert.equal(q.size, 2);
    decision = 'drop';
    q.flush();
    assert.deepEqual(sent, []);
    assert.equal(q.size, 0);
  });
  it('dropOlderThan() kills older generations and unblocks the head', () => {
    const { q, sent, push } = queue((gen) => (gen === 2 ? 'send' : 'wait'));
    push(1, 1); // never acked: its connection is gone
    const b = push(2, 2);
    q.ack(b);
    assert.deepEqual(sent, []);
    assert.equal(q.dropOlderThan(2), 1);
    assert.deepEqual(sent, [2]);
  });
  it('stays correct across compaction', () => {
    const { q, sent, push } = queue();
    for (let i = 0; i < 5000; i++) q.ack(push(i % 65535));
    assert.equal(sent.length, 5000);
    assert.equal(q.live().length, 0);
  });
});
