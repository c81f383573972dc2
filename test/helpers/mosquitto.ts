// A private Mosquitto broker for tests that must stop, restart or configure their broker (the shared one
// on 127.0.0.1:1883 stays untouched). `gateway: true` uses deploy/mosquitto/gateway.conf, the config we
// ship for the delivery guarantee, with only the listener and persistence path changed.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT, tempDir } from './agent-process.ts';
import { spawnTracked } from './processes.ts';
import { waitFor } from './wait.ts';

export interface Broker {
  url: string;
  port: number;
  dir: string;
  /** Stops the broker (SIGTERM) and waits for it. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same persistence directory. */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMosquitto(opts: { gateway?: boolean; extra?: string } = {}): Promise<Broker> {
  const dir = tempDir('edgeflow-mosq-');
  const port = await freePort();
  let conf: string;
  if (opts.gateway) {
    conf = readFileSync(join(ROOT, 'deploy/mosquitto/gateway.conf'), 'utf8')
      .replace(/^listener .*$/m, `listener ${port} 127.0.0.1`)
      .replace(/^persistence_location .*$/m, `persistence_location ${dir}/`);
  } else {
    conf = `listener ${port} 127.0.0.1\nallow_anonymous true\n`;
  }
  conf += `${opts.extra ?? ''}\nlog_dest file ${dir}/mosquitto.log\n`;
  const confPath = join(dir, 'mosquitto.conf');
  writeFileSync(confPath, conf);
  let proc: ChildProcess;
  const start = async () => {
    proc = spawnTracked('mosquitto', ['-c', confPath], { stdio: 'ignore' });
    await waitFor(`mosquitto on ${port}`, () => portOpen(port), { timeoutMs: 30_000 });
  };
  await start();
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  };
  return { url: `mqtt://127.0.0.1:${port}`, port, dir, stop, restart: start };
}
