// The fleet console (issue 15) in a real headless browser: Debian's chromium (scripts/services.sh
// installs it) driven by playwright-core through executablePath, no browser download. A real collector
// process with the console on 127.0.0.1 and a token, simulated agents that apply a rollout, one agent
// with a firing alert. Screenshots go to the test output directory (EDGEFLOW_TEST_OUTPUT, default
// $TMPDIR/edgeflow-test-output), never into the repository.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import mqtt from 'mqtt';
import { type Browser, chromium } from 'playwright-core';
import { alert, batch } from '../../collector/test-support/fixtures.ts';
import { SimFleetAgents } from '../../firmware-sim/fleet-agents.ts';
import { killAll } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  type CollectorProc,
  type FleetBed,
  type FleetView,
  getJson,
  makeBed,
  simIds,
  startCollector,
} from './kit.ts';

const CHROMIUM = process.env.EDGEFLOW_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(process.env.EDGEFLOW_TEST_OUTPUT ?? join(tmpdir(), 'edgeflow-test-output'), 'fleet-console');
const ids = simIds(20);
let bed: FleetBed;
let collector: CollectorProc;
let sims: SimFleetAgents;
let browser: Browser;

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} missing: run scripts/services.sh (installs Debian's chromium)`,
  );
  mkdirSync(OUT, { recursive: true });
  bed = await makeBed(ids, '  console: { enabled: true, listen: 127.0.0.1:0 }\n');
  collector = await startCollector(bed.configPath);
  assert.ok(collector.console, 'the ready line names the console URL');
  sims = new SimFleetAgents({
    url: `mqtt://127.0.0.1:${bed.mqttPort}`,
    ids: ids.slice(1),
    secret: bed.secret,
    publicKey: bed.publicKey,
  });
  await sims.start();
  writeFileSync(
    join(bed.fleetDir, 'groups/base.yaml'),
    `kind: group\nname: all\nmatch: { agents: ["sim-*"] }\nconfig:\n  windows:\n    - { name: temp-1m, match: { metric: temperature }, type: tumbling, size: 60s }\n`,
  );
  await waitFor(
    'rollout applied by the online agents',
    async () => {
      const f = await getJson<FleetView>(`${collector.http}/fleet`);
      return f.rollout && f.rollout.progress.applied === ids.length - 1;
    },
    { timeoutMs: 60_000, progress: () => sims.counters.applied },
  );
  // sim-0003 reports a firing alert (a real alert batch through the broker and the spool).
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${bed.mqttPort}`, {
    username: 'sim-0003',
    password: bed.secret,
    clientId: 'sim-0003-alerts',
    reconnectPeriod: 0,
  });
  await c.publishAsync(
    'edgeflow/v1/sim-0003/alerts',
    batch('sim-0003', [alert('sim-0003', 'press-7', Date.now())]),
    { qos: 1 },
  );
  await c.endAsync();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await sims?.stop();
  await killAll();
  if (bed) rmSync(bed.dir, { recursive: true, force: true });
});

test('console: token login, agents with state and alerts, rollout progress, per-agent detail; nothing fetched from elsewhere', async () => {
  const page = await browser.newPage();
  const origin = new URL(collector.console!).origin;
  const foreign: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(origin)) foreign.push(r.url());
  });

  await page.goto(collector.console!);
  assert.equal(new URL(page.url()).pathname, '/login', 'no page without login');
  await page.fill('input[name=token]', 'wrong-token');
  await page.click('button[type=submit]');
  assert.match((await page.textContent('body')) ?? '', /Wrong token/);
  await page.screenshot({ path: join(OUT, '01-login-refused.png') });

  await page.fill('input[name=token]', bed.token);
  await page.click('button[type=submit]');
  await page.waitForSelector('#agents');
  assert.equal(new URL(page.url()).pathname, '/');
  const rows = await page.locator('#agents tbody tr').count();
  assert.equal(rows, ids.length);
  assert.match(
    (await page.textContent('#progress')) ?? '',
    new RegExp(`${ids.length - 1} of ${ids.length} applied`),
  );
  assert.match((await page.textContent('#rollout')) ?? '', /Rollout r1 \(version 1, apply\)/);
  assert.equal(
    await page.locator('#agents tr[data-agent="sim-0001"] [data-state]').getAttribute('data-state'),
    'applied',
  );
  assert.match((await page.textContent('#agents tr[data-agent="sim-0000"]')) ?? '', /offline/);
  await waitFor('firing alert shown', async () => {
    await page.reload();
    return /^\s*1\s*$/.test(
      (await page.locator('#agents tr[data-agent="sim-0003"] td').nth(7).textContent()) ?? '',
    );
  });
  await page.screenshot({ path: join(OUT, '02-overview.png'), fullPage: true });

  await page.click('a[href="/agent?id=sim-0003"]');
  await page.waitForSelector('#detail');
  assert.match((await page.textContent('#config')) ?? '', /temp-1m/);
  assert.match((await page.textContent('#alerts')) ?? '', /overheat/);
  assert.match((await page.textContent('#detail')) ?? '', /version 1 \(r1\)/);
  await page.screenshot({ path: join(OUT, '03-agent-detail.png'), fullPage: true });

  // Without the cookie, nothing but the login page.
  const anon = await browser.newPage();
  await anon.goto(`${collector.console}/agent?id=sim-0003`);
  assert.equal(new URL(anon.url()).pathname, '/login');
  await anon.close();
  assert.deepEqual(foreign, [], 'the console fetches nothing from another origin (works offline)');
  console.log(`# screenshots in ${OUT}`);
});
