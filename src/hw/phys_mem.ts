// SPDX-License-Identifier: MIT
// Physical memory: frames described struct-of-arrays. A frame used as a page table carries
// its 512 entries (1024 32-bit words, lo at 2*i, hi at 2*i+1) in a shared pool; any other
// frame carries a content tag, the 32-bit value last written to it, so data can be checked
// without 4 KiB of storage per page.
//
// Cost per frame: 4 bytes of content tag + 4 bytes of table-slot index = 8 bytes (64 GiB of
// simulated RAM: 16 Mi frames, 128 MiB), plus 4 KiB for each frame that holds a table.
// The table-slot index, the content tags and the word pool live in WebAssembly memory
// (wasm_memory.ts), shared with the wasm core (its batched data check reads and sets the
// content tags); wasm32 bounds them to 4 GiB together.

import { PAGE_SIZE } from "./addr.js";
import { CoreMemory } from "./wasm_memory.js";

export const WORDS_PER_TABLE = 1024;
/** Bytes of metadata one frame costs in PhysMem (content tag + table-slot index). */
export const BYTES_PER_FRAME = 8;
/** Largest simulated physical memory: 2^52 bytes is the architectural limit; 1 TiB keeps arrays sane. */
export const MAX_PHYS_BYTES = 2 ** 40;

export class PhysMem {
  readonly nframes: number;
  /** Content tag of each frame (the value last written); 0 for a zeroed page. A view of wasm memory, as `tableSlot`. */
  content!: Uint32Array;
  /** `content` read as signed 32-bit integers (the same bits; a hot loop's values stay small integers). */
  contentI32!: Int32Array;
  /** Byte address of `content` in wasm memory (-1 until the constructor has it). */
  readonly contentAt: number = -1;
  /**
   * 1 + the index of the frame's table storage in `words`, or 0 if the frame is not a table
   * (0 for "none" keeps a fresh array untouched, so a 64 GiB host costs nothing until used).
   * A view of wasm memory: re-read it after allocTable, as `words`.
   */
  tableSlot!: Int32Array;
  /** Table storage: slot s holds words [s*1024, s*1024+1024). Grows; re-read it after allocTable. */
  words!: Uint32Array;
  /** The WebAssembly memory `tableSlot` and `words` are views of. */
  readonly wasm: CoreMemory;
  private freeSlots: Int32Array;
  private nFreeSlots = 0;
  private slotsUsed = 0;
  /** Slots allocDataSlots() gave out: not tables. */
  private dataSlots = 0;

  constructor(bytes: number) {
    if (!Number.isInteger(bytes) || bytes < PAGE_SIZE || bytes % PAGE_SIZE !== 0) {
      throw new RangeError(`physical memory must be a positive multiple of 4 KiB, not ${bytes}`);
    }
    if (bytes > MAX_PHYS_BYTES) throw new RangeError(`physical memory above 1 TiB is not supported (${bytes} bytes)`);
    this.nframes = bytes / PAGE_SIZE;
    this.wasm = new CoreMemory(this.nframes, 64 * WORDS_PER_TABLE);
    this.wasm.addViewsListener(() => this.takeViews());
    this.contentAt = this.wasm.alloc(this.nframes * 4);
    this.takeViews();
    this.freeSlots = new Int32Array(64);
  }

  private takeViews(): void {
    const w = this.wasm;
    this.tableSlot = new Int32Array(w.memory.buffer, w.slotsBase, this.nframes);
    // Before contentAt is set (the constructor's own alloc), there is no content yet.
    if (this.contentAt >= 0) {
      this.content = new Uint32Array(w.memory.buffer, this.contentAt, this.nframes);
      this.contentI32 = new Int32Array(w.memory.buffer, this.contentAt, this.nframes);
    }
    this.words = new Uint32Array(w.memory.buffer, w.wordsBase, w.wordsLength);
  }

  get bytes(): number {
    return this.nframes * PAGE_SIZE;
  }

  /** Number of frames that currently hold a table. */
  get tablePages(): number {
    return this.slotsUsed - this.nFreeSlots - this.dataSlots;
  }

  /**
   * n contiguous zeroed slots at the top of the pool for data the core reads beside the tables
   * (the data check's leaves), never freed (their owner reuses them): the first one's number.
   * A RangeError, changing nothing, when they do not fit wasm32's 4 GiB.
   */
  allocDataSlots(n: number): number {
    const first = this.slotsUsed;
    const need = (first + n) * WORDS_PER_TABLE;
    if (need > this.words.length) {
      try {
        this.wasm.growWords(Math.max(need, this.words.length * 2));
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        this.wasm.growWords(need);
      }
    }
    this.words.fill(0, first * WORDS_PER_TABLE, need);
    this.slotsUsed += n;
    this.dataSlots += n;
    return first;
  }

  /** Byte address of slot s in wasm memory: it moves with the pool (take it again when the memory's views change). */
  slotAddress(s: number): number {
    return this.wasm.wordsBase + s * WORDS_PER_TABLE * 4;
  }

  isTable(pfn: number): boolean {
    return this.tableSlot[pfn]! > 0;
  }

