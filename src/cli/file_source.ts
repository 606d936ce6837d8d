// SPDX-License-Identifier: MIT
// A ByteSource over a file, read in chunks with synchronous reads (constant memory).

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import type { ByteSource } from "../workload/trace.js";
import { UsageError } from "./errors.js";
import { describeFsError } from "./output.js";

/** What a file that is not a regular file is ("a directory", "a FIFO", ...), or undefined for a regular file. */
export function notRegular(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (reading it would wait for a writer)";
  if (st.isCharacterDevice() || st.isBlockDevice()) return "a device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

export class FileSource implements ByteSource {
  private fd: number;
  /** Bytes read so far. */
  offset = 0;
  constructor(readonly path: string) {
    try {
      // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
      this.fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      throw new UsageError(`cannot open ${path}: ${describeFsError(e)}`);
    }
    const kind = notRegular(fstatSync(this.fd));
    if (kind !== undefined) {
      this.close();
      throw new UsageError(`cannot read ${path}: it is ${kind}, not a regular file; give a trace file`);
    }
  }
  read(buf: Uint8Array): number {
    if (this.fd < 0) return 0;
    let n: number;
    try {
      n = readSync(this.fd, buf, 0, buf.length, null);
    } catch (e) {
      throw new UsageError(`cannot read ${this.path} at byte offset ${this.offset}: ${describeFsError(e)}`);
    }
    this.offset += n;
    if (n === 0) this.close();
    return n;
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
