// Frames as lines on a byte stream, normally process.stdout: for piping into another program and for
// the same-seed-same-stream check (two runs, byte-identical output).
import type { Writable } from 'node:stream';
import type { Frame } from '../fleet.ts';
import { writeLines } from './lines.ts';
import type { Confirm, Output } from './output.ts';

export class StreamOutput implements Output {
  readonly name = 'stdout';
  constructor(private readonly stream: Writable) {}

  async open(): Promise<void> {}

  async write(frames: readonly Frame[], sink: Confirm): Promise<void> {
    await writeLines(this.stream, frames, sink);
  }

  async close(): Promise<void> {
    // Every chunk was confirmed by its write callback; stdout itself is never ended here.
  }
}
