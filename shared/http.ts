// A tiny HTTP server for /metrics, /healthz and /status (agent and collector). node:http is enough:
// three read-only routes do not justify a framework in a single-executable agent. With `tls` the same
// routes are served over HTTPS (the collector's `http.tls`: releases and fleet state leave the host).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.ts';
import { type ServerTlsFiles, serverTlsOptions } from './tls.ts';

export type Route = (
  req: IncomingMessage,
) =>
  | Promise<{ status?: number; type?: string; body: string }>
  | { status?: number; type?: string; body: string };

export function parseHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port: Number(listen.slice(i + 1)) };
}

/**
 * A handler that streams its own answer (the collector's release downloads, issue 16): called before the
 * route table; returns false when the path is not its own.
 */
export type RawHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export async function startHttpServer(
  listen: string,
  routes: Record<string, Route>,
  log: Logger,
  raw?: RawHandler,
  tls?: ServerTlsFiles,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (raw?.(req, res)) return;
    const path = (req.url ?? '/').split('?')[0]!;
    // A route keyed `POST /path` takes that method (the collector's fleet admin API); plain keys are GET/HEAD.
    const byMethod = routes[`${req.method} ${path}`];
    const route = byMethod ?? routes[path];
    if (!route || (!byMethod && req.method !== 'GET' && req.method !== 'HEAD')) {
      const known = route !== undefined || Object.keys(routes).some((k) => k.endsWith(` ${path}`));
      res
        .writeHead(known ? 405 : 404, { 'content-type': 'text/plain' })
        .end(known ? 'method not allowed\n' : 'not found\n');
      return;
    }
    Promise.resolve()
      .then(() => route(req))
      .then(
        (r) => res.writeHead(r.status ?? 200, { 'content-type': r.type ?? 'application/json' }).end(r.body),
        (err: unknown) => {
          log.warn({ err, path }, 'http handler failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
        },
      );
  };
  const server: Server = tls ? createHttpsServer(serverTlsOptions(tls), handler) : createServer(handler);
  server.keepAliveTimeout = 5000;
  const { host, port } = parseHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const url = `${tls ? 'https' : 'http'}://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
