// SPDX-License-Identifier: MIT
// The guest's page-table code: every guest entry read and write goes through here and through
// the CPU port, so each one is a real guest memory access. One writer, setEntry(), changes
// entries (the guest-side counterpart of KVM's one-function rule); table pages come from the
// guest buddy allocator and are zeroed through the port (GFP_PGTABLE_USER has __GFP_ZERO).
//
// Also here: the range walks of mm/memory.c that zap leaves (zap_p?d_range) and free emptied
// tables under Linux's floor/ceiling rule (free_pgd_range).

import { type Gfn, type Gpa, LEVEL_SIZE, PAGE_SIZE, alignDown, tableIndex } from "../hw/addr.js";
import type { EventBus } from "../hw/events.js";
import { PTE_A, PTE_D, PTE_P, PTE_PAT_HUGE, PTE_PS, PTE_RW, PTE_US, entryPfn, frameHi, frameLo } from "../hw/x86_pte.js";
import type { CpuPort } from "../hw/cpu_port.js";
import type { GuestFrameAllocator } from "./frame_alloc.js";
import type { GuestEventMap } from "./guest_events.js";
import type { MmStruct } from "./mm.js";
import type { GuestStats } from "./stats.js";
import type { MmuGather } from "./tlb.js";

/** _PAGE_SPECIAL (software bit 9): a mapping of a page with no struct page use, e.g. the zero page. */
export const PTE_SPECIAL = 1 << 9;
/** _PAGE_SOFT_DIRTY (software bit 11): pte_mkdirty() sets it with D (CONFIG_MEM_SOFT_DIRTY). */
export const PTE_SOFT_DIRTY = 1 << 11;
/** _PAGE_TABLE: what pmd_populate() and friends write in a non-leaf user entry. */
export const PAGE_TABLE = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
/** PAGE_COPY / PAGE_READONLY without NX: the vm_page_prot of a private anonymous VMA (A preset). */
export const PAGE_USER_RO = PTE_P | PTE_US | PTE_A;
/** pte_mkwrite(pte_mkdirty()). */
export const PTE_MKWRITE_DIRTY = PTE_RW | PTE_D | PTE_SOFT_DIRTY;

/** Frame of a present entry at `level` (a huge leaf keeps PAT in bit 12). */
export function leafPfn(lo: number, hi: number, level: number): number {
  return level > 1 && (lo & PTE_PS) !== 0 ? entryPfn(lo & ~PTE_PAT_HUGE, hi) : entryPfn(lo, hi);
}

/** What the page-table code asks of the page cache (filemap.ts): is a frame a page-cache page, and drop one mapping of it. */
export interface PageCacheRmap {
  isCachePage(gfn: number): boolean;
  /** A PTE that mapped the page was cleared (folio_remove_rmap_pte). */
  unmapped(gfn: number): void;
  /** Direct reclaim: free at least `pages` frames if it can; the count freed. */
  reclaim(port: CpuPort, pages: number): number;
}

/** What the page-table code asks of guest reclaim with swap (vmscan.ts). */
export interface GuestReclaimHooks {
  /** __alloc_pages() under the watermarks, reclaiming as needed; -1 if none. */
  allocPages(port: CpuPort, order: number): number;
  /** An anonymous page leaves its LRU list (it is being unmapped and freed). */
  delAnon(gfn: number): void;
  /** A swap PTE was cleared: its slot is free (free_swap_and_cache). */
  freeSwapEntry(lo: number, hi: number): void;
}

export class GuestPgtable {
  /** The entry the last read() returned. */
  lo = 0;
  hi = 0;
  /** The page cache, once the kernel has one. */
  cache: PageCacheRmap | null = null;
  /** The OOM notifier chain (register_oom_notifier): returns the pages it freed. */
  oomNotify: (() => number) | null = null;
  /** Guest reclaim with swap (vmscan.ts, guest.swap): watermarks, kswapd and the anon LRU; null without swap. */
  reclaim: GuestReclaimHooks | null = null;
  /** One past the highest user address the tables can map (2^48 or 2^57): "no ceiling". */
  readonly top: number;

