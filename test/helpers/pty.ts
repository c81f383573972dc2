// A connected pair of pseudo-terminals from socat, for serial tests without hardware: what is written
// to `a` is read from `b` and vice versa. Raw mode, no echo, so bytes pass through unchanged.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTracked } from './processes.ts';

export interface PtyPair {
  /** Device paths (/dev/pts/N) of the two ends. */
  a: string;
  b: string;
  /** Stable symlinks to the same devices, in a temporary directory. */
  links: { a: string; b: string };
  /** Stops socat (SIGTERM) and waits for it to exit; removes the links. */
  close(): Promise<void>;
}

/** Starts `socat pty,raw,echo=0 pty,raw,echo=0`; resolves once socat has announced both ptys. */
// 60 s: socat answers in milliseconds idle, but issue 12's stress run (2 CPU hogs, a private Kafka
// starting beside it, load 23) saw it silent for more than 5 s. Its exit ends the wait at once.
export async function openPtyPair({ timeoutMs = 60_000 } = {}): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'edgeflow-pty-'));
  const links = { a: join(dir, 'a'), b: join(dir, 'b') };
  const child: ChildProcess = spawnTracked(
    'socat',
    ['-d', '-d', `pty,raw,echo=0,link=${links.a}`, `pty,raw,echo=0,link=${links.b}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exited = once(child, 'exit');
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ptys = await new Promise<string[]>((resolve, reject) => {
      const found: string[] = [];
      let text = '';
      const timer = setTimeout(
        () => reject(new Error(`socat did not open two ptys within ${timeoutMs} ms: ${text}`)),
        timeoutMs,
      );
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`socat exited (${code}) before opening two ptys: ${text}`));
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        text += chunk;
        for (const m of chunk.matchAll(/PTY is (\/dev\/pts\/\d+)/g)) found.push(m[1]!);
        // "starting data transfer loop" comes after both ptys exist and the links are made.
        if (found.length >= 2 && text.includes('starting data transfer loop')) {
          clearTimeout(timer);
          child.stderr!.resume(); // keep draining socat's stderr so it never blocks
          child.stderr!.removeAllListeners('data');
          child.stderr!.on('data', () => {});
          resolve(found);
        }
      });
    });
    return { a: ptys[0]!, b: ptys[1]!, links, close };
  } catch (e) {
    await close();
    throw e;
  }
}
