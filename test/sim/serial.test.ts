// Foundation issue "done when" (a): edgeflow-sim → socat pty → a serialport reader at the configured
// baud rate receives every frame; counts per device/metric from decoding the received frames equal
// the simulator's report, malformed frames counted separately.
//
// 10 devices x 3 metrics at 100 Hz (the rate is sample ticks per device; each tick samples every metric)
// = 3000 readings/s, one csv frame each (~39 bytes with newline) ≈ 117 KB/s. A UART moves baud/10
// bytes/s (8N1), so 115200 baud (11.5 KB/s) and even 921600 (92 KB/s) cannot carry it; 1,500,000 baud
// (150 KB/s) can. A pty does not enforce the baud rate, so the simulator's own check (it warns when the
// measured data rate exceeds baud/10) is asserted silent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ReadlineParser } from '@serialport/parser-readline';
import { SerialPort } from 'serialport';
import { openPtyPair } from '../helpers/pty.ts';
import { runSimProcess } from '../helpers/sim-run.ts';
import { waitFor } from '../helpers/wait.ts';
import { Receiver } from './receiver.ts';

const BAUD = 1_500_000;
const dir = mkdtempSync(join(tmpdir(), 'edgeflow-sim-serial-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function serialRun(seconds: number, extra: string[], ports = 1) {
  const ptys = await Promise.all(Array.from({ length: ports }, () => openPtyPair()));
  const readers = ptys.map((p) => new SerialPort({ path: p.b, baudRate: BAUD, autoOpen: false }));
  try {
    const rx = new Receiver('csv');
    const perPort = readers.map(() => new Set<string>());
    for (const [i, port] of readers.entries()) {
      await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
      // latin1 keeps every byte as it came, so the decoder sees the raw frame (garbage included).
      port.pipe(new ReadlineParser({ delimiter: '\n', encoding: 'latin1' })).on('data', (line: string) => {
        rx.frame(Buffer.from(line, 'latin1'));
        perPort[i]!.add(line.split(',')[0]!);
      });
    }
    const started = performance.now();
    const { report, logs } = await runSimProcess(
      [
        ...['--serial', ptys.map((p) => p.a).join(','), '--baud-rate', String(BAUD), '--format', 'csv'],
        ...[
          '--devices',
          '10',
          '--metrics',
          'temperature,vibration,current',
          '--rate',
          '100',
          '--duration',
          `${seconds}s`,
        ],
        ...['--seed', 'serial-it', ...extra, '--log-level', 'info'],
      ],
      join(dir, `report-${seconds}.json`),
    );
    await waitFor(
      `all ${report.framesSent} frames read (have ${rx.frames})`,
      () => rx.frames >= report.framesSent,
      {
        timeoutMs: 10_000,
      },
    );
    return { rx, report, logs, perPort, elapsedMs: performance.now() - started };
  } finally {
    for (const port of readers) if (port.isOpen) await new Promise((r) => port.close(r));
    for (const p of ptys) await p.close();
  }
}

function assertSameAccounting(rx: Receiver, report: Awaited<ReturnType<typeof serialRun>>['report']) {
  assert.equal(rx.frames, report.framesSent, 'frames');
  assert.equal(rx.malformed, report.malformed, 'malformed');
  assert.equal(rx.duplicates, report.duplicates, 'duplicates');
  assert.equal(rx.outOfOrder, report.outOfOrder, 'out of order');
  assert.equal(rx.readings, report.readingsSent, 'readings');
  assert.equal(report.sent.total, report.readingsSent);
  assert.deepEqual(rx.sorted(), report.sent.byDeviceMetric);
}

describe('edgeflow-sim over a serial pty', () => {
  it('30 s, 10 devices x 3 metrics at 100 Hz with malformed frames: every frame arrives, counts match', async () => {
    const { rx, report, logs, elapsedMs } = await serialRun(30, ['--malformed', '0.01']);
    assertSameAccounting(rx, report);
    assert.equal(Object.keys(report.sent.byDeviceMetric).length, 30);
    assert.ok(report.malformed > 0.005 * report.framesSent, `${report.malformed} malformed`);
    assert.equal(
      report.readingsSent + report.malformed,
      30 * 3000,
      'each sample is a reading or a malformed frame',
    );
    assert.ok(
      Math.abs(report.achievedRateHz / (report.targetRateHz * 0.99) - 1) < 0.02,
      `${report.achievedRateHz} Hz`,
    );
    assert.ok(!logs.some((l) => String(l.msg).includes('baud rate')), 'data rate fits the baud rate');
    assert.ok(elapsedMs < 45_000, `${elapsedMs} ms`);
  });

  it('10 s over two ports with every fault: duplicates, late frames, clock skew, anomalies', async () => {
    const { rx, report, perPort } = await serialRun(
      10,
      [
        ...['--malformed', '0.02', '--duplicates', '0.02', '--out-of-order', '0.03', '--max-delay', '1s'],
        ...['--clock-skew', '2s', '--anomalies', 'spike,step,drift,stuck,dropout', '--anomaly-rate', '600'],
      ],
      2,
    );
    assertSameAccounting(rx, report);
    assert.ok(report.duplicates > 0 && report.outOfOrder > 0 && report.malformed > 0);
    // Devices are spread over the ports (device k on port k mod 2); garbage lines add odd first fields.
    const devices = perPort.map((s) => [...s].filter((d) => /^dev-\d{3}$/.test(d)).sort());
    assert.deepEqual(devices[0], ['dev-001', 'dev-003', 'dev-005', 'dev-007', 'dev-009']);
    assert.deepEqual(devices[1], ['dev-002', 'dev-004', 'dev-006', 'dev-008', 'dev-010']);
  });
});
