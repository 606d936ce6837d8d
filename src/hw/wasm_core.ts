// SPDX-License-Identifier: MIT
// The WebAssembly translation core (src/hw/asm/, built into wasm_core_bin.ts), compiled and
// instantiated per PhysMem memory that an MMU runs on, synchronously and with no Node module:
// the same code runs in Node, in a browser and in the visualizer's Web Worker.

import { WASM_CORE_BASE64 } from "./wasm_core_bin.js";

/** The part of the WebAssembly JS API used here (the core's tsconfig has neither DOM nor Node types). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
}
export const WASM = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The core's entry points; addresses are byte offsets in its memory. See src/hw/asm/index.ts. */
export interface CoreFunctions {
  setPhysMem(slots: number, frames: number, words: number): void;
  heapBase(): number;
  cacheBytes(sets: number, ways: number): number;
  cacheInit(p: number, sets: number, ways: number): void;
  invalidateKey(cache: number, key: number, mode: number, ctx: number, pcid: number): number;
  invalidateWhere(cache: number, mode: number, ctx: number, pcid: number): number;
  countValid(cache: number, mode: number, ctx: number, pcid: number): number;
  computeTlbPerms(s: number): void;
  access(s: number, gva: number, acc: number): number;
  probe(s: number, gva: number, acc: number): number;
  accessPhys(s: number, gpa: number, acc: number): number;
  probePhys(s: number, gpa: number, acc: number): number;
  accessBatch(s: number, gvas: number, accs: number, hpas: number, gpas: number, n: number): number;
  /** `kinds`: the byte a read stores in `ops` (bits 7:0) and a write's (bits 15:8). */
  fillUniform(state: number, addrs: number, ops: number, n: number, base: number, pages: number, writeBelow: number, kinds: number): void;
  fillZipf(
    state: number,
    addrs: number,
    ops: number,
    n: number,
    base: number,
    cdf: number,
    ranks: number,
    pages: number,
    writeBelow: number,
    kinds: number,
  ): void;
  fillSequential(
    state: number,
    addrs: number,
    ops: number,
    n: number,
    base: number,
    size: number,
    stride: number,
    draw: number,
    writeBelow: number,
    kinds: number,
  ): void;
  fillChase(
    state: number,
    addrs: number,
    ops: number,
    n: number,
    base: number,
    nodeSize: number,
    next: number,
    draw: number,
    writeBelow: number,
    kinds: number,
  ): void;
  dataCheckRun(
    st: number,
    gvas: number,
    accs: number,
    hpas: number,
    gpas: number,
    n: number,
    content: number,
    flags: number,
    freeMask: number,
    written: number,
    expected: number,
    writes: number,
  ): number;
}

function decodeBase64(b64: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const digit = new Uint8Array(128);
  for (let i = 0; i < 64; i++) digit[alphabet.charCodeAt(i)] = i;
  const body = b64.replace(/=+$/, "");
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let bits = 0;
  let n = 0;
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    bits = (bits << 6) | digit[body.charCodeAt(i)]!;
    n += 6;
    if (n >= 8) {
      n -= 8;
      out[o++] = (bits >>> n) & 0xff;
    }
  }
  return out;
}

/** The core's bytes (what tools/build-wasm.mjs compiled). */
export const WASM_CORE_BYTES = decodeBase64(WASM_CORE_BASE64);

let compiled: object | null = null;

/** One instance of the core on one memory: its functions and the layout constants it exports. */
export class WasmCore {
  readonly fn: CoreFunctions;
  private readonly globals: Record<string, unknown>;

  constructor(memory: WasmMemory) {
    // Compiled on first use, not when this file loads, so a page that never runs the core never
    // compiles it; then every instance (a host's memory, a twin's, the stream draws') shares it.
    compiled ??= new WASM.Module(WASM_CORE_BYTES);
    const exports = new WASM.Instance(compiled, { env: { memory } }).exports;
    this.fn = exports as unknown as CoreFunctions;
    this.globals = exports;
  }

  /** A layout constant of src/hw/asm/index.ts (a byte offset or size), by its exported name. */
  constant(name: string): number {
    const g = this.globals[name] as { value: number } | undefined;
    if (g === undefined || typeof g.value !== "number") throw new Error(`the wasm core exports no constant ${name}`);
    return g.value;
  }
}
