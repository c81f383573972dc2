// InfluxDB sink (SPEC.md section 4): summaries, alerts and status as line protocol, millisecond
// precision, mapping from shared/influx.ts. Re-sending an item rewrites the same series and timestamp,
// so retries and re-sends never create a second point.
//
//   api: v2 → `@influxdata/influxdb-client` WriteApi (/api/v2/write, org/bucket/token); its own retry
//             buffer is switched off (maxRetries 0, writeFailed rethrows) because the runner owns retries.
//   api: v1 → plain HTTP POST /write?db=&rp=&precision=ms with basic auth (InfluxDB 1.x; the v2 client
//             has no 1.x write path with rp + user/password semantics).
// A 400 (bad line, field type conflict; InfluxDB 1.x writes the good points of a "partial write") is
// bisected down to the offending points, which come back as permanent failures (dead-lettered by the
// runner); everything else writes. 413 is split the same way. 429/503 honour Retry-After.
import { HttpError, InfluxDB, type WriteApi } from '@influxdata/influxdb-client';
import { readSecretFile } from '../../shared/config-file.ts';
import { alertPoint, statusPoint } from '../../shared/influx.ts';
import type { Logger } from '../../shared/log.ts';
import type { Alert, Status, Summary } from '../../shared/model.ts';
import type { InfluxConfig } from '../config.ts';
import type { SpoolItem } from '../spool/spool.ts';
import { summaryLine } from './influx-line.ts';
import type { Sink, SinkFailure, WriteResult } from './sink.ts';

type PostResult = { ok: true } | { ok: false; status: number | null; message: string; retryAfterMs?: number };

