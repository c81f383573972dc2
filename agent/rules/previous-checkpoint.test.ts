// Issue 14: zscore and spike windows of a count span no longer keep timestamps, and compact without a
// floor of 64 dead values. The detector state is checkpointed as it is, so a checkpoint written before
// (timestamps beside every value, a longer dead prefix) must load and go on exactly as it would have.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../shared/clock.ts';
import type { Alert } from '../../shared/model.ts';
import { RuleEngine, type RuleSpec, type RuleSpecInput } from './engine.ts';
import { harness, T0 } from './testkit.ts';

const SPECS: RuleSpecInput[] = [
  { name: 'zc', kind: 'zscore', window: 10, threshold: 3, cooldown: 0 },
  { name: 'zd', kind: 'zscore', window: '20s', threshold: 3, cooldown: 0 },
  { name: 'sp', kind: 'spike', window: 7, cooldown: 0 },
];

/** One reading a second: a sine, a spike every 23rd, a level step after 120. */
const value = (i: number) =>
  Math.round((20 + Math.sin(i * 0.7) * 2 + (i % 23 === 0 ? 15 : 0) + (i > 120 ? 6 : 0)) * 100) / 100;

// Written by main at 75cccbf (`RuleEngine.snapshot()` through JSON) after readings 0-79 of `value`, and
// the alerts the same engine emitted for readings 80-159 (rule, state, ts, id).
const PREVIOUS_VERSION_SNAPSHOT = {
  v: 1,
  rules: [
    {
      name: 'zc',
      fp: 'a1f696c6f8640de7',
      keys: [
        {
          device: 's1',
          metric: 'temperature',
          det: {
            n: 80,
            firstTs: 1704067200000,
            prev: 18.1,
            quantum: 0.03999999999999915,
            win: {
              ts: [
                1704067265000, 1704067266000, 1704067267000, 1704067268000, 1704067269000, 1704067270000,
                1704067271000, 1704067272000, 1704067273000, 1704067274000, 1704067275000, 1704067276000,
                1704067277000, 1704067278000, 1704067279000,
              ],
              vs: [
                22, 21.6, 20.44, 19.08, 33.15, 18.09, 18.93, 20.27, 21.48, 22, 21.58, 20.41, 19.05, 18.14,
                18.1,
              ],
              head: 5,
            },
            mom: { n: 10, mean: 19.805, m2: 21.312650000000005, removed: 0 },
            ewMean: 0,
            ewVar: 0,
          },
          pendingSince: null,
          firing: null,
          episodeStart: null,
          quietUntil: null,
          win: null,
        },
      ],
    },
    {
      name: 'zd',
      fp: '3ddbec758b3db466',
      keys: [
        {
          device: 's1',
          metric: 'temperature',
          det: {
            n: 80,
            firstTs: 1704067200000,
            prev: 18.1,
            quantum: 0.03999999999999915,
            win: {
              ts: [
                1704067200000, 1704067201000, 1704067202000, 1704067203000, 1704067204000, 1704067205000,
                1704067206000, 1704067207000, 1704067208000, 1704067209000, 1704067210000, 1704067211000,
                1704067212000, 1704067213000, 1704067214000, 1704067215000, 1704067216000, 1704067217000,
                1704067218000, 1704067219000, 1704067220000, 1704067221000, 1704067222000, 1704067223000,
                1704067224000, 1704067225000, 1704067226000, 1704067227000, 1704067228000, 1704067229000,
                1704067230000, 1704067231000, 1704067232000, 1704067233000, 1704067234000, 1704067235000,
                1704067236000, 1704067237000, 1704067238000, 1704067239000, 1704067240000, 1704067241000,
                1704067242000, 1704067243000, 1704067244000, 1704067245000, 1704067246000, 1704067247000,
                1704067248000, 1704067249000, 1704067250000, 1704067251000, 1704067252000, 1704067253000,
                1704067254000, 1704067255000, 1704067256000, 1704067257000, 1704067258000, 1704067259000,
                1704067260000, 1704067261000, 1704067262000, 1704067263000, 1704067264000, 1704067265000,
                1704067266000, 1704067267000, 1704067268000, 1704067269000, 1704067270000, 1704067271000,
                1704067272000, 1704067273000, 1704067274000, 1704067275000, 1704067276000, 1704067277000,
                1704067278000, 1704067279000,
              ],
              vs: [
                35, 21.29, 21.97, 21.73, 20.67, 19.3, 18.26, 18.04, 18.74, 20.03, 21.31, 21.98, 21.71, 20.64,
                19.27, 18.24, 18.04, 18.76, 20.07, 21.34, 21.98, 21.69, 20.61, 34.24, 18.22, 18.05, 18.79,
                20.1, 21.36, 21.99, 21.67, 20.57, 19.2, 18.21, 18.06, 18.82, 20.13, 21.39, 21.99, 21.65,
                20.54, 19.17, 18.19, 18.06, 18.84, 20.17, 36.41, 21.99, 21.64, 20.51, 19.14, 18.18, 18.07,
                18.87, 20.2, 21.44, 22, 21.62, 20.48, 19.11, 18.17, 18.08, 18.9, 20.23, 21.46, 22, 21.6,
                20.44, 19.08, 33.15, 18.09, 18.93, 20.27, 21.48, 22, 21.58, 20.41, 19.05, 18.14, 18.1,
              ],
              head: 60,
            },
            mom: { n: 20, mean: 20.558, m2: 206.41792, removed: 0 },
            ewMean: 0,
            ewVar: 0,
          },
          pendingSince: null,
          firing: null,
          episodeStart: null,
          quietUntil: null,
          win: null,
        },
      ],
    },
    {
      name: 'sp',
      fp: '9da99ca44450f105',
      keys: [
        {
          device: 's1',
          metric: 'temperature',
          det: {
            win: {
              ts: [
                1704067267000, 1704067268000, 1704067270000, 1704067271000, 1704067272000, 1704067273000,
                1704067274000, 1704067275000, 1704067276000, 1704067277000, 1704067278000, 1704067279000,
              ],
              vs: [20.44, 19.08, 18.09, 18.93, 20.27, 21.48, 22, 21.58, 20.41, 19.05, 18.14, 18.1],
              head: 5,
            },
            prev: 18.1,
            quantum: 0.03999999999999915,
            sorted: [18.1, 18.14, 19.05, 20.41, 21.48, 21.58, 22],
            outliers: [],
          },
          pendingSince: null,
          firing: null,
          episodeStart: null,
          quietUntil: null,
          win: null,
        },
      ],
    },
  ],
};
const PREVIOUS_VERSION_ALERTS = [
  ['zc', 'firing', 1704067292000, '08fc9c288f28a6b0956c0d7c25ec84f4'],
  ['zd', 'firing', 1704067292000, '2ca7454cc4fdd4e14bc434210b04e424'],
  ['sp', 'firing', 1704067292000, '31ac4d55e40cc2903b4021f1f004cc3f'],
  ['zc', 'resolved', 1704067293000, '634f1033b6cb2c0da5679d92ff7a799e'],
  ['zd', 'resolved', 1704067293000, '814dc7649828fa7e8f104ac71620db08'],
  ['sp', 'resolved', 1704067293000, '3e15ed43234fc728a47a0d231f4f9f8c'],
  ['zc', 'firing', 1704067315000, '4357ecbbbe93eefde0090f49c0606eea'],
  ['zd', 'firing', 1704067315000, '197a7ad68cc9dc43dd7750dc9ab5d714'],
  ['sp', 'firing', 1704067315000, 'd61aa25f1fa34e37feb71d34d6743865'],
  ['zc', 'resolved', 1704067316000, 'bb6bb96bce1203dd12d8661930898cb6'],
  ['zd', 'resolved', 1704067316000, 'd399f63d5be5d6b95f4475f5744fdd71'],
  ['sp', 'resolved', 1704067316000, '4a18edde3d04a40e4efb96765954bee3'],
  ['zc', 'firing', 1704067338000, '2aac6191695ab2ef86e8bafe51718392'],
  ['zd', 'firing', 1704067338000, '6b45b1c80c39004e7d2efb812f02d4e3'],
  ['sp', 'firing', 1704067338000, 'a67c42772c1384db1b9fed666b349d80'],
  ['zc', 'resolved', 1704067339000, '82be53b0a07cdfee80819edfca0cf79e'],
  ['zd', 'resolved', 1704067339000, '0a98c30c9acc650b3b7fec7d81cb0b3d'],
  ['sp', 'resolved', 1704067339000, 'c1444f08cee77e10cb0624487b4fefcd'],
];

