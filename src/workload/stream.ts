// SPDX-License-Identifier: MIT
// Workloads hand the engine batches of accesses (typed arrays of addresses and operations),
// never one object per access. A stream fills a batch and says how many it wrote.

import { PAGE_SIZE } from "../hw/addr.js";
import type { CoreMemory } from "../hw/wasm_memory.js";
import type { Prng } from "./prng.js";
import { CoreDraws, drawsFor } from "./core_draws.js";

export const OP_READ = 0;
export const OP_WRITE = 1;
/** What a read (bits 7:0) and a write (15:8) store in a batch's `ops`: OP_READ and OP_WRITE. */
export const OP_KINDS = OP_READ | (OP_WRITE << 8);

/** Arrays a batch can be laid over, and what a read (bits 7:0) and a write (15:8) store in `ops`. */
export interface BatchArrays {
  addrs: Float64Array;
  ops: Uint8Array;
  kinds: number;
  /** The core memory `addrs` and `ops` are views of, or null. */
  core: CoreMemory | null;
}

export class AccessBatch {
  readonly addrs: Float64Array;
  readonly ops: Uint8Array;
  /** What a read (bits 7:0) and a write (15:8) store in `ops`: OP_KINDS, or a vCPU's access kinds. */
  readonly kinds: number;
  /** The core memory `addrs` and `ops` are views of (the core then draws into them in place), or null. */
  readonly core: CoreMemory | null;
  n = 0;
  /**
   * A batch of its own arrays, or one over `over`: the engine hands a stream of reads and writes
   * a vCPU's batch (sim/access_batch.ts), views of the host's core memory whose `ops` are the
   * vCPU's access kinds, so the core draws into it where the translation reads.
   */
  constructor(
    readonly capacity = 4096,
    over: BatchArrays | null = null,
  ) {
    this.addrs = over?.addrs ?? new Float64Array(capacity);
    this.ops = over?.ops ?? new Uint8Array(capacity);
    this.kinds = over?.kinds ?? OP_KINDS;
    this.core = over?.core ?? null;
  }
}

export interface AccessStream {
  /** Accesses this stream will produce in all. */
  readonly total: number;
  /**
   * Whether its accesses are only reads and writes, stored as the batch's `kinds` say (no
   * fetches, no trace regions to map): the engine may then hand it a vCPU's batch.
   */
  readonly readsAndWrites?: boolean;
  /** Fills `b` from the start with up to b.capacity accesses; returns how many (0 when done). */
  fill(b: AccessBatch): number;
}

/** `touch`: each 4 KiB page of [base, base+size) once, in address order. */
export class TouchStream implements AccessStream {
  readonly total: number;
  readonly readsAndWrites = true;
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
    const op = this.op === OP_WRITE ? b.kinds >>> 8 : b.kinds & 0xff;
    while (n < b.capacity && this.i < this.total) {
      b.addrs[n] = this.base + this.i * PAGE_SIZE;
      b.ops[n] = op;
      n++;
      this.i++;
    }
    return (b.n = n);
  }
}

/** `random`: uniform over the pages of [base, base+size), each a write with probability writeRatio. */
export class RandomStream implements AccessStream {
  readonly readsAndWrites = true;
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
    const n = Math.min(b.capacity, this.total - this.done);
    const draws = drawsFor(b.core);
    if (draws === null || this.pages > 2 ** 32) return this.fillEach(b, n);
    // The same three draws an access as fillEach() takes, on the wasm core.
    draws.fillUniform(this.rng, b, 0, n, this.base, this.pages, this.writeRatio * 2 ** 32);
    this.done += n;
    return (b.n = n);
  }

  /** fill() one draw at a time (the reference; without the core; over more than 2^32 pages, where nextInt() takes two draws). */
  private fillEach(b: AccessBatch, n: number): number {
    const rng = this.rng;
    const [read, write] = opsOf(b);
    for (let i = 0; i < n; i++) {
      const page = rng.nextInt(this.pages);
      // An 8-byte aligned word inside the page.
      b.addrs[i] = this.base + page * PAGE_SIZE + (rng.nextU32() & 0xff8);
      b.ops[i] = rng.nextFloat() < this.writeRatio ? write : read;
    }
    this.done += n;
    return (b.n = n);
  }
}

