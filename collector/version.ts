// Replaced at bundle time by the build (esbuild `define`); a dev marker otherwise.
declare const __EDGEFLOW_VERSION__: string | undefined;
export const VERSION: string = typeof __EDGEFLOW_VERSION__ === 'string' ? __EDGEFLOW_VERSION__ : '0.1.0-dev';
