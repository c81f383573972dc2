// esbuild plugin: leaves out of the agent's bundle code that the agent can never run (issue 14, memory).
//
// V8 keeps the executable's main script source on its heap for the process's life (lazy functions are
// compiled from it), and the same bytes are mapped from the SEA blob: every KiB of bundle costs up to
// two KiB of idle RSS, evaluated or not (zod's locales, 314 KiB: -0.8 MiB idle, BENCHMARKS.md section 14).
// Unlike the lazy modules (esbuild-lazy.mjs: code a config may still reach), these are dropped:
// nothing in the agent can call them. Each rule names its importer, so another package importing the
// same module gets the real one.

const NS = 'edgeflow-trim';
const LEFT_OUT = 'is left out of the agent executable (scripts/binaries/esbuild-trim.mjs)';
const q = JSON.stringify;

/** importer: a RegExp on the importing file's path (`/` separated); path: the import as written. */
const RULES = [
  // zod 4 re-exports all its error-message translations (`z.locales`, 60 languages, 314 KiB, 15 % of the
  // bundle) from its top level. The agent validates config with the default English messages, which zod
  // imports directly from `locales/en.js` and keeps; `z.locales` becomes an empty namespace, so a future
  // `z.config(z.locales.xx())` fails at once (a TypeError at start, never a silent change).
  {
    importer: /\/node_modules\/zod\/v4\/(classic\/external|core\/index)\.js$/,
    path: '../locales/index.js',
    contents: 'export {};\n',
  },
  // mqtt.js's timers for browsers (worker-timers, worker-timers-broker, broker-factory, @babel/runtime,
  // fast-unique-numbers: 34 KiB): used only with the `timerVariant: 'worker'` option, which the agent never
  // passes (in Node the default is the native timers). A call fails at once.
  {
    importer: /\/node_modules\/mqtt\/build\/lib\/get-timer\.js$/,
    path: 'worker-timers',
    contents: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout']
      .map((f) => `exports.${f} = function () { throw new Error(${q(`worker-timers ${LEFT_OUT}`)}); };`)
      .join('\n'),
  },
  // readable-stream falls back to the abort-controller package (and event-target-shim, 9 KiB) when
  // `globalThis.AbortController` is missing, which it never is in Node 24: the globals, as the fallback
  // would never be reached.
  ...[
    'ours/util',
    'internal/streams/duplexify',
    'internal/streams/pipeline',
    'internal/streams/operators',
  ].map((f) => ({
    importer: new RegExp(`/node_modules/readable-stream/lib/${f}\\.js$`),
    path: 'abort-controller',
    contents:
      'exports.AbortController = globalThis.AbortController;\nexports.AbortSignal = globalThis.AbortSignal;',
  })),
  // serialport's `SerialPortMock` (a test double) and its binding: the agent opens real ports only. Its
  // class reads `MockBinding.list` when serialport is evaluated; constructing one fails at once.
  {
    importer: /\/node_modules\/serialport\/dist\/serialport-mock\.js$/,
    path: '@serialport/binding-mock',
    contents: `const leftOut = () => { throw new Error(${q(`@serialport/binding-mock ${LEFT_OUT}`)}); };
exports.MockBinding = { list: leftOut, open: leftOut };`,
  },
  // @opentelemetry/api (28 KiB) in prom-client's default process CPU metric, for exemplars: the agent
  // registers neither default metrics nor an OpenTelemetry SDK. Without an SDK the API's answer is "no
  // active span", which is what this gives.
  {
    importer: /\/node_modules\/prom-client\/lib\/metrics\/processCpuTotal\.js$/,
    path: '@opentelemetry/api',
    contents: 'exports.context = { active: () => undefined };\nexports.trace = { getSpan: () => undefined };',
  },
];

/** @returns {import('esbuild').Plugin} */
export function trimPlugin() {
  const paths = [...new Set(RULES.map((r) => r.path))];
  const filter = new RegExp(`^(${paths.map((p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|')})$`);
  return {
    name: 'edgeflow-trim',
    setup(build) {
      build.onResolve({ filter }, (args) => {
        const from = args.importer.replaceAll('\\', '/');
        const i = RULES.findIndex((r) => r.path === args.path && r.importer.test(from));
        return i < 0 ? undefined : { path: String(i), namespace: NS };
      });
      build.onLoad({ filter: /.*/, namespace: NS }, (args) => ({
        contents: RULES[Number(args.path)].contents,
        loader: 'js',
      }));
    },
  };
}