type Win = { ts: number[]; vs: number[]; head: number };

/** Each rule's detector state with its window's dead prefix cut off. */
function live(engine: RuleEngine) {
  return engine.snapshot().rules.map((r) => {
    const det = r.keys[0]!.det as { win: Win };
    const { ts, vs, head } = det.win;
    return { ...det, win: { ts: ts.slice(ts.length === 0 ? 0 : head), vs: vs.slice(head) } };
  });
}

function restored(clock = new FakeClock(T0)) {
  const alerts: Alert[] = [];
  const engine = RuleEngine.restore(
    structuredClone(PREVIOUS_VERSION_SNAPSHOT),
    SPECS as RuleSpec[],
    { agentId: 'gw-test', clock },
    { alert: (a) => alerts.push(a) },
  );
  return { engine, alerts };
}

test('a zscore/spike checkpoint of the previous version (timestamps kept for count spans) goes on as before', () => {
  const r = restored();
  const scores: (number | undefined)[] = [];
  for (let i = 80; i < 160; i++)
    scores.push(
      r.engine.onReading({ device: 's1', metric: 'temperature', value: value(i), ts: T0 + i * 1000 }),
    );
  assert.deepEqual(
    r.alerts.map((a) => [a.rule, a.state, a.ts, a.id]),
    PREVIOUS_VERSION_ALERTS,
  );
  // and exactly as an engine of this version that saw every reading
  const h = harness(SPECS);
  const fresh: (number | undefined)[] = [];
  for (let i = 0; i < 160; i++) {
    const s = h.engine.onReading({ device: 's1', metric: 'temperature', value: value(i), ts: T0 + i * 1000 });
    if (i >= 80) fresh.push(s);
  }
  assert.deepEqual(scores, fresh);
  // the same state, up to where each compacted its dead prefix
  assert.deepEqual(live(r.engine), live(h.engine));
});

test('count-span windows keep no timestamps and at most twice their span; duration spans keep both', () => {
  const h = harness(SPECS);
  for (let i = 0; i < 500; i++) h.read(value(i), i * 1000);
  const wins = Object.fromEntries(
    h.engine.snapshot().rules.map((r) => [r.name, (r.keys[0]!.det as { win: Win }).win]),
  );
  assert.deepEqual(wins.zc!.ts, []);
  assert.deepEqual(wins.sp!.ts, []);
  assert.ok(wins.zc!.vs.length <= 2 * 10, `zc holds ${wins.zc!.vs.length}`);
  assert.ok(wins.sp!.vs.length <= 2 * 7, `sp holds ${wins.sp!.vs.length}`);
  assert.equal(wins.zd!.vs.length, wins.zd!.ts.length);
  assert.equal(wins.zd!.vs.length - wins.zd!.head, 20);
  assert.ok(wins.zd!.vs.length <= 2 * 20);
});