/** Retry-After is delta-seconds or an HTTP date (RFC 9110 10.2.3). */
export function parseRetryAfter(v: string | null | undefined, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** The line for one spool item, or null if InfluxDB does not store this kind (dead letters, late events). */
export function itemLine(item: SpoolItem): string | null {
  if (item.kind !== 'summaries' && item.kind !== 'alerts' && item.kind !== 'status') return null;
  // The parsed item rides along when the runner was served from the spool's recent-items cache.
  const obj = item.value !== undefined ? item.value : JSON.parse(item.body.toString('utf8'));
  // Summaries without the client's Point: the same bytes, a third of the CPU (influx-line.ts).
  if (item.kind === 'summaries') return summaryLine(item.agent, obj as Summary);
  const p = item.kind === 'alerts' ? alertPoint(item.agent, obj as Alert) : statusPoint(obj as Status);
  return p.toLineProtocol() ?? null;
}

export class InfluxSink implements Sink {
  readonly name = 'influx';
  readonly batchSize: number;
  private writeApi: WriteApi | null = null;
  private readonly v1Auth: string | null = null;
  private readonly base: string;

  constructor(
    private readonly cfg: InfluxConfig,
    private readonly log: Logger,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.base = cfg.url.replace(/\/+$/, '');
    this.batchSize = cfg.batchSize;
    if (cfg.api === 'v2') {
      const token = cfg.token ?? readSecretFile(cfg.tokenFile!);
      this.writeApi = new InfluxDB({ url: this.base, token, timeout: cfg.timeout }).getWriteApi(
        cfg.org!,
        cfg.bucket!,
        'ms',
        {
          maxRetries: 0,
          batchSize: 1_000_000, // never auto-flush: we flush once per write() and need its outcome
          flushInterval: 0,
          maxBufferLines: 1_000_000,
          gzipThreshold: 64 * 1024,
          writeFailed: (error: Error) => Promise.reject(error), // no internal retry buffer, no console logging
        },
      );
    } else if (cfg.username) {
      const pw = cfg.password ?? (cfg.passwordFile ? readSecretFile(cfg.passwordFile) : '');
      this.v1Auth = `Basic ${Buffer.from(`${cfg.username}:${pw}`).toString('base64')}`;
    }
  }

  async start(): Promise<void> {
    if (!(await this.healthcheck())) {
      this.log.warn(
        { url: this.base, code: 'SINK_UNAVAILABLE' },
        'influxdb not reachable at start; will retry',
      );
    }
  }

  private async post(lines: readonly string[]): Promise<PostResult> {
    if (this.writeApi) {
      try {
        this.writeApi.writeRecords(lines as string[]);
        await this.writeApi.flush();
        return { ok: true };
      } catch (e) {
        if (e instanceof HttpError) {
          const ra = e.headers?.['retry-after'];
          return {
            ok: false,
            status: e.statusCode,
            message: `${e.statusCode} ${(e.body ?? e.message).slice(0, 500)}`,
            retryAfterMs: parseRetryAfter(Array.isArray(ra) ? ra[0] : ra),
          };
        }
        return { ok: false, status: null, message: (e as Error).message };
      }
    }
    const q = new URLSearchParams({ db: this.cfg.db!, precision: 'ms' });
    if (this.cfg.rp) q.set('rp', this.cfg.rp);
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    if (this.v1Auth) headers.authorization = this.v1Auth;
    try {
      const res = await this.fetchImpl(`${this.base}/write?${q}`, {
        method: 'POST',
        headers,
        body: lines.join('\n'),
        signal: AbortSignal.timeout(this.cfg.timeout),
      });
      if (res.status === 204 || res.status === 200) {
        await res.arrayBuffer().catch(() => undefined);
        return { ok: true };
      }
      const body = await res.text().catch(() => '');
      return {
        ok: false,
        status: res.status,
        message: `${res.status} ${body.slice(0, 500)}`,
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
      };
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      return {
        ok: false,
        status: null,
        message: `${err.message}${err.cause?.code ? ` (${err.cause.code})` : ''}`,
      };
    }
  }

  /** Writes `lines` (indices into the caller's items); returns failures. Bisects 400/413 to the bad points. */
  private async writeLines(
    lines: readonly string[],
    idx: readonly number[],
    out: SinkFailure[],
  ): Promise<void> {
    if (lines.length === 0) return;
    const r = await this.post(lines);
    if (r.ok) return;
    const splittable = r.status === 400 || r.status === 413 || r.status === 422;
    if (splittable && lines.length > 1) {
      const mid = lines.length >> 1;
      await this.writeLines(lines.slice(0, mid), idx.slice(0, mid), out);
      // An unavailable server during the first half: do not hammer it with the second.
      if (out.some((f) => f.retriable)) {
        for (const i of idx.slice(mid))
          out.push({ index: i, error: 'not attempted', code: 'unavailable', retriable: true });
        return;
      }
      await this.writeLines(lines.slice(mid), idx.slice(mid), out);
      return;
    }
    if (splittable) {
      out.push({
        index: idx[0]!,
        error: r.message,
        code: r.status === 413 ? 'too_large' : 'bad_point',
        retriable: false,
      });
      return;
    }
    // 401/403/404 (auth, unknown database) are operator errors: the data waits, it is not dead-lettered.
    const code =
      r.status === null
        ? 'unavailable'
        : r.status === 401 || r.status === 403
          ? 'auth'
          : r.status === 404
            ? 'not_found'
            : `http_${r.status}`;
    for (const i of idx) {
      const f: SinkFailure = { index: i, error: r.message, code, retriable: true };
      if (r.retryAfterMs !== undefined) f.retryAfterMs = r.retryAfterMs;
      out.push(f);
    }
  }

  async write(items: readonly SpoolItem[]): Promise<WriteResult> {
    const lines: string[] = [];
    const idx: number[] = [];
    const failed: SinkFailure[] = [];
    items.forEach((it, i) => {
      try {
        const l = itemLine(it);
        if (l) {
          lines.push(l);
          idx.push(i);
        }
      } catch (e) {
        failed.push({ index: i, error: (e as Error).message, code: 'encode', retriable: false });
      }
    });
    await this.writeLines(lines, idx, failed);
    return { ok: items.length - failed.length, failed };
  }

  async healthcheck(): Promise<boolean> {
    try {
      const res = await this.fetchImpl(`${this.base}/ping`, { signal: AbortSignal.timeout(3000) });
      await res.arrayBuffer().catch(() => undefined);
      return res.status === 204 || res.status === 200;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.writeApi?.close().catch(() => {});
  }
}
