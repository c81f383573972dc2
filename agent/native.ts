// Native addons inside the single executable (issue 6).
//
// The released agent is a Node.js single executable application (SEA): one file, no node_modules.
// Its two native addons (better-sqlite3 and @serialport/bindings-cpp) are embedded as SEA assets by
// scripts/build-binaries.mjs. A shared object cannot be dlopen()ed from memory, so on first use the
// asset is written to a cache directory (file name = content hash, so it is written once per build and
// two agents can share it) and loaded with process.dlopen.
//
// Agent code never calls this module for loading: it imports `better-sqlite3` and `serialport` as usual.
// The esbuild plugin in scripts/binaries/esbuild-native.mjs replaces, only in the bundle,
// better-sqlite3's `require('./binding')` and `require('node-gyp-build')` inside
// @serialport/bindings-cpp with calls to loadNativeAddon(). Under tsx (dev, tests) this file is unused.
//
// Where the files go (first directory that is writable and allows mapping executable code wins):
//   1. $EDGEFLOW_NATIVE_DIR                      explicit override
//   2. setNativeDir(dir) from the agent           e.g. `${agent.dataDir}/.native`
//   3. $EDGEFLOW_DATA/.native
//   4. $STATE_DIRECTORY/.native                   systemd StateDirectory= (works with ProtectSystem=strict)
//   5. $RUNTIME_DIRECTORY, $XDG_RUNTIME_DIR/edgeflow-native
//   6. <os.tmpdir()>/edgeflow-native-<uid>        created 0700; refused if owned by someone else
// A directory on a `noexec` mount fails at dlopen; the loader then tries the next one.
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';

/** Asset names used by the build script and the esbuild plugin; one per embedded addon. */
export const NATIVE_ASSETS = {
  betterSqlite3: 'better_sqlite3.node',
  serialport: 'serialport_bindings.node',
} as const;

/**
 * SEA asset with `{ "<asset name>": "<sha256 hex>" }` of the embedded addons, written by the build. With
 * it a start whose addon is already extracted never reads the 1.9 MB asset: hashing it mapped its pages
 * into the process for good (file-backed RSS, issue 14). The extracted file is still re-hashed.
 */
export const NATIVE_DIGESTS_ASSET = 'native-digests.json';

interface SeaModule {
  isSea(): boolean;
  getRawAsset(name: string): ArrayBuffer;
}

let preferredDir: string | undefined;
const loaded = new Map<string, unknown>();

/** Prefer this directory for extracted addons (call before the first database or serial port is opened). */
export function setNativeDir(dir: string): void {
  preferredDir = dir;
}

/** The candidate directories, in order, for the current environment. */
export function nativeDirCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  if (env.EDGEFLOW_NATIVE_DIR) out.push(env.EDGEFLOW_NATIVE_DIR);
  if (preferredDir) out.push(preferredDir);
  if (env.EDGEFLOW_DATA) out.push(join(env.EDGEFLOW_DATA, '.native'));
  // systemd passes colon-separated lists when several directories are configured.
  if (env.STATE_DIRECTORY) out.push(join(env.STATE_DIRECTORY.split(':')[0] as string, '.native'));
  if (env.RUNTIME_DIRECTORY) out.push(join(env.RUNTIME_DIRECTORY.split(':')[0] as string, 'native'));
  if (env.XDG_RUNTIME_DIR) out.push(join(env.XDG_RUNTIME_DIR, 'edgeflow-native'));
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  out.push(join(tmpdir(), `edgeflow-native-${uid}`));
  return out;
}

function sea(): SeaModule | undefined {
  // getBuiltinModule instead of `import 'node:sea'`: Node 20.11 (dev minimum) has no node:sea.
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  const mod = get?.call(process, 'node:sea') as SeaModule | undefined;
  return mod?.isSea() ? mod : undefined;
}

/** Bytes of an embedded addon: the SEA asset, or (bundle run by plain node, for debugging) $EDGEFLOW_NATIVE_ASSETS/<name>. */
function assetBytes(name: string): Buffer {
  const s = sea();
  if (s) return Buffer.from(s.getRawAsset(name));
  const dir = process.env.EDGEFLOW_NATIVE_ASSETS;
  if (dir) return readFileSync(join(dir, name));
  throw new Error(
    `native addon ${name}: not running as a single executable and EDGEFLOW_NATIVE_ASSETS is not set`,
  );
}

