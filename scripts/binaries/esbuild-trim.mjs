// esbuild plugin: leaves out of the agent's bundle code that the agent can never run (issue 14, memory).
//
// V8 keeps the executable's main script source on its heap for the process's life (lazy functions are
// compiled from it), and the same bytes are mapped from the SEA blob: every KiB of bundle costs up to
// two KiB of idle RSS, evaluated or not (these 314 KiB: -0.8 MiB idle, BENCHMARKS.md section 14).
// Unlike the lazy modules (esbuild-lazy.mjs: code a config may still reach), these are dropped:
// nothing in the agent can call them.
//
// zod 4 re-exports all its error-message translations (`z.locales`, 60 languages, 314 KiB, 15 % of the
// bundle) from its top level. The agent validates config with the default English messages, which zod
// imports directly from `locales/en.js` and keeps; `z.locales` becomes an empty namespace, so a future
// `z.config(z.locales.xx())` fails at once (a TypeError at start, never a silent change).

const NS = 'edgeflow-trim';

/** @returns {import('esbuild').Plugin} */
export function trimPlugin() {
  return {
    name: 'edgeflow-trim',
    setup(build) {
      build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => {
        const from = args.importer.replaceAll('\\', '/');
        return /\/node_modules\/zod\/v4\/(classic\/external|core\/index)\.js$/.test(from)
          ? { path: 'zod-locales', namespace: NS }
          : undefined;
      });
      build.onLoad({ filter: /.*/, namespace: NS }, () => ({
        contents: 'export {};\n',
        loader: 'js',
      }));
    },
  };
}
