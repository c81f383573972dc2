// Outbox micro-benchmark: append / drain throughput of the SQLite outbox against a raw better-sqlite3 loop
// doing the same rows, bytes written per summary, and a drain through the MQTT uplink to Mosquitto on
// loopback (the test bed's Mosquitto, 127.0.0.1:18883). Run alone: `node --import tsx bench/outbox.ts`
// (EDGEFLOW_BENCH_N=items, EDGEFLOW_BENCH_MQTT=url).
// Targets (issue 3/4): append >= 200k summaries/s, uplink drain >= 50k items/s.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OutboxItem } from '../agent/outbox/outbox.ts';
import { encodeItem } from '../agent/outbox/policy.ts';
import { SqliteOutbox } from '../agent/outbox/sqlite.ts';
import { MqttUplink } from '../agent/uplink/mqtt-uplink.ts';
import { summaryId } from '../shared/ids.ts';
import { openDatabase } from '../shared/sqlite.ts';

const BATCH = 500;

/** A summary as the window engine emits it (SPEC.md section 3), ~330 bytes of JSON. */
function summary(i: number): OutboxItem {
  const start = 1_700_000_000_000 + Math.floor(i / 50) * 60_000;
  const device = `press-${i % 50}`;
  const id = summaryId('gw-bench', 'temp-1m', device, 'temperature', start);
  return {
    kind: 'summaries',
    id,
    rev: 0,
    ts: start,
    body: {
      id,
      rev: 0,
      device,
      metric: 'temperature',
      window: { name: 'temp-1m', type: 'tumbling', start, end: start + 60_000 },
      count: 60,
      min: 20.1 + (i % 7),
      max: 22.9 + (i % 5),
      mean: 21.4,
      sum: 1284,
      stddev: 0.61,
      first: 20.3,
      last: 22.1,
      p50: 21.4,
      p95: 22.6,
      late: 0,
      tags: { line: 'a' },
    },
  };
}

function ioWritten(): { writeBytes: number; wchar: number } {
  try {
    const t = readFileSync('/proc/self/io', 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(t)?.[1] ?? Number.NaN);
    return { writeBytes: get('write_bytes'), wchar: get('wchar') };
  } catch {
    return { writeBytes: Number.NaN, wchar: Number.NaN };
  }
}

interface Row {
  case: string;
  items: number;
  seconds: number;
  itemsPerSec: number;
  /** items per CPU-second of this process (user+sys): less sensitive to other load on the machine */
  itemsPerCpuSec?: number;
  diskBytesPerItem?: number;
  syscallBytesPerItem?: number;
  note?: string;
}

function measure(name: string, items: number, fn: () => void, note?: string): Row {
  const io0 = ioWritten();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  fn();
  const cpu = process.cpuUsage(c0);
  const s = (performance.now() - t0) / 1000;
  const io1 = ioWritten();
  return {
    case: name,
    items,
    seconds: +s.toFixed(3),
    itemsPerSec: Math.round(items / s),
    itemsPerCpuSec: Math.round(items / ((cpu.user + cpu.system) / 1e6)),
    diskBytesPerItem: Math.round((io1.writeBytes - io0.writeBytes) / items),
    syscallBytesPerItem: Math.round((io1.wchar - io0.wchar) / items),
    ...(note ? { note } : {}),
  };
}

function appendCase(
  dir: string,
  name: string,
  synchronous: 'normal' | 'full',
  batches: OutboxItem[][],
): { row: Row; path: string } {
  const path = join(dir, `${name}.db`);
  const o = new SqliteOutbox({ path, synchronous, maxBytes: 4 * 1024 ** 3 });
  const n = batches.length * BATCH;
  const row = measure(`SqliteOutbox.append, synchronous=${synchronous}`, n, () => {
    for (const b of batches) {
      const r = o.append(b, new Map([['bench', 'x']]));
      if (r.appended !== b.length) throw new Error(`append stored ${r.appended}`);
    }
  });
  o.close();
  return { row, path };
}

