// SPDX-License-Identifier: MIT
// The guest's page allocator: a binary buddy allocator over the usable guest-physical ranges
// the firmware reported (e820), in the order Linux's __rmqueue_smallest() and __free_one_page()
// give. Free blocks are linked struct-of-arrays by their first frame (the guest's struct page).
//
// Order n = 2^n contiguous 4 KiB frames, naturally aligned: 0 = 4 KiB, 9 = 2 MiB, 18 = 1 GiB.
// Initial blocks are freed to the tail in ascending address order (memblock_free_pages with
// FPI_TO_TAIL), so allocations come out lowest address first.
//
// simplified: one zone, no per-CPU page lists (pcp), no migratetypes, no page shuffling.
// simplified: the buddy goes up to order 18 (1 GiB); Linux's stops at 10 and takes gigantic pages from CMA or boot.

import { PAGE_SIZE } from "../hw/addr.js";
import type { FrameAllocator } from "../hw/phys_mem.js";

/** A guest-physical address range [start, end) in bytes. */
export type GpaRange = readonly [start: number, end: number];

export const ORDER_4K = 0;
export const ORDER_2M = 9;
export const ORDER_1G = 18;
export const DEFAULT_MAX_ORDER = ORDER_1G;

export interface FrameAllocOptions {
  /** Largest block order (default 18, 1 GiB). */
  maxOrder?: number;
  /** Ranges the kernel keeps for itself (memblock_reserve), taken out of the usable ones. */
  reserved?: readonly GpaRange[];
}

export interface FrameAllocSnapshot {
  next: Int32Array;
  prev: Int32Array;
  freeOrder: Int8Array;
  allocOrder: Int8Array;
  head: Int32Array;
  tail: Int32Array;
  nrFreeArea: Int32Array;
  nrFree: number;
  reported: Uint8Array;
  reportRequested: boolean;
}

export class GuestFrameAllocator implements FrameAllocator {
  readonly maxOrder: number;
  /** One past the highest managed frame number. */
  readonly spanFrames: number;
  /** Frames the allocator manages (usable minus reserved). */
  readonly totalPages: number;
  /** Managed frame ranges [startGfn, endGfn), sorted. */
  readonly gfnRanges: readonly (readonly [number, number])[];
  private nrFreePages = 0;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  /** Order of the free block starting at the frame, or -1. */
  private readonly freeOrder: Int8Array;
  /** Order of the allocated block starting at the frame, or -1. */
  private readonly allocOrder: Int8Array;
  private readonly head: Int32Array;
  private readonly tail: Int32Array;
  /** Free blocks per order (free_area[order].nr_free). */
  readonly nrFreeArea: Int32Array;
  /** PageReported of the free block starting at the frame (mm/page_reporting.c). */
  private readonly reported: Uint8Array;
  /** page_reporting_order while a reporting device is registered; -1 (none) otherwise. */
  reportingOrder = -1;
  /** A block of at least reportingOrder was freed since the flag was last taken (page_reporting_notify_free). */
  reportRequested = false;

  constructor(usable: readonly GpaRange[], opts: FrameAllocOptions = {}) {
    this.maxOrder = opts.maxOrder ?? DEFAULT_MAX_ORDER;
    if (!Number.isInteger(this.maxOrder) || this.maxOrder < 0 || this.maxOrder > 30) throw new RangeError(`bad max order ${this.maxOrder}`);
    const ranges = subtractRanges(toGfnRanges(usable), toGfnRanges(opts.reserved ?? [], true));
    this.gfnRanges = ranges;
    this.spanFrames = ranges.length > 0 ? ranges[ranges.length - 1]![1] : 0;
    if (this.spanFrames > 2 ** 31) throw new RangeError("guest RAM above 8 TiB is not supported");
    const n = this.spanFrames;
    this.next = new Int32Array(n);
    this.prev = new Int32Array(n);
    this.freeOrder = new Int8Array(n).fill(-1);
    this.allocOrder = new Int8Array(n).fill(-1);
    this.head = new Int32Array(this.maxOrder + 1).fill(-1);
    this.tail = new Int32Array(this.maxOrder + 1).fill(-1);
    this.nrFreeArea = new Int32Array(this.maxOrder + 1);
    this.reported = new Uint8Array(n);
    let total = 0;
    // mirrors __free_pages_memory(): the largest aligned blocks that fit, ascending, to the tail.
    for (const [s, e] of ranges) {
      total += e - s;
      let start = s;
      while (start < e) {
        let order = start === 0 ? this.maxOrder : Math.min(this.maxOrder, ctz(start));
        while (start + 2 ** order > e) order--;
        this.allocOrder[start] = order;
        this.freeBlock(start, order, true, true);
        start += 2 ** order;
      }
    }
    this.totalPages = total;
  }