function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  // A shared, world-writable place (/tmp) must be ours alone, or someone could plant a library there.
  const uid = typeof process.getuid === 'function' ? process.getuid() : st.uid;
  if (st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}, not ${uid}`);
  if ((st.mode & 0o022) !== 0) chmodSync(dir, st.mode & 0o755);
}

/** The build-time sha256 of an embedded addon, when the executable carries NATIVE_DIGESTS_ASSET. */
function knownDigest(name: string): string | undefined {
  const s = sea();
  if (!s) return undefined;
  try {
    const map = JSON.parse(Buffer.from(s.getRawAsset(NATIVE_DIGESTS_ASSET)).toString('utf8')) as Record<
      string,
      unknown
    >;
    const d = map[name];
    return typeof d === 'string' && /^[0-9a-f]{64}$/.test(d) ? d : undefined;
  } catch {
    return undefined; // an executable built before the digests asset existed
  }
}

/**
 * sha256 of a file read in 64 KiB chunks: checking the extracted addon at every start then allocates no
 * 1.9 MB Buffer that stays in the idle agent until a major GC (issue 14, idle RSS).
 */
function sha256File(path: string): string {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(64 * 1024);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** Writes bytes to dir/file unless an identical file is already there; atomic (temp file + rename). */
function materialise(dir: string, file: string, bytesOf: () => Buffer, digest: string): string {
  ensurePrivateDir(dir);
  const path = join(dir, file);
  try {
    if (sha256File(path) === digest) return path;
  } catch {
    // not there yet
  }
  const tmp = join(dir, `.${file}.${process.pid}.${randomBytes(4).toString('hex')}`);
  const bytes = bytesOf();
  if (createHash('sha256').update(bytes).digest('hex') !== digest)
    throw new Error(`embedded ${file} does not match its build-time digest`);
  const fd = openSync(tmp, 'wx', 0o500);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (err) {
    unlinkSync(tmp);
    throw err;
  }
  return path;
}

/** Loads an embedded native addon and returns its exports; each addon is loaded once per process. */
export function loadNativeAddon(name: string): unknown {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached;
  let bytes: Buffer | undefined;
  const bytesOf = () => {
    bytes ??= assetBytes(name);
    return bytes;
  };
  const digest = knownDigest(name) ?? createHash('sha256').update(bytesOf()).digest('hex');
  const file = `${name.replace(/\.node$/, '')}-${digest.slice(0, 16)}.node`;
  const problems: string[] = [];
  for (const dir of nativeDirCandidates()) {
    let path: string;
    try {
      path = materialise(dir, file, bytesOf, digest);
    } catch (err) {
      problems.push(`${dir}: ${(err as Error).message}`);
      continue;
    }
    const mod = { exports: {} as unknown };
    try {
      process.dlopen(mod, path, constants.dlopen.RTLD_NOW);
    } catch (err) {
      // noexec mount, or a library the device lacks (then every directory fails the same way).
      problems.push(`${path}: ${(err as Error).message}`);
      continue;
    }
    loaded.set(name, mod.exports);
    return mod.exports;
  }
  throw new Error(`cannot load native addon ${name}:\n  ${problems.join('\n  ')}`);
}

/**
 * A stand-in for an addon whose exports are all functions: every property is a function that loads the
 * addon on its first call and forwards to it. @serialport/bindings-cpp reads its binding's functions
 * (`binding.open ? promisify(binding.open) : ...`) as soon as its module is evaluated, i.e. at start;
 * deferring the dlopen to the first real call keeps `--version` and `check-config` free of native code
 * and lets the agent call setNativeDir() before opening a port.
 */
export function lazyNativeFunctions(name: string): Record<string, (...args: unknown[]) => unknown> {
  const resolve = (prop: string): ((...args: unknown[]) => unknown) => {
    const fn = (loadNativeAddon(name) as Record<string, unknown>)[prop];
    if (typeof fn !== 'function') throw new Error(`native addon ${name} has no function ${prop}`);
    return fn as (...args: unknown[]) => unknown;
  };
  return new Proxy({} as Record<string, (...args: unknown[]) => unknown>, {
    get: (_t, prop) => {
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      // A plain function, not an arrow: some exports are classes (`new binding.Poller(fd, cb)`);
      // returning the real instance from the constructor call replaces `this`.
      return function (this: unknown, ...args: unknown[]) {
        const fn = resolve(prop);
        return new.target ? Reflect.construct(fn, args) : fn.apply(this, args);
      };
    },
  });
}