  constructor(
    readonly levels: 4 | 5,
    private readonly alloc: GuestFrameAllocator,
    private readonly stats: GuestStats,
    private readonly bus: EventBus<GuestEventMap>,
  ) {
    this.top = LEVEL_SIZE[levels + 1]!;
    stats.nr_free_pages = alloc.nrFree;
  }

  // ------------------------------------------------------------- entries

  read(port: CpuPort, gpa: number): void {
    port.readEntry(gpa as Gpa);
    this.stats.pteReads++;
    this.lo = port.lo;
    this.hi = port.hi;
  }

  /**
   * The one writer of guest page-table entries. `oldLo`/`oldHi` is what the caller read there.
   * Refuses to turn a present leaf into a present leaf of another frame without clearing it
   * first (the ptep_clear_flush() rule), and to write a malformed huge leaf.
   */
  setEntry(
    port: CpuPort,
    mm: MmStruct,
    gpa: number,
    level: number,
    gva: number,
    oldLo: number,
    oldHi: number,
    lo: number,
    hi: number,
  ): void {
    if ((oldLo & PTE_P) !== 0 && (lo & PTE_P) !== 0) {
      const oldLeaf = level === 1 || (oldLo & PTE_PS) !== 0;
      if (oldLeaf !== (level === 1 || (lo & PTE_PS) !== 0) || leafPfn(oldLo, oldHi, level) !== leafPfn(lo, hi, level)) {
        throw new Error(`guest entry at gpa 0x${gpa.toString(16)} (level ${level}) changed frame while present`);
      }
    }
    port.writeEntry(gpa as Gpa, lo, hi);
    this.stats.pteWrites++;
    if (this.bus.on) this.bus.emit("guest.pte_write", { pid: mm.pid, gpa, level, gva, lo, hi });
  }

  // ------------------------------------------------------------- pages

  /**
   * Pages from the buddy allocator, cleared through the port (one clear_page per 4 KiB) unless
   * `clear` is false (the caller fills them: a disk read, a copy); -1 if none. When the buddy
   * allocator is empty, direct reclaim drops page-cache pages first (__alloc_pages_direct_reclaim).
   */
  allocPages(port: CpuPort, order: number, clear = true, mayOom = true): number {
    let gfn = this.reclaim === null ? this.alloc.allocPages(order) : this.reclaim.allocPages(port, order);
    // simplified: without guest swap, reclaim only when the allocator is empty (no watermarks, no kswapd in the guest).
    while (gfn < 0 && this.reclaim === null && this.cache !== null && this.cache.reclaim(port, 2 ** order) > 0)
      gfn = this.alloc.allocPages(order);
    // out_of_memory(): an OOM notifier that freed pages (a balloon's deflate-on-oom) lets the allocation retry.
    while (gfn < 0 && mayOom && this.oomNotify !== null && this.oomNotify() > 0) gfn = this.alloc.allocPages(order);
    if (gfn < 0) return -1;
    const n = 2 ** order;
    this.stats.pgalloc += n;
    this.stats.nr_free_pages = this.alloc.nrFree;
    if (clear) {
      for (let i = 0; i < n; i++) port.zeroPage((gfn + i) as Gfn);
      this.stats.clearPages += n;
    }
    return gfn;
  }

  freePages(gfn: number, order: number): void {
    this.alloc.freePages(gfn, order);
    this.stats.pgfree += 2 ** order;
    this.stats.nr_free_pages = this.alloc.nrFree;
  }

  /** A zeroed page-table page for `mm` (pte_alloc_one / pmd_alloc_one ...); -1 if none. */
  allocTable(port: CpuPort, mm: MmStruct): number {
    const gfn = this.allocPages(port, 0);
    if (gfn < 0) return -1;
    mm.VmPTE++;
    this.stats.nr_page_table_pages++;
    return gfn;
  }

