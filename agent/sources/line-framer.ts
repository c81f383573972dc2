// Line framing for byte streams (serial): splits on "\n", drops a trailing "\r", skips blank lines and
// enforces a maximum frame length without ever buffering more than that. An overlong line is dropped
// whole (bytes up to its terminator are discarded, not delivered as a truncated frame, which would
// decode to garbage or, worse, to a wrong number) and reported once through `onTooLong`.
export class LineFramer {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;

  constructor(
    private readonly maxFrameLength: number,
    private readonly onLine: (line: Buffer) => void,
    private readonly onTooLong: () => void,
  ) {
    if (!(maxFrameLength > 0)) throw new RangeError(`maxFrameLength must be > 0, got ${maxFrameLength}`);
  }

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(0x0a, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!this.discarding) {
        const piece = chunk.subarray(start, end);
        // "\r\n": the "\r" does not count against the limit.
        const effective = this.size + piece.length - (nl !== -1 && piece.at(-1) === 0x0d ? 1 : 0);
        if (effective > this.maxFrameLength) {
          this.parts = [];
          this.size = 0;
          this.discarding = true;
          this.onTooLong();
        } else if (piece.length > 0) {
          // Copy: the serial stream may reuse its pool buffer after we return.
          this.parts.push(Buffer.from(piece));
          this.size += piece.length;
        }
      }
      if (nl === -1) return;
      if (this.discarding) this.discarding = false;
      else this.flush();
      start = nl + 1;
    }
  }

  /** Drops a partial line (port closed mid-line: what follows on reopen is not its continuation). */
  reset(): void {
    this.parts = [];
    this.size = 0;
    this.discarding = false;
  }

  private flush(): void {
    let line = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    if (line.length === 0 || line.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) return;
    this.onLine(line);
  }
}
