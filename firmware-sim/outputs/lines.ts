// Newline-terminated frames on a byte stream (serial port, stdout), with back-pressure: each chunk
// is confirmed by the stream's write callback before the frames in it are counted.
import type { Writable } from 'node:stream';
import type { Frame } from '../fleet.ts';
import type { Confirm } from './output.ts';

/** Frames are coalesced into chunks of about this size: one write per chunk, not per frame. */
const CHUNK_BYTES = 16 * 1024;

function writeChunk(stream: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

/** Writes the frames as lines; `sink.written` is called for the frames of each chunk the stream accepted. */
export async function writeLines(stream: Writable, frames: readonly Frame[], sink: Confirm): Promise<number> {
  let bytes = 0;
  let parts: Buffer[] = [];
  let size = 0;
  let start = 0;
  const nl = Buffer.from('\n');
  const flush = async (end: number) => {
    if (parts.length === 0) return;
    const chunk = Buffer.concat(parts, size);
    parts = [];
    size = 0;
    await writeChunk(stream, chunk);
    bytes += chunk.length;
    for (let i = start; i < end; i++) sink.written(frames[i]!);
    start = end;
  };
  for (let i = 0; i < frames.length; i++) {
    const p = frames[i]!.payload;
    const b = typeof p === 'string' ? Buffer.from(p) : p;
    parts.push(b, nl);
    size += b.length + 1;
    if (size >= CHUNK_BYTES) await flush(i + 1);
  }
  await flush(frames.length);
  return bytes;
}
