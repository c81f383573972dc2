// Serial source: one frame per line from a serial port (SPEC.md 2, `type: serial`).
//
// Liveness without udev: a port that is missing at start, or that disappears later (USB unplugged, the
// pty's other end gone), is reopened with jittered exponential backoff forever. Loss is detected by
// (1) serialport's read error / close-with-DisconnectedError, and (2) a cheap `stat(path)` watchdog,
// because some drivers keep a vanished device's fd readable-but-silent. SerialPort.list() is not used:
// it needs udev, which containers and minimal gateways lack.
//
// Serial frames cannot be redelivered, so RawFrame.ack is absent. Overlong lines are dropped and
// reported through hooks.onBadFrame('too_long') (see line-framer.ts).
import { stat } from 'node:fs/promises';
import { SerialPort } from 'serialport';
import type { Timer } from '../../shared/clock.ts';
import { RateLimitedLog } from '../../shared/log.ts';
import { Backoff, RetryTimer } from './backoff.ts';
import { LineFramer } from './line-framer.ts';
import type { RawFrame, Source, SourceContext, SourceHooks, SourceState, SourceStatus } from './source.ts';

export interface SerialSourceOptions {
  name: string;
  path: string;
  baudRate?: number; // [115200]
  dataBits?: 5 | 6 | 7 | 8; // [8]
  parity?: 'none' | 'even' | 'odd' | 'mark' | 'space'; // [none]
  stopBits?: 1 | 1.5 | 2; // [1]
  /** Longest line in bytes, terminator excluded; longer lines are dropped as `too_long`. [4096] */
  maxFrameLength?: number;
  /** Default device for frames without one (used by the runtime's decoder context; shown in status). */
  device?: string;
  /** Reconnect backoff bounds, ms. [500, 30000] */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How often the port's path is stat()ed while up, ms. [2000] */
  livenessIntervalMs?: number;
}

export class SerialSource implements Source {
  readonly type = 'serial' as const;
  readonly name: string;
  private readonly opts: Required<Omit<SerialSourceOptions, 'device'>> & { device?: string };
  private readonly retry: RetryTimer;
  private readonly warn: RateLimitedLog;
  private port: SerialPort | null = null;
  private framer: LineFramer;
  private onFrame: (f: RawFrame) => void = () => {};
  private hooks: SourceHooks = {};
  private state: SourceState = 'stopped';
  private lastError: string | undefined;
  private framesIn = 0;
  private reconnects = 0;
  private everUp = false;
  private paused = false;
  private readonly badFrames: Record<string, number> = {};
  private liveness: Timer | null = null;

  constructor(
    opts: SerialSourceOptions,
    private readonly ctx: SourceContext,
  ) {
    this.name = opts.name;
    this.opts = {
      baudRate: 115200,
      dataBits: 8,
      parity: 'none',
      stopBits: 1,
      maxFrameLength: 4096,
      reconnectMinMs: 500,
      reconnectMaxMs: 30_000,
      livenessIntervalMs: 2000,
      ...opts,
    };
    this.retry = new RetryTimer(
      ctx.clock,
      new Backoff({ minMs: this.opts.reconnectMinMs, maxMs: this.opts.reconnectMaxMs }),
    );
    this.warn = new RateLimitedLog(ctx.log, 1, 60_000);
    this.framer = this.newFramer();
  }

  private newFramer(): LineFramer {
    return new LineFramer(
      this.opts.maxFrameLength,
      (payload) => {
        this.framesIn++;
        this.onFrame({ payload, receivedAt: this.ctx.clock.now() });
      },
      () => {
        this.badFrames.too_long = (this.badFrames.too_long ?? 0) + 1;
        this.hooks.onBadFrame?.('too_long');
      },
    );
  }

  async start(onFrame: (frame: RawFrame) => void, hooks: SourceHooks = {}): Promise<void> {
    this.onFrame = onFrame;
    this.hooks = hooks;
    this.state = 'starting';
    await this.open();
  }

  private open(): Promise<void> {
    return new Promise((resolve) => {
      if (this.state === 'stopped') return resolve();
      const port = new SerialPort({
        path: this.opts.path,
        baudRate: this.opts.baudRate,
        dataBits: this.opts.dataBits,
        parity: this.opts.parity,
        stopBits: this.opts.stopBits,
        autoOpen: false,
        // The port is ours alone; a second reader would split lines between processes.
        lock: true,
      });
      this.port = port;
      port.on('data', (chunk: Buffer) => this.framer.push(chunk));
      port.on('error', (err) => this.down(port, err));
      port.on('close', (err?: Error | null) => this.down(port, err ?? new Error('port closed')));
      port.open((err) => {
        if (err) {
          this.down(port, err);
          return resolve();
        }
        if (this.state === 'stopped' || this.port !== port) {
          port.close(() => {});
          return resolve();
        }
        if (this.everUp) this.reconnects++;
        this.everUp = true;
        this.state = 'up';
        this.lastError = undefined;
        this.retry.backoff.reset();
        this.framer.reset();
        if (this.paused) port.pause();
        this.startLiveness(port);
        this.ctx.log.info({ path: this.opts.path, reconnects: this.reconnects }, 'serial port open');
        resolve();
      });
    });
  }

  /** Port lost or never opened: forget it, report, and schedule a reopen. Idempotent per port. */
  private down(port: SerialPort, err: Error): void {
    if (this.port !== port) return; // stale port's late events
    this.port = null;
    this.stopLiveness();
    this.framer.reset();
    if (port.isOpen) port.close(() => {});
    port.removeAllListeners('data');
    if (this.state === 'stopped') return;
    this.state = 'down';
    this.lastError = describe(err);
    const inMs = this.retry.schedule(() => void this.open());
    this.warn.warn(
      `serial_down:${this.name}`,
      { path: this.opts.path, err: this.lastError, retryInMs: inMs },
      'serial port unavailable; retrying',
    );
  }

  private startLiveness(port: SerialPort): void {
    this.stopLiveness();
    this.liveness = this.ctx.clock.setInterval(() => {
      stat(this.opts.path).then(
        () => {},
        (err: NodeJS.ErrnoException) =>
          this.down(port, new Error(`device gone (${err.code ?? 'stat failed'})`)),
      );
    }, this.opts.livenessIntervalMs);
  }

  private stopLiveness(): void {
    if (this.liveness) this.ctx.clock.clearInterval(this.liveness);
    this.liveness = null;
  }

  /** Stops reading; the OS buffer (and then the device, or its flow control) holds what follows. */
  pause(): void {
    this.paused = true;
    this.port?.pause();
  }

  resume(): void {
    this.paused = false;
    this.port?.resume();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.retry.cancel();
    this.stopLiveness();
    const port = this.port;
    this.port = null;
    if (port?.isOpen) await new Promise<void>((r) => port.close(() => r()));
  }

  status(): SourceStatus {
    return {
      name: this.name,
      type: this.type,
      state: this.state,
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      framesIn: this.framesIn,
      reconnects: this.reconnects,
      path: this.opts.path,
      paused: this.paused,
      badFrames: { ...this.badFrames },
    };
  }
}

function describe(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `${code}: ${err.message}` : err.message;
}
