// SPDX-License-Identifier: MIT
// The swap cache and swap I/O (mm/swap_state.c, mm/page_io.c) and workingset detection
// of anonymous refaults (mm/workingset.c).
//
// simplified: swap writes complete synchronously (as on zram/pmem), so a page written
// by pageout() is freed in the same reclaim pass instead of on a later one; reads go
// through the swap cache (no SWP_SYNCHRONOUS_IO bypass); cluster readahead only (no
// VMA-based readahead); readahead pages are allocated without the OOM killer.

import type { HostKernel } from "./kernel.js";
import { LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_FILE } from "./lru.js";
import { GFP_HIGHUSER_MOVABLE, __GFP_NORETRY, allocPages, freePages } from "./page_alloc.js";
import { PG_active, PG_anon, PG_dirty, PG_readahead, PG_swapbacked, PG_swapcache, PG_workingset } from "./page_flags.js";
import { folioAddLru } from "./swap.js";
import { swapReadFolioFront, swapWritepageFront } from "./zswap.js";

/** add_to_swap(): a slot for the folio, which enters the swap cache dirty. False if swap is full. */
export function addToSwap(k: HostKernel, pfn: number): boolean {
  const swap = k.swap;
  if (!swap) return false;
  const slot = swap.allocSlot();
  if (slot === 0) return false;
  addToSwapCache(k, pfn, slot);
  k.meta.flags[pfn] = k.meta.flags[pfn]! | PG_dirty;
  if (k.bus.on) k.bus.emit("host.swap_alloc", { pfn, slot, free: swap.nrSwapPages });
  return true;
}

function addToSwapCache(k: HostKernel, pfn: number, slot: number): void {
  const m = k.meta;
  k.swap!.setCache(slot, pfn);
  m.swap[pfn] = slot;
  m.flags[pfn] = m.flags[pfn]! | PG_swapcache;
  k.nrSwapcached++;
}

/**
 * __delete_from_swap_cache() + put_swap_folio(): the folio leaves the swap cache, leaving
 * `shadow` (0 for none) in the slot; the slot is freed if no swap PTE references it.
 */
export function deleteFromSwapCache(k: HostKernel, pfn: number, shadow: number): void {
  const m = k.meta;
  const swap = k.swap!;
  const slot = m.swap[pfn]!;
  m.swap[pfn] = 0;
  m.flags[pfn] = m.flags[pfn]! & ~PG_swapcache;
  k.nrSwapcached--;
  swap.dropCache(slot);
  if (shadow !== 0 && swap.count(slot) > 0) swap.shadow[slot] = shadow;
  if (k.bus.on && swap.swapMap[slot] === 0) k.bus.emit("host.swap_free", { slot, free: swap.nrSwapPages });
}

/** folio_free_swap(): drop the swap copy of a folio nobody else references by swap entry; it becomes dirty. */
export function folioFreeSwap(k: HostKernel, pfn: number): boolean {
  const m = k.meta;
  if ((m.flags[pfn]! & PG_swapcache) === 0) return false;
  if (k.swap!.count(m.swap[pfn]!) > 0) return false;
  deleteFromSwapCache(k, pfn, 0);
  m.flags[pfn] = m.flags[pfn]! | PG_dirty;
  return true;
}

/** swap_writepage() -> __swap_writepage(): the page's content (and table words) go to its slot. */
export function swapWritepage(k: HostKernel, pfn: number): void {
  const swap = k.swap!;
  const slot = k.meta.swap[pfn]!;
  if (k.zswap !== null && swapWritepageFront(k, pfn, slot)) {
    k.meta.flags[pfn] = k.meta.flags[pfn]! & ~PG_dirty;
    return;
  }
  swap.data[slot] = k.mem.content[pfn]!;
  if (k.mem.isTable(pfn)) swap.tables.set(slot, k.mem.copyTable(pfn));
  else swap.tables.delete(slot);
  k.meta.flags[pfn] = k.meta.flags[pfn]! & ~PG_dirty;
  k.stat.pswpout++;
  k.stat.swapout_cycles += k.cfg.swapOutCycles;
  k.lastFaultCycles += k.cfg.swapOutCycles;
  if (k.bus.on) k.bus.emit("host.swap_out", { pfn, slot, mm: k.meta.mapMm[pfn]!, hva: k.meta.mapAddr[pfn]! });
}