  /** Free 4 KiB frames (nr_free_pages). */
  get nrFree(): number {
    return this.nrFreePages;
  }

  /** Allocated 4 KiB frames. */
  get nrUsed(): number {
    return this.totalPages - this.nrFreePages;
  }

  /** True if the allocator manages frame `gfn` (it is usable RAM and not reserved). */
  isManaged(gfn: number): boolean {
    for (const [s, e] of this.gfnRanges) if (gfn >= s && gfn < e) return true;
    return false;
  }

  /** Order of the allocated block that starts at `gfn`, or -1. */
  allocatedOrder(gfn: number): number {
    return gfn >= 0 && gfn < this.spanFrames ? this.allocOrder[gfn]! : -1;
  }

  /** A naturally aligned block of 2^order frames; its first frame, or -1. Mirrors __rmqueue_smallest(). */
  allocPages(order: number): number {
    for (let cur = order; cur <= this.maxOrder; cur++) {
      const gfn = this.head[cur]!;
      if (gfn < 0) continue;
      this.unlink(gfn, cur);
      // mirrors expand(): the upper halves go to the heads of the lower orders.
      for (let high = cur; high > order; ) {
        high--;
        this.link(gfn + 2 ** high, high, false);
      }
      this.allocOrder[gfn] = order;
      this.nrFreePages -= 2 ** order;
      return gfn;
    }
    return -1;
  }

  /** Returns a block from allocPages(order). Mirrors __free_one_page(). */
  freePages(gfn: number, order: number): void {
    if (gfn < 0 || gfn >= this.spanFrames || this.allocOrder[gfn] !== order) {
      throw new Error(`freeing gfn 0x${gfn.toString(16)} order ${order}: not an allocated block of that order`);
    }
    this.freeBlock(gfn, order, false, false);
  }

  allocFrame(): number {
    return this.allocPages(0);
  }

  freeFrame(gfn: number): void {
    this.freePages(gfn, 0);
  }

  /** Links a block into the free lists, merging it with free buddies; returns its first frame (its order in mergedOrder). */
  private freeBlock(gfn: number, order: number, toTail: boolean, skipReportNotify: boolean): number {
    this.allocOrder[gfn] = -1;
    this.nrFreePages += 2 ** order;
    let buddy = -1;
    while (order < this.maxOrder) {
      buddy = gfn ^ (1 << order);
      if (buddy >= this.spanFrames || this.freeOrder[buddy] !== order) break;
      this.unlink(buddy, order);
      gfn &= ~(1 << order);
      order++;
    }
    // mirrors buddy_merge_likely(): if the next-higher buddy is free, queue at the tail so it can merge later.
    if (!toTail && order < this.maxOrder - 1) {
      const higher = gfn & ~(1 << order);
      const higherBuddy = higher ^ (1 << (order + 1));
      toTail = higherBuddy < this.spanFrames && this.freeOrder[higherBuddy] === order + 1;
    }
    this.link(gfn, order, toTail);
    // page_reporting_notify_free(), at the end of __free_one_page(), unless FPI_SKIP_REPORT_NOTIFY.
    if (!skipReportNotify && this.reportingOrder >= 0 && order >= this.reportingOrder) this.reportRequested = true;
    this.mergedOrder = order;
    return gfn;
  }

  /** The order of the block the last freeBlock() linked. */
  private mergedOrder = 0;

  // ------------------------------------------------------------- free page reporting

  /** First free block of `order` (list_first_entry of free_area[order]), or -1. */
  firstFree(order: number): number {
    return this.head[order]!;
  }

  /** The free block after `gfn` in its list, or -1. */
  nextFree(gfn: number): number {
    return this.next[gfn]!;
  }

  isReported(gfn: number): boolean {
    return this.reported[gfn] === 1;
  }

  /** list_rotate_to_front(): `gfn` becomes the head of its order's list, the blocks before it move behind the tail. */
  rotateToFront(gfn: number, order: number): void {
    const h = this.head[order]!;
    if (h === gfn || h < 0) return;
    const t = this.tail[order]!;
    const p = this.prev[gfn]!;
    this.next[t] = h;
    this.prev[h] = t;
    this.next[p] = -1;
    this.tail[order] = p;
    this.prev[gfn] = -1;
    this.head[order] = gfn;
  }

