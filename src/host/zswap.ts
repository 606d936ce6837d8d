// SPDX-License-Identifier: MIT
// zswap (mm/zswap.c): a compressed cache in front of the swap device. swap_writepage() offers
// each folio to zswap_store() before any I/O; swap_read_folio() asks zswap_load() first. The
// pool (zsmalloc pages from the buddy allocator) is capped at max_pool_percent of RAM: a
// store that finds it full is rejected (the page goes to the device) and the shrink worker
// writes the LRU-oldest entries back until the pool is under accept_threshold_percent.
// Also the swap core's zeromap (mm/page_io.c, Linux 6.12): zero-filled folios are only
// marked in a bitmap, never stored or written (zswap's own same-filled handling is gone).
//
// A page's content is its content tag (hw/phys_mem.ts): tag 0 on a non-table frame is a
// zero-filled page; every other page compresses to PAGE_SIZE / ratio of the compressor.
// simplified: one compression ratio per compressor for every non-zero page (the tag says
// nothing about the bytes inside); zsmalloc packs objects perfectly (pool pages =
// ceil(bytes / 4 KiB), freed as soon as they are empty: no size classes, no compaction
// lag); the shrink worker runs synchronously right after the rejected store; writeback
// writes the slot directly (no temporary swap-cache folio); no memcg limits, no
// dynamic shrinker (shrinker_enabled is off by default), no large folios.

import { PAGE_SIZE } from "../hw/addr.js";
import { counterList, readCounters } from "../hw/counters.js";
import type { HostKernel } from "./kernel.js";
import { MAX_RECLAIM_RETRIES, allocPagesNoWatermarks, freePages } from "./page_alloc.js";
import { PG_dirty } from "./page_flags.js";
import { ZSWAP_STATS, newZswapStats } from "./zswap_stats.js";

export type ZswapCompressor = "lz4" | "zstd";

/** /sys/module/zswap/parameters. */
export interface ZswapConfig {
  enabled: boolean;
  maxPoolPercent: number;
  acceptThresholdPercent: number;
  compressor: ZswapCompressor;
}

export const ZSWAP_DEFAULTS: ZswapConfig = { enabled: true, maxPoolPercent: 20, acceptThresholdPercent: 90, compressor: "lz4" };

/**
 * Compression ratio per compressor: the Silesia corpus figures of the zstd README's
 * benchmark table (lzbench, Core i7-9700K): lz4 1.9.3 2.101, zstd 1.5.1 level 1 2.887.
 * simplified: a general-purpose corpus, not guest memory; the kernel's zstd runs level 3.
 */
export const ZSWAP_RATIO: Readonly<Record<ZswapCompressor, number>> = { lz4: 2.101, zstd: 2.887 };

/** The compressed length (entry->length) of a non-zero page under `c`. */
export function zswapCompressedLength(c: ZswapCompressor): number {
  return Math.ceil(PAGE_SIZE / ZSWAP_RATIO[c]);
}

const ZSWAP_COUNTER_LIST = counterList(ZSWAP_STATS);

export class Zswap {
  readonly cfg: ZswapConfig;
  readonly stats = newZswapStats();
  /** zswap_max_pages(): totalram_pages() * max_pool_percent / 100. */
  readonly maxPages: number;
  /** zswap_accept_thr_pages(). */
  readonly acceptThrPages: number;
  /** The xarray of entries by swap slot: entry->length, 0 = no entry. */
  readonly length: Uint16Array;
  /** The content tag each entry holds. */
  readonly data: Uint32Array;
  /** Table words of entries whose page held a page table. */
  readonly tables = new Map<number, Uint32Array>();
  /** entry->referenced: the LRU's second chance. */
  readonly referenced: Uint8Array;
  /** zswap_list_lru by slot, oldest at the head; 0 ends the list (slot 0 is the swap header). */
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private head = 0;
  private tail = 0;
  /** zsmalloc's pages and the bytes of objects in them. */
  private readonly poolPfns: number[] = [];
  private poolBytes = 0;
  /** zswap_pool_reached_full. */
  private reachedFull = false;
  /** zswap_load() hits per mm id (a VM's share of the decompression cost). */
  readonly loadsByMm: number[] = [];
  /** Zeromap swap-ins per mm id (no I/O, no decompression). */
  readonly zeroLoadsByMm: number[] = [];

