#!/usr/bin/env node
// Development entry point: runs the TypeScript sources through tsx. Released agents are single
// executables built by `npm run build:binaries` (see README).
import { register } from 'tsx/esm/api';

register();
await import('../collector/main.ts');