/** `sequential`: `total` accesses walking [base, base+size) with `stride` bytes, wrapping around. */
export class SequentialStream implements AccessStream {
  readonly readsAndWrites = true;
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
    const n = Math.min(b.capacity, this.total - this.done);
    const draws = drawsFor(b.core);
    if (draws === null) return this.fillEach(b, n);
    this.off = draws.fillSequential(this.rng, b, n, this.base, this.size, this.stride, this.off, this.writeRatio);
    this.done += n;
    return (b.n = n);
  }

  /** fill() one draw at a time (the reference; without the core). */
  private fillEach(b: AccessBatch, n: number): number {
    const [read, write] = opsOf(b);
    for (let i = 0; i < n; i++) {
      b.addrs[i] = this.base + this.off;
      b.ops[i] = this.writeRatio > 0 && this.rng.nextFloat() < this.writeRatio ? write : read;
      this.off += this.stride;
      if (this.off >= this.size) this.off = 0;
    }
    this.done += n;
    return (b.n = n);
  }
}

/**
 * `zipf`: a Zipfian hot set over the pages of [base, base+size): page of rank k (1-based) is
 * chosen with probability proportional to 1/k^s. Ranks are scattered over the region by a
 * seeded permutation, so the hot pages are not neighbours.
 */
export class ZipfStream implements AccessStream {
  readonly readsAndWrites = true;
  private done = 0;
  private readonly pages: number;
  /** CDF by rank, and the page of each rank: in the draws' memory when the core draws, else JS arrays. */
  private readonly cdf: Float64Array;
  private readonly pageOfRank: Uint32Array;
  /** This stream's own draws on the wasm core (its memory holds the tables); null: JS draws. */
  private readonly draws: CoreDraws | null;
  constructor(
    private readonly base: number,
    size: number,
    readonly total: number,
    private readonly writeRatio: number,
    exponent: number,
    private readonly rng: Prng,
  ) {
    const pages = Math.max(1, Math.floor(size / PAGE_SIZE));
    if (pages >= 2 ** 32) throw new RangeError("zipf: region too large");
    this.pages = pages;
    this.draws = ownDraws(pages * 12);
    const at = this.draws?.tablesAt ?? 0;
    this.cdf = this.draws !== null ? new Float64Array(this.draws.buffer, at, pages) : new Float64Array(pages);
    this.pageOfRank = this.draws !== null ? new Uint32Array(this.draws.buffer, at + pages * 8, pages) : new Uint32Array(pages);
    let sum = 0;
    for (let k = 0; k < pages; k++) {
      sum += 1 / (k + 1) ** exponent;
      this.cdf[k] = sum;
    }
    for (let k = 0; k < pages; k++) this.cdf[k] = this.cdf[k]! / sum;
    for (let k = 0; k < pages; k++) this.pageOfRank[k] = k;
    for (let k = pages - 1; k > 0; k--) {
      const j = rng.nextInt(k + 1);
      const t = this.pageOfRank[k]!;
      this.pageOfRank[k] = this.pageOfRank[j]!;
      this.pageOfRank[j] = t;
    }
  }
  fill(b: AccessBatch): number {
    const n = Math.min(b.capacity, this.total - this.done);
    const d = this.draws;
    if (d === null) return this.fillEach(b, n);
    // The same three draws an access as fillEach() takes, on the wasm core.
    d.fillZipf(this.rng, b, n, this.base, d.tablesAt, d.tablesAt + this.pages * 8, this.pages, this.writeRatio * 2 ** 32);
    this.done += n;
    return (b.n = n);
  }

  /** fill() one draw at a time (the reference; where the core's draws have no memory). */
  private fillEach(b: AccessBatch, n: number): number {
    const rng = this.rng;
    const cdf = this.cdf;
    const [read, write] = opsOf(b);
    for (let i = 0; i < n; i++) {
      const u = rng.nextFloat();
      let lo = 0;
      let hi = cdf.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cdf[mid]! < u) lo = mid + 1;
        else hi = mid;
      }
      b.addrs[i] = this.base + this.pageOfRank[lo]! * PAGE_SIZE + (rng.nextU32() & 0xff8);
      b.ops[i] = rng.nextFloat() < this.writeRatio ? write : read;
    }
    this.done += n;
    return (b.n = n);
  }
}

/** A stream's own draws, `tableBytes` of its tables (a Zipf CDF and ranks, a chase's links) in their memory; null where no memory that large can be had. */
function ownDraws(tableBytes: number): CoreDraws | null {
  try {
    return new CoreDraws(tableBytes);
  } catch {
    return null;
  }
}

/**
 * `pointerChase`: the region is split into nodes of `nodeSize` bytes linked in one random
 * cycle (a seeded Sattolo permutation); each access follows the link from the previous node,
 * as a linked-list or graph walk does: no spatial locality, every access dependent.
 */
