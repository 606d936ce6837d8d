// SPDX-License-Identifier: MIT
// A ByteSource over a file, read in chunks with synchronous reads (constant memory).

import { closeSync, openSync, readSync } from "node:fs";
import type { ByteSource } from "../workload/trace.js";
import { UsageError } from "./errors.js";

export class FileSource implements ByteSource {
  private fd: number;
  /** Bytes read so far. */
  offset = 0;
  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, "r");
    } catch (e) {
      throw new UsageError(
        `cannot open ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
      );
    }
  }
  read(buf: Uint8Array): number {
    if (this.fd < 0) return 0;
    const n = readSync(this.fd, buf, 0, buf.length, null);
    this.offset += n;
    if (n === 0) this.close();
    return n;
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
