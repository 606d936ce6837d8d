// SPDX-License-Identifier: MIT
// A sparse array of 32-bit values indexed by a whole number below a limit fixed at
// construction (at most 2^53): a radix tree of directory nodes over fixed-size leaves, each leaf
// an Int32Array committed on the first nonzero write. Entries never written read 0. No hardware
// in it: a store for the checkers above (sim/checker.ts's per-page expectations, the host mm
// invariants' swap-slot counts), 4 bytes an entry, no object or heap-number key per entry.
//
//   index:   | top dir bits | ... | DIR_BITS (11) | LEAF_BITS (12) |
//              root node            last dir level    entry in a leaf
//
// Directory nodes are DIR_SIZE Int32 entries each, packed in one pool (node 0 is the root). An
// entry of an inner level holds its child node's number, one of the last level a leaf's
// number + 1; 0 means nothing committed below. get() and set() remember the last CACHE_SIZE
// leaves they reached (direct-mapped by leaf number), so accesses to those walk no directory.
// Leaves are Int32Arrays: getI32()/setI32() let a hot loop keep values as small integers
// (no heap numbers); get() gives the unsigned value.
// Given CoreLeaves, the leaves are slots of a PhysMem's table pool (4 slots a leaf: it grows in
// place, so they cost no copy) and the remembered leaves' table is in its arena, where the wasm
// core's batched data check finds them (asm/data_check.ts): `cacheAt` holds CACHE_SIZE leaf
// numbers (f64, NaN for none) and then their leaves' byte addresses (u32, 0 for a leaf that did
// not fit and is a JS array). Views and addresses are taken again when that memory changes.

import { type PhysMem, WORDS_PER_TABLE } from "./phys_mem.js";
import type { CoreMemory } from "./wasm_memory.js";

export const LEAF_BITS = 12;
const LEAF_SIZE = 1 << LEAF_BITS;
export const LEAF_MASK = LEAF_SIZE - 1;
export const INV_LEAF_SIZE = 1 / LEAF_SIZE;
const DIR_BITS = 11;
const DIR_SIZE = 1 << DIR_BITS;
const DIR_MASK = DIR_SIZE - 1;
/** Leaves remembered by get() and set(). */
const CACHE_SIZE = 64;
const CACHE_MASK = CACHE_SIZE - 1;
/** Largest limit: every index is a safe integer. */
export const PAGED_ARRAY_MAX_LIMIT = 2 ** 53;
/** Bytes of the remembered leaves' table in core memory: CACHE_SIZE f64 leaf numbers, then CACHE_SIZE u32 byte addresses. */
export const LEAF_CACHE_BYTES = CACHE_SIZE * 12;
const LEAF_BYTES = LEAF_SIZE * 4;
/** Table-pool slots (4 KiB) a leaf takes. */
const LEAF_SLOTS = LEAF_BYTES / (WORDS_PER_TABLE * 4);

/**
 * Leaves (and remembered-leaf tables) in one PhysMem's core memory, for the PagedArrays built on
 * it; what a disposed array gives back is reused, zeroed. takeLeaf() gives -1 when wasm32 has no
 * room left, and the array then keeps that leaf in JS (the core hands its accesses back to JS).
 */
export class CoreLeaves {
  private readonly spareLeaves: number[] = [];
  private readonly spareCaches: number[] = [];

  constructor(readonly mem: PhysMem) {}

  get core(): CoreMemory {
    return this.mem.wasm;
  }

  /** A zeroed leaf's first pool slot, or -1. */
  takeLeaf(): number {
    const spare = this.spareLeaves.pop();
    if (spare !== undefined) return spare;
    try {
      return this.mem.allocDataSlots(LEAF_SLOTS);
    } catch (e) {
      if (e instanceof RangeError) return -1;
      throw e;
    }
  }

  giveLeaf(slot: number): void {
    const at = this.mem.slotAddress(slot);
    this.core.u8.fill(0, at, at + LEAF_BYTES);
    this.spareLeaves.push(slot);
  }

