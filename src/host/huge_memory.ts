// SPDX-License-Identifier: MIT
// Transparent huge pages for anonymous memory (mm/huge_memory.c): the huge PMD fault
// (do_huge_pmd_anonymous_page), the huge zero page, the write fault on it, and splitting
// a huge PMD (__split_huge_pmd) with its folio (__split_huge_page).
//
// simplified: THP and huge-zero allocations never reclaim or compact (defrag=madvise for a
// non-madvised VMA); they use a free order-9 block above the low watermark or fall back.
// simplified: splitting a PMD-mapped THP splits the folio at once (no PTE-mapped THP, no
// deferred split queue); no khugepaged collapse.
// A write to the huge zero page allocates a THP (do_huge_zero_wp_pmd, Linux 6.13+), falling
// back to splitting the PMD and copying 4 KiB from the zero page.

import { PAGE_2M, PAGE_SIZE, tableIndex } from "../hw/addr.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, frameHi, frameLo } from "../hw/x86_pte.js";
import type { HostKernel } from "./kernel.js";
import { type Mm, VM_HUGEPAGE, VM_NOHUGEPAGE, type Vma } from "./mm_types.js";
import { invalidateRangeEnd, invalidateRangeStart } from "./mmu_notifier.js";
import { GFP_TRANSHUGE_LIGHT, __GFP_ZERO, allocPages, freePages } from "./page_alloc.js";
import { PG_anon, PG_head, PG_lru, PG_reserved, PG_swapbacked, PG_tail } from "./page_flags.js";
import { PAGE_COPY_LO, PAGE_NX_HI, PAGE_RW_DIRTY_LO, _PAGE_SPECIAL, _PAGE_TABLE, leafPfn } from "./pgtable.js";
import { rmapWalk } from "./rmap.js";
import { folioAddLru } from "./swap.js";

export const HPAGE_PMD_ORDER = 9;
export const HPAGE_PMD_NR = 512;
export const VM_FAULT_OOM = 0x1;
export const VM_FAULT_FALLBACK = 0x800;

/** thp_vma_allowable_order() for an anonymous VMA and fault address. */
export function thpVmaAllowable(k: HostKernel, vma: Vma, addr: number): boolean {
  if (vma.hugetlbShift !== 0) return false;
  const haddr = addr - (addr % PAGE_2M);
  if (haddr < vma.start || haddr + PAGE_2M > vma.end) return false; // transhuge_vma_suitable()
  if ((vma.flags & VM_NOHUGEPAGE) !== 0) return false;
  const mode = k.cfg.thp;
  if (mode === "always") return true;
  return mode === "madvise" && (vma.flags & VM_HUGEPAGE) !== 0;
}

/** mm_get_huge_zero_folio(): the huge zero page, allocated on first use. -1 if no order-9 block. */
export function getHugeZeroPage(k: HostKernel): number {
  if (k.hugeZeroPfn >= 0) return k.hugeZeroPfn;
  const pfn = allocPages(k, HPAGE_PMD_ORDER, GFP_TRANSHUGE_LIGHT | __GFP_ZERO, "huge_zero_page");
  if (pfn < 0) {
    k.stat.thp_zero_page_alloc_failed++;
    return -1;
  }
  k.meta.flags[pfn] = PG_reserved | PG_head;
  k.stat.thp_zero_page_alloc++;
  k.hugeZeroPfn = pfn;
  return pfn;
}

/** vma_alloc_anon_folio_pmd(): a zeroed 2 MiB anon folio, or -1 (counted as thp_fault_fallback). */
function allocAnonFolioPmd(k: HostKernel, mm: Mm, haddr: number): number {
  const pfn = allocPages(k, HPAGE_PMD_ORDER, GFP_TRANSHUGE_LIGHT | __GFP_ZERO, "thp");
  if (pfn < 0) {
    k.stat.thp_fault_fallback++;
    if (k.bus.on) k.bus.emit("host.thp_fallback", { mm: mm.id, hva: haddr, free: k.buddy.nrFree });
    return -1;
  }
  const m = k.meta;
  m.flags[pfn] = PG_head | PG_anon | PG_swapbacked;
  m.order[pfn] = HPAGE_PMD_ORDER;
  for (let i = 1; i < HPAGE_PMD_NR; i++) m.flags[pfn + i] = PG_tail;
  return pfn;
}

function freeAnonFolioPmd(k: HostKernel, pfn: number): void {
  k.meta.flags[pfn] = 0;
  freePages(k, pfn, HPAGE_PMD_ORDER);
}

