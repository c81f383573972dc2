// Smoke test of the test bed's VictoriaMetrics through the client the collector's v2 sink uses:
// @influxdata/influxdb-client WriteApi → /api/v2/write (VictoriaMetrics ignores org and token and
// names the series <measurement>_<field>), read back with /api/v1/export.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InfluxDB, Point } from '@influxdata/influxdb-client';
import { services, uniqueName, victoriaExport } from '../helpers/services.ts';

test('influxdb-client WriteApi writes to VictoriaMetrics /api/v2/write and the export API returns it', async () => {
  const run = uniqueName('r').replaceAll('.', '_');
  // The test bed keeps one month (-retentionPeriod=1), so samples must be recent: two whole minutes ago.
  const now = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
  const influx = new InfluxDB({
    url: services().victoria.url,
    token: 'ignored-by-victoria',
    timeout: 10_000,
  });
  const writeApi = influx.getWriteApi('edgeflow-org', 'edgeflow', 'ms', { maxRetries: 0 });
  writeApi.useDefaultTags({ agent: 'gw-001' });
  writeApi.writePoints([
    new Point('edgeflow_smoke')
      .tag('run', run)
      .tag('device', 's1')
      .floatField('mean', 21.5)
      .intField('count', 60)
      .timestamp(now),
    new Point('edgeflow_smoke')
      .tag('run', run)
      .tag('device', 's1')
      .floatField('mean', 22.25)
      .intField('count', 59)
      .timestamp(now + 60_000),
  ]);
  await writeApi.close(); // flushes; rejects if the server refused the batch

  const mean = await victoriaExport(`{__name__="edgeflow_smoke_mean",run="${run}"}`);
  assert.equal(mean.length, 1, JSON.stringify(mean));
  assert.equal(mean[0]?.metric.agent, 'gw-001');
  assert.equal(mean[0]?.metric.device, 's1');
  assert.deepEqual(mean[0]?.values, [21.5, 22.25]);
  assert.deepEqual(mean[0]?.timestamps, [now, now + 60_000]);

  const count = await victoriaExport(`{__name__="edgeflow_smoke_count",run="${run}"}`);
  assert.deepEqual(count[0]?.values, [60, 59]);
});