  /** A remembered-leaf table's byte address (LEAF_CACHE_BYTES, contents unset), or 0. */
  takeCache(): number {
    const spare = this.spareCaches.pop();
    if (spare !== undefined) return spare;
    try {
      return this.core.alloc(LEAF_CACHE_BYTES);
    } catch (e) {
      if (e instanceof RangeError) return 0;
      throw e;
    }
  }

  giveCache(at: number): void {
    this.spareCaches.push(at);
  }
}

export class PagedArray {
  /** Directory levels above the leaves. */
  private readonly depth: number;
  /** 2^-(DIR_BITS * level), by directory level (0: the one above the leaves). */
  private readonly scale: Float64Array;
  private dir: Int32Array;
  private nodes = 1;
  private readonly leaves: Int32Array[] = [];
  /** Each leaf's first pool slot; -1 for a JS array. */
  private readonly leafPoolSlot: number[] = [];
  /** Leaves released by clearRange(), zeroed, for the next commit. */
  private readonly spare: number[] = [];
  private committedLeaves = 0;
  /** The leaves get() or set() reached last, by their number (index >> LEAF_BITS) mod CACHE_SIZE; NaN: none. */
  private cacheNo: Float64Array;
  /** Their byte addresses in core memory (0: a JS leaf); read by the core only. */
  private cacheLeafAt: Uint32Array;
  private readonly cacheLeaf: Int32Array[] = new Array<Int32Array>(CACHE_SIZE).fill(new Int32Array(0));
  /** Byte address of the remembered-leaf table in core memory (cacheNo, then cacheLeafAt); 0 without CoreLeaves. */
  readonly cacheAt: number = 0;
  private readonly dropViews: (() => void) | null = null;
  private disposed = false;

  constructor(
    /** Indices run from 0 to limit - 1. */
    readonly limit: number,
    /** Where the leaves live when the wasm core is to read them; null: JS arrays. */
    private readonly store: CoreLeaves | null = null,
  ) {
    if (!Number.isSafeInteger(limit - 1) || limit < 1 || limit > PAGED_ARRAY_MAX_LIMIT)
      throw new RangeError(`PagedArray limit ${limit}: a whole number from 1 to 2^53`);
    this.cacheAt = store?.takeCache() ?? 0;
    if (this.cacheAt !== 0) {
      this.dropViews = store!.core.addViewsListener(() => this.takeViews());
      this.cacheNo = new Float64Array(0);
      this.cacheLeafAt = new Uint32Array(0);
      this.takeViews();
      this.cacheNo.fill(Number.NaN);
    } else {
      this.cacheNo = new Float64Array(CACHE_SIZE).fill(Number.NaN);
      this.cacheLeafAt = new Uint32Array(CACHE_SIZE);
    }
    let bits = LEAF_BITS + 1;
    while (2 ** bits < limit) bits++;
    this.depth = Math.ceil((bits - LEAF_BITS) / DIR_BITS);
    this.scale = new Float64Array(this.depth);
    for (let k = 0; k < this.depth; k++) this.scale[k] = 2 ** (-DIR_BITS * k);
    this.dir = new Int32Array(DIR_SIZE);
  }

  /** The value at index i (0 if never written). */
  get(i: number): number {
    return this.getI32(i) >>> 0;
  }

  /** Sets the value at index i; a 0 where no leaf is committed commits none. */
  set(i: number, v: number): void {
    this.setI32(i, v | 0);
  }

  /** The value at index i as a signed 32-bit integer (the same bits as get()). */
  getI32(i: number): number {
    const n = Math.floor(i * INV_LEAF_SIZE);
    const c = n & CACHE_MASK;
    if (n === this.cacheNo[c]) return this.cacheLeaf[c]![i & LEAF_MASK]!;
    return this.getSlow(i, n);
  }

  /** Sets the value at index i to v, a signed 32-bit integer (see getI32). */
  setI32(i: number, v: number): void {
    const n = Math.floor(i * INV_LEAF_SIZE);
    const c = n & CACHE_MASK;
    if (n === this.cacheNo[c]) this.cacheLeaf[c]![i & LEAF_MASK] = v;
    else this.setSlow(i, n, v);
  }

