// esbuild plugin: modules the agent's bundle evaluates only when they are used (issue 14, start time).
//
// A start of the executable is mostly CPU spent evaluating modules. Some are pulled in by a package's
// top level although the agent's configuration rarely or never reaches them; each rule below turns one
// such import, from one importer, into a small stand-in that loads the real module on first use. The
// real module is still bundled and a use later works exactly as before; only its evaluation moves.
// Measured with bench/footprint.ts, the agent's CPU until /healthz (BENCHMARKS.md section 14, "Start"; a
// --cpu-prof of the executable finds what is evaluated, but inflates compile time several times).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NS = 'edgeflow-lazy';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const require = createRequire(join(ROOT, 'package.json'));
const fromImporter = (file) => (importer) => join(dirname(importer), file);

/**
 * importer: a RegExp on the importing file's path (`/` separated); path: the import as written;
 * target: the real module (absolute file, or a builtin); calls: exports that are only ever called (a
 * wrapper function each, so reading them does not load anything); constructs: classes that are only
 * ever constructed with `new` (likewise; `instanceof` does not hold); callable: the module itself is a
 * function that is only called; getters: exports read later (a getter each); values: exports whose
 * value in the agent's executable is known at build time (the real module's export must exist).
 */
const RULES = [
  // mqtt.js's SOCKS proxy support (socks, ip-address, node:dns, node:assert): only a `socksProxy` option calls it.
  ...['tcp', 'tls'].map((f) => ({
    importer: new RegExp(`/node_modules/mqtt/build/lib/connect/${f}\\.js$`),
    path: './socks',
    target: fromImporter('socks.js'),
    calls: ['default'],
  })),
  // mqtt.js registers every transport when it connects: ws (the `ws` package, which requires https and
  // tls) and tls (node:tls) are only called for ws://, wss:// and mqtts:// URLs.
  {
    importer: /\/node_modules\/mqtt\/build\/lib\/connect\/index\.js$/,
    path: './ws',
    target: fromImporter('ws.js'),
    calls: ['streamBuilder', 'browserStreamBuilder'],
  },
  {
    importer: /\/node_modules\/mqtt\/build\/lib\/connect\/index\.js$/,
    path: './tls',
    target: fromImporter('tls.js'),
    calls: ['default'],
  },
  // node:https (and with it node:tls, ~20 ms of a start): the HTTP listener and the release download
  // only use it with TLS configured / for an https:// URL.
  {
    importer: /\/shared\/http\.ts$/,
    path: 'node:https',
    target: () => 'node:https',
    calls: ['createServer'],
  },
  {
    importer: /\/shared\/http-client\.ts$/,
    path: 'node:https',
    target: () => 'node:https',
    calls: ['request'],
  },
  // node:http likewise, only in the bundle for a startup snapshot (scripts/build-binaries.mjs
  // --snapshot): Node cannot snapshot it (V8's CheckGlobalAndEternalHandles fails), and these two modules
  // are evaluated while the snapshot is built; the listener loads it at start, the download on first use.
  {
    importer: /\/shared\/http\.ts$/,
    path: 'node:http',
    target: () => 'node:http',
    calls: ['createServer'],
    snapshotOnly: true,
  },
  {
    importer: /\/shared\/http-client\.ts$/,
    path: 'node:http',
    target: () => 'node:http',
    calls: ['request'],
    snapshotOnly: true,
  },
  // node:assert (its diff and error modules): sonic-boom calls it when a stream closes, thread-stream
  // only for pino's transports; pino's transport support (thread-stream, worker threads) is not used.
  ...['sonic-boom/index.js', 'thread-stream/index.js'].map((f) => ({
    importer: new RegExp(`/node_modules/${f.replace('.', '\\.')}$`),
    path: 'assert',
    target: () => 'node:assert',
    callable: true,
  })),
  // pino's transports (thread-stream, which loads node:worker_threads): pino.js exports the function and
  // lib/tools.js calls it for a `transport` option; the agent passes a destination stream instead.
  {
    importer: /\/node_modules\/pino\/pino\.js$/,
    path: './lib/transport',
    target: fromImporter('lib/transport.js'),
    callable: true,
  },
  {
    importer: /\/node_modules\/pino\/lib\/tools\.js$/,
    path: './transport',
    target: fromImporter('transport.js'),
    callable: true,
  },
  // node:worker_threads (Worker, MessagePort, locks: 0.6-0.7 MiB of idle RSS, issue 14). pino's
  // lib/tools.js reads only `isMainThread`, at load (to flush an async destination at exit): the agent's
  // bundle is only ever the main script of its executable (its one thread, the hang watchdog, runs
  // inline source without it), so the value is known without loading the module. The hang watchdog
  // constructs a Worker only while an update or a pushed configuration is on trial.
  {
    importer: /\/node_modules\/pino\/lib\/tools\.js$/,
    path: 'worker_threads',
    target: () => 'node:worker_threads',
    values: { isMainThread: true },
  },
  {
    importer: /\/agent\/runtime\/hang-watchdog\.ts$/,
    path: 'node:worker_threads',
    target: () => 'node:worker_threads',
    constructs: ['Worker'],
  },
  // prom-client's index evaluates every metric type, the push gateway (http, https), default metrics
  // (v8, perf_hooks) and the cluster aggregator: the agent uses Registry, Counter, Gauge and Histogram
  // (each its own small file); the other exports are getters that evaluate the full index when read.
  {
    importer: /\/(agent|shared)\/[^/]+(\/[^/]+)?\.ts$/,
    path: 'prom-client',
    target: () => require.resolve('prom-client'),
    eager: {
      Registry: 'prom-client/lib/registry',
      Counter: 'prom-client/lib/counter',
      Gauge: 'prom-client/lib/gauge',
      Histogram: 'prom-client/lib/histogram',
    },
    getters: () => Object.keys(require('prom-client')),
  },
];