  freeTable(mm: MmStruct, gfn: number): void {
    this.freePages(gfn, 0);
    mm.VmPTE--;
    this.stats.nr_page_table_pages--;
  }

  // ------------------------------------------------------------- fault-side walk

  /**
   * Walks `mm`'s tables for `gva` down to `leafLevel`, allocating and linking missing tables
   * (p4d_alloc, pud_alloc, pmd_alloc, pte_alloc). Returns the gpa of the entry at `leafLevel`,
   * with its value in lo/hi, or -1 if a table page could not be allocated.
   */
  walkAlloc(port: CpuPort, mm: MmStruct, gva: number, leafLevel: number): number {
    let table = mm.pgd;
    for (let level = this.levels; level > leafLevel; level--) {
      const gpa = table * PAGE_SIZE + tableIndex(gva, level) * 8;
      this.read(port, gpa);
      const lo = this.lo;
      const hi = this.hi;
      if ((lo & PTE_P) !== 0) {
        if ((lo & PTE_PS) !== 0) throw new Error(`huge leaf at level ${level} where a table was expected (gva 0x${gva.toString(16)})`);
        table = entryPfn(lo, hi);
        continue;
      }
      if (lo !== 0 || hi !== 0) throw new Error(`non-present, non-empty guest entry at level ${level}: not modelled`);
      const t = this.allocTable(port, mm);
      if (t < 0) return -1;
      this.setEntry(port, mm, gpa, level, alignDown(gva, LEVEL_SIZE[level]!), 0, 0, frameLo(t, PAGE_TABLE), frameHi(t));
      table = t;
    }
    const gpa = table * PAGE_SIZE + tableIndex(gva, leafLevel) * 8;
    this.read(port, gpa);
    return gpa;
  }

  /**
   * Walks `mm`'s tables for `gva` to its 4 KiB entry without allocating (the walk of
   * page_vma_mapped_walk): the entry's gpa with its value in lo/hi, or -1 if a table is missing
   * or a huge leaf maps the address.
   */
  walk(port: CpuPort, mm: MmStruct, gva: number): number {
    let table = mm.pgd;
    for (let level = this.levels; level > 1; level--) {
      this.read(port, table * PAGE_SIZE + tableIndex(gva, level) * 8);
      if ((this.lo & PTE_P) === 0 || (this.lo & PTE_PS) !== 0) return -1;
      table = entryPfn(this.lo, this.hi);
    }
    const gpa = table * PAGE_SIZE + tableIndex(gva, 1) * 8;
    this.read(port, gpa);
    return gpa;
  }

  // ------------------------------------------------------------- unmap-side walks

  /**
   * Clears every leaf in [start, end) (unmap_page_range -> zap_p?d_range): the entry is written
   * to zero, its range and level are noted in `tlb`, its frame is queued for freeing after the
   * flush (the zero page excepted) and the RSS counters drop.
   */
  zapRange(port: CpuPort, mm: MmStruct, start: number, end: number, tlb: MmuGather, zeroGfn: number): void {
    this.zapLevel(port, mm, mm.pgd, this.levels, start, end, tlb, zeroGfn);
  }

