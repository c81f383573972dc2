// Collector → real Kafka, InfluxDB 1.x (v1 API) and VictoriaMetrics (v2 API): items land once,
// re-sent batches do not duplicate, dead letters reach the dead-letter topic, and a sink that is down
// catches up when it returns while the other keeps flowing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Partitioners } from 'kafkajs';
import { ThreadedSinkRunner } from '../../collector/sinks/sink-thread.ts';
import { alert, batch, status, summary } from '../../collector/test-support/fixtures.ts';
import { influxQuery, services, uniqueName, victoriaExport } from '../helpers/services.ts';
import { TcpPlug } from '../helpers/tcp-plug.ts';
import { waitFor } from '../helpers/wait.ts';
import { header, KafkaSwitch, kcatRead, type Running, runCollector } from './kit.ts';

const env = () => services();

/**
 * These run once per Kafka client (issue 18) through a whole collector: the same records (keys, headers,
 * murmur2 partitions, no duplicates), dead letters, recovery after an outage. The properties of the Sink
 * interface alone are the Sink conformance suite's (collector/sinks/sink.conformance.ts, issue 13).
 */
const KAFKA_CLIENTS = ['platformatic', 'kafkajs'] as const;

/** kafkajs's DefaultPartitioner (murmur2, as the Java client): the mapping both clients must keep. */
const kafkajsPartition = (() => {
  const p = Partitioners.DefaultPartitioner();
  return (key: string, n: number) =>
    p({
      topic: 't',
      partitionMetadata: Array.from({ length: n }, (_, partitionId) => ({
        partitionId,
        leader: 1,
        partitionErrorCode: 0,
        replicas: [1],
        isr: [1],
      })),
      message: { key, value: '' },
    });
})();

function kafkaYaml(prefix: string, client: (typeof KAFKA_CLIENTS)[number] = 'platformatic'): string {
  return `kafka:
  client: ${client}
  brokers: [${env().kafka.brokers.join(', ')}]
  topics: { summaries: ${prefix}.summaries, alerts: ${prefix}.alerts, status: ${prefix}.status, late: ${prefix}.late, deadletter: ${prefix}.deadletter }`;
}

function influx1Yaml(url = env().influx1.url): string {
  const i = env().influx1;
  return `influx: { url: ${url}, api: v1, db: ${i.db}, username: ${i.username}, password: ${i.password} }`;
}

async function influxCount(agent: string): Promise<number> {
  const r = await influxQuery(`SELECT count("count") FROM edgeflow_summary WHERE agent = '${agent}'`);
  return (r.results[0]?.series?.[0]?.values[0]?.[1] as number | undefined) ?? 0;
}