/** do_huge_pmd_anonymous_page(). Returns VM_FAULT_* (VM_FAULT_FALLBACK: use 4 KiB pages). */
export function doHugePmdAnonymousPage(k: HostKernel, mm: Mm, addr: number, write: boolean, pmdTable: number): number {
  const haddr = addr - (addr % PAGE_2M);
  const idx = tableIndex(addr, 2);
  if (!write && k.cfg.thpUseZeroPage) {
    const pgtable = k.pteAllocOne(mm);
    if (pgtable < 0 || mm.dead) return VM_FAULT_OOM;
    const zero = getHugeZeroPage(k);
    if (zero < 0 || mm.dead) {
      k.pteFree(mm, pgtable);
      if (mm.dead) return VM_FAULT_OOM;
      k.stat.thp_fault_fallback++;
      if (k.bus.on) k.bus.emit("host.thp_fallback", { mm: mm.id, hva: haddr, free: k.buddy.nrFree });
      return VM_FAULT_FALLBACK;
    }
    if (k.mem.readLo(pmdTable, idx) === 0 && k.mem.readHi(pmdTable, idx) === 0) {
      // set_huge_zero_folio()
      mm.deposited.set(haddr, pgtable);
      k.setEntry(mm, pmdTable, idx, 2, haddr, frameLo(zero, PAGE_COPY_LO | PTE_PS), frameHi(zero, PAGE_NX_HI));
      if (k.bus.on) k.bus.emit("host.zero_page", { mm: mm.id, hva: haddr, pfn: zero, huge: 1 });
    } else {
      k.pteFree(mm, pgtable);
    }
    return 0;
  }
  const folio = allocAnonFolioPmd(k, mm, haddr);
  if (folio < 0) return mm.dead ? VM_FAULT_OOM : VM_FAULT_FALLBACK;
  // __do_huge_pmd_anonymous_page()
  const pgtable = mm.dead ? -1 : k.pteAllocOne(mm);
  if (pgtable < 0 || mm.dead) {
    if (pgtable >= 0) k.pteFree(mm, pgtable);
    freeAnonFolioPmd(k, folio);
    return VM_FAULT_OOM;
  }
  if (k.mem.readLo(pmdTable, idx) !== 0 || k.mem.readHi(pmdTable, idx) !== 0) {
    k.pteFree(mm, pgtable);
    freeAnonFolioPmd(k, folio);
    return 0;
  }
  mm.deposited.set(haddr, pgtable);
  k.setEntry(mm, pmdTable, idx, 2, haddr, frameLo(folio, PAGE_RW_DIRTY_LO | PTE_PS), frameHi(folio, PAGE_NX_HI));
  folioAddLru(k, folio);
  k.stat.thp_fault_alloc++;
  if (k.bus.on) k.bus.emit("host.thp_alloc", { mm: mm.id, hva: haddr, pfn: folio });
  return 0;
}

/** do_huge_pmd_wp_page(): a write to a read-only huge PMD (the huge zero page, or a THP to reuse). */
export function doHugePmdWpPage(k: HostKernel, mm: Mm, addr: number, pmdTable: number, lo: number, hi: number): number {
  const haddr = addr - (addr % PAGE_2M);
  const idx = tableIndex(addr, 2);
  const pfn = leafPfn(lo, hi, 2);
  if (pfn !== k.hugeZeroPfn) {
    // Exclusive anon THP: wp_page_reuse at PMD level.
    k.setEntry(mm, pmdTable, idx, 2, haddr, (lo | PTE_RW | PTE_D | PTE_A) >>> 0, hi);
    return 0;
  }
  // do_huge_zero_wp_pmd()
  const folio = allocAnonFolioPmd(k, mm, haddr);
  if (folio < 0) {
    if (mm.dead) return VM_FAULT_OOM;
    splitHugePmd(k, mm, pmdTable, idx, haddr);
    return VM_FAULT_FALLBACK;
  }
  if (mm.dead) {
    freeAnonFolioPmd(k, folio);
    return VM_FAULT_OOM;
  }
  const range = { mm, start: haddr, end: haddr + PAGE_2M, event: "clear" as const };
  invalidateRangeStart(k.bus, mm.notifiers, range);
  if (k.mem.readLo(pmdTable, idx) === lo && k.mem.readHi(pmdTable, idx) === hi) {
    k.setEntry(mm, pmdTable, idx, 2, haddr, 0, 0); // pmdp_huge_clear_flush()
    k.setEntry(mm, pmdTable, idx, 2, haddr, frameLo(folio, PAGE_RW_DIRTY_LO | PTE_PS), frameHi(folio, PAGE_NX_HI));
    folioAddLru(k, folio);
    k.stat.thp_fault_alloc++;
    if (k.bus.on) k.bus.emit("host.cow", { mm: mm.id, hva: haddr, from: pfn, to: folio, huge: 1 });
  } else {
    freeAnonFolioPmd(k, folio);
  }
  invalidateRangeEnd(k.bus, mm.notifiers, range);
  return 0;
}