export class PointerChaseStream implements AccessStream {
  readonly readsAndWrites = true;
  private done = 0;
  private node = 0;
  /** The link out of each node: in the draws' memory when the core draws, else a JS array. */
  private readonly next: Uint32Array;
  /** This stream's own draws on the wasm core (its memory holds the links); null: JS draws. */
  private readonly draws: CoreDraws | null;
  constructor(
    private readonly base: number,
    size: number,
    readonly total: number,
    private readonly nodeSize: number,
    private readonly writeRatio: number,
    private readonly rng: Prng,
  ) {
    const nodes = Math.max(1, Math.floor(size / nodeSize));
    if (nodes >= 2 ** 32) throw new RangeError("pointerChase: too many nodes");
    const order = new Uint32Array(nodes);
    for (let i = 0; i < nodes; i++) order[i] = i;
    // Sattolo's algorithm: a single cycle through every node.
    for (let i = nodes - 1; i > 0; i--) {
      const j = rng.nextInt(i);
      const t = order[i]!;
      order[i] = order[j]!;
      order[j] = t;
    }
    this.draws = ownDraws(nodes * 4);
    this.next = this.draws !== null ? new Uint32Array(this.draws.buffer, this.draws.tablesAt, nodes) : new Uint32Array(nodes);
    for (let i = 0; i < nodes; i++) this.next[order[i]!] = order[(i + 1) % nodes]!;
  }
  fill(b: AccessBatch): number {
    const n = Math.min(b.capacity, this.total - this.done);
    const d = this.draws;
    if (d === null) return this.fillEach(b, n);
    this.node = d.fillChase(this.rng, b, n, this.base, this.nodeSize, d.tablesAt, this.node, this.writeRatio);
    this.done += n;
    return (b.n = n);
  }

  /** fill() one draw at a time (the reference; where the core's draws have no memory). */
  private fillEach(b: AccessBatch, n: number): number {
    const [read, write] = opsOf(b);
    for (let i = 0; i < n; i++) {
      b.addrs[i] = this.base + this.node * this.nodeSize;
      b.ops[i] = this.writeRatio > 0 && this.rng.nextFloat() < this.writeRatio ? write : read;
      this.node = this.next[this.node]!;
    }
    this.done += n;
    return (b.n = n);
  }
}

/**
 * `phases`: `phases` working-set phases of `total / phases` accesses each; in each phase the
 * accesses are uniform over a window of `workingSet` bytes, and the window moves to another
 * (seeded) place in the region when the phase changes.
 */
export class PhasesStream implements AccessStream {
  readonly readsAndWrites = true;
  private done = 0;
  private windowBase = 0;
  private readonly perPhase: number;
  private readonly windowPages: number;
  private readonly regionPages: number;
  constructor(
    private readonly base: number,
    size: number,
    readonly total: number,
    workingSet: number,
    phases: number,
    private readonly writeRatio: number,
    private readonly rng: Prng,
  ) {
    this.regionPages = Math.max(1, Math.floor(size / PAGE_SIZE));
    this.windowPages = Math.max(1, Math.min(this.regionPages, Math.floor(workingSet / PAGE_SIZE)));
    this.perPhase = Math.max(1, Math.ceil(total / Math.max(1, phases)));
    this.moveWindow();
  }
  private moveWindow(): void {
    this.windowBase = this.rng.nextInt(this.regionPages - this.windowPages + 1);
  }
  /** Index of the current phase (0-based). */
  get phase(): number {
    return Math.floor(Math.max(0, this.done - 1) / this.perPhase);
  }
  fill(b: AccessBatch): number {
    const n = Math.min(b.capacity, this.total - this.done);
    const draws = drawsFor(b.core);
    if (draws === null || this.windowPages > 2 ** 32) return this.fillEach(b, n);
    // A phase's accesses are a uniform stream over its window: the core's draws, a call per phase.
    for (let at = 0; at < n; ) {
      if (this.done > 0 && this.done % this.perPhase === 0) this.moveWindow();
      const m = Math.min(n - at, this.perPhase - (this.done % this.perPhase));
      const base = this.base + this.windowBase * PAGE_SIZE;
      draws.fillUniform(this.rng, b, at, m, base, this.windowPages, this.writeRatio * 2 ** 32);
      at += m;
      this.done += m;
    }
    return (b.n = n);
  }

  /** fill() one draw at a time (the reference; without the core; windows of more than 2^32 pages). */
  private fillEach(b: AccessBatch, n: number): number {
    const rng = this.rng;
    const [read, write] = opsOf(b);
    for (let i = 0; i < n; i++) {
      if (this.done > 0 && this.done % this.perPhase === 0) this.moveWindow();
      const page = this.windowBase + rng.nextInt(this.windowPages);
      b.addrs[i] = this.base + page * PAGE_SIZE + (rng.nextU32() & 0xff8);
      b.ops[i] = rng.nextFloat() < this.writeRatio ? write : read;
      this.done++;
    }
    return (b.n = n);
  }
}

/** The bytes a read and a write store in `b.ops`. */
function opsOf(b: AccessBatch): [number, number] {
  return [b.kinds & 0xff, b.kinds >>> 8];
}
