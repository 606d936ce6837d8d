// SPDX-License-Identifier: MIT
// The buddy allocator of one zone (mm/page_alloc.c: __rmqueue_smallest, expand,
// __free_one_page) and the default watermarks (__setup_per_zone_wmarks).
//
// simplified: one node, one zone (ZONE_NORMAL); no per-CPU page lists, no migratetypes.
// simplified: memory never allocated yet ("pristine", above `pristine`) is handed out
// MAX_ORDER block by block in address order, so metadata is touched only as RAM is used.
// Frame 0 is never free (it is the zero page), so pfn 0 can mean "none" in other tables.

import { type FrameMeta, PG_buddy } from "./page_flags.js";

/** MAX_PAGE_ORDER: the largest buddy block is 2^10 pages (4 MiB). */
export const MAX_ORDER = 10;
const MAX_BLOCK = 1 << MAX_ORDER;

export class BuddyAllocator {
  /** Free pages (NR_FREE_PAGES), pristine memory included. */
  nrFree = 0;
  /** Free blocks per order (free_area[order].nr_free); pristine blocks are not counted here. */
  readonly nrFreeArea = new Float64Array(MAX_ORDER + 1);
  /** First frame never handed out (a multiple of 2^MAX_ORDER). */
  pristine = 0;
  /** End of the pristine region (a multiple of 2^MAX_ORDER). */
  pristineEnd: number;

  constructor(
    private readonly meta: FrameMeta,
    readonly nframes: number,
  ) {
    // Frame 0 is reserved (memblock keeps the first page; here it holds the zero page), so the
    // first max-order block is freed as smaller blocks around it. Whole max-order blocks after
    // it are pristine; a tail that is not a whole block is freed as the largest aligned blocks.
    const first = Math.min(MAX_BLOCK, nframes);
    this.pristine = first;
    this.pristineEnd = Math.max(first, nframes - (nframes % MAX_BLOCK));
    this.nrFree = this.pristineEnd - this.pristine;
    this.freeRange(1, first);
    this.freeRange(this.pristineEnd, nframes);
  }

  private freeRange(pfn: number, end: number): void {
    while (pfn < end) {
      let order = MAX_ORDER - 1;
      while (order > 0 && (pfn % (1 << order) !== 0 || pfn + (1 << order) > end)) order--;
      this.free(pfn, order);
      pfn += 1 << order;
    }
  }

  /** A free block of 2^order pages exists (the high-order part of zone_watermark_ok). */
  hasFreeBlock(order: number): boolean {
    for (let o = order; o <= MAX_ORDER; o++) if (this.nrFreeArea[o]! > 0) return true;
    return this.pristine < this.pristineEnd;
  }

  /** __rmqueue_smallest() + expand(): the smallest free block that fits, split down to `order`. -1 if none. */
  alloc(order: number): number {
    const m = this.meta;
    let cur = order;
    let pfn = -1;
    for (; cur <= MAX_ORDER; cur++) {
      const head = m.buddyBase + cur;
      if (!m.listEmpty(head)) {
        pfn = m.next[head]!;
        m.listDel(pfn);
        m.flags[pfn] = m.flags[pfn]! & ~PG_buddy;
        this.nrFreeArea[cur]!--;
        break;
      }
    }
    if (pfn < 0) {
      if (this.pristine >= this.pristineEnd) return -1;
      cur = MAX_ORDER;
      pfn = this.pristine;
      this.pristine += MAX_BLOCK;
    }
    // expand(): keep the low half, free the high halves.
    while (cur > order) {
      cur--;
      this.addFree(pfn + (1 << cur), cur);
    }
    m.order[pfn] = order;
    this.nrFree -= 1 << order;
    return pfn;
  }

  /** __free_one_page(): free and merge with free buddies up to MAX_ORDER. */
  free(pfn: number, order: number): void {
    const m = this.meta;
    this.nrFree += 1 << order;
    while (order < MAX_ORDER) {
      const buddy = pfn ^ (1 << order);
      if (buddy >= this.nframes || (m.flags[buddy]! & PG_buddy) === 0 || m.order[buddy] !== order) break;
      m.listDel(buddy);
      m.flags[buddy] = m.flags[buddy]! & ~PG_buddy;
      this.nrFreeArea[order]!--;
      pfn = pfn & ~(1 << order);
      order++;
    }
    this.addFree(pfn, order);
  }

  private addFree(pfn: number, order: number): void {
    const m = this.meta;
    m.flags[pfn] = PG_buddy;
    m.order[pfn] = order;
    m.listAdd(pfn, m.buddyBase + order);
    this.nrFreeArea[order]!++;
  }

  /**
   * alloc_contig_pages(): 2^order pages (order > MAX_ORDER, e.g. 18 for a 1 GiB hugetlb page),
   * aligned, made only of free max-order blocks or pristine memory. -1 if no such range.
   * simplified: no migration of movable pages out of the way (no compaction).
   */
  allocContig(order: number): number {
    const m = this.meta;
    const n = 2 ** order;
    for (let start = 0; start + n <= this.pristineEnd; start += n) {
      let ok = true;
      for (let b = start; b < start + n && b < this.pristine; b += MAX_BLOCK) {
        if ((m.flags[b]! & PG_buddy) === 0 || m.order[b] !== MAX_ORDER) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      for (let b = start; b < start + n && b < this.pristine; b += MAX_BLOCK) {
        m.listDel(b);
        m.flags[b] = 0;
        this.nrFreeArea[MAX_ORDER]!--;
      }
      if (start + n > this.pristine) {
        // Pristine memory skipped below the range becomes ordinary free blocks.
        for (let b = this.pristine; b < start; b += MAX_BLOCK) this.addFree(b, MAX_ORDER);
        this.pristine = start + n;
      }
      this.nrFree -= n;
      return start;
    }
    return -1;
  }

  /** Frees a range taken by allocContig(), as max-order blocks. */
  freeContig(pfn: number, order: number): void {
    for (let b = pfn; b < pfn + 2 ** order; b += MAX_BLOCK) this.free(b, MAX_ORDER);
  }
}

/** int_sqrt(): floor of the square root, exact for every integer below 2^53. */
export function intSqrt(x: number): number {
  let r = Math.floor(Math.sqrt(x));
  while (r * r > x) r--;
  while ((r + 1) * (r + 1) <= x) r++;
  return r;
}

export interface Watermarks {
  min: number;
  low: number;
  high: number;
}

/** watermark_scale_factor default: 10 (0.1 % of the zone). */
export const WATERMARK_SCALE_FACTOR = 10;

/**
 * init_per_zone_wmark_min() + __setup_per_zone_wmarks() for one zone of `managed` pages:
 * min_free_kbytes = int_sqrt(lowmem_kB * 16) clamped to [128, 262144];
 * delta = max(min / 4, managed * watermark_scale_factor / 10000); low = min + delta; high = low + delta.
 */
export function defaultWatermarks(managed: number): Watermarks & { minFreeKbytes: number } {
  const lowmemKb = managed * 4;
  const minFreeKbytes = Math.min(262144, Math.max(128, intSqrt(lowmemKb * 16)));
  const min = Math.floor(minFreeKbytes / 4);
  const delta = Math.max(Math.floor(min / 4), Math.floor((managed * WATERMARK_SCALE_FACTOR) / 10000));
  return { min, low: min + delta, high: min + 2 * delta, minFreeKbytes };
}
