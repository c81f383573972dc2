// Issue 4, back-pressure with a real agent process: the MQTT source is fed (600 msg/s) while the agent
// cannot checkpoint at all (its 1 MB data dir is filled), so un-checkpointed frames pile up. The runtime
// must pause the source at limits.maxPendingFrames (the gateway Mosquitto keeps the rest queued), keep
// its RSS bounded, and lose nothing: once space is freed the counts upstream equal the simulator's.
// Serial cannot be paused without uncounted loss (the OS buffer, then the device, would drop lines): the
// runtime keeps reading it and drops with a counter; every reading is then either delivered or counted.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  type AgentProcess,
  metricValue,
  startAgent,
  tempDir,
  writeConfig,
} from '../helpers/agent-process.ts';
import { type Broker, startMosquitto } from '../helpers/mosquitto.ts';
import { killAll } from '../helpers/processes.ts';
import { openPtyPair } from '../helpers/pty.ts';
import { runSim } from '../helpers/sim-run.ts';
import { captureUplink } from '../helpers/uplink-capture.ts';
import { waitFor } from '../helpers/wait.ts';

const MAX_PENDING = 2000;
/** RSS growth allowed over the idle agent while 600 msg/s cannot be checkpointed for ~10 s. */
const RSS_GROWTH_CEILING = 96 * 1024 * 1024;