  /** __isolate_free_page(): takes a free block off its list for a report (no watermark in this guest: it always succeeds). */
  isolate(gfn: number, order: number): void {
    this.unlink(gfn, order);
    this.allocOrder[gfn] = order;
    this.nrFreePages -= 2 ** order;
  }

  /**
   * page_reporting_drain(): __putback_isolated_page() (to the tail, merging, no notify); the
   * block is marked reported if it did not merge into a larger one.
   */
  putbackReported(gfn: number, order: number, reported: boolean): void {
    const head = this.freeBlock(gfn, order, true, true);
    if (reported && head === gfn && this.mergedOrder === order) this.reported[gfn] = 1;
  }

  private link(gfn: number, order: number, toTail: boolean): void {
    this.freeOrder[gfn] = order;
    this.nrFreeArea[order]!++;
    const h = this.head[order]!;
    if (h < 0) {
      this.head[order] = gfn;
      this.tail[order] = gfn;
      this.next[gfn] = -1;
      this.prev[gfn] = -1;
    } else if (toTail) {
      const t = this.tail[order]!;
      this.next[t] = gfn;
      this.prev[gfn] = t;
      this.next[gfn] = -1;
      this.tail[order] = gfn;
    } else {
      this.prev[h] = gfn;
      this.next[gfn] = h;
      this.prev[gfn] = -1;
      this.head[order] = gfn;
    }
  }

  private unlink(gfn: number, order: number): void {
    this.reported[gfn] = 0; // __del_page_from_free_list() clears PageReported
    const p = this.prev[gfn]!;
    const n = this.next[gfn]!;
    if (p >= 0) this.next[p] = n;
    else this.head[order] = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail[order] = p;
    this.freeOrder[gfn] = -1;
    this.nrFreeArea[order]!--;
  }

  snapshot(): FrameAllocSnapshot {
    return {
      next: this.next.slice(),
      prev: this.prev.slice(),
      freeOrder: this.freeOrder.slice(),
      allocOrder: this.allocOrder.slice(),
      head: this.head.slice(),
      tail: this.tail.slice(),
      nrFreeArea: this.nrFreeArea.slice(),
      nrFree: this.nrFreePages,
      reported: this.reported.slice(),
      reportRequested: this.reportRequested,
    };
  }

  restore(s: FrameAllocSnapshot): void {
    if (s.next.length !== this.spanFrames || s.head.length !== this.maxOrder + 1) throw new Error("snapshot of a different allocator");
    this.next.set(s.next);
    this.prev.set(s.prev);
    this.freeOrder.set(s.freeOrder);
    this.allocOrder.set(s.allocOrder);
    this.head.set(s.head);
    this.tail.set(s.tail);
    this.nrFreeArea.set(s.nrFreeArea);
    this.nrFreePages = s.nrFree;
    this.reported.set(s.reported);
    this.reportRequested = s.reportRequested;
  }
}

/** Count of trailing zero bits of a positive integer below 2^31. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Byte ranges to sorted frame ranges: usable ones shrink to whole pages, reserved ones grow to them. */
function toGfnRanges(ranges: readonly GpaRange[], grow = false): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, end] of ranges) {
    if (!Number.isFinite(start) || !Number.isFinite(end) || start < 0 || end < start) {
      throw new RangeError(`bad guest-physical range [0x${start.toString(16)}, 0x${end.toString(16)})`);
    }
    const s = grow ? Math.floor(start / PAGE_SIZE) : Math.ceil(start / PAGE_SIZE);
    const e = grow ? Math.ceil(end / PAGE_SIZE) : Math.floor(end / PAGE_SIZE);
    if (e > s) out.push([s, e]);
  }
  out.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < out.length; i++) {
    if (!grow && out[i]![0] < out[i - 1]![1]) throw new RangeError("usable guest-physical ranges overlap");
  }
  return out;
}

function subtractRanges(a: [number, number][], minus: [number, number][]): [number, number][] {
  let cur = a;
  for (const [rs, re] of minus) {
    const next: [number, number][] = [];
    for (const [s, e] of cur) {
      if (re <= s || rs >= e) next.push([s, e]);
      else {
        if (rs > s) next.push([s, rs]);
        if (re < e) next.push([re, e]);
      }
    }
    cur = next;
  }
  return cur;
}
