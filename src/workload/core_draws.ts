// SPDX-License-Identifier: MIT
// The streams' draws on the wasm core (src/hw/asm/draws.ts): the Prng's state (and a strided
// stream's offset or a chase's node) goes in, n accesses come out, the state comes back. Filling a
// vCPU's batch in a host's core memory, a `random`, `phases` or `sequential` stream draws on that
// memory's core, straight into the batch the translation reads (drawsFor); filling a JS batch,
// on one shared instance with a memory of its own, copied out (they take turns; a call leaves
// nothing behind). A `zipf` stream has its own instance, whose memory also holds its CDF and
// rank -> page table, and a `pointerChase` stream its own, with its links: they copy out always.

import { WASM, WasmCore, type WasmMemory } from "../hw/wasm_core.js";
import type { CoreMemory } from "../hw/wasm_memory.js";
import type { Prng } from "./prng.js";

/** Accesses per call into the core (an own memory's scratch holds this many). */
const CHUNK = 4096;
const WASM_PAGE = 65536;
/** Page 0 is the core's own (its stack); the state, then the addresses and ops, from page 1; then the tables. */
const STATE = 65536;
const STATE_BYTES = 64;
const ADDRS = STATE + STATE_BYTES;
const OPS = ADDRS + CHUNK * 8;
const TABLES = OPS + CHUNK;
/** wasm32's 4 GiB. */
const MAX_BYTES = 2 ** 32;

/** The arrays a fill writes: the batch's (AccessBatch in stream.ts), `kinds` the byte a read stores in `ops` (bits 7:0) and a write's (15:8). */
export interface DrawTarget {
  readonly addrs: Float64Array;
  readonly ops: Uint8Array;
  readonly kinds: number;
}

export class CoreDraws {
  private readonly core: WasmCore;
  private readonly memory: WasmMemory;
  private readonly stateAt: number;
  /** Whether the memory is this instance's own, with a scratch area the core draws into before the copy out. */
  private readonly scratch: boolean;
  private viewed: ArrayBuffer | null = null;
  private state = new Int32Array(0);
  /** The state area as f64: a strided stream's offset or a chase's node at [2]. */
  private stateF64 = new Float64Array(0);
  private addrs = new Float64Array(0);
  private ops = new Uint8Array(0);
  /** Byte address of the tables (own memory only). */
  readonly tablesAt = TABLES;

  /**
   * Draws on a memory of its own with `tableBytes` for the caller's tables (throws where the
   * engine gives no such memory), or, with `on`, on that core memory, into batches that are
   * views of it: the core then writes the accesses where the translation reads them, no copy.
   */
  constructor(tableBytes = 0, on: CoreMemory | null = null) {
    if (on !== null) {
      this.memory = on.memory;
      this.core = on.core();
      this.stateAt = on.alloc(STATE_BYTES);
      this.scratch = false;
      return;
    }
    if (TABLES + tableBytes > MAX_BYTES) throw new RangeError(`${tableBytes} bytes of tables do not fit a wasm memory`);
    const pages = Math.ceil((TABLES + tableBytes) / WASM_PAGE);
    this.memory = new WASM.Memory({ initial: pages, maximum: pages });
    this.core = new WasmCore(this.memory);
    this.stateAt = STATE;
    this.scratch = true;
  }

  /** The buffer of this instance's memory, for views of the tables. */
  get buffer(): ArrayBuffer {
    return this.memory.buffer;
  }

  /**
   * n accesses of a uniform stream over `pages` pages from `base` into the target from index
   * `from`, three draws of `rng` each: as n rounds of nextInt(pages), nextU32(), nextFloat().
   */
  fillUniform(rng: Prng, t: DrawTarget, from: number, n: number, base: number, pages: number, writeBelow: number): void {
    const fn = this.core.fn;
    const st = this.stateAt;
    this.draw(rng, t, from, n, (a, o, m) => fn.fillUniform(st, a, o, m, base, pages, writeBelow, t.kinds));
  }

  /**
   * n accesses of a Zipf stream into the target: as n rounds of nextFloat() (the rank: the first
   * whose CDF entry is not below it), nextU32(), nextFloat(). The CDF (f64) is at cdfAt and
   * the rank -> page table (u32) at ranksAt in this memory, `pages` entries each.
   */
  fillZipf(rng: Prng, t: DrawTarget, n: number, base: number, cdfAt: number, ranksAt: number, pages: number, writeBelow: number): void {
    const fn = this.core.fn;
    const st = this.stateAt;
    this.draw(rng, t, 0, n, (a, o, m) => fn.fillZipf(st, a, o, m, base, cdfAt, ranksAt, pages, writeBelow, t.kinds));
  }