  /**
   * The committed leaf of leaf number n (entries n * 2^LEAF_BITS on, at index & LEAF_MASK), or null:
   * for a loop that keeps its leaves in locals. A leaf stays the same array until clearRange() releases it.
   */
  leaf(n: number): Int32Array | null {
    const c = n & CACHE_MASK;
    if (n === this.cacheNo[c]) return this.cacheLeaf[c]!;
    this.checkIndex(n * LEAF_SIZE);
    const slot = this.leafSlot(n, false);
    if (slot < 0 || this.dir[slot] === 0) return null;
    return this.remember(n, this.dir[slot]! - 1);
  }

  /** Leaves committed now (each 2^LEAF_BITS entries, 4 bytes each). */
  get leafCount(): number {
    return this.committedLeaves;
  }

  /** Bytes held: the committed and spare leaves and the directory. */
  get bytes(): number {
    return (this.committedLeaves + this.spare.length) * LEAF_SIZE * 4 + this.dir.byteLength;
  }

  /** Sets [first, last] to 0; leaves wholly inside are released. */
  clearRange(first: number, last: number): void {
    this.forLeaves(first, last, (slot, leafNo, lo, hi) => {
      const leaf = this.leaves[this.dir[slot]! - 1]!;
      if (lo > 0 || hi < LEAF_MASK) {
        leaf.fill(0, lo, hi + 1);
        return;
      }
      leaf.fill(0);
      this.spare.push(this.dir[slot]! - 1);
      this.dir[slot] = 0;
      this.committedLeaves--;
      if (leafNo === this.cacheNo[leafNo & CACHE_MASK]) this.cacheNo[leafNo & CACHE_MASK] = Number.NaN;
    });
  }

  /** Calls fn with each index in [first, last] whose value is not 0, in ascending order. */
  forEachNonZero(first: number, last: number, fn: (i: number) => void): void {
    this.forLeaves(first, last, (slot, leafNo, lo, hi) => {
      const leaf = this.leaves[this.dir[slot]! - 1]!;
      const base = leafNo * LEAF_SIZE;
      for (let j = lo; j <= hi; j++) if (leaf[j] !== 0) fn(base + j);
    });
  }

  private getSlow(i: number, n: number): number {
    this.checkIndex(i);
    const slot = this.leafSlot(n, false);
    if (slot < 0 || this.dir[slot] === 0) return 0;
    return this.remember(n, this.dir[slot]! - 1)[i & LEAF_MASK]!;
  }

  private setSlow(i: number, n: number, v: number): void {
    this.checkIndex(i);
    const slot = this.leafSlot(n, v !== 0);
    if (slot < 0) return;
    let l = this.dir[slot]! - 1;
    if (l < 0) {
      if (v === 0) return;
      l = this.commitLeaf();
      this.dir[slot] = l + 1;
    }
    this.remember(n, l)[i & LEAF_MASK] = v;
  }

  private checkIndex(i: number): void {
    if (!(i >= 0 && i < this.limit && Number.isInteger(i)))
      throw new RangeError(`PagedArray index ${i}: a whole number from 0 to ${this.limit - 1}`);
  }

  /**
   * The directory slot (pool offset) of the last level that holds leaf number n, creating the
   * nodes on the way if `create`; -1 if a node on the way is missing and not created.
   */
  private leafSlot(n: number, create: boolean): number {
    let node = 0;
    for (let k = this.depth - 1; k > 0; k--) {
      const slot = node * DIR_SIZE + (Math.floor(n * this.scale[k]!) & DIR_MASK);
      let child = this.dir[slot]!;
      if (child === 0) {
        if (!create) return -1;
        child = this.newNode();
        this.dir[slot] = child;
      }
      node = child;
    }
    return node * DIR_SIZE + (n & DIR_MASK);
  }

  private newNode(): number {
    if ((this.nodes + 1) * DIR_SIZE > this.dir.length) {
      const grown = new Int32Array(this.dir.length * 2);
      grown.set(this.dir);
      this.dir = grown;
    }
    return this.nodes++;
  }