for (const client of KAFKA_CLIENTS) {
  describe(`collector → Kafka (${client}) + InfluxDB 1.x`, () => {
    const agent = uniqueName('it-gw').replace(/[^a-zA-Z0-9._-]/g, '-');
    const prefix = uniqueName('edgeflow-it');
    let c: Running;
    before(async () => {
      c = await runCollector(agent, `${kafkaYaml(prefix, client)}\n${influx1Yaml()}`);
    });
    after(async () => {
      await c?.stop();
    });

    test('items land once in both; a re-sent batch does not duplicate', async () => {
      const mq = await c.connect();
      const t0 = Date.UTC(2024, 0, 1);
      const items = Array.from({ length: 20 }, (_, i) => summary(agent, `dev-${i % 4}`, t0 + i * 60_000));
      const b = batch(agent, items, 'batch-1');
      const sent = performance.now();
      await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, b, { qos: 1 });
      await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, b, { qos: 1 }); // re-send (lost PUBACK)
      await mq.publishAsync(`edgeflow/v1/${agent}/alerts`, batch(agent, [alert(agent, 'dev-1', t0)]), {
        qos: 1,
      });
      await mq.publishAsync(`edgeflow/v1/${agent}/status`, Buffer.from(JSON.stringify(status(agent, t0))), {
        qos: 1,
        retain: true,
      });

      await waitFor('influx has 20 points', async () => (await influxCount(agent)) === 20);
      const latencyMs = performance.now() - sent;
      const recs = await waitFor('kafka summaries', async () => {
        const r = await kcatRead(env().kafka.brokers, `${prefix}.summaries`);
        return r.length >= 20 ? r : null;
      });
      assert.equal(recs.length, 20, 'one Kafka record per item, the re-send de-duplicated');
      const r0 = recs.find((r) => header(r, 'edgeflow-id') === items[0]!.id)!;
      assert.ok(r0, 'edgeflow-id header carries the item id');
      assert.equal(r0.key, `${agent}/dev-0`);
      // The topics the collector creates have 3 partitions; murmur2 as kafkajs and the Java client.
      for (const r of recs) assert.equal(r.partition, kafkajsPartition(r.key!, 3), `partition of ${r.key}`);
      // Which partitions the four keys use depends on the random agent name (all four share one about
      // 1 time in 27), so compare with murmur2's own answer rather than expecting a spread.
      const want = [...new Set(recs.map((r) => kafkajsPartition(r.key!, 3)))].sort();
      assert.deepEqual(
        [...new Set(recs.map((r) => r.partition))].sort(),
        want,
        'partitions of the four keys',
      );
      const v = JSON.parse(r0.payload!);
      assert.equal(v.agent, agent);
      assert.equal(v.window.start, t0);
      const alerts = await waitFor('kafka alerts', async () => {
        const r = await kcatRead(env().kafka.brokers, `${prefix}.alerts`);
        return r.length >= 1 ? r : null;
      });
      assert.equal(alerts.length, 1);
      const st = await waitFor('kafka status', async () => {
        const r = await kcatRead(env().kafka.brokers, `${prefix}.status`);
        return r.length >= 1 ? r : null;
      });
      assert.equal(JSON.parse(st[0]!.payload!).agent, agent);
      const a = await influxQuery(`SELECT "state", "value" FROM edgeflow_alert WHERE agent = '${agent}'`);
      assert.equal(a.results[0]?.series?.[0]?.values.length, 1);
      const s = await influxQuery(`SELECT "outbox_items" FROM edgeflow_agent WHERE agent = '${agent}'`);
      assert.deepEqual(s.results[0]?.series?.[0]?.values, [[t0, 3]]);

      // Re-sending the same items in a new batch (an agent restart re-sends its outbox) stores nothing new.
      await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, batch(agent, items, 'batch-2'), { qos: 1 });
      // A rev+1 of one item is new data: it overwrites the same point in Influx (same series and time).
      await mq.publishAsync(
        `edgeflow/v1/${agent}/summaries`,
        batch(agent, [summary(agent, 'dev-0', t0, 1, { count: 61 })]),
        { qos: 1 },
      );
      await waitFor(
        'rev 1 in kafka',
        async () => (await kcatRead(env().kafka.brokers, `${prefix}.summaries`)).length === 21,
      );
      await waitFor('rev 1 in influx', async () => {
        const r = await influxQuery(
          `SELECT "count", "rev" FROM edgeflow_summary WHERE agent = '${agent}' AND device = 'dev-0' AND time = ${t0}ms`,
        );
        return r.results[0]?.series?.[0]?.values[0]?.[2] === 1;
      });
      assert.equal(await influxCount(agent), 20, 'still 20 points');
      console.log(`# publish → visible in InfluxDB: ${latencyMs.toFixed(0)} ms`);
    });

    test('invalid payloads and items reach the dead-letter topic with edgeflow-error and the raw payload', async () => {
      const mq = await c.connect();
      const t0 = Date.UTC(2024, 1, 1);
      const good = summary(agent, 'dl', t0);
      await mq.publishAsync(
        `edgeflow/v1/${agent}/summaries`,
        batch(agent, [good, { ...good, count: 'many' }]),
        { qos: 1 },
      );
      await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, Buffer.from('{"not json'), { qos: 1 });
      const dls = await waitFor('dead letters', async () => {
        const r = await kcatRead(env().kafka.brokers, `${prefix}.deadletter`);
        return r.length >= 2 ? r : null;
      });
      assert.equal(dls.length, 2);
      assert.ok(
        dls.some((d) => d.payload === '{"not json' && /^json: /.test(header(d, 'edgeflow-error') ?? '')),
      );
      assert.ok(
        dls.some(
          (d) => /^item: /.test(header(d, 'edgeflow-error') ?? '') && JSON.parse(d.payload!).count === 'many',
        ),
      );
      await waitFor('good item in influx', async () => {
        const r = await influxQuery(
          `SELECT count("count") FROM edgeflow_summary WHERE agent = '${agent}' AND device = 'dl'`,
        );
        return r.results[0]?.series?.[0]?.values[0]?.[1] === 1;
      });
    });
  });
}