  constructor(
    private readonly k: HostKernel,
    cfg: Partial<ZswapConfig>,
    slots: number,
  ) {
    this.cfg = { ...ZSWAP_DEFAULTS, ...cfg };
    const c = this.cfg;
    if (!(c.maxPoolPercent >= 0 && c.maxPoolPercent <= 100)) throw new RangeError("zswap maxPoolPercent must be 0..100");
    if (!(c.acceptThresholdPercent >= 0 && c.acceptThresholdPercent <= 100))
      throw new RangeError("zswap acceptThresholdPercent must be 0..100");
    if (!(c.compressor in ZSWAP_RATIO)) throw new RangeError(`zswap compressor must be lz4 or zstd, not ${c.compressor}`);
    this.maxPages = Math.floor((k.managedPages * c.maxPoolPercent) / 100);
    this.acceptThrPages = Math.floor((this.maxPages * c.acceptThresholdPercent) / 100);
    this.length = new Uint16Array(slots);
    this.data = new Uint32Array(slots);
    this.referenced = new Uint8Array(slots);
    this.next = new Int32Array(slots);
    this.prev = new Int32Array(slots);
  }

  /** zswap_total_pages(). */
  get totalPages(): number {
    return this.poolPfns.length;
  }

  /** /sys/kernel/debug/zswap and the vmstat events, by name. */
  counters(): Record<string, number> {
    return readCounters(ZSWAP_COUNTER_LIST, { ...this.stats, pool_total_size: this.poolPfns.length * PAGE_SIZE });
  }

  /** zswap_store(): true if the folio is now in the pool (no I/O); false sends it to the device. */
  store(pfn: number, slot: number): boolean {
    const k = this.k;
    this.invalidate(slot); // check_old: a stale entry for this slot must not survive a failed store
    if (!this.cfg.enabled) return false;
    if (this.checkLimits()) {
      this.stats.zswap_pool_limit_rejects++;
      this.shrinkWorker(); // queue_work(shrink_wq, &zswap_shrink_work)
      return false;
    }
    const len = zswapCompressedLength(this.cfg.compressor);
    if (!this.zsMalloc(len)) {
      this.stats.reject_alloc_fail++;
      return false;
    }
    this.length[slot] = len;
    this.data[slot] = k.mem.content[pfn]!;
    if (k.mem.isTable(pfn)) this.tables.set(slot, k.mem.copyTable(pfn));
    this.referenced[slot] = 1;
    this.lruAdd(slot);
    this.stats.stored_pages++;
    this.stats.zswpout++;
    return true;
  }

  /** zswap_load(): fills the swap-cache folio from the pool; the entry goes (exclusive load) and the folio is dirty. */
  load(pfn: number, slot: number): boolean {
    if (this.length[slot] === 0) return false;
    const k = this.k;
    k.mem.content[pfn] = this.data[slot]!;
    const words = this.tables.get(slot);
    if (words) k.mem.loadTable(pfn, words);
    this.stats.zswpin++;
    const mm = k.current?.id ?? 0;
    this.loadsByMm[mm] = (this.loadsByMm[mm] ?? 0) + 1;
    this.invalidate(slot);
    k.meta.flags[pfn] = k.meta.flags[pfn]! | PG_dirty;
    return true;
  }

  /** zswap_invalidate() / zswap_entry_free(): the slot's entry, if any, leaves the pool. */
  invalidate(slot: number): void {
    const len = this.length[slot]!;
    if (len === 0) return;
    this.lruDel(slot);
    this.length[slot] = 0;
    this.tables.delete(slot);
    this.stats.stored_pages--;
    this.zsFree(len);
  }

  /** zswap_check_limits(): full at max_pool_percent; accepting again once at or below the accept threshold. */
  private checkLimits(): boolean {
    const cur = this.poolPfns.length;
    if (cur >= this.maxPages) {
      this.stats.pool_limit_hit++;
      this.reachedFull = true;
    } else if (this.reachedFull && cur <= this.acceptThrPages) {
      this.reachedFull = false;
    }
    return this.reachedFull;
  }

