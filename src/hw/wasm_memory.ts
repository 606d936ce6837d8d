// SPDX-License-Identifier: MIT
// The WebAssembly memory a PhysMem keeps its table storage in, so the translation core
// (wasm_core.ts) reads and sets the same entry words the JS walkers and KVM do.
//
//   0 ........ 64 KiB | table-slot index     | MMU states (fixed) | table word pool (grows) |
//   the core's own    | i32 per frame        | arena, grown by    | at the top: grows in    |
//   data (none today) |                      | moving the pool up | place, never copied     |
//
// wasm32 addresses 4 GiB: 4 bytes per frame of index, each MMU state, and 4 KiB per table must
// fit. A 64 GiB host (64 MiB of index) then holds about a million tables, which map 2 TiB with
// 4 KiB pages; PhysMem's 1 TiB maximum (1 GiB of index) leaves room for 786,000.
// Growing the memory replaces its ArrayBuffer (and an MMU state allocated moves the pool): the
// views here are re-taken and each listener added with addViewsListener() re-takes its own
// (PhysMem's table words and content tags, the page flags, the checker's pages); a view kept
// across a growth reads as empty.

import { WASM, WasmCore, type WasmMemory } from "./wasm_core.js";

const WASM_PAGE = 65536;
/** wasm32: 65,536 pages of 64 KiB. */
export const WASM_MAX_BYTES = 2 ** 32;
/** Bytes below the table-slot index left to the core's own data. */
export const CORE_RESERVED_BYTES = 65536;

const align8 = (n: number) => Math.ceil(n / 8) * 8;

export class CoreMemory {
  readonly memory: WasmMemory;
  u8!: Uint8Array;
  i32!: Int32Array;
  u32!: Uint32Array;
  f64!: Float64Array;
  readonly slotsBase = CORE_RESERVED_BYTES;
  /** Byte offset and length in words of the table word pool. */
  wordsBase: number;
  wordsLength: number;
  private arenaNext: number;
  private instance: WasmCore | null = null;
  private readonly listeners: (() => void)[] = [];

  constructor(
    readonly nframes: number,
    words: number,
  ) {
    this.arenaNext = align8(this.slotsBase + nframes * 4);
    this.wordsBase = this.arenaNext;
    this.wordsLength = words;
    const bytes = this.checkedEnd(words * 4);
    this.memory = new WASM.Memory({ initial: Math.ceil(bytes / WASM_PAGE), maximum: WASM_MAX_BYTES / WASM_PAGE });
    this.takeViews();
  }

  /** The core instantiated on this memory (made on first use: a PhysMem no wasm MMU uses never pays for one). */
  core(): WasmCore {
    if (this.instance === null) {
      this.instance = new WasmCore(this.memory);
      if (this.instance.fn.heapBase() > CORE_RESERVED_BYTES) throw new Error("the wasm core's data outgrew its reserved 64 KiB");
      this.tellCore();
    }
    return this.instance;
  }

  /** Calls `fn` after every change of the memory's buffer (its views are then empty), until the function returned is called. */
  addViewsListener(fn: () => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /**
   * Zeroed, 8-aligned memory that never moves (an MMU's state, content tags, the checker's
   * pages); the word pool moves up to make room. Throws a RangeError, changing nothing, when
   * it does not fit wasm32's 4 GiB.
   */
  alloc(bytes: number): number {
    const p = this.arenaNext;
    const end = align8(p + bytes);
    if (end > this.wordsBase) {
      if (end + this.wordsLength * 4 > WASM_MAX_BYTES)
        throw new RangeError(
          `${bytes} bytes more of MMU state, content tags or page flags do not fit wasm32's 4 GiB beside ` +
            `${this.nframes} frames' table-slot index (${Math.round((this.nframes * 4) / 2 ** 20)} MiB) and ` +
            `${this.wordsLength / 1024} tables' storage: simulate less host memory or touch fewer guest pages`,
        );
      // The arena at least doubles each time (the pool is copied once per doubling), short of the 4 GiB.
      const room = Math.floor((WASM_MAX_BYTES - this.wordsLength * 4 - this.wordsBase) / 8) * 8;
      const shift = Math.min(room, align8(Math.max(end - this.wordsBase, this.wordsBase - this.slotsBase - this.nframes * 4, 65536)));
      this.ensure(this.wordsBase + shift + this.wordsLength * 4);
      this.u32.copyWithin((this.wordsBase + shift) / 4, this.wordsBase / 4, this.wordsBase / 4 + this.wordsLength);
      // Only what the pool held is not zero: above it the memory was never written (so a large alloc commits no pages).
      this.u8.fill(0, this.wordsBase, this.wordsBase + Math.min(shift, this.wordsLength * 4));
      this.wordsBase += shift;
      this.viewsChanged();
      this.tellCore();
    }
    this.arenaNext = end;
    return p;
  }

  /** Makes the word pool `words` long (it only grows); new words are zero. */
  growWords(words: number): void {
    if (words <= this.wordsLength) return;
    this.ensure(this.wordsBase + words * 4);
    this.wordsLength = words;
    this.viewsChanged();
  }

  private viewsChanged(): void {
    for (const fn of this.listeners) fn();
  }

  private checkedEnd(wordBytes: number): number {
    const end = this.wordsBase + wordBytes;
    if (end > WASM_MAX_BYTES) {
      const index = this.nframes * 4;
      const fit = Math.floor((WASM_MAX_BYTES - this.wordsBase) / 4096);
      throw new RangeError(
        `table storage of ${wordBytes / 4096} tables does not fit wasm32's 4 GiB: with ${this.nframes} frames ` +
          `(${Math.round(index / 2 ** 20)} MiB of table-slot index), their content tags, page flags and the MMU states ` +
          `(${Math.round((this.wordsBase - this.slotsBase - index) / 2 ** 20)} MiB), at most ${fit} tables fit ` +
          `(a data-check leaf takes 4: simulate less host memory or touch fewer guest pages)`,
      );
    }
    return end;
  }

  private ensure(end: number): void {
    this.checkedEnd(end - this.wordsBase);
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    // Grow by at least an eighth, so a pool growing in small steps is not re-mapped each time.
    const want = Math.min(Math.max(end, have + have / 8), WASM_MAX_BYTES);
    try {
      this.memory.grow(Math.ceil((want - have) / WASM_PAGE));
    } catch (e) {
      throw new RangeError(`the engine refused to grow wasm memory from ${have} to ${want} bytes: ${(e as Error).message}`);
    }
    this.takeViews();
  }

  private takeViews(): void {
    const b = this.memory.buffer;
    this.u8 = new Uint8Array(b);
    this.i32 = new Int32Array(b);
    this.u32 = new Uint32Array(b);
    this.f64 = new Float64Array(b);
  }

  private tellCore(): void {
    this.instance?.fn.setPhysMem(this.slotsBase, this.nframes, this.wordsBase);
  }
}