describe('a sink that is down catches up', () => {
  const agent = uniqueName('it-down').replace(/[^a-zA-Z0-9._-]/g, '-');
  const prefix = uniqueName('edgeflow-down');
  const plug = new TcpPlug({ host: '127.0.0.1', port: Number(new URL(services().influx1.url).port) });
  let c: Running;
  before(async () => {
    await plug.up();
    await plug.down(); // InfluxDB "unreachable": connections to the plug's port are refused
    c = await runCollector(agent, `${kafkaYaml(prefix)}\n${influx1Yaml(`http://127.0.0.1:${plug.port}`)}`);
  });
  after(async () => {
    await c?.stop();
    await plug.down();
  });

  test('InfluxDB down: Kafka keeps flowing, InfluxDB gets everything once it is back', async () => {
    const mq = await c.connect();
    const t0 = Date.UTC(2024, 2, 1);
    for (let b = 0; b < 5; b++) {
      const items = Array.from({ length: 10 }, (_, i) => summary(agent, 'd', t0 + (b * 10 + i) * 60_000));
      await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, batch(agent, items), { qos: 1 });
    }
    await waitFor(
      'kafka has 50',
      async () => (await kcatRead(env().kafka.brokers, `${prefix}.summaries`)).length === 50,
    );
    const st = c.collector.status();
    const influx = st.sinks.find((s) => s.name === 'influx')!;
    assert.equal(influx.depth, 50, 'waiting for InfluxDB in the spool');
    assert.match(influx.lastError ?? '', /unavailable/);
    assert.equal(await influxCount(agent), 0);
    await plug.up();
    await waitFor('influx caught up', async () => (await influxCount(agent)) === 50, { timeoutMs: 20_000 });
    await waitFor('spool drained', () => c.collector.status().sinks.every((s) => s.depth === 0));
    assert.equal(c.collector.spool!.sizeBytes, 0);
  });
});

describe('collector → VictoriaMetrics through the InfluxDB v2 API', () => {
  const agent = uniqueName('it-vm').replace(/[^a-zA-Z0-9._-]/g, '-');
  let c: Running;
  before(async () => {
    c = await runCollector(
      agent,
      `influx: { url: ${services().victoria.url}, api: v2, org: plant, bucket: edgeflow, token: unused }`,
    );
  });
  after(async () => {
    await c?.stop();
  });

  test('summaries arrive once, re-sends do not add samples', async () => {
    const mq = await c.connect();
    const t0 = Date.now() - 3_600_000; // VictoriaMetrics keeps recent data only (retention)
    const start = t0 - (t0 % 60_000);
    const items = Array.from({ length: 5 }, (_, i) => summary(agent, 'vm', start + i * 60_000));
    await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, batch(agent, items, 'vm-1'), { qos: 1 });
    await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, batch(agent, items, 'vm-2'), { qos: 1 });
    const series = await waitFor('victoria has 5 samples', async () => {
      const s = await victoriaExport(`{__name__="edgeflow_summary_count",agent="${agent}"}`);
      return s[0]?.values.length === 5 ? s : null;
    });
    assert.equal(series.length, 1);
    assert.deepEqual(
      series[0]!.timestamps,
      items.map((i) => i.window.start),
    );
    assert.equal(series[0]!.metric.device, 'vm');
  });
});

