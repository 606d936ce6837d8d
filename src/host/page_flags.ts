// SPDX-License-Identifier: MIT
// struct page / struct folio, struct-of-arrays: one typed-array slot per host frame
// (include/linux/page-flags.h, include/linux/mm_types.h). Indexed by pfn.
//
// State bytes per frame (on top of PhysMem's 8; the flags in the host's wasm memory, beside PhysMem's):
//   flags 2 (Uint16) + order 1 (Uint8) + mapcount 2 (Uint16) + lru/buddy links 4+4 (Int32)
//   + rmap owner mm 4 (Int32) + rmap address 8 (Float64) + swap entry 4 (Int32) = 29 bytes.
// The arrays are allocated at full size but zero-initialised, so the engine (calloc'd
// ArrayBuffers) only commits the pages of them that are touched: a 64 GiB host costs
// what it uses. Every field's "empty" value is 0 for that reason.
//
// The links are list_heads: `next`/`prev` hold pfns, and sentinel list heads live past
// the last frame (the LRU lists and the buddy free lists, as in struct lruvec and struct
// free_area). A frame is on at most one list at a time (Linux aliases page->lru and
// page->buddy_list the same way).

import type { CoreMemory } from "../hw/wasm_memory.js";

/** Free block head in the buddy allocator (PageBuddy page type). */
export const PG_buddy = 1 << 0;
/** On an LRU list. */
export const PG_lru = 1 << 1;
/** On the active list. */
export const PG_active = 1 << 2;
/** Referenced once while inactive (second-chance bit). */
export const PG_referenced = 1 << 3;
/** Backed by swap (an anon folio not made lazyfree by MADV_FREE). */
export const PG_swapbacked = 1 << 4;
/** In the swap cache; `swap[pfn]` holds its slot. */
export const PG_swapcache = 1 << 5;
/** Head of a compound page (THP or hugetlb); `order[pfn]` holds its order. */
export const PG_head = 1 << 6;
/** Tail of a compound page. */
export const PG_tail = 1 << 7;
/** Reserved frame (the shared zero pages): never freed, never on an LRU. */
export const PG_reserved = 1 << 8;
/** Was active before eviction / deactivation (workingset detection). */
export const PG_workingset = 1 << 9;
/** Holds one of the host's own page tables (PageTable page type). */
export const PG_pgtable = 1 << 10;
/** Belongs to the hugetlb pool. */
export const PG_hugetlb = 1 << 11;
/** Anonymous folio (folio->mapping has PAGE_MAPPING_ANON). */
export const PG_anon = 1 << 12;
/** Dirty: must be written to swap before it can be freed. */
export const PG_dirty = 1 << 13;
/** Brought in by swap readahead and not yet used (PG_readahead). */
export const PG_readahead = 1 << 14;
/** A KSM page (folio->mapping has PAGE_MAPPING_KSM): write-protected, shared by its stable_node's rmap_items. */
export const PG_ksm = 1 << 15;

/** Per-frame metadata of the host's page allocator, LRU, rmap and swap. */
export class FrameMeta {
  readonly nframes: number;
  /**
   * PG_* bits. With a core memory given, a view of it (the wasm core's batched data check reads
   * PG_buddy there): re-read after anything that may grow that memory, never kept across it.
   */
  flags: Uint16Array;
  /** Byte address of `flags` in the core memory, or -1 when they are a plain array. */
  readonly flagsAt: number = -1;
  /** Buddy order of a free block head; folio order of an allocated head (0 for a small page). */
  readonly order: Uint8Array;
  /** Number of page-table entries mapping the folio (page->_mapcount + 1; entire mapcount for a PMD-mapped THP). */
  readonly mapcount: Uint16Array;
  /** list_head links (LRU list or buddy free list), pfns; sentinels live at index >= nframes. */
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** rmap owner: id of the mm mapping this anon folio (folio->mapping -> anon_vma -> vma -> mm), 0 if none. */
  readonly mapMm: Int32Array;
  /** rmap address: hva where the owner maps the folio (folio->index, in bytes). */
  readonly mapAddr: Float64Array;
  /** Swap slot of a folio in the swap cache (folio->swap); 0 if none (slot 0 is the swap header). */
  readonly swap: Int32Array;
  /** Index of the first list sentinel: LRU lists at lruBase + lru, buddy free lists at buddyBase + order. */
  readonly lruBase: number;
  readonly buddyBase: number;

  constructor(nframes: number, core: CoreMemory | null = null) {
    this.nframes = nframes;
    if (core !== null) {
      const at = core.alloc(nframes * 2);
      this.flagsAt = at;
      core.addViewsListener(() => (this.flags = new Uint16Array(core.memory.buffer, at, nframes)));
      this.flags = new Uint16Array(core.memory.buffer, at, nframes);
    } else this.flags = new Uint16Array(nframes);
    this.order = new Uint8Array(nframes);
    this.mapcount = new Uint16Array(nframes);
    const links = nframes + 32;
    this.next = new Int32Array(links);
    this.prev = new Int32Array(links);
    this.mapMm = new Int32Array(nframes);
    this.mapAddr = new Float64Array(nframes);
    this.swap = new Int32Array(nframes);
    this.lruBase = nframes;
    this.buddyBase = nframes + 8;
    for (let h = nframes; h < links; h++) {
      this.next[h] = h;
      this.prev[h] = h;
    }
  }

  /** list_add(entry, head): insert right after `head`. */
  listAdd(entry: number, head: number): void {
    const n = this.next[head]!;
    this.next[entry] = n;
    this.prev[entry] = head;
    this.prev[n] = entry;
    this.next[head] = entry;
  }

  /** list_add_tail(entry, head): insert right before `head`. */
  listAddTail(entry: number, head: number): void {
    this.listAdd(entry, this.prev[head]!);
  }

  /** list_del(entry). */
  listDel(entry: number): void {
    const n = this.next[entry]!;
    const p = this.prev[entry]!;
    this.next[p] = n;
    this.prev[n] = p;
  }

  listEmpty(head: number): boolean {
    return this.next[head] === head;
  }

  /** Number of base pages in the folio headed by `pfn`. */
  nrPages(pfn: number): number {
    return 1 << this.order[pfn]!;
  }

  /** compound_head(): the head frame of the folio containing `pfn`. */
  compoundHead(pfn: number): number {
    if ((this.flags[pfn]! & PG_tail) === 0) return pfn;
    // THP heads are 2 MiB aligned, hugetlb 1 GiB heads 1 GiB aligned.
    const h2 = pfn - (pfn % 512);
    if ((this.flags[h2]! & PG_head) !== 0) return h2;
    return pfn - (pfn % 262144);
  }
}
