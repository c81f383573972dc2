// esbuild plugin: makes the two native addons load from SEA assets (issue 6).
//
// better-sqlite3 13 loads its addon through `require('./binding').getBinding()` (lib/binding.js: a
// node-gyp build or prebuilds/<platform>-<arch>.node next to the package) and @serialport/bindings-cpp
// calls `require('node-gyp-build')(dir)`. Both search the file system next to the package, which does
// not exist inside a single executable. This plugin resolves those two imports, only when they come from
// those two packages, to tiny virtual modules that call agent/native.ts instead. Any other package that
// loads a native addon fails the build, so a new addon cannot slip into the binary unnoticed.
import { fileURLToPath } from 'node:url';

const NATIVE_TS = fileURLToPath(new URL('../../agent/native.ts', import.meta.url));

// Must match NATIVE_ASSETS in agent/native.ts and the asset names in scripts/build-binaries.mjs.
const ASSET = { betterSqlite3: 'better_sqlite3.node', serialport: 'serialport_bindings.node' };

const NS = 'edgeflow-native';

/** @returns {import('esbuild').Plugin} */
export function nativeAddonsPlugin() {
  return {
    name: 'edgeflow-native-addons',
    setup(build) {
      build.onResolve({ filter: /^(bindings|node-gyp-build|\.\/binding)$/ }, (args) => {
        const from = args.importer.replaceAll('\\', '/');
        if (args.path === './binding' && from.includes('/node_modules/better-sqlite3/lib/')) {
          return { path: 'better-sqlite3', namespace: NS };
        }
        if (args.path === './binding') return undefined; // another package's own ./binding module
        if (args.path === 'node-gyp-build' && from.includes('/node_modules/@serialport/bindings-cpp/')) {
          return { path: 'serialport', namespace: NS };
        }
        return {
          errors: [
            {
              text: `${args.importer} loads a native addon through '${args.path}'; only better-sqlite3 and @serialport/bindings-cpp are embedded (see scripts/binaries/esbuild-native.mjs)`,
            },
          ],
        };
      });
      build.onLoad({ filter: /.*/, namespace: NS }, (args) => {
        const contents =
          args.path === 'better-sqlite3'
            ? // getBinding(); better-sqlite3 calls it lazily on the first `new Database()`. Passing
              // `nativeBinding` to `new Database()` is not supported inside the executable.
              `const { loadNativeAddon } = require(${JSON.stringify(NATIVE_TS)});
exports.getBinding = function getBinding() { return loadNativeAddon(${JSON.stringify(ASSET.betterSqlite3)}); };
exports.getPrebuildPath = function getPrebuildPath() { return null; };`
            : // nodeGypBuild(dir) runs when @serialport/bindings-cpp is evaluated: functions that dlopen on first call.
              `const { lazyNativeFunctions } = require(${JSON.stringify(NATIVE_TS)});
module.exports = function nodeGypBuild() { return lazyNativeFunctions(${JSON.stringify(ASSET.serialport)}); };`;
        return { contents, loader: 'js', resolveDir: fileURLToPath(new URL('.', import.meta.url)) };
      });
    },
  };
}
