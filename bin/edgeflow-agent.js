#!/usr/bin/env node
// Development entry point: runs the TypeScript sources through tsx under the project's pinned Node 24
// (scripts/runtime.mjs); started by an older Node, it re-runs itself under that one. Released
// executables are built by `npm run build:binaries` (see README).
import { fileURLToPath } from 'node:url';
import { runningRequiredMajor, runUnderPinnedNode } from '../scripts/runtime.mjs';

if (runningRequiredMajor()) {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../agent/main.ts');
} else {
  runUnderPinnedNode([...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)]);
}