  /** Gives frame `pfn` zeroed table storage (the frame becomes a page table). */
  allocTable(pfn: number): void {
    if (this.tableSlot[pfn]! > 0) throw new Error(`frame 0x${pfn.toString(16)} is already a table`);
    let slot: number;
    if (this.nFreeSlots > 0) {
      slot = this.freeSlots[--this.nFreeSlots]!;
    } else {
      slot = this.slotsUsed++;
      if (this.slotsUsed * WORDS_PER_TABLE > this.words.length) this.wasm.growWords(this.words.length * 2);
    }
    // A slot past slotsUsed may still hold words from before a restore(): always zero it.
    this.words.fill(0, slot * WORDS_PER_TABLE, (slot + 1) * WORDS_PER_TABLE);
    this.tableSlot[pfn] = slot + 1;
    this.content[pfn] = 0;
  }

  /** Releases the table storage of `pfn`; the frame becomes a plain zeroed page. */
  freeTable(pfn: number): void {
    const slot = this.tableSlot[pfn]! - 1;
    if (slot < 0) throw new Error(`frame 0x${pfn.toString(16)} is not a table`);
    this.tableSlot[pfn] = 0;
    if (this.nFreeSlots === this.freeSlots.length) {
      const grown = new Int32Array(this.freeSlots.length * 2);
      grown.set(this.freeSlots);
      this.freeSlots = grown;
    }
    this.freeSlots[this.nFreeSlots++] = slot;
  }

  /** Word offset of entry `idx` of table frame `pfn` (lo at the offset, hi at offset+1). */
  entryOffset(pfn: number, idx: number): number {
    const slot = this.tableSlot[pfn]! - 1;
    if (slot < 0) throw new Error(`frame 0x${pfn.toString(16)} is not a table`);
    return slot * WORDS_PER_TABLE + 2 * idx;
  }

  readLo(pfn: number, idx: number): number {
    return this.words[this.entryOffset(pfn, idx)]!;
  }

  readHi(pfn: number, idx: number): number {
    return this.words[this.entryOffset(pfn, idx) + 1]!;
  }

  /** Raw write of one entry. Table owners wrap this in their single writer function. */
  writeEntry(pfn: number, idx: number, lo: number, hi: number): void {
    const off = this.entryOffset(pfn, idx);
    this.words[off] = lo;
    this.words[off + 1] = hi;
  }

  /** A copy of a table's 1024 words (for swap-out of a page that holds a table). */
  copyTable(pfn: number): Uint32Array {
    const off = this.entryOffset(pfn, 0);
    return this.words.slice(off, off + WORDS_PER_TABLE);
  }

  /** Makes `pfn` a table holding `words` (swap-in of a page that held a table). */
  loadTable(pfn: number, words: Uint32Array): void {
    if (this.tableSlot[pfn]! <= 0) this.allocTable(pfn);
    this.words.set(words, this.entryOffset(pfn, 0));
  }

  /** Zeroes a frame: content tag 0, and no table storage (clear_page). */
  zeroFrame(pfn: number): void {
    if (this.tableSlot[pfn]! > 0) this.freeTable(pfn);
    this.content[pfn] = 0;
  }

  /** Copies a frame's content (and table words, if any) to another frame (copy_page). */
  copyFrame(dst: number, src: number): void {
    if (this.tableSlot[src]! > 0) this.loadTable(dst, this.copyTable(src));
    else if (this.tableSlot[dst]! > 0) this.freeTable(dst);
    this.content[dst] = this.content[src]!;
  }

  snapshot(): PhysMemSnapshot {
    return {
      content: this.content.slice(),
      tableSlot: this.tableSlot.slice(),
      words: this.words.slice(0, this.slotsUsed * WORDS_PER_TABLE),
      freeSlots: this.freeSlots.slice(0, this.nFreeSlots),
    };
  }

  restore(s: PhysMemSnapshot): void {
    if (s.content.length !== this.nframes) throw new Error("snapshot of a different memory size");
    this.content.set(s.content);
    this.tableSlot.set(s.tableSlot);
    this.slotsUsed = s.words.length / WORDS_PER_TABLE;
    this.wasm.growWords(s.words.length);
    this.words.set(s.words);
    this.freeSlots = new Int32Array(Math.max(64, s.freeSlots.length));
    this.freeSlots.set(s.freeSlots);
    this.nFreeSlots = s.freeSlots.length;
  }
}

export interface PhysMemSnapshot {
  content: Uint32Array;
  tableSlot: Int32Array;
  words: Uint32Array;
  freeSlots: Int32Array;
}

/** Where frames come from. The host's page allocator implements it; tests use BumpFrameAllocator. */
export interface FrameAllocator {
  /** A free frame, or -1 if none is left. */
  allocFrame(): number;
  freeFrame(pfn: number): void;
}

/** A trivial allocator: frames in order from `first`, freed frames reused. For tests and demos. */
export class BumpFrameAllocator implements FrameAllocator {
  private next: number;
  private free: number[] = [];
  constructor(
    private readonly mem: PhysMem,
    first = 1,
  ) {
    this.next = first;
  }
  allocFrame(): number {
    const f = this.free.pop();
    if (f !== undefined) return f;
    if (this.next >= this.mem.nframes) return -1;
    return this.next++;
  }
  /** `n` contiguous frames aligned to `n` (n a power of two), or -1. Never reuses freed frames. */
  allocContiguous(n: number): number {
    const start = Math.ceil(this.next / n) * n;
    if (start + n > this.mem.nframes) return -1;
    for (let f = this.next; f < start; f++) this.free.push(f);
    this.next = start + n;
    return start;
  }
  freeFrame(pfn: number): void {
    this.free.push(pfn);
  }
}
