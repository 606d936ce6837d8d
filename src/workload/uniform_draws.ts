// SPDX-License-Identifier: MIT
// RandomStream's and PhasesStream's draws on the wasm core (src/hw/asm/uniform_draws.ts), on a memory of their own:
// the Prng's state goes in, n accesses come out, the state comes back. One instance serves every
// stream (they take turns; a call leaves nothing behind).

import { WASM, WasmCore } from "../hw/wasm_core.js";
import type { Prng } from "./prng.js";

/** Accesses per call into the core (the memory holds this many). */
const CHUNK = 4096;
/** Page 0 is the core's own (its stack); the state, then the addresses and ops, from page 1. */
const STATE = 65536;
const ADDRS = STATE + 64;
const OPS = ADDRS + CHUNK * 8;

export class UniformDraws {
  private readonly core: WasmCore;
  private readonly state: Int32Array;
  private readonly addrs: Float64Array;
  private readonly ops: Uint8Array;

  constructor() {
    const memory = new WASM.Memory({ initial: 2, maximum: 2 });
    this.core = new WasmCore(memory);
    this.state = new Int32Array(memory.buffer, STATE, 4);
    this.addrs = new Float64Array(memory.buffer, ADDRS, CHUNK);
    this.ops = new Uint8Array(memory.buffer, OPS, CHUNK);
  }

  /**
   * n accesses of a uniform stream over `pages` pages from `base` into addrs/ops from index
   * `from` (OP_WRITE 1, OP_READ 0), three draws of `rng` each: as n rounds of nextInt(pages),
   * nextU32(), nextFloat().
   */
  fill(rng: Prng, addrs: Float64Array, ops: Uint8Array, from: number, n: number, base: number, pages: number, writeBelow: number): void {
    rng.getState(this.state);
    for (let at = 0; at < n; at += CHUNK) {
      const m = Math.min(CHUNK, n - at);
      this.core.fn.fillUniform(STATE, ADDRS, OPS, m, base, pages, writeBelow);
      addrs.set(this.addrs.subarray(0, m), from + at);
      ops.set(this.ops.subarray(0, m), from + at);
    }
    rng.setState(this.state);
  }
}

let shared: UniformDraws | null | undefined;

/**
 * The instance every RandomStream uses, made on first use; null where the engine would not give
 * it a memory (a browser out of address space for wasm memories), and the stream then draws in
 * JS: the same numbers, slower.
 */
export function uniformDraws(): UniformDraws | null {
  if (shared === undefined) {
    try {
      shared = new UniformDraws();
    } catch {
      shared = null;
    }
  }
  return shared;
}
