// SPDX-License-Identifier: MIT
// The LRU lists of the node's lruvec (include/linux/mm_inline.h, mm/swap.c): classic
// two-list LRU, anon and file, each active and inactive. Folios are added at the head and
// reclaim isolates from the tail. Sizes count base pages (a THP counts 512).
//
// simplified: there is no page cache; the file lists hold only anon folios made lazyfree
// by MADV_FREE (Linux moves those to the inactive file list too). No unevictable list.
// simplified: folio_add_lru() adds at once (no per-CPU folio_batch of 15 to drain).

import { type FrameMeta, PG_active, PG_lru, PG_swapbacked } from "./page_flags.js";

export const LRU_INACTIVE_ANON = 0;
export const LRU_ACTIVE_ANON = 1;
export const LRU_INACTIVE_FILE = 2;
export const LRU_ACTIVE_FILE = 3;
export const NR_LRU_LISTS = 4;
export const LRU_NAMES = ["inactive_anon", "active_anon", "inactive_file", "active_file"] as const;

export class Lru {
  /** lruvec->lists[] sizes in pages (NR_INACTIVE_ANON...). */
  readonly nrPages = new Float64Array(NR_LRU_LISTS);

  constructor(private readonly meta: FrameMeta) {}

  /** folio_lru_list(): which list the folio's flags put it on. */
  folioLru(pfn: number): number {
    const f = this.meta.flags[pfn]!;
    const base = (f & PG_swapbacked) !== 0 ? LRU_INACTIVE_ANON : LRU_INACTIVE_FILE;
    return base + ((f & PG_active) !== 0 ? 1 : 0);
  }

  head(lru: number): number {
    return this.meta.lruBase + lru;
  }

  /** lruvec_add_folio(): at the head of its list. */
  add(pfn: number): void {
    const m = this.meta;
    const lru = this.folioLru(pfn);
    m.listAdd(pfn, m.lruBase + lru);
    m.flags[pfn] = m.flags[pfn]! | PG_lru;
    this.nrPages[lru]! += m.nrPages(pfn);
  }

  /** lruvec_del_folio() (+ clearing PG_lru, as folio_isolate_lru() does). */
  del(pfn: number): void {
    const m = this.meta;
    const lru = this.folioLru(pfn);
    m.listDel(pfn);
    m.flags[pfn] = m.flags[pfn]! & ~PG_lru;
    this.nrPages[lru]! -= m.nrPages(pfn);
  }

  /** Oldest folio of `lru` (list tail), or -1. */
  tail(lru: number): number {
    const m = this.meta;
    const h = m.lruBase + lru;
    const t = m.prev[h]!;
    return t === h ? -1 : t;
  }

  /**
   * lru_add_split_folio(): `first` was the head of an n-page folio on a list and is now an
   * order-0 folio; its tails `first+1 .. first+n-1` go right behind it. The list size in
   * pages does not change.
   */
  insertSplitTails(first: number, n: number): void {
    const m = this.meta;
    let at = first;
    for (let i = 1; i < n; i++) {
      const p = first + i;
      m.listAdd(p, at);
      m.flags[p] = m.flags[p]! | PG_lru;
      at = p;
    }
  }
}