let agent: AgentProcess | undefined;
const brokers: Broker[] = [];
const mounts: string[] = [];
after(async () => {
  await agent?.stop('SIGKILL');
  for (const b of brokers) await b.stop();
  await killAll(); // nothing may hold the mount (or the file's process) open
  for (const m of mounts) {
    try {
      execFileSync('umount', [m], { stdio: 'pipe' });
    } catch (e) {
      console.log(`# umount ${m}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
});

function fillDisk(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  try {
    for (;;) writeSync(fd, Buffer.alloc(16 * 1024, 1));
  } catch {
  } finally {
    closeSync(fd);
  }
  return filler;
}

test('MQTT overload while checkpoints cannot be written: source paused, RSS bounded, no loss afterwards', {
  timeout: 150_000,
}, async (t) => {
  const dataDir = tempDir('edgeflow-mnt-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dataDir], { stdio: 'pipe' });
    mounts.push(dataDir);
  } catch (e) {
    const reason = `cannot mount a 1 MB tmpfs (needs root): ${(e as Error).message.split('\n')[0]}`;
    console.log(`# skipped: ${reason}`);
    t.skip(reason);
    return;
  }
  const sensors = await startMosquitto({ gateway: true });
  const upstream = await startMosquitto();
  brokers.push(sensors, upstream);
  const id = `ovl-${process.pid}`;
  const cap = await captureUplink(upstream.url, id);
  try {
    agent = await startAgent(
      writeConfig(tempDir(), {
        agent: { id, dataDir },
        sources: [
          {
            type: 'mqtt',
            name: 'sensors',
            url: sensors.url,
            topics: ['plant/+/+'],
            topicPattern: 'plant/{device}/{metric}',
            format: 'json',
          },
        ],
        watermark: { maxOutOfOrder: '200ms', idleTimeout: '1s' },
        windows: [
          { name: 'w1s', type: 'tumbling', size: '1s', aggregates: ['count', 'sum', 'min', 'max', 'p95'] },
        ],
        uplink: { urls: [upstream.url], batch: { maxItems: 200, maxDelay: '100ms' } },
        checkpoint: { interval: '500ms' },
        limits: { maxPendingFrames: MAX_PENDING },
        http: { listen: '127.0.0.1:0' },
      }),
    );
    await waitFor('source up', async () => (await agent!.status()).sources.sensors?.state === 'up');
    const rssIdle = (await agent.status()).memory.rss as number;

    // No space: every checkpoint fails from now on.
    const filler = fillDisk(dataDir);
    const sim = runSim([
      '--devices',
      '10',
      '--rate',
      '20',
      '--metrics',
      'temperature,current,humidity',
      '--duration',
      '12s',
      '--seed',
      '3',
      '--mqtt',
      sensors.url,
      '--topic-pattern',
      'plant/{device}/{metric}',
      '--format',
      'json',
      '--qos',
      '1',
    ]);
    let simDone = false;
    void sim.then(
      () => (simDone = true),
      () => (simDone = true),
    );
    let rssMax = rssIdle;
    let pendingMax = 0;
    let sawPaused = false;
    while (!simDone) {
      const st = await agent.status();
      rssMax = Math.max(rssMax, st.memory.rss);
      pendingMax = Math.max(pendingMax, st.pendingFrames);
      sawPaused ||= st.paused && st.sources.sensors.paused === true;
      await delay(250); // sampling period
    }
    const report = await sim;
    console.log(
      `# overload: ${report.readingsSent} readings in 12 s, RSS idle ${(rssIdle / 2 ** 20).toFixed(0)} MiB, max ${(rssMax / 2 ** 20).toFixed(0)} MiB, pending frames max ${pendingMax}`,
    );
    assert.ok(sawPaused, 'the MQTT source was never paused');
    // One mqtt.js packet may be in the parser when the pause lands, nothing more.
    assert.ok(pendingMax <= MAX_PENDING + 1, `pending frames reached ${pendingMax} (limit ${MAX_PENDING})`);
    assert.ok(
      rssMax - rssIdle < RSS_GROWTH_CEILING,
      `RSS grew by ${((rssMax - rssIdle) / 2 ** 20).toFixed(0)} MiB`,
    );
    assert.ok(metricValue(await agent.metrics(), 'edgeflow_agent_backpressure_total') >= 1);

    unlinkSync(filler);
    const total = () => [...cap.captured.summaries.values()].reduce((a, s) => a + s.count, 0);
    await waitFor(
      `upstream counts to reach ${report.readingsSent}`,
      () => total() === report.readingsSent || undefined,
      { timeoutMs: 60_000, progress: total },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; got ${total()}`);
    });
    assert.equal((await agent.status()).paused, false);
    assert.equal(await agent.stop('SIGTERM'), 0);
    agent = undefined;
  } finally {
    await cap.close();
  }
});

test('serial overload while checkpoints cannot be written: never paused, dropped with a counter, every reading delivered or counted', {
  timeout: 120_000,
}, async (t) => {
  const dataDir = tempDir('edgeflow-mnt-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dataDir], { stdio: 'pipe' });
    mounts.push(dataDir);
  } catch (e) {
    const reason = `cannot mount a 1 MB tmpfs (needs root): ${(e as Error).message.split('\n')[0]}`;
    console.log(`# skipped: ${reason}`);
    t.skip(reason);
    return;
  }
  const upstream = await startMosquitto();
  brokers.push(upstream);
  const id = `ovl-serial-${process.pid}`;
  const cap = await captureUplink(upstream.url, id);
  const pty = await openPtyPair();
  try {
    agent = await startAgent(
      writeConfig(tempDir(), {
        agent: { id, dataDir },
        sources: [{ type: 'serial', name: 'line', path: pty.b, baudRate: 921600, format: 'json' }],
        watermark: { maxOutOfOrder: '200ms', idleTimeout: '1s' },
        windows: [{ name: 'w1s', type: 'tumbling', size: '1s', aggregates: ['count'] }],
        uplink: { urls: [upstream.url], batch: { maxItems: 200, maxDelay: '100ms' } },
        checkpoint: { interval: '500ms' },
        limits: { maxPendingFrames: 300 },
        http: { listen: '127.0.0.1:0' },
      }),
    );
    await waitFor('serial source up', async () => (await agent!.status()).sources.line?.state === 'up');
    const filler = fillDisk(dataDir);
    const sim = runSim([
      '--devices',
      '4',
      '--rate',
      '20',
      '--metrics',
      'temperature,current',
      '--duration',
      '5s',
      '--seed',
      '4',
      '--serial',
      pty.a,
      '--baud-rate',
      '921600',
      '--format',
      'json',
    ]);
    let simDone = false;
    void sim.then(
      () => (simDone = true),
      () => (simDone = true),
    );
    let sawPausedSerial = false;
    while (!simDone) {
      const st = await agent.status();
      sawPausedSerial ||= st.sources.line.paused === true;
      await delay(250); // sampling period
    }
    const report = await sim;
    // Let the last lines through the pty into the agent, then free the space.
    const linesRead = async () => {
      const st = await agent!.status();
      return st.counters.readingsIn + st.counters.droppedBackpressure + st.counters.badFrames;
    };
    await waitFor('every line read', async () => (await linesRead()) >= report.readingsSent, {
      timeoutMs: 30_000,
      progress: linesRead,
    });
    unlinkSync(filler);
    await waitFor('checkpoints succeed again', async () => (await agent!.status()).checkpointFailing === 0, {
      timeoutMs: 20_000,
    });
    const st = await agent.status();
    assert.equal(sawPausedSerial, false, 'the serial source was paused (the tty would lose lines uncounted)');
    assert.ok(st.counters.droppedBackpressure > 0, 'nothing dropped: the overload did not happen');
    assert.equal(
      metricValue(await agent.metrics(), 'edgeflow_agent_readings_dropped_total', { reason: 'backpressure' }),
      st.counters.droppedBackpressure,
    );
    assert.equal(
      st.counters.readingsIn + st.counters.droppedBackpressure,
      report.readingsSent,
      'a reading is neither accepted nor counted as dropped',
    );
    const total = () => [...cap.captured.summaries.values()].reduce((a, s) => a + s.count, 0);
    await waitFor(
      `upstream counts to reach the ${st.counters.readingsIn} accepted readings`,
      () => total() === st.counters.readingsIn || undefined,
      { timeoutMs: 60_000, progress: total },
    ).catch((e) => {
      throw new Error(`${(e as Error).message}; got ${total()}`);
    });
    console.log(
      `# serial overload: ${report.readingsSent} sent, ${st.counters.readingsIn} accepted and delivered, ${st.counters.droppedBackpressure} dropped (back-pressure)`,
    );
    assert.equal(await agent.stop('SIGTERM'), 0);
    agent = undefined;
  } finally {
    await cap.close();
    await pty.close();
  }
});