/** workingset_eviction(): the shadow entry recording when the folio was evicted. */
export function workingsetEviction(k: HostKernel, pfn: number): number {
  const eviction = k.nonresidentAge;
  k.nonresidentAge += k.meta.nrPages(pfn);
  return 1 + 2 * eviction + ((k.meta.flags[pfn]! & PG_workingset) !== 0 ? 1 : 0);
}

/** workingset_refault(): count the refault; activate at once if the refault distance fits the workingset. */
function workingsetRefault(k: HostKernel, pfn: number, shadow: number): void {
  const nr = k.meta.nrPages(pfn);
  k.stat.workingset_refault_anon += nr;
  const eviction = Math.floor((shadow - 1) / 2);
  const workingset = (shadow - 1) % 2 === 1;
  const distance = k.nonresidentAge - eviction;
  const n = k.lru.nrPages;
  let size = n[LRU_ACTIVE_FILE]! + n[LRU_INACTIVE_FILE]!;
  if (k.swap && k.swap.nrSwapPages > 0) size += n[LRU_ACTIVE_ANON]!;
  const activate = distance <= size;
  if (k.bus.on) k.bus.emit("host.refault", { pfn, distance, workingsetSize: size, activate: activate ? 1 : 0 });
  if (!activate) return;
  const m = k.meta;
  m.flags[pfn] = m.flags[pfn]! | PG_active;
  k.nonresidentAge += nr;
  k.stat.workingset_activate_anon += nr;
  if (workingset) {
    m.flags[pfn] = m.flags[pfn]! | PG_workingset;
    k.stat.workingset_restore_anon += nr;
  }
}

/**
 * __read_swap_cache_async() + swap_read_folio(): the swap-cache folio for `slot`, reading
 * it from the device into a new page if needed. Returns the pfn; -1 if no memory; -2 if
 * the slot is not in use. `k.swapReadNew` tells whether a read happened.
 */
export function readSwapCacheAsync(k: HostKernel, slot: number, gfp: number): number {
  const swap = k.swap!;
  const cached = swap.cache[slot]!;
  k.swapReadNew = false;
  if (cached !== 0) return cached;
  if (swap.count(slot) === 0) return -2;
  const pfn = allocPages(k, 0, gfp, "swapin");
  if (pfn < 0) return -1;
  // The owner may have been OOM-killed while we allocated: the slot is gone.
  if (swap.count(slot) === 0) {
    freeNewPage(k, pfn);
    return -2;
  }
  const m = k.meta;
  m.flags[pfn] = PG_anon | PG_swapbacked;
  addToSwapCache(k, pfn, slot);
  const shadow = swap.shadow[slot]!;
  swap.shadow[slot] = 0;
  if (shadow !== 0) workingsetRefault(k, pfn, shadow);
  folioAddLru(k, pfn);
  // swap_read_folio()
  k.swapReadNew = true;
  if (k.zswap !== null && swapReadFolioFront(k, pfn, slot)) return pfn;
  k.mem.content[pfn] = swap.data[slot]!;
  const words = swap.tables.get(slot);
  if (words) k.mem.loadTable(pfn, words);
  k.stat.pswpin++;
  k.stat.swapin_cycles += k.cfg.swapInCycles;
  k.lastFaultCycles += k.cfg.swapInCycles;
  if (k.bus.on) k.bus.emit("host.swap_in", { pfn, slot });
  return pfn;
}

function freeNewPage(k: HostKernel, pfn: number): void {
  k.meta.flags[pfn] = 0;
  freePages(k, pfn, 0);
}

/**
 * swapin_readahead() -> swap_cluster_readahead(): with page_cluster > 0, read the
 * 2^page_cluster aligned slots around the faulting one that are in use, then return the
 * faulting one's folio. -1 if no memory for it.
 */
export function swapinReadahead(k: HostKernel, slot: number): number {
  const swap = k.swap!;
  const n = 1 << k.cfg.pageCluster;
  if (n > 1) {
    const start = slot - (slot % n);
    for (let off = start; off < start + n && off < swap.max; off++) {
      if (off === 0) continue;
      const pfn = readSwapCacheAsync(k, off, off === slot ? GFP_HIGHUSER_MOVABLE : GFP_HIGHUSER_MOVABLE | __GFP_NORETRY);
      if (pfn === -1) break;
      if (pfn >= 0 && k.swapReadNew && off !== slot) {
        k.meta.flags[pfn] = k.meta.flags[pfn]! | PG_readahead;
        k.stat.swap_ra++;
      }
    }
  }
  return readSwapCacheAsync(k, slot, GFP_HIGHUSER_MOVABLE);
}
