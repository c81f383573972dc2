// Raw MQTT bytes for tests that send what no client library would (issue 12 probes).
import type { Socket } from 'node:net';

/** A QoS 0 PUBLISH fixed header announcing `remainingLength` bytes ([MQTT-2.2.3]: 7 bits a byte). */
export function publishHeader(remainingLength: number): Buffer {
  const header = [0x30];
  for (let n = remainingLength; ; ) {
    const byte = n % 128;
    n = Math.floor(n / 128);
    header.push(n > 0 ? byte | 0x80 : byte);
    if (n === 0) break;
  }
  return Buffer.from(header);
}

/** Resolves when the socket has closed (at once if it already has). */
export function closed(s: Socket): Promise<void> {
  return s.closed || s.destroyed ? Promise.resolve() : new Promise((r) => s.once('close', () => r()));
}
