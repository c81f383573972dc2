// Which broker next, and when (uplink.urls): after a failed attempt the next URL at once, round robin;
// after a full round of failures a backoff, exponential with full jitter above a floor; after a lost
// connection the same URL first (the broker may just have restarted), after a backoff.

export interface FailoverOptions {
  urls: readonly string[];
  /** ms [500] */
  minMs?: number;
  /** ms [30000] */
  maxMs?: number;
  random?: () => number;
}

export type NextAttempt = { url: string; delayMs: number; roundFailed: boolean };

export class Failover {
  private index = 0;
  private failedInRound = 0;
  private attempt = 0;
  private readonly minMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(private readonly o: FailoverOptions) {
    this.minMs = o.minMs ?? 500;
    this.maxMs = o.maxMs ?? 30_000;
    this.random = o.random ?? Math.random;
  }

  get urls(): readonly string[] {
    return this.o.urls;
  }

  get url(): string {
    return this.o.urls[this.index]!;
  }

  connected(): void {
    this.failedInRound = 0;
    this.attempt = 0;
  }

  /** A live connection ended: the same URL again, after a backoff. */
  lost(): NextAttempt {
    return { url: this.url, delayMs: this.backoff(), roundFailed: false };
  }

  /** An attempt failed: the next URL at once, or (a full round failed) after a backoff. */
  failed(): NextAttempt {
    this.failedInRound++;
    this.index = (this.index + 1) % this.o.urls.length;
    if (this.failedInRound < this.o.urls.length) return { url: this.url, delayMs: 0, roundFailed: false };
    this.failedInRound = 0;
    return { url: this.url, delayMs: this.backoff(), roundFailed: true };
  }

  private backoff(): number {
    const ceiling = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.attempt++, 30));
    return Math.round(this.minMs + this.random() * (ceiling - this.minMs)); // full jitter above a floor
  }
}
