// Release downloads for over-the-air agent updates (issue 16): the collector serves a directory of
// signed releases (`<version>/edgeflow-agent-linux-<arch>` + `.manifest.json`, docs/updates.md) under
// /releases/ on its HTTP listener.
//
// - Agents authenticate with the credentials they already have: HTTP basic with their MQTT username
//   (agent id) and password, checked by the same CredentialStore as the broker. Nothing is served
//   anonymously (a release reveals the exact code a fleet runs).
// - Single byte ranges (RFC 9110 `Range: bytes=a-b` / `a-`) answer 206 with Content-Range, so a gateway
//   on a bad link resumes a 100 MB download instead of restarting it. The validator is a strong ETag of
//   size, mtime and inode; the agent sends it back in If-Range, so a file replaced under the same name is
//   sent whole, not spliced onto the old bytes (the signature check would refuse the splice anyway).
// - The collector does not check signatures: it only stores and serves. Agents verify.
import { createReadStream, mkdirSync, realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, sep } from 'node:path';
import { AuthLimits, type AuthLimitsOptions } from '../../shared/auth-limits.ts';
import type { CredentialStore } from '../../shared/credentials.ts';
import type { Logger } from '../../shared/log.ts';

export const RELEASES_PREFIX = '/releases/';
const SEGMENT_RE = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$/;

export interface ArtifactServerOptions {
  dir: string;
  credentials: Pick<CredentialStore, 'verify' | 'verifyCached' | 'has'>;
  /**
   * The same limits on password checks as the broker's (`mqtt.authLimits`, shared/auth-limits.ts): a
   * wrong password costs one scrypt, so HTTP must not be a way around them. Own counters (the broker's
   * are per listener too).
   */
  authLimits: AuthLimitsOptions;
  log: Logger;
  /** Called once per answered request (for metrics): status and bytes sent. */
  onServed?: (status: number, bytes: number) => void;
}

/** Parses a single-range `Range` header against a size: [start, end] inclusive, 'invalid', or null (none). */
export function parseRange(header: string | undefined, size: number): [number, number] | 'invalid' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (m[1] === '') {
    // suffix range: the last N bytes
    const n = Number(m[2]);
    if (n === 0) return 'invalid';
    start = Math.max(0, size - n);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'invalid';
  return [start, end];
}

function basicAuth(req: IncomingMessage): { user: string; pass: string } | null {
  const h = req.headers.authorization;
  if (!h?.startsWith('Basic ')) return null;
  const decoded = Buffer.from(h.slice(6), 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i <= 0) return null;
  return { user: decoded.slice(0, i), pass: decoded.slice(i + 1) };
}

/** The raw handler for shared/http.ts: true when the request was for /releases/. */
export function artifactHandler(opts: ArtifactServerOptions) {
  mkdirSync(opts.dir, { recursive: true });
  const root = realpathSync(opts.dir);
  const limits = new AuthLimits(opts.authLimits);
  /** true: let in; 'throttled' / 'busy': refused without checking; false: wrong. */
  const authenticate = async (
    user: string,
    pass: string,
    address: string,
  ): Promise<boolean | 'throttled' | 'busy'> => {
    // A secret verified before costs no scrypt and is not subject to the limits (as in the broker).
    if (opts.credentials.verifyCached(user, pass)) return true;
    if (limits.reserve(user, address) !== 'ok') return 'throttled';
    let ok: boolean | null = false;
    try {
      if (opts.credentials.has(user)) ok = await limits.run(() => opts.credentials.verify(user, pass));
    } finally {
      limits.settle(user, address, ok);
    }
    return ok === null ? 'busy' : ok;
  };
  const answer = (
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(body);
    opts.onServed?.(status, 0);
  };
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!path.startsWith(RELEASES_PREFIX)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      answer(res, 405, 'method not allowed\n', { allow: 'GET, HEAD' });
      return true;
    }
    const creds = basicAuth(req);
    const unauthorized = () =>
      answer(res, 401, 'authentication required\n', {
        'www-authenticate': 'Basic realm="edgeflow releases"',
      });
    if (!creds) {
      unauthorized();
      return true;
    }
    authenticate(creds.user, creds.pass, req.socket.remoteAddress ?? 'unknown').then(
      (ok) => {
        if (ok === 'throttled' || ok === 'busy') {
          answer(res, ok === 'busy' ? 503 : 429, 'too many password checks; try later\n', {
            'retry-after': '60',
          });
          return;
        }
        if (!ok) {
          opts.log.warn({ agent: creds.user.slice(0, 64) }, 'release download refused: bad credentials');
          unauthorized();
          return;
        }
        serveFile(req, res, root, decodeURIComponent(path.slice(RELEASES_PREFIX.length)), opts, answer);
      },
      (err: unknown) => {
        opts.log.warn({ err }, 'release download: credential check failed');
        answer(res, 500, 'internal error\n');
      },
    );
    return true;
  };
}

function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  rel: string,
  opts: ArtifactServerOptions,
  answer: (res: ServerResponse, status: number, body: string, headers?: Record<string, string>) => void,
): void {
  const segments = rel.split('/');
  if (segments.length === 0 || !segments.every((s) => SEGMENT_RE.test(s) && s !== '..')) {
    answer(res, 404, 'not found\n');
    return;
  }
  let file: string;
  let st: ReturnType<typeof statSync>;
  try {
    // realpath: a symlink inside the releases directory may not lead out of it.
    file = realpathSync(join(root, ...segments));
    if (!file.startsWith(root + sep)) throw new Error('outside');
    st = statSync(file);
    if (!st.isFile()) throw new Error('not a file');
  } catch {
    answer(res, 404, 'not found\n');
    return;
  }
  const size = st.size;
  // Nanosecond mtime: a file rewritten in place within the same millisecond still changes validator.
  const big = statSync(file, { bigint: true });
  const etag = `"${size.toString(16)}-${big.mtimeNs.toString(16)}-${big.ino.toString(16)}"`;
  const headers: Record<string, string> = {
    'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag,
    'cache-control': 'no-cache',
  };
  let range = parseRange(req.headers.range, size);
  // If-Range with another validator: the file changed; send it whole.
  const ifRange = req.headers['if-range'];
  if (range !== null && ifRange !== undefined && ifRange !== etag) range = null;
  if (range === 'invalid') {
    answer(res, 416, 'range not satisfiable\n', { 'content-range': `bytes */${size}` });
    return;
  }
  const [start, end] = range ?? [0, size - 1];
  const length = size === 0 ? 0 : end - start + 1;
  const status = range ? 206 : 200;
  if (range) headers['content-range'] = `bytes ${start}-${end}/${size}`;
  headers['content-length'] = String(length);
  res.writeHead(status, headers);
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    opts.onServed?.(status, 0);
    return;
  }
  const stream = createReadStream(file, { start, end });
  let sent = 0;
  stream.on('data', (c) => {
    sent += (c as Buffer).length;
  });
  stream.on('error', (err) => {
    opts.log.warn({ err, file: rel }, 'release download: read failed');
    res.destroy();
  });
  res.on('close', () => {
    stream.destroy();
    opts.onServed?.(status, sent);
  });
  stream.pipe(res);
}