/**
 * __split_huge_page(): a 2 MiB folio becomes 512 order-0 folios with the head's flags.
 * If the head is on an LRU list the tails follow it there; otherwise (isolated by reclaim)
 * the caller places them.
 */
function splitHugePage(k: HostKernel, head: number): void {
  const m = k.meta;
  const f = m.flags[head]!;
  const flags = f & ~(PG_head | PG_lru | PG_tail);
  const mm = m.mapMm[head]!;
  const addr = m.mapAddr[head]!;
  m.order[head] = 0;
  for (let i = 1; i < HPAGE_PMD_NR; i++) {
    const p = head + i;
    m.flags[p] = flags;
    m.order[p] = 0;
    m.mapcount[p] = 0;
    m.mapMm[p] = mm;
    m.mapAddr[p] = addr + i * PAGE_SIZE;
    m.swap[p] = 0;
  }
  m.flags[head] = flags | (f & PG_lru);
  if ((f & PG_lru) !== 0) k.lru.insertSplitTails(head, HPAGE_PMD_NR);
  k.stat.thp_split_page++;
}

/**
 * __split_huge_pmd(): inside an invalidate_range_start/end of the 2 MiB range, replace the
 * huge PMD by the deposited PTE table filled with 512 PTEs (zero-page PTEs for the huge
 * zero page; for a THP, the split folio's pages with the PMD's permissions and A/D bits).
 */
export function splitHugePmd(k: HostKernel, mm: Mm, pmdTable: number, idx: number, haddr: number): void {
  const lo = k.mem.readLo(pmdTable, idx);
  const hi = k.mem.readHi(pmdTable, idx);
  if ((lo & PTE_P) === 0 || (lo & PTE_PS) === 0) return;
  const pfn = leafPfn(lo, hi, 2);
  const range = { mm, start: haddr, end: haddr + PAGE_2M, event: "clear" as const };
  invalidateRangeStart(k.bus, mm.notifiers, range);
  const pt = mm.deposited.get(haddr);
  if (pt === undefined) throw new Error(`no page table deposited for the huge PMD at 0x${haddr.toString(16)}`);
  mm.deposited.delete(haddr); // pgtable_trans_huge_withdraw()
  k.setEntry(mm, pmdTable, idx, 2, haddr, 0, 0); // pmdp_invalidate()
  const zero = pfn === k.hugeZeroPfn;
  if (zero) {
    // __split_huge_zero_page_pmd()
    const zlo = frameLo(k.zeroPfn, PAGE_COPY_LO | _PAGE_SPECIAL);
    const zhi = frameHi(k.zeroPfn, PAGE_NX_HI);
    for (let i = 0; i < HPAGE_PMD_NR; i++) k.setEntry(mm, pt, i, 1, haddr + i * PAGE_SIZE, zlo, zhi);
  } else {
    splitHugePage(k, pfn);
    const flags = lo & (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D);
    for (let i = 0; i < HPAGE_PMD_NR; i++) {
      k.setEntry(mm, pt, i, 1, haddr + i * PAGE_SIZE, frameLo(pfn + i, flags), frameHi(pfn + i, PAGE_NX_HI));
    }
  }
  k.setEntry(mm, pmdTable, idx, 2, haddr, frameLo(pt, _PAGE_TABLE), frameHi(pt)); // pmd_populate()
  k.stat.thp_split_pmd++;
  if (k.bus.on) k.bus.emit("host.thp_split", { mm: mm.id, hva: haddr, pfn, zero: zero ? 1 : 0 });
  invalidateRangeEnd(k.bus, mm.notifiers, range);
}

/**
 * split_folio_to_list() from reclaim: split an isolated THP (and its PMD mapping); its
 * 511 tails are appended to `batch` after index n. Returns the new length.
 */
export function splitFolioForReclaim(k: HostKernel, head: number, batch: Int32Array, n: number): number {
  const mm = rmapWalk(k, head);
  if (mm && k.wLevel === 2) splitHugePmd(k, mm, k.wTable, k.wIdx, k.meta.mapAddr[head]!);
  else splitHugePage(k, head);
  for (let i = 1; i < HPAGE_PMD_NR; i++) batch[n++] = head + i;
  return n;
}