function rawCase(dir: string, batches: OutboxItem[][]): Row {
  const db = openDatabase(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('wal_autocheckpoint = 10240');
  db.exec(
    'CREATE TABLE t (seq INTEGER PRIMARY KEY, kind INTEGER, id TEXT, rev INTEGER, ts INTEGER, body TEXT, bytes INTEGER)',
  );
  const ins = db.prepare('INSERT INTO t (kind, id, rev, ts, body, bytes) VALUES (?, ?, ?, ?, ?, ?)');
  const tx = db.transaction((b: OutboxItem[]) => {
    for (const it of b) {
      const json = JSON.stringify(it.body);
      ins.run(2, it.id, it.rev, it.ts, json, json.length);
    }
  });
  const row = measure(
    'raw better-sqlite3 INSERT, 1 tx/500',
    batches.length * BATCH,
    () => {
      for (const b of batches) tx(b);
    },
    'same rows incl. JSON.stringify, same pragmas',
  );
  db.close();
  return row;
}

function drainCase(path: string): Row {
  const o = new SqliteOutbox({ path });
  const n = o.stats().items;
  const row = measure('SqliteOutbox peek(500)+ack drain', n, () => {
    for (;;) {
      const items = o.peek('summaries', BATCH);
      if (items.length === 0) break;
      o.ack(items.map((i) => i.seq));
    }
  });
  o.close();
  return row;
}

async function uplinkCase(
  dir: string,
  batches: OutboxItem[][],
  url: string,
  opts: { compress?: 'gzip' | 'none'; maxInFlight?: number; label: string },
): Promise<Row> {
  const o = new SqliteOutbox({ path: join(dir, `uplink-${opts.label}.db`) });
  for (const b of batches) o.append(b);
  const n = o.stats().items;
  const up = new MqttUplink(
    {
      agentId: `bench-${process.pid}-${opts.label}`,
      urls: [url],
      batch: { maxItems: BATCH, maxDelay: 50 },
      maxInFlight: opts.maxInFlight ?? 8,
      compress: opts.compress ?? 'none',
      backoff: { minMs: 50, maxMs: 500 },
    },
    o,
  );
  const io0 = ioWritten();
  const c0 = process.cpuUsage();
  up.start();
  const connectDeadline = performance.now() + 5000;
  while (!up.state().connected) {
    if (performance.now() > connectDeadline) {
      await up.stop();
      o.close();
      return {
        case: `uplink → ${url} (${opts.label})`,
        items: 0,
        seconds: 0,
        itemsPerSec: 0,
        note: `not reachable: ${up.state().lastError}`,
      };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const t0 = performance.now();
  while (o.stats().items > 0) await new Promise((r) => setImmediate(r));
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const io1 = ioWritten();
  const st = up.state();
  await up.stop();
  o.close();
  return {
    case: `uplink drain → ${url} (${opts.label})`,
    items: n,
    seconds: +s.toFixed(3),
    itemsPerSec: Math.round(n / s),
    itemsPerCpuSec: Math.round(n / ((cpu.user + cpu.system) / 1e6)),
    diskBytesPerItem: Math.round((io1.writeBytes - io0.writeBytes) / n),
    note: `${st.batchesSent} batches, ${(st.bytesSent / st.batchesSent / 1024).toFixed(1)} KiB/batch on the wire`,
  };
}

export async function benchOutbox(): Promise<object> {
  const n = Number(process.env.EDGEFLOW_BENCH_N ?? 300_000);
  const url = process.env.EDGEFLOW_BENCH_MQTT ?? 'mqtt://127.0.0.1:18883';
  // On the real disk, not a tmpfs, so write_bytes means something.
  const dir = mkdtempSync(join(process.env.EDGEFLOW_BENCH_DIR ?? tmpdir(), 'edgeflow-bench-outbox-'));
  try {
    const batches: OutboxItem[][] = [];
    for (let b = 0; b < Math.ceil(n / BATCH); b++)
      batches.push(Array.from({ length: BATCH }, (_, i) => summary(b * BATCH + i)));
    const bodyBytes = encodeItem(batches[0]![0]!).bytes;
    const rows: Row[] = [];
    rows.push(rawCase(dir, batches));
    const normal = appendCase(dir, 'normal', 'normal', batches);
    rows.push(normal.row);
    rows.push(appendCase(dir, 'full', 'full', batches).row);
    rows.push(drainCase(normal.path));
    const upBatches = batches.slice(0, Math.ceil(200_000 / BATCH));
    rows.push(await uplinkCase(dir, upBatches, url, { label: 'maxInFlight=8' }));
    rows.push(await uplinkCase(dir, upBatches, url, { label: 'maxInFlight=1', maxInFlight: 1 }));
    rows.push(await uplinkCase(dir, upBatches.slice(0, 100), url, { label: 'gzip', compress: 'gzip' }));
    return { itemBytes: bodyBytes, batch: BATCH, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const res = (await benchOutbox()) as { itemBytes: number; rows: Row[] };
  console.log(
    `summary item: ${res.itemBytes} bytes accounted (JSON + id + row overhead), batches of ${BATCH}`,
  );
  console.table(res.rows);
}
