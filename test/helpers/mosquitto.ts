// A private Mosquitto broker for tests that must stop, restart or configure their broker (the shared one
// on 127.0.0.1:1883 stays untouched). `gateway: true` uses deploy/mosquitto/gateway.conf, the config we
// ship for the delivery guarantee, with only the listener and persistence path changed (and `user`, below).
//
// The broker must be able to write its directory: its log and, for `gateway: true`, the persistence file
// that carries persistent sessions and their queued messages over `restart()`. Mosquitto started as root
// drops to the `mosquitto` user unless told otherwise, and `tempDir()` is a 0700 directory of the test's
// user, so it could write neither: every "persistent" session silently vanished at a restart, and
// test/agent/outage.test.ts lost whatever the agent sent after a restart before its capture client had
// re-subscribed (a race it usually won). Hence `user` = the test's own user (Mosquitto acts on it only
// when started as root), a log file checked at every start, and a persistence file checked before a
// gateway broker is restarted.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { userInfo } from 'node:os';
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
  const logPath = join(dir, 'mosquitto.log');
  conf += `${opts.extra ?? ''}\nuser ${userInfo().username}\nlog_dest file ${logPath}\n`;
  const confPath = join(dir, 'mosquitto.conf');
  writeFileSync(confPath, conf);
  // Mosquitto's own stderr (what it says when it cannot open its log), in a file this process opens.
  const stderrPath = join(dir, 'stderr.log');
  const stderr = () => (existsSync(stderrPath) ? readFileSync(stderrPath, 'utf8').trim() : '');
  let proc: ChildProcess;
  const start = async () => {
    const fd = openSync(stderrPath, 'a');
    try {
      proc = spawnTracked('mosquitto', ['-c', confPath], { stdio: ['ignore', 'ignore', fd] });
    } finally {
      closeSync(fd);
    }
    await waitFor(`mosquitto on ${port}`, () => portOpen(port), { timeoutMs: 30_000 });
    // Mosquitto opens its log (and restores its persistence file) before it listens.
    if (!existsSync(logPath))
      throw new Error(`mosquitto on ${port} cannot write to ${dir} (no log file); its stderr: ${stderr()}`);
  };
  await start();
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    await exited;
  };
  const restart = async () => {
    // Written on SIGTERM: without it the restarted broker has forgotten every persistent session.
    if (opts.gateway && !existsSync(join(dir, 'mosquitto.db')))
      throw new Error(`mosquitto on ${port} wrote no persistence file to ${dir}; its stderr: ${stderr()}`);
    await start();
  };
  return { url: `mqtt://127.0.0.1:${port}`, port, dir, stop, restart };
}
