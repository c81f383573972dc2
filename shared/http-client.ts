// Requests to the collector's HTTP(S) listener from our own clients (the agent's release download,
// `edgeflow-collector fleet ...`). node:http(s) rather than the global fetch: fetch cannot be given a CA
// per request, and the collector's certificate is usually signed by the fleet's own CA (the one the
// uplink already pins with `uplink.ca`), not by a public one.
import { type IncomingMessage, request as plainRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface ClientRequestOptions {
  /** [GET] */
  method?: string;
  headers: Record<string, string>;
  /** PEM of the CA(s) that sign the collector's certificate (https only); absent: the system's CAs. */
  ca?: Buffer;
  signal?: AbortSignal;
}

/** Resolves with the response once its head arrived; the body is the IncomingMessage (an async iterable). */
export function httpRequest(url: string, o: ClientRequestOptions): Promise<IncomingMessage> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : plainRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, {
      method: o.method ?? 'GET',
      headers: o.headers,
      signal: o.signal,
      ...(o.ca ? { ca: o.ca } : {}),
      minVersion: 'TLSv1.2',
    });
    req.once('response', resolve);
    req.once('error', reject);
    req.end();
  });
}

/** The whole body, refused past `maxBytes` (a client does not trust a server with its memory). */
export async function readBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) {
      res.destroy();
      throw new Error(`body over ${maxBytes} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