  private zapLevel(
    port: CpuPort,
    mm: MmStruct,
    table: number,
    level: number,
    addr: number,
    end: number,
    tlb: MmuGather,
    zeroGfn: number,
  ): void {
    const size = LEVEL_SIZE[level]!;
    for (let a = addr; a < end; ) {
      const next = Math.min(alignDown(a, size) + size, end);
      const gpa = table * PAGE_SIZE + tableIndex(a, level) * 8;
      this.read(port, gpa);
      const lo = this.lo;
      const hi = this.hi;
      if ((lo & PTE_P) === 0) {
        if (lo !== 0 || hi !== 0) {
          // zap_pte_range(): a swap entry is cleared and its slot freed (free_swap_and_cache).
          if (level !== 1 || this.reclaim === null) throw new Error(`non-present, non-empty guest entry at level ${level}: not modelled`);
          this.setEntry(port, mm, gpa, level, a, lo, hi, 0, 0);
          this.reclaim.freeSwapEntry(lo, hi);
        }
      } else if (level === 1 || (lo & PTE_PS) !== 0) {
        if (a !== alignDown(a, size) || next - a !== size) throw new Error(`unmap splits a level-${level} leaf at 0x${a.toString(16)}`);
        this.setEntry(port, mm, gpa, level, a, lo, hi, 0, 0);
        tlb.removeLeaf(a, level);
        const pfn = leafPfn(lo, hi, level);
        if (level === 1) {
          const cache = this.cache;
          if (cache?.isCachePage(pfn)) {
            // A page-cache page stays in the cache: only the mapping goes (MM_FILEPAGES).
            cache.unmapped(pfn);
            mm.RssFile--;
          } else if (pfn !== zeroGfn || (lo & PTE_SPECIAL) === 0) {
            this.reclaim?.delAnon(pfn);
            tlb.addPage(pfn, 0);
            mm.RssAnon--;
            this.stats.nr_anon_pages--;
          }
        } else {
          const pages = size / PAGE_SIZE;
          tlb.addPage(pfn, level === 2 ? 9 : 18);
          mm.HugetlbPages -= pages;
          this.stats.nr_hugetlb_pages -= pages;
        }
      } else {
        this.zapLevel(port, mm, entryPfn(lo, hi), level - 1, a, next, tlb, zeroGfn);
      }
      a = next;
    }
  }

  /**
   * Frees the page tables that map only [addr, end) and nothing between `floor` and `ceiling`
   * (the neighbouring VMAs' edges); mirrors free_pgd_range() and its free_p?d_range() helpers.
   * Cleared entries are written through setEntry(); freed tables go to `tlb` (freed after the flush).
   */
  freePgdRange(port: CpuPort, mm: MmStruct, addr: number, end: number, floor: number, ceiling: number, tlb: MmuGather): void {
    const pmd = LEVEL_SIZE[2]!;
    addr = alignDown(addr, pmd);
    if (addr < floor) addr += pmd;
    ceiling = alignDown(ceiling, pmd);
    if (end - 1 > ceiling - 1) end -= pmd;
    if (addr > end - 1) return;
    this.freeEntries(port, mm, mm.pgd, this.levels, addr, end, floor, ceiling, tlb);
  }

  /** The loop of free_p?d_range over table `table` at `level` >= 2, and the tail that frees each child table. */
  private freeEntries(
    port: CpuPort,
    mm: MmStruct,
    table: number,
    level: number,
    addr: number,
    end: number,
    floor: number,
    ceiling: number,
    tlb: MmuGather,
  ): void {
    const size = LEVEL_SIZE[level]!;
    for (let a = addr; a !== end; ) {
      const next = Math.min(alignDown(a, size) + size, end);
      const gpa = table * PAGE_SIZE + tableIndex(a, level) * 8;
      this.read(port, gpa);
      const lo = this.lo;
      const hi = this.hi;
      if ((lo & PTE_P) !== 0) {
        if ((lo & PTE_PS) !== 0) throw new Error(`huge leaf left at level ${level} while freeing tables`);
        const child = entryPfn(lo, hi);
        if (level === 2) {
          // mirrors free_pte_range(): pmd_clear + pte_free_tlb(addr).
          this.setEntry(port, mm, gpa, level, a, lo, hi, 0, 0);
          tlb.freeTable(child, a, 1);
        } else {
          this.freeEntries(port, mm, child, level - 1, a, next, floor, ceiling, tlb);
          // mirrors the tail of free_pmd_range() / free_pud_range() / free_p4d_range().
          const start = alignDown(a, size);
          if (start >= floor && !(next - 1 > alignDown(ceiling, size) - 1)) {
            this.setEntry(port, mm, gpa, level, start, lo, hi, 0, 0);
            tlb.freeTable(child, start, level - 1);
          }
        }
      }
      a = next;
    }
  }
}
