// SPDX-License-Identifier: MIT
// The streams' draws on the wasm core (src/hw/asm/draws.ts), on a memory of their own: the Prng's
// state (and a strided stream's offset, a chase's node) goes in, n accesses come out, the state
// comes back. One shared instance serves every `random`, `phases` and `sequential` stream (they
// take turns; a call leaves nothing behind); a `zipf` stream has its own, whose memory also holds
// its CDF and rank -> page table, and a `pointerChase` stream its own, with its links.

import { WASM, WasmCore } from "../hw/wasm_core.js";
import type { Prng } from "./prng.js";

/** Accesses per call into the core (the memory holds this many). */
const CHUNK = 4096;
const WASM_PAGE = 65536;
/** Page 0 is the core's own (its stack); the state, then the addresses and ops, from page 1; then the tables. */
const STATE = 65536;
const ADDRS = STATE + 64;
const OPS = ADDRS + CHUNK * 8;
const TABLES = OPS + CHUNK;
/** wasm32's 4 GiB. */
const MAX_BYTES = 2 ** 32;

export class CoreDraws {
  private readonly core: WasmCore;
  private readonly state: Int32Array;
  /** The state area as f64 (a strided stream's offset at [2]) and u32 (a chase's node at [6]). */
  private readonly stateF64: Float64Array;
  private readonly stateU32: Uint32Array;
  private readonly addrs: Float64Array;
  private readonly ops: Uint8Array;
  /** The buffer of this instance's memory, for views of the tables. */
  readonly buffer: ArrayBuffer;
  /** Byte address of the tables. */
  readonly tablesAt = TABLES;

  /** A memory with `tableBytes` for the caller's tables; throws where the engine gives no such memory. */
  constructor(tableBytes = 0) {
    if (TABLES + tableBytes > MAX_BYTES) throw new RangeError(`${tableBytes} bytes of tables do not fit a wasm memory`);
    const pages = Math.ceil((TABLES + tableBytes) / WASM_PAGE);
    const memory = new WASM.Memory({ initial: pages, maximum: pages });
    this.core = new WasmCore(memory);
    this.buffer = memory.buffer;
    this.state = new Int32Array(memory.buffer, STATE, 4);
    this.stateF64 = new Float64Array(memory.buffer, STATE, 8);
    this.stateU32 = new Uint32Array(memory.buffer, STATE, 16);
    this.addrs = new Float64Array(memory.buffer, ADDRS, CHUNK);
    this.ops = new Uint8Array(memory.buffer, OPS, CHUNK);
  }

  /**
   * n accesses of a uniform stream over `pages` pages from `base` into addrs/ops from index
   * `from` (OP_WRITE 1, OP_READ 0), three draws of `rng` each: as n rounds of nextInt(pages),
   * nextU32(), nextFloat().
   */
  fillUniform(
    rng: Prng,
    addrs: Float64Array,
    ops: Uint8Array,
    from: number,
    n: number,
    base: number,
    pages: number,
    writeBelow: number,
  ): void {
    const fn = this.core.fn;
    this.draw(rng, addrs, ops, from, n, (m) => fn.fillUniform(STATE, ADDRS, OPS, m, base, pages, writeBelow));
  }

  /**
   * n accesses of a Zipf stream into addrs/ops: as n rounds of nextFloat() (the rank: the first
   * whose CDF entry is not below it), nextU32(), nextFloat(). The CDF (f64) is at cdfAt and
   * the rank -> page table (u32) at ranksAt in this memory, `pages` entries each.
   */
  fillZipf(
    rng: Prng,
    addrs: Float64Array,
    ops: Uint8Array,
    n: number,
    base: number,
    cdfAt: number,
    ranksAt: number,
    pages: number,
    writeBelow: number,
  ): void {
    const fn = this.core.fn;
    this.draw(rng, addrs, ops, 0, n, (m) => fn.fillZipf(STATE, ADDRS, OPS, m, base, cdfAt, ranksAt, pages, writeBelow));
  }

  /**
   * n accesses of a strided stream from offset `off` into addrs/ops: as SequentialStream.fill(),
   * a nextFloat() each only if writeRatio > 0. Returns the offset after them.
   */
  fillSequential(
    rng: Prng,
    addrs: Float64Array,
    ops: Uint8Array,
    n: number,
    base: number,
    size: number,
    stride: number,
    off: number,
    writeRatio: number,
  ): number {
    const fn = this.core.fn;
    const draw = writeRatio > 0 ? 1 : 0;
    this.stateF64[2] = off;
    this.draw(rng, addrs, ops, 0, n, (m) => fn.fillSequential(STATE, ADDRS, OPS, m, base, size, stride, draw, writeRatio * 2 ** 32));
    return this.stateF64[2]!;
  }

  /**
   * n accesses of a pointer chase from `node` into addrs/ops: as PointerChaseStream.fill(), the
   * links (u32) at nextAt in this memory. Returns the node after them.
   */
  fillChase(
    rng: Prng,
    addrs: Float64Array,
    ops: Uint8Array,
    n: number,
    base: number,
    nodeSize: number,
    nextAt: number,
    node: number,
    writeRatio: number,
  ): number {
    const fn = this.core.fn;
    const draw = writeRatio > 0 ? 1 : 0;
    this.stateU32[6] = node;
    this.draw(rng, addrs, ops, 0, n, (m) => fn.fillChase(STATE, ADDRS, OPS, m, base, nodeSize, nextAt, draw, writeRatio * 2 ** 32));
    return this.stateU32[6]!;
  }

  /** rng's state in; `fill(m)` for each chunk of at most CHUNK accesses, copied into addrs/ops from `from` on; the state out. */
  private draw(rng: Prng, addrs: Float64Array, ops: Uint8Array, from: number, n: number, fill: (m: number) => void): void {
    rng.getState(this.state);
    for (let at = 0; at < n; at += CHUNK) {
      const m = Math.min(CHUNK, n - at);
      fill(m);
      addrs.set(this.addrs.subarray(0, m), from + at);
      ops.set(this.ops.subarray(0, m), from + at);
    }
    rng.setState(this.state);
  }
}

let shared: CoreDraws | null | undefined;

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
