// Component test over a real pty pair (socat): the source reads one end, the test writes the other.
// Covers: lines → frames, overlong line → onBadFrame('too_long'), port missing at start then appearing,
// socat killed mid-stream (device unplugged) → down → socat restarted → reconnected and reading again.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { systemClock } from '../../shared/clock.ts';
import { nullLogger } from '../../shared/log.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { SerialSource } from './serial.ts';
import type { RawFrame } from './source.ts';

// Local pty helper (test/helpers/pty.ts did not exist when this was written).
class PtyPair {
  proc: ChildProcess | null = null;
  constructor(
    readonly a: string,
    readonly b: string,
  ) {}
  async up(): Promise<void> {
    this.proc = spawn('socat', [`pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`], {
      stdio: 'ignore',
    });
    await waitFor('socat links', () => existsSync(this.a) && existsSync(this.b), { timeoutMs: 5000 });
  }
  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = once(p, 'exit');
    p.kill('SIGKILL'); // an unplug gives no chance to clean up either
    await exited;
  }
  write(text: string): void {
    const fd = openSync(this.b, 'w');
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  }
}

const dir = mkdtempSync(join(tmpdir(), 'edgeflow-serial-'));
let n = 0;
const pairs: PtyPair[] = [];
const sources: SerialSource[] = [];

function setup(opts: { maxFrameLength?: number } = {}) {
  n++;
  const pty = new PtyPair(join(dir, `a${n}`), join(dir, `b${n}`));
  pairs.push(pty);
  const frames: RawFrame[] = [];
  const bad: string[] = [];
  const src = new SerialSource(
    {
      name: `line-${n}`,
      path: pty.a,
      baudRate: 115200,
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
      livenessIntervalMs: 100,
      ...opts,
    },
    { log: nullLogger(), clock: systemClock, metrics: new Registry() },
  );
  sources.push(src);
  const start = () => src.start((f) => frames.push(f), { onBadFrame: (r) => bad.push(r) });
  const lines = () => frames.map((f) => f.payload.toString());
  return { pty, src, frames, bad, start, lines };
}

afterEach(async () => {
  for (const s of sources.splice(0)) await s.stop();
  for (const p of pairs.splice(0)) await p.kill();
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('serial source over a pty pair', { timeout: 120_000 }, () => {
  it('delivers one frame per line, without ack, and drops an overlong line as too_long', async () => {
    const t = setup({ maxFrameLength: 64 });
    await t.pty.up();
    await t.start();
    assert.equal(t.src.status().state, 'up');
    t.pty.write(`{"device":"s1","temperature":21.5}\r\n${'x'.repeat(100)}\npart`);
    t.pty.write('ial\n');
    await waitFor('2 frames', () => t.frames.length >= 2);
    assert.deepEqual(t.lines(), ['{"device":"s1","temperature":21.5}', 'partial']);
    assert.deepEqual(t.bad, ['too_long']);
    assert.equal(t.frames[0]!.ack, undefined);
    assert.equal(t.src.status().framesIn, 2);
    assert.deepEqual(t.src.status().badFrames, { too_long: 1 });
  });

  it('comes up when the port appears after start', async () => {
    const t = setup();
    await t.start(); // resolves although the port is missing
    const st = t.src.status();
    assert.equal(st.state, 'down');
    assert.match(String(st.lastError), /ENOENT|No such file/);
    await t.pty.up();
    await waitFor('source up', () => t.src.status().state === 'up');
    t.pty.write('a=1\n');
    await waitFor('frame', () => t.frames.length === 1);
    assert.equal(t.src.status().reconnects, 0, 'first successful open is not a reconnect');
  });

  it('goes down when socat dies mid-stream and reconnects when it is back', async () => {
    const t = setup();
    await t.pty.up();
    await t.start();
    t.pty.write('one=1\n');
    await waitFor('first frame', () => t.frames.length === 1);
    await t.pty.kill();
    await waitFor('source down', () => t.src.status().state === 'down');
    assert.ok(t.src.status().lastError);
    await t.pty.up();
    await waitFor('source up again', () => t.src.status().state === 'up');
    assert.equal(t.src.status().reconnects, 1);
    t.pty.write('two=2\n');
    await waitFor('second frame', () => t.frames.length === 2);
    assert.deepEqual(t.lines(), ['one=1', 'two=2']);
  });

  it('pause() holds frames and resume() delivers them', async () => {
    const t = setup();
    await t.pty.up();
    await t.start();
    t.src.pause();
    t.pty.write('held=1\n');
    // Observe a quiet period through a second line's arrival would need the source; instead check
    // that nothing arrives while paused, then that resume delivers.
    await new Promise((r) => setTimeout(r, 200)); // bounded observation window, not synchronisation
    assert.equal(t.frames.length, 0);
    t.src.resume();
    await waitFor('held frame', () => t.frames.length === 1);
  });

  it('stop() stops retrying and reports stopped', async () => {
    const t = setup();
    await t.start();
    await t.src.stop();
    assert.equal(t.src.status().state, 'stopped');
    await t.pty.up();
    await new Promise((r) => setTimeout(r, 300)); // would have reopened within 200 ms
    assert.equal(t.src.status().state, 'stopped');
  });
});
