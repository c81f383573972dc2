// SD-card friendliness (issue 4): bytes the agent process writes per hour at a fixed load, from
// /proc/<pid>/io of the agent (write_bytes: what reaches the block layer, counted when pages are
// dirtied; wchar: bytes passed to write(2), logs on stderr included).
//
// Load: edgeflow-sim, 10 devices × 3 metrics × 10 Hz (300 readings/s) over MQTT QoS 1 through a private
// gateway Mosquitto; one tumbling window (1 s, or each of EDGEFLOW_BENCH_SDCARD_WINDOWS) with every aggregate; uplink to a second Mosquitto so the outbox
// drains (deletes write too). The data dir is on the machine's disk (not tmpfs: tmpfs has no
// write_bytes). One run per checkpoint.interval, `EDGEFLOW_BENCH_SDCARD_SECONDS` each [60].
//
//   node --import tsx bench/sdcard.ts            (alone)
//   npm run bench -- sdcard                      (through bench/run.ts)
//   EDGEFLOW_BENCH_SDCARD_INTERVALS=1s,5s EDGEFLOW_BENCH_SDCARD_SECONDS=60 node --import tsx bench/sdcard.ts
//   EDGEFLOW_BENCH_SDCARD_WINDOWS=1s,60s ...   (window sizes [1s]; every size × every interval)
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openDatabase } from '../shared/sqlite.ts';
import { metricValue, startAgent, tempDir, writeConfig } from '../test/helpers/agent-process.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';
import { runSim } from '../test/helpers/sim-run.ts';
import { waitFor } from '../test/helpers/wait.ts';

interface ProcIo {
  wchar: number;
  write_bytes: number;
  syscw: number;
}