const q = JSON.stringify;

/**
 * The build fails when the real module no longer has what a stand-in forwards to (a package update),
 * instead of the executable failing at the first ws:// connection.
 */
function checkTarget(rule, target) {
  const real = require(target);
  const missing = rule.callable
    ? typeof real === 'function'
      ? []
      : ['(the module itself)']
    : [
        ...[...(rule.calls ?? []), ...(rule.constructs ?? [])].filter(
          (name) => typeof real[name] !== 'function',
        ),
        ...Object.entries(rule.values ?? {})
          .filter(([name, value]) => typeof real[name] !== typeof value)
          .map(([name]) => `${name} (a ${typeof rule.values[name]})`),
      ];
  if (missing.length > 0)
    throw new Error(
      `${target}: not what the stand-in forwards to any more: ${missing.join(', ')} (scripts/binaries/esbuild-lazy.mjs)`,
    );
}

async function standIn(rule, target) {
  if (rule.callable || rule.calls || rule.constructs || rule.values) checkTarget(rule, target);
  if (rule.callable) return `module.exports = function (...args) { return require(${q(target)})(...args); };`;
  const lines = ["Object.defineProperty(exports, '__esModule', { value: true });"];
  for (const name of rule.calls ?? [])
    lines.push(
      `exports[${q(name)}] = function (...args) { return require(${q(target)})[${q(name)}](...args); };`,
    );
  for (const name of rule.constructs ?? [])
    lines.push(
      `exports[${q(name)}] = function (...args) { return new (require(${q(target)})[${q(name)}])(...args); };`,
    );
  for (const [name, value] of Object.entries(rule.values ?? {}))
    lines.push(`exports[${q(name)}] = ${q(value)};`);
  for (const [name, spec] of Object.entries(rule.eager ?? {}))
    lines.push(`exports[${q(name)}] = require(${q(require.resolve(spec))});`);
  for (const name of rule.getters ? await rule.getters(target) : []) {
    if (name in (rule.eager ?? {}) || name === 'default' || name === '__esModule') continue;
    lines.push(
      `Object.defineProperty(exports, ${q(name)}, { enumerable: true, get: () => require(${q(target)})[${q(name)}] });`,
    );
  }
  return lines.join('\n');
}

/**
 * @param {{ snapshot?: boolean }} [opts] snapshot: the bundle is for a V8 startup snapshot (adds the
 *   snapshotOnly rules)
 * @returns {import('esbuild').Plugin}
 */
export function lazyModulesPlugin({ snapshot = false } = {}) {
  const rules = RULES.map((r) => (r.snapshotOnly && !snapshot ? null : r));
  const paths = [...new Set(rules.filter(Boolean).map((r) => r.path))];
  const filter = new RegExp(`^(${paths.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`);
  return {
    name: 'edgeflow-lazy-modules',
    setup(build) {
      build.onResolve({ filter }, (args) => {
        if (args.namespace === NS) return undefined;
        const from = args.importer.replaceAll('\\', '/');
        const i = rules.findIndex((r) => r !== null && r.path === args.path && r.importer.test(from));
        if (i < 0) return undefined;
        return { path: `${i}:${RULES[i].target(args.importer)}`, namespace: NS };
      });
      build.onLoad({ filter: /.*/, namespace: NS }, async (args) => {
        const sep = args.path.indexOf(':');
        const rule = RULES[Number(args.path.slice(0, sep))];
        const target = args.path.slice(sep + 1);
        return { contents: await standIn(rule, target), loader: 'js', resolveDir: ROOT };
      });
    },
  };
}