  /** Leaf l (number n) remembered as the cache's entry for n. */
  private remember(n: number, l: number): Int32Array {
    const c = n & CACHE_MASK;
    const leaf = this.leaves[l]!;
    this.cacheNo[c] = n;
    const slot = this.leafPoolSlot[l]!;
    this.cacheLeafAt[c] = slot >= 0 ? this.store!.mem.slotAddress(slot) : 0;
    this.cacheLeaf[c] = leaf;
    return leaf;
  }

  private commitLeaf(): number {
    this.committedLeaves++;
    const l = this.spare.pop();
    if (l !== undefined) return l;
    const slot = this.cacheAt !== 0 ? this.store!.takeLeaf() : -1;
    this.leaves.push(slot >= 0 ? this.view(slot) : new Int32Array(LEAF_SIZE));
    this.leafPoolSlot.push(slot);
    return this.leaves.length - 1;
  }

  private view(slot: number): Int32Array {
    return new Int32Array(this.store!.core.memory.buffer, this.store!.mem.slotAddress(slot), LEAF_SIZE);
  }

  /** The core memory grew or its pool moved: every view of it again; nothing remembered (the views and addresses are stale). */
  private takeViews(): void {
    const b = this.store!.core.memory.buffer;
    this.cacheNo = new Float64Array(b, this.cacheAt, CACHE_SIZE);
    this.cacheLeafAt = new Uint32Array(b, this.cacheAt + CACHE_SIZE * 8, CACHE_SIZE);
    this.cacheNo.fill(Number.NaN);
    for (let l = 0; l < this.leaves.length; l++) if (this.leafPoolSlot[l]! >= 0) this.leaves[l] = this.view(this.leafPoolSlot[l]!);
  }

  /** Gives the leaves in core memory back to their CoreLeaves; the array must not be used after. */
  dispose(): void {
    if (this.store === null || this.cacheAt === 0 || this.disposed) return;
    this.disposed = true;
    this.dropViews?.();
    for (const slot of this.leafPoolSlot) if (slot >= 0) this.store.giveLeaf(slot);
    this.store.giveCache(this.cacheAt);
    this.leaves.length = 0;
    this.leafPoolSlot.length = 0;
  }

  /**
   * Calls fn for each committed leaf that holds indices of [first, last] (clamped to the
   * array), with its last-level directory slot, its number and the range [lo, hi] in it.
   */
  private forLeaves(first: number, last: number, fn: (slot: number, leafNo: number, lo: number, hi: number) => void): void {
    const a = Math.max(0, Math.ceil(first));
    const b = Math.min(this.limit - 1, Math.floor(last));
    if (a > b) return;
    this.visit(0, this.depth - 1, 0, Math.floor(a * INV_LEAF_SIZE), Math.floor(b * INV_LEAF_SIZE), a, b, fn);
  }

  /** The nodes below `node` (directory level k, covering leaf numbers from `base`), leaves firstLeaf..lastLeaf. */
  private visit(
    node: number,
    k: number,
    base: number,
    firstLeaf: number,
    lastLeaf: number,
    a: number,
    b: number,
    fn: (slot: number, leafNo: number, lo: number, hi: number) => void,
  ): void {
    const span = 2 ** (DIR_BITS * k);
    const from = Math.max(0, Math.floor((firstLeaf - base) / span));
    const to = Math.min(DIR_MASK, Math.floor((lastLeaf - base) / span));
    for (let e = from; e <= to; e++) {
      const slot = node * DIR_SIZE + e;
      const child = this.dir[slot]!;
      if (child === 0) continue;
      const childBase = base + e * span;
      if (k > 0) {
        this.visit(child, k - 1, childBase, firstLeaf, lastLeaf, a, b, fn);
        continue;
      }
      const start = childBase * LEAF_SIZE;
      fn(slot, childBase, Math.max(a - start, 0), Math.min(b - start, LEAF_MASK));
    }
  }
}
