// SPDX-License-Identifier: MIT
// Workloads hand the engine batches of accesses (typed arrays of addresses and operations),
// never one object per access. A stream fills a batch and says how many it wrote.

import { PAGE_SIZE } from "../hw/addr.js";
import type { Prng } from "./prng.js";

export const OP_READ = 0;
export const OP_WRITE = 1;

export class AccessBatch {
  readonly addrs: Float64Array;
  readonly ops: Uint8Array;
  n = 0;
  constructor(readonly capacity = 4096) {
    this.addrs = new Float64Array(capacity);
    this.ops = new Uint8Array(capacity);
  }
}

export interface AccessStream {
  /** Accesses this stream will produce in all. */
  readonly total: number;
  /** Fills `b` from the start with up to b.capacity accesses; returns how many (0 when done). */
  fill(b: AccessBatch): number;
}

/** `touch`: each 4 KiB page of [base, base+size) once, in address order. */
export class TouchStream implements AccessStream {
  readonly total: number;
  private i = 0;
  constructor(
    private readonly base: number,
    size: number,
    private readonly op: number,
  ) {
    this.total = Math.ceil(size / PAGE_SIZE);
  }
  fill(b: AccessBatch): number {
    let n = 0;
    while (n < b.capacity && this.i < this.total) {
      b.addrs[n] = this.base + this.i * PAGE_SIZE;
      b.ops[n] = this.op;
      n++;
      this.i++;
    }
    return (b.n = n);
  }
}

/** `random`: uniform over the pages of [base, base+size), each a write with probability writeRatio. */
export class RandomStream implements AccessStream {
  private done = 0;
  private readonly pages: number;
  constructor(
    private readonly base: number,
    size: number,
    readonly total: number,
    private readonly writeRatio: number,
    private readonly rng: Prng,
  ) {
    this.pages = Math.max(1, Math.floor(size / PAGE_SIZE));
  }
  fill(b: AccessBatch): number {
    let n = 0;
    const rng = this.rng;
    while (n < b.capacity && this.done < this.total) {
      const page = rng.nextInt(this.pages);
      // An 8-byte aligned word inside the page.
      b.addrs[n] = this.base + page * PAGE_SIZE + (rng.nextU32() & 0xff8);
      b.ops[n] = rng.nextFloat() < this.writeRatio ? OP_WRITE : OP_READ;
      n++;
      this.done++;
    }
    return (b.n = n);
  }
}

/** `sequential`: `total` accesses walking [base, base+size) with `stride` bytes, wrapping around. */
export class SequentialStream implements AccessStream {
  private done = 0;
  private off = 0;
  constructor(
    private readonly base: number,
    private readonly size: number,
    readonly total: number,
    private readonly writeRatio: number,
    private readonly stride: number,
    private readonly rng: Prng,
  ) {}
  fill(b: AccessBatch): number {
    let n = 0;
    while (n < b.capacity && this.done < this.total) {
      b.addrs[n] = this.base + this.off;
      b.ops[n] = this.writeRatio > 0 && this.rng.nextFloat() < this.writeRatio ? OP_WRITE : OP_READ;
      this.off += this.stride;
      if (this.off >= this.size) this.off = 0;
      n++;
      this.done++;
    }
    return (b.n = n);
  }
}