  /**
   * n accesses of a strided stream from offset `off` into the target: as SequentialStream.fill(),
   * a nextFloat() each only if writeRatio > 0. Returns the offset after them.
   */
  fillSequential(rng: Prng, t: DrawTarget, n: number, base: number, size: number, stride: number, off: number, writeRatio: number): number {
    const fn = this.core.fn;
    const st = this.stateAt;
    const draw = writeRatio > 0 ? 1 : 0;
    return this.carried(rng, t, n, off, (a, o, m) =>
      fn.fillSequential(st, a, o, m, base, size, stride, draw, writeRatio * 2 ** 32, t.kinds),
    );
  }

  /**
   * n accesses of a pointer chase from `node` into the target: as PointerChaseStream.fill(), the
   * links (u32) at nextAt in this memory. Returns the node after them.
   */
  fillChase(rng: Prng, t: DrawTarget, n: number, base: number, nodeSize: number, nextAt: number, node: number, writeRatio: number): number {
    const fn = this.core.fn;
    const st = this.stateAt;
    const draw = writeRatio > 0 ? 1 : 0;
    return this.carried(rng, t, n, node, (a, o, m) =>
      fn.fillChase(st, a, o, m, base, nodeSize, nextAt, draw, writeRatio * 2 ** 32, t.kinds),
    );
  }

  /** draw() for a stream whose position (an offset, a node) the core carries in the state from call to call; returns it after. */
  private carried(rng: Prng, t: DrawTarget, n: number, at: number, fill: (addrsAt: number, opsAt: number, m: number) => void): number {
    this.takeViews();
    this.stateF64[2] = at;
    this.draw(rng, t, 0, n, fill);
    return this.stateF64[2]!;
  }

  /**
   * rng's state in; `fill(addrsAt, opsAt, m)` into the target's arrays where they are views of
   * this memory, else for each chunk of at most CHUNK accesses into the scratch, copied out to
   * the target from `from` on; the state out.
   */
  private draw(rng: Prng, t: DrawTarget, from: number, n: number, fill: (addrsAt: number, opsAt: number, m: number) => void): void {
    this.takeViews();
    rng.getState(this.state);
    const buffer = this.memory.buffer;
    if (t.addrs.buffer === buffer && t.ops.buffer === buffer) {
      if (from + n > t.addrs.length || from + n > t.ops.length)
        throw new RangeError(`${n} accesses from ${from} overrun a batch of ${t.addrs.length}`);
      fill(t.addrs.byteOffset + from * 8, t.ops.byteOffset + from, n);
    } else {
      if (!this.scratch) throw new Error("draws on a core memory fill only batches in that memory");
      for (let at = 0; at < n; at += CHUNK) {
        const m = Math.min(CHUNK, n - at);
        fill(ADDRS, OPS, m);
        t.addrs.set(this.addrs.subarray(0, m), from + at);
        t.ops.set(this.ops.subarray(0, m), from + at);
      }
    }
    rng.setState(this.state);
  }

  /** Views of the state (and scratch) again when the memory has grown (a core memory grows under its tables). */
  private takeViews(): void {
    const b = this.memory.buffer;
    if (b === this.viewed) return;
    this.viewed = b;
    this.state = new Int32Array(b, this.stateAt, 4);
    this.stateF64 = new Float64Array(b, this.stateAt, 8);
    if (this.scratch) {
      this.addrs = new Float64Array(b, ADDRS, CHUNK);
      this.ops = new Uint8Array(b, OPS, CHUNK);
    }
  }
}

let shared: CoreDraws | null | undefined;
const onMemory = new WeakMap<CoreMemory, CoreDraws>();

/**
 * The instance every `random`, `phases` and `sequential` stream uses, made on first use; null where the
 * engine would not give it a memory (a browser out of address space for wasm memories), and the
 * stream then draws in JS: the same numbers, slower.
 */
export function sharedDraws(): CoreDraws | null {
  if (shared === undefined) {
    try {
      shared = new CoreDraws();
    } catch {
      shared = null;
    }
  }
  return shared;
}

/**
 * The draws for a stream without tables filling a batch in `core` (a vCPU's, sim/access_batch.ts):
 * on that memory's core, in place; for a batch of JS arrays (`core` null), sharedDraws().
 */
export function drawsFor(core: CoreMemory | null): CoreDraws | null {
  if (core === null) return sharedDraws();
  let d = onMemory.get(core);
  if (d === undefined) {
    d = new CoreDraws(0, core);
    onMemory.set(core, d);
  }
  return d;
}
