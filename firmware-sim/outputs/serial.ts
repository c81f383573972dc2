// Frames as lines on one or several serial ports (real UARTs or ptys). Device k writes to port
// k mod ports, so each device's frames stay in order on one line.
import { SerialPort } from 'serialport';
import type { Logger } from '../../shared/log.ts';
import type { Frame } from '../fleet.ts';
import { writeLines } from './lines.ts';
import type { Confirm, Output } from './output.ts';

export class SerialOutput implements Output {
  readonly name = 'serial';
  private ports: SerialPort[] = [];
  private bytes = 0;
  private openedAt = 0;

  constructor(
    private readonly paths: readonly string[],
    private readonly baudRate: number,
    private readonly log: Logger,
  ) {}

  async open(): Promise<void> {
    this.ports = this.paths.map((path) => new SerialPort({ path, baudRate: this.baudRate, autoOpen: false }));
    await Promise.all(
      this.ports.map(
        (p) => new Promise<void>((resolve, reject) => p.open((err) => (err ? reject(err) : resolve()))),
      ),
    );
    this.openedAt = performance.now();
    this.log.info({ paths: this.paths, baudRate: this.baudRate }, 'serial ports open');
  }

  async write(frames: readonly Frame[], sink: Confirm): Promise<void> {
    if (this.ports.length === 1) {
      this.bytes += await writeLines(this.ports[0]!, frames, sink);
      return;
    }
    const perPort: Frame[][] = this.ports.map(() => []);
    for (const f of frames) perPort[f.deviceIndex % this.ports.length]!.push(f);
    const sizes = await Promise.all(perPort.map((fs, i) => writeLines(this.ports[i]!, fs, sink)));
    for (const s of sizes) this.bytes += s;
  }

  async close(): Promise<void> {
    const seconds = (performance.now() - this.openedAt) / 1000;
    const perPort = this.bytes / Math.max(1, this.ports.length) / Math.max(seconds, 1e-3);
    // 8N1 framing: 10 bits on the line per byte. A pty does not enforce the baud rate; a UART would fall behind.
    const capacity = this.baudRate / 10;
    if (perPort > capacity) {
      this.log.warn(
        { bytesPerSecondPerPort: Math.round(perPort), capacity, baudRate: this.baudRate },
        'data rate exceeds what the baud rate can carry on a real UART; raise --baud-rate',
      );
    }
    await Promise.all(
      this.ports.map(
        (p) =>
          new Promise<void>((resolve) => {
            p.drain(() => p.close(() => resolve()));
          }),
      ),
    );
  }
}
