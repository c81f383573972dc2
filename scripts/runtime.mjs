// The one Node runtime of the project (issue 18): Node 24 LTS, the official build published on the npm
// registry as `node-linux-<arch>`, pinned in package.json "optionalDependencies" (npm installs only the
// package whose "os"/"cpu" match the machine; no install script, nothing fetched from outside the
// registry). The agent's executables embed the same version (scripts/build-binaries.mjs).
//
// Why pinned in node_modules rather than "whatever node is on PATH": the README's two commands must run
// on a fresh machine whose Node is older (Debian's, or an end-of-life 20), and better-sqlite3 13 and
// @platformatic/kafka need Node >= 22 (better-sqlite3 13's prebuilt addon segfaults on 20). So the
// machine's node and npm only install the lockfile (`npm ci` runs no dependency code that needs 24) and
// every script, test, benchmark and bin shim runs under this binary.
//
//   node scripts/runtime.mjs            prints the pinned node's path (scripts/demo.sh uses it)
//   import { pinnedNode, runUnderPinnedNode } from './runtime.mjs'
//
// Plain JavaScript, runnable by Node >= 18: it is what runs before the pinned Node is there.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const REQUIRED_MAJOR = 24;

function pinnedVersion() {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  return pkg.optionalDependencies?.[`node-${platform()}-${arch()}`];
}

/**
 * Path of the pinned Node binary; throws a one-line explanation when this machine has none (another
 * OS/CPU than linux x64/arm64, or node_modules not installed).
 */
export function pinnedNode() {
  const pkg = `node-${platform()}-${arch()}`;
  const bin = join(ROOT, 'node_modules', pkg, 'bin', 'node');
  if (existsSync(bin)) return bin;
  const version = pinnedVersion();
  if (!version)
    throw new Error(`no pinned Node ${REQUIRED_MAJOR} for ${platform()}-${arch()} in package.json`);
  throw new Error(`${bin} missing: run \`npm ci\` (it installs ${pkg}@${version} from the npm registry)`);
}

/** True when the running Node is the project's major version (then nothing needs to re-exec). */
export function runningRequiredMajor() {
  return Number(process.versions.node.split('.')[0]) === REQUIRED_MAJOR;
}

/**
 * Runs `pinnedNode() ...args` with the same stdio, forwards the usual termination signals, and ends this
 * process the way the child ended (same exit code, or the same signal). Used by the bin shims when
 * started by an older Node. (A SIGKILL of this wrapper cannot be forwarded: tests and the demo start the
 * entry points with process.execPath, which is already the pinned Node, so no wrapper is in between.)
 */
export function runUnderPinnedNode(args) {
  let node;
  try {
    node = pinnedNode();
  } catch (err) {
    process.stderr.write(
      `edgeflow needs Node ${REQUIRED_MAJOR} (this is ${process.version}): ${err.message}\n`,
    );
    process.exit(1);
  }
  const child = spawn(node, args, { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']) {
    process.on(sig, () => child.kill(sig));
  }
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.stdout.write(`${pinnedNode()}\n`);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