function procIo(pid: number): ProcIo {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/io`, 'utf8').split('\n')) {
    const [k, v] = line.split(':');
    if (k && v) out[k.trim()] = Number(v.trim());
  }
  return { wchar: out.wchar ?? 0, write_bytes: out.write_bytes ?? 0, syscw: out.syscw ?? 0 };
}

const MiB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

/**
 * `old`: the checkpoint and uplink timing before issue 19 (checkpoint only on the interval timer, every
 * partial batch lingers maxDelay), run beside the defaults so the write figures compare in one session.
 */
type Timing = 'defaults' | 'old';

async function runOnce(
  interval: string,
  windowSize: string,
  seconds: number,
  timing: Timing = 'defaults',
): Promise<Record<string, unknown>> {
  const sensors = await startMosquitto({ gateway: true });
  const upstream = await startMosquitto();
  // Disk-backed (ext4 here), not /tmp if that is a tmpfs: tmpfs has no write_bytes accounting.
  const dataDir = mkdtempSync('/var/tmp/edgeflow-sdcard-');
  const id = `sdcard-${process.pid}`;
  const agent = await startAgent(
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
      watermark: { maxOutOfOrder: '500ms', idleTimeout: '5s' },
      windows: [{ name: `w${windowSize}`, type: 'tumbling', size: windowSize }],
      uplink:
        timing === 'old'
          ? { urls: [upstream.url], batch: { maxDelay: '1s', sendWhenIdle: false } }
          : { urls: [upstream.url] },
      checkpoint: timing === 'old' ? { interval, minInterval: interval } : { interval },
      http: { listen: '127.0.0.1:0' },
    }),
  );
  try {
    await waitFor('source up', async () => (await agent.status()).sources.sensors?.state === 'up', {
      timeoutMs: 30_000,
    });
    const pid = agent.proc.pid!;
    const io0 = procIo(pid);
    const m0 = await agent.metrics();
    const t0 = performance.now();
    const report = await runSim(
      [
        '--devices',
        '10',
        '--rate',
        '10',
        '--metrics',
        'temperature,current,humidity',
        '--duration',
        `${seconds}s`,
        '--seed',
        '1',
        '--mqtt',
        sensors.url,
        '--topic-pattern',
        'plant/{device}/{metric}',
        '--format',
        'json',
        '--qos',
        '1',
      ],
      { timeoutMs: (seconds + 60) * 1000 },
    );
    const elapsed = (performance.now() - t0) / 1000;
    const io1 = procIo(pid);
    const m1 = await agent.metrics();
    const st = await agent.status();
    const perHour = (b: number) => Math.round((b * 3600) / elapsed);
    // Stored size of each checkpoint value at the end of the run (what one state rewrite costs).
    const ro = openDatabase(join(dataDir, 'outbox.db'), { readonly: true, fileMustExist: true });
    const checkpointValueBytes = Object.fromEntries(
      (
        ro.prepare('SELECT key, length(CAST(value AS BLOB)) AS n FROM checkpoint_v1').all() as {
          key: string;
          n: number;
        }[]
      ).map((r) => [r.key, r.n]),
    );
    ro.close();
    const files = Object.fromEntries(readdirSync(dataDir).map((f) => [f, statSync(join(dataDir, f)).size]));
    const ck = (m: string, result: string) => metricValue(m, 'edgeflow_agent_checkpoints_total', { result });
    return {
      timing,
      window: windowSize,
      checkpointInterval: interval,
      seconds: Math.round(elapsed * 10) / 10,
      readings: report.readingsSent,
      summariesOut: st.counters.summaries,
      checkpointsWritten: ck(m1, 'ok') - ck(m0, 'ok'),
      checkpointsSkipped: ck(m1, 'skipped') - ck(m0, 'skipped'),
      writeBytes: io1.write_bytes - io0.write_bytes,
      wchar: io1.wchar - io0.wchar,
      writeSyscalls: io1.syscw - io0.syscw,
      writeBytesPerHourMiB: MiB(perHour(io1.write_bytes - io0.write_bytes)),
      wcharPerHourMiB: MiB(perHour(io1.wchar - io0.wchar)),
      bytesPerReading: Math.round((io1.write_bytes - io0.write_bytes) / report.readingsSent),
      dataDirFiles: files,
      rssMiB: MiB(st.memory.rss),
      checkpointValueBytes,
    };
  } finally {
    await agent.stop('SIGTERM');
    await sensors.stop();
    await upstream.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function benchSdCard(): Promise<Record<string, unknown>> {
  const seconds = Number(process.env.EDGEFLOW_BENCH_SDCARD_SECONDS ?? 60);
  const intervals = (process.env.EDGEFLOW_BENCH_SDCARD_INTERVALS ?? '1s').split(',');
  // Window sizes: 1 s (a summary per key per second: the outbox-heavy case) and 60 s (the realistic
  // one: few summaries, the checkpoint is mostly the open windows' state).
  const windowSizes = (process.env.EDGEFLOW_BENCH_SDCARD_WINDOWS ?? '1s').split(',');
  // EDGEFLOW_BENCH_SDCARD_TIMINGS=old,defaults: each case also with the timing before issue 19.
  const timings = (process.env.EDGEFLOW_BENCH_SDCARD_TIMINGS ?? 'defaults').split(',') as Timing[];
  const runs: Record<string, unknown>[] = [];
  for (const w of windowSizes)
    for (const interval of intervals)
      for (const t of timings)
        runs.push(await runOnce(interval.trim(), w.trim(), seconds, t.trim() as Timing));
  const load = `10 devices × 3 metrics × 10 Hz (300 readings/s), MQTT QoS 1, ${windowSizes.join(' / ')} tumbling windows (all aggregates), uplink draining`;
  const command = `EDGEFLOW_BENCH_SDCARD_TIMINGS=${timings.join(',')} EDGEFLOW_BENCH_SDCARD_WINDOWS=${windowSizes.join(',')} EDGEFLOW_BENCH_SDCARD_INTERVALS=${intervals.join(',')} EDGEFLOW_BENCH_SDCARD_SECONDS=${seconds} node --import tsx bench/sdcard.ts`;
  // `rows`/`notes`: the shape bench/run.ts prints (bench/lib.ts BenchResult).
  return {
    rows: runs.map(({ dataDirFiles: _files, ...r }) => r),
    notes: [
      `load: ${load}`,
      `command: ${command}`,
      'write_bytes from /proc/<agent pid>/io; per hour = extrapolated from the run',
    ],
    load,
    command,
    runs,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const res = await benchSdCard();
  console.log(JSON.stringify(res, null, 2));
  process.exit(0);
}