for (const client of KAFKA_CLIENTS) {
  describe(`Kafka (${client}) down catches up`, () => {
    const agent = uniqueName('it-kdown').replace(/[^a-zA-Z0-9._-]/g, '-');
    const prefix = uniqueName('edgeflow-kdown');
    const sw = new KafkaSwitch();
    let c: Running;
    before(async () => {
      c = await runCollector(agent, `${kafkaYaml(prefix, client)}\n${influx1Yaml()}`, { kafkaSwitch: sw });
    });
    after(async () => {
      sw.restore();
      await c?.stop();
    });

    test('Kafka unreachable: InfluxDB keeps flowing, Kafka gets every item exactly once when it is back', async () => {
      const mq = await c.connect();
      const t0 = Date.UTC(2024, 5, 1);
      const send = async (b: number) => {
        const items = Array.from({ length: 10 }, (_, i) => summary(agent, 'k', t0 + (b * 10 + i) * 60_000));
        await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, batch(agent, items), { qos: 1 });
      };
      await send(0);
      await waitFor(
        'first batch in kafka',
        async () => (await kcatRead(env().kafka.brokers, `${prefix}.summaries`)).length === 10,
      );
      sw.cut();
      for (let b = 1; b < 5; b++) await send(b);
      await waitFor('influx has 50', async () => (await influxCount(agent)) === 50);
      await waitFor('kafka failures seen', () =>
        /connection/i.test(c.collector.status().sinks.find((s) => s.name === 'kafka')?.lastError ?? ''),
      );
      // An outage is never a reason to dead-letter or drop (regression: kafkajs marks "retries exhausted"
      // as non-retriable, which once sent every item of an outage to the dead-letter path).
      assert.ok(c.collector.spool!.read('kafka', 1000).every((i) => i.kind === 'summaries'));
      assert.doesNotMatch(
        await (await fetch(`${c.http}/metrics`)).text(),
        /edgeflow_collector_sink_dropped_total\{sink="kafka"\} [1-9]/,
      );
      assert.equal(c.collector.status().sinks.find((s) => s.name === 'kafka')?.depth, 40);
      assert.equal((await kcatRead(env().kafka.brokers, `${prefix}.summaries`)).length, 10);
      sw.restore();
      const recs = await waitFor(
        'kafka caught up',
        async () => {
          const r = await kcatRead(env().kafka.brokers, `${prefix}.summaries`);
          return r.length >= 50 ? r : null;
        },
        { timeoutMs: 30_000 },
      );
      assert.equal(recs.length, 50);
      assert.equal(new Set(recs.map((r) => header(r, 'edgeflow-id'))).size, 50, 'no duplicates');
      await waitFor('spool drained', () => c.collector.status().sinks.every((s) => s.depth === 0));
    });
  });
}

describe('sink threads', () => {
  const agent = uniqueName('it-thread').replace(/[^a-zA-Z0-9._-]/g, '-');
  const prefix = uniqueName('edgeflow-thread');
  let c: Running;
  before(async () => {
    c = await runCollector(agent, `${kafkaYaml(prefix)}\n${influx1Yaml()}`);
  });
  after(async () => {
    await c?.stop();
  });

  test('a sink thread that dies mid-stream is restarted from its persisted cursor; nothing is lost', async () => {
    const runners = c.collector.runners;
    const kafka = runners.find((r) => r.sink.name === 'kafka');
    assert.ok(kafka instanceof ThreadedSinkRunner, 'config-built sinks run on their own threads');
    const mq = await c.connect();
    const t0 = Date.UTC(2024, 4, 1);
    const ids: string[] = [];
    const publish = async (b: number) => {
      const items = Array.from({ length: 100 }, (_, i) =>
        summary(agent, `d${i % 5}`, t0 + (b * 100 + i) * 60_000),
      );
      for (const it of items) ids.push(it.id);
      await mq.publishAsync(`edgeflow/v1/${agent}/summaries`, batch(agent, items), { qos: 1 });
    };
    for (let b = 0; b < 5; b++) await publish(b);
    await waitFor(
      'kafka wrote some',
      async () => (await kcatRead(env().kafka.brokers, `${prefix}.summaries`)).length > 0,
    );
    // Batches keep coming while the thread is gone and while it restarts.
    const during = (async () => {
      for (let b = 5; b < 20; b++) await publish(b);
    })();
    await kafka.terminateThread();
    await during;
    const recs = await waitFor(
      'kafka has every item',
      async () => {
        const r = await kcatRead(env().kafka.brokers, `${prefix}.summaries`);
        const got = new Set(r.map((x) => header(x, 'edgeflow-id')));
        return ids.every((id) => got.has(id)) ? r : null;
      },
      { timeoutMs: 30_000 },
    );
    // At least once across a crash (as after a process kill); the edgeflow-id says which are copies.
    assert.ok(recs.length >= 2000, `${recs.length} records`);
    assert.equal(new Set(recs.map((x) => header(x, 'edgeflow-id'))).size, 2000);
    await waitFor('influx has every point', async () => (await influxCount(agent)) === 2000);
    const exits = (
      await c.registry.getSingleMetric('edgeflow_collector_sink_errors_total')!.get()
    ).values.find((v) => v.labels.sink === 'kafka' && v.labels.code === 'thread_exit');
    assert.equal(exits?.value, 1, 'the thread exit is counted');
    await waitFor('spool drained', () => c.collector.status().sinks.every((s) => s.depth === 0));
    await waitFor('kafka up again', () => kafka.lastError === null);
  });
});

