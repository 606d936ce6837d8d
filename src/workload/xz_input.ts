// SPDX-License-Identifier: MIT
// The compressed side of the xz reader (xz.ts, lzma2.ts): bytes pulled from a ByteSource with their
// file offset, and the errors that name it.

import type { ByteSource } from "./trace.js";
import { TraceError } from "./trace.js";

/** Compressed bytes pulled from a ByteSource, with their file offset for error messages. */
export class XzInput {
  readonly buf = new Uint8Array(64 * 1024);
  pos = 0;
  len = 0;
  /** File offset of buf[0]. */
  base = 0;
  constructor(private readonly src: ByteSource) {}

  get offset(): number {
    return this.base + this.pos;
  }

  /** Refills the (drained) buffer; false at the end of the file. */
  fill(): boolean {
    this.base += this.len;
    this.pos = 0;
    this.len = this.src.read(this.buf);
    return this.len > 0;
  }

  /** The next byte, or -1 at the end of the file. */
  tryByte(): number {
    if (this.pos === this.len && !this.fill()) return -1;
    return this.buf[this.pos++]!;
  }

  byte(what: string): number {
    if (this.pos === this.len && !this.fill()) throw this.truncated(what);
    return this.buf[this.pos++]!;
  }

  truncated(what: string): TraceError {
    return new TraceError(
      `the xz stream is truncated at byte offset ${this.offset}: the file ends inside ${what} (it was cut short; copy or download it again, xz -t checks it)`,
    );
  }
}

export function xzCorrupt(at: number, what: string): TraceError {
  return new TraceError(
    `the xz stream is corrupt at byte offset ${at}: ${what} (the file is damaged; copy or download it again, xz -t checks it)`,
  );
}
