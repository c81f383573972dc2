// The Source conformance suite over a real pty pair: socat links two ptys, the source reads one end and
// the rig writes lines to the other; the outage is socat killed with SIGKILL (a device unplugged), the
// return a new socat on the same link paths.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTracked } from '../../test/helpers/processes.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { SerialSource } from './serial.ts';
import { sourceConformance, testContext } from './source.conformance.ts';

const MAX_LINE = 256;
let n = 0;

sourceConformance('serial', {
  deviceInFields: false,
  redelivery: 'none',
  outage: 'down',
  async make() {
    const dir = mkdtempSync(join(tmpdir(), `edgeflow-serial-conf-${++n}-`));
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    let socat: ChildProcess | null = null;
    const up = async () => {
      socat = spawnTracked('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
        stdio: 'ignore',
      });
      await waitFor('socat links', () => existsSync(a) && existsSync(b), { timeoutMs: 60_000 });
    };
    const down = async (signal: NodeJS.Signals) => {
      const p = socat;
      socat = null;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = once(p, 'exit');
      p.kill(signal);
      await exited;
      // SIGKILL leaves socat's links behind; the next socat makes them again.
      rmSync(a, { force: true });
      rmSync(b, { force: true });
    };
    const write = (text: string) => {
      const fd = openSync(b, 'w');
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
    };
    await up();
    const source = new SerialSource(
      {
        name: `conf-serial-${n}`,
        path: a,
        maxFrameLength: MAX_LINE,
        reconnectMinMs: 50,
        reconnectMaxMs: 200,
        livenessIntervalMs: 100,
      },
      testContext(),
    );
    return {
      source,
      async send(_device, payloads) {
        write(payloads.map((p) => `${p}\n`).join(''));
      },
      async sendBad() {
        write(`${'x'.repeat(MAX_LINE + 10)}\n`);
        return 'too_long';
      },
      cut: () => down('SIGKILL'),
      restore: up,
      async close() {
        await down('SIGTERM');
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
});