test('sink threads: a sink that cannot start for good fails the collector start with its error', async () => {
  const p = uniqueName('edgeflow-missing-t');
  await assert.rejects(
    runCollector(
      uniqueName('it-missing').replace(/[^a-zA-Z0-9._-]/g, '-'),
      `kafka:
  brokers: [${env().kafka.brokers.join(', ')}]
  createTopics: false
  topics: { summaries: ${p}.s, alerts: ${p}.a, status: ${p}.st, late: ${p}.l, deadletter: ${p}.d }`,
    ),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, 'SINK_UNAVAILABLE');
      assert.match(e.message, /kafka topics missing: .*createTopics/);
      return true;
    },
  );
});

// A record refused for good (only it fails, not retriable, the rest written, no wedged producer) and
// `createTopics: false` with topics missing: the Sink conformance suite, for every sink and both Kafka
// clients (collector/sinks/sink.conformance.ts, test/collector/sink-*.conformance.test.ts).

describe('InfluxDB 1.x partial write (field type conflict)', () => {
  const agent = uniqueName('it-partial').replace(/[^a-zA-Z0-9._-]/g, '-');
  const prefix = uniqueName('edgeflow-partial');
  // A shard no other test writes to (January 2001): `mean` becomes a string field there, so every
  // summary point of that week is refused with a 400 "partial write: field type conflict".
  const BAD_T = Date.UTC(2001, 0, 1);
  let c: Running;
  before(async () => {
    const i = env().influx1;
    const res = await fetch(`${i.url}/write?db=${i.db}&precision=ms`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${i.username}:${i.password}`).toString('base64')}` },
      body: `edgeflow_summary,agent=conflict-seed,device=x,metric=m,window=w mean="text" ${BAD_T}`,
    });
    assert.ok(res.status === 204 || res.status === 400, `seed write: ${res.status}`); // 400 on re-runs is fine
    c = await runCollector(agent, `${kafkaYaml(prefix)}\n${influx1Yaml()}`);
  });
  after(async () => {
    await c?.stop();
  });

  test('the good points are written, the conflicting ones dead-lettered to Kafka with the sink error', async () => {
    const mq = await c.connect();
    const good = [0, 1, 2].map((k) => summary(agent, 'ok', Date.UTC(2024, 6, 1) + k * 60_000));
    const bad = [0, 1].map((k) => summary(agent, 'bad', BAD_T + k * 60_000));
    await mq.publishAsync(
      `edgeflow/v1/${agent}/summaries`,
      batch(agent, [good[0], bad[0], good[1], bad[1], good[2]]),
      { qos: 1 },
    );
    await waitFor('good points in influx', async () => (await influxCount(agent)) === 3);
    const dls = await waitFor('two dead letters', async () => {
      const r = await kcatRead(env().kafka.brokers, `${prefix}.deadletter`);
      return r.length >= 2 ? r : null;
    });
    assert.equal(dls.length, 2);
    for (const d of dls) {
      assert.match(
        header(d, 'edgeflow-error') ?? '',
        /^SINK_REJECTED influx\/bad_point: 400 .*field type conflict/,
      );
      assert.equal(JSON.parse(d.payload!).device, 'bad');
    }
    assert.deepEqual(new Set(dls.map((d) => header(d, 'edgeflow-id'))), new Set(bad.map((b) => b.id)));
    await waitFor('spool drained', () => c.collector.status().sinks.every((s) => s.depth === 0));
    assert.equal(
      (await kcatRead(env().kafka.brokers, `${prefix}.summaries`)).length,
      5,
      'Kafka has all five',
    );
  });
});