  /** shrink_worker(): write back LRU-oldest entries until the pool is at the accept threshold; 16 failures end it. */
  private shrinkWorker(): void {
    let failures = 0;
    do {
      if (this.head === 0) return; // shrink_memcg(): -ENOENT
      if (!this.shrinkOne() && ++failures === MAX_RECLAIM_RETRIES) return;
    } while (this.poolPfns.length > this.acceptThrPages);
  }

  /** shrink_memcg() with nr_to_walk = 1 -> shrink_memcg_cb(): second chance, then zswap_writeback_entry(). */
  private shrinkOne(): boolean {
    const k = this.k;
    const slot = this.head;
    this.lruDel(slot);
    if (this.referenced[slot] !== 0) {
      this.referenced[slot] = 0;
      this.lruAdd(slot); // LRU_ROTATE
      return false;
    }
    const swap = k.swap!;
    if (swap.cache[slot] !== 0) {
      // __read_swap_cache_async() found a folio: -EEXIST.
      this.stats.reject_reclaim_fail++;
      this.lruAdd(slot);
      return false;
    }
    // Decompress into the slot and __swap_writepage().
    swap.data[slot] = this.data[slot]!;
    const words = this.tables.get(slot);
    if (words) swap.tables.set(slot, words);
    else swap.tables.delete(slot);
    k.stat.pswpout++;
    k.stat.swapout_cycles += k.cfg.swapOutCycles;
    k.lastFaultCycles += k.cfg.swapOutCycles;
    this.stats.zswpwb++;
    this.stats.written_back_pages++;
    this.lruAdd(slot);
    this.invalidate(slot);
    return true;
  }

  /** zs_malloc(): room for `len` more bytes, taking pool pages as needed (PF_MEMALLOC: no watermarks). */
  private zsMalloc(len: number): boolean {
    const need = Math.ceil((this.poolBytes + len) / PAGE_SIZE);
    while (this.poolPfns.length < need) {
      const pfn = allocPagesNoWatermarks(this.k, 0, "zswap");
      if (pfn < 0) return false;
      this.poolPfns.push(pfn);
    }
    this.poolBytes += len;
    return true;
  }

  /** zs_free(): pool pages no longer needed go back to the buddy allocator. */
  private zsFree(len: number): void {
    this.poolBytes -= len;
    const need = Math.ceil(this.poolBytes / PAGE_SIZE);
    while (this.poolPfns.length > need) freePages(this.k, this.poolPfns.pop()!, 0);
  }

  private lruAdd(slot: number): void {
    this.prev[slot] = this.tail;
    this.next[slot] = 0;
    if (this.tail !== 0) this.next[this.tail] = slot;
    else this.head = slot;
    this.tail = slot;
  }

  private lruDel(slot: number): void {
    const p = this.prev[slot]!;
    const n = this.next[slot]!;
    if (p !== 0) this.next[p] = n;
    else this.head = n;
    if (n !== 0) this.prev[n] = p;
    else this.tail = p;
    this.prev[slot] = 0;
    this.next[slot] = 0;
  }
}

/** swap_writepage() before __swap_writepage() (mm/page_io.c): the zeromap, then zswap_store(). True if no I/O is needed. */
export function swapWritepageFront(k: HostKernel, pfn: number, slot: number): boolean {
  const z = k.zswap!;
  const swap = k.swap!;
  if (k.mem.content[pfn] === 0 && !k.mem.isTable(pfn)) {
    // is_folio_zero_filled() -> swap_zeromap_folio_set()
    z.invalidate(slot);
    swap.zeromap[slot] = 1;
    swap.tables.delete(slot);
    z.stats.swpout_zero++;
    return true;
  }
  swap.zeromap[slot] = 0; // swap_zeromap_folio_clear()
  return z.store(pfn, slot);
}

/** swap_read_folio() before the device read: swap_read_folio_zeromap(), then zswap_load(). True if served. */
export function swapReadFolioFront(k: HostKernel, pfn: number, slot: number): boolean {
  const z = k.zswap!;
  if (k.swap!.zeromap[slot] !== 0) {
    k.mem.content[pfn] = 0;
    z.stats.swpin_zero++;
    const mm = k.current?.id ?? 0;
    z.zeroLoadsByMm[mm] = (z.zeroLoadsByMm[mm] ?? 0) + 1;
    return true;
  }
  return z.load(pfn, slot);
}
