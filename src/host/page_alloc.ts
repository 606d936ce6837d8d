// SPDX-License-Identifier: MIT
// __alloc_pages() and its slow path (mm/page_alloc.c): the watermark checks, waking
// kswapd, direct reclaim in SWAP_CLUSTER_MAX batches, should_reclaim_retry() and the OOM
// killer; and freeing (free_unref_page / __free_pages).

import type { HostKernel } from "./kernel.js";
import { outOfMemory } from "./oom_kill.js";
import { PG_buddy, PG_lru, PG_reserved, PG_swapcache, PG_tail } from "./page_flags.js";
import { LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE } from "./lru.js";
import { tryToFreePages } from "./vmscan.js";

/** gfp_t bits this model uses (include/linux/gfp_types.h). */
export const __GFP_DIRECT_RECLAIM = 1 << 0;
export const __GFP_KSWAPD_RECLAIM = 1 << 1;
export const __GFP_ZERO = 1 << 2;
/** Try direct reclaim once; never retry, never OOM-kill. */
export const __GFP_NORETRY = 1 << 3;
export const __GFP_COMP = 1 << 4;

/** User pages: may wake kswapd, reclaim directly, and OOM-kill. */
export const GFP_HIGHUSER_MOVABLE = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
/** Page tables (GFP_KERNEL_ACCOUNT | __GFP_ZERO). */
export const GFP_PGTABLE_USER = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM | __GFP_ZERO;
/** THP faults (defrag=madvise, non-madvised VMA): no reclaim at all, no kswapd wakeup. */
export const GFP_TRANSHUGE_LIGHT = __GFP_COMP;

/** MAX_RECLAIM_RETRIES: direct reclaim rounds without progress before the OOM killer. */
export const MAX_RECLAIM_RETRIES = 16;
/** PAGE_ALLOC_COSTLY_ORDER: above it, allocations fail instead of OOM-killing. */
export const PAGE_ALLOC_COSTLY_ORDER = 3;

/** __zone_watermark_ok(): enough free pages above `mark` after taking 2^order, and a free block of that order. */
export function zoneWatermarkOk(k: HostKernel, order: number, mark: number): boolean {
  const free = k.buddy.nrFree - ((1 << order) - 1);
  if (free <= mark) return false;
  if (order === 0) return true;
  return k.buddy.hasFreeBlock(order);
}

/** __alloc_pages(): a block of 2^order frames, or -1. `purpose` labels the event. */
export function allocPages(k: HostKernel, order: number, gfp: number, purpose: string): number {
  // get_page_from_freelist(ALLOC_WMARK_LOW)
  if (zoneWatermarkOk(k, order, k.wmark.low)) return prepNewPage(k, k.buddy.alloc(order), order, gfp, purpose);
  return allocPagesSlowpath(k, order, gfp, purpose);
}

/** get_page_from_freelist(ALLOC_NO_WATERMARKS): a PF_MEMALLOC task (reclaim itself, e.g. zswap's pool) may use the reserves. -1 if nothing is free. */
export function allocPagesNoWatermarks(k: HostKernel, order: number, purpose: string): number {
  return prepNewPage(k, k.buddy.alloc(order), order, 0, purpose);
}

/** __alloc_pages_slowpath(). */
function allocPagesSlowpath(k: HostKernel, order: number, gfp: number, purpose: string): number {
  let noProgressLoops = 0;
  for (let oomKills = 0; ; ) {
    // retry: wake_all_kswapds(), then get_page_from_freelist(ALLOC_WMARK_MIN)
    if ((gfp & __GFP_KSWAPD_RECLAIM) !== 0) k.kswapd.wakeup(order);
    if (zoneWatermarkOk(k, order, k.wmark.min)) return prepNewPage(k, k.buddy.alloc(order), order, gfp, purpose);
    if ((gfp & __GFP_DIRECT_RECLAIM) === 0) return -1;
    // __alloc_pages_direct_reclaim()
    k.stat.allocstall_normal++;
    if (k.bus.on) k.bus.emit("host.direct_reclaim", { order, free: k.buddy.nrFree, min: k.wmark.min });
    const progress = tryToFreePages(k, order);
    if (zoneWatermarkOk(k, order, k.wmark.min)) return prepNewPage(k, k.buddy.alloc(order), order, gfp, purpose);
    if ((gfp & __GFP_NORETRY) !== 0 || order > PAGE_ALLOC_COSTLY_ORDER) return -1;
    if (k.current?.dead) return -1;
    // should_reclaim_retry()
    if (progress > 0) noProgressLoops = 0;
    else noProgressLoops++;
    if (noProgressLoops <= MAX_RECLAIM_RETRIES) {
      const available = k.buddy.nrFree + zoneReclaimablePages(k);
      if (available - ((1 << order) - 1) > k.wmark.min) continue;
    }
    // __alloc_pages_may_oom(): one last try at the high watermark, then the OOM killer.
    if (zoneWatermarkOk(k, order, k.wmark.high)) return prepNewPage(k, k.buddy.alloc(order), order, gfp, purpose);
    const victim = outOfMemory(k, order);
    if (!victim || k.current?.dead || ++oomKills > 1000) return -1;
    noProgressLoops = 0;
  }
}

/** zone_reclaimable_pages(): file LRU pages, plus anon LRU pages when swap has free slots. */
export function zoneReclaimablePages(k: HostKernel): number {
  const n = k.lru.nrPages;
  let r = n[LRU_INACTIVE_FILE]! + n[LRU_ACTIVE_FILE]!;
  if (k.swap && k.swap.nrSwapPages > 0) r += n[LRU_INACTIVE_ANON]! + n[LRU_ACTIVE_ANON]!;
  return r;
}

/** prep_new_page(): fresh metadata, zeroed if asked (clear_page). */
function prepNewPage(k: HostKernel, pfn: number, order: number, gfp: number, purpose: string): number {
  if (pfn < 0) return -1;
  const m = k.meta;
  const n = 1 << order;
  m.flags[pfn] = 0;
  m.order[pfn] = order;
  m.mapcount[pfn] = 0;
  m.mapMm[pfn] = 0;
  m.swap[pfn] = 0;
  if ((gfp & __GFP_ZERO) !== 0) for (let i = 0; i < n; i++) k.mem.zeroFrame(pfn + i);
  k.stat.pgalloc_normal += n;
  if (k.bus.on) k.bus.emit("host.page_alloc", { pfn, order, purpose, free: k.buddy.nrFree });
  return pfn;
}

/** __free_pages(): back to the buddy allocator. The folio must be unmapped, off the LRU, out of the swap cache. */
export function freePages(k: HostKernel, pfn: number, order: number): void {
  const m = k.meta;
  const f = m.flags[pfn]!;
  if ((f & (PG_lru | PG_swapcache | PG_reserved | PG_buddy)) !== 0 || m.mapcount[pfn] !== 0) {
    throw new Error(`freeing busy frame 0x${pfn.toString(16)} (flags 0x${f.toString(16)}, mapcount ${m.mapcount[pfn]})`);
  }
  const n = 1 << order;
  const mem = k.mem;
  for (let i = 0; i < n; i++) {
    const p = pfn + i;
    if (mem.isTable(p)) mem.freeTable(p);
    if (i > 0) m.flags[p] = m.flags[p]! & ~PG_tail;
  }
  m.flags[pfn] = 0;
  m.mapMm[pfn] = 0;
  m.swap[pfn] = 0;
  k.stat.pgfree += n;
  k.buddy.free(pfn, order);
  if (k.bus.on) k.bus.emit("host.free", { pfn, order, free: k.buddy.nrFree });
}
