// SPDX-License-Identifier: MIT
// The anonymous-memory fault path (mm/memory.c): handle_mm_fault -> __handle_mm_fault ->
// handle_pte_fault -> do_anonymous_page / do_swap_page / do_wp_page, plus the accessors
// built on it: get_user_pages (for secondary MMUs), the process's own loads and stores,
// and a side-effect-free probe.
//
// Faults run to completion in one call; a fault that allocates may enter reclaim or the
// OOM killer, so after each allocation it re-checks that its mm is alive and that the
// entry is unchanged (pte_same), as Linux does after re-taking the page-table lock.

import { LEVEL_SIZE, PAGE_SIZE, tableIndex } from "../hw/addr.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, entryPfn, frameHi, frameLo } from "../hw/x86_pte.js";
import { doHugePmdAnonymousPage, doHugePmdWpPage, thpVmaAllowable } from "./huge_memory.js";
import { hugetlbFault } from "./hugetlb_fault.js";
import type { HostKernel } from "./kernel.js";
import type { Mm } from "./mm_types.js";
import { invalidateRangeEnd, invalidateRangeStart } from "./mmu_notifier.js";
import { GFP_HIGHUSER_MOVABLE, __GFP_ZERO, allocPages, freePages } from "./page_alloc.js";
import { PG_anon, PG_dirty, PG_ksm, PG_readahead, PG_swapbacked, PG_swapcache } from "./page_flags.js";
import { PAGE_COPY_LO, PAGE_NX_HI, PAGE_RW_DIRTY_LO, _PAGE_SPECIAL, leafPfn, swpOffset } from "./pgtable.js";
import { folioAddLru, folioMarkAccessed } from "./swap.js";
import { folioFreeSwap, swapinReadahead } from "./swap_state.js";
import { handleUserfault } from "./userfaultfd.js";

/** vm_fault_t bits (include/linux/mm_types.h). */
export const VM_FAULT_OOM = 0x1;
export const VM_FAULT_SIGBUS = 0x2;
export const VM_FAULT_MAJOR = 0x4;
export const VM_FAULT_HWPOISON = 0x10;
export const VM_FAULT_SIGSEGV = 0x40;
export const VM_FAULT_RETRY = 0x400;
export const VM_FAULT_FALLBACK = 0x800;
export const VM_FAULT_ERROR = VM_FAULT_OOM | VM_FAULT_SIGBUS | VM_FAULT_SIGSEGV | VM_FAULT_HWPOISON;

/** userAccess() failures (a content tag is never negative). */
export const ACCESS_SEGV = -1;
export const ACCESS_OOM = -2;
export const ACCESS_SIGBUS = -3;

/** handle_mm_fault(). */
export function handleMmFault(k: HostKernel, mm: Mm, addr: number, write: boolean): number {
  k.stat.pgfault++;
  if (k.bus.on) k.bus.emit("host.fault", { mm: mm.id, hva: addr, write: write ? 1 : 0 });
  if (mm.dead) return VM_FAULT_SIGSEGV;
  const prev = k.current;
  k.current = mm;
  let ret: number;
  try {
    ret = __handleMmFault(k, mm, addr, write);
  } finally {
    k.current = prev;
  }
  // mm_account_fault()
  if ((ret & VM_FAULT_ERROR) === 0) {
    if ((ret & VM_FAULT_MAJOR) !== 0) {
      k.stat.pgmajfault++;
      mm.majFlt++;
    } else {
      mm.minFlt++;
    }
  }
  return ret;
}

/** __handle_mm_fault(): allocate the upper tables, try a huge PMD, else handle_pte_fault(). */
function __handleMmFault(k: HostKernel, mm: Mm, addr: number, write: boolean): number {
  const vma = mm.findVma(addr);
  if (!vma) return VM_FAULT_SIGSEGV;
  if (vma.hugetlbShift !== 0) return hugetlbFault(k, mm, vma, addr, write);
  const pmdTable = k.tableAlloc(mm, addr, 2);
  if (pmdTable < 0) return VM_FAULT_OOM;
  const idx = tableIndex(addr, 2);
  const lo = k.mem.readLo(pmdTable, idx);
  const hi = k.mem.readHi(pmdTable, idx);
  if (lo === 0 && hi === 0) {
    if (thpVmaAllowable(k, vma, addr)) {
      if (vma.uffd !== null) return handleUserfault(k, mm, vma, addr, write); // do_huge_pmd_anonymous_page(): userfaultfd_missing()
      const ret = doHugePmdAnonymousPage(k, mm, addr, write, pmdTable);
      if ((ret & VM_FAULT_FALLBACK) === 0) return ret;
    }
  } else if ((lo & PTE_PS) !== 0) {
    if (write && (lo & PTE_RW) === 0) {
      const ret = doHugePmdWpPage(k, mm, addr, pmdTable, lo, hi);
      if ((ret & VM_FAULT_FALLBACK) === 0) return ret;
    } else {
      // huge_pmd_set_accessed()
      const want = (lo | PTE_A | (write ? PTE_D : 0)) >>> 0;
      k.setEntry(mm, pmdTable, idx, 2, addr, want, hi);
      return 0;
    }
  }
  return handlePteFault(k, mm, addr, write, pmdTable, idx);
}

/** handle_pte_fault(). */
function handlePteFault(k: HostKernel, mm: Mm, addr: number, write: boolean, pmdTable: number, pmdIdx: number): number {
  const pmdLo = k.mem.readLo(pmdTable, pmdIdx);
  if ((pmdLo & PTE_P) === 0) return doAnonymousPage(k, mm, addr, write);
  const pt = entryPfn(pmdLo, k.mem.readHi(pmdTable, pmdIdx));
  const idx = tableIndex(addr, 1);
  const lo = k.mem.readLo(pt, idx);
  const hi = k.mem.readHi(pt, idx);
  if (lo === 0 && hi === 0) return doAnonymousPage(k, mm, addr, write);
  if ((lo & PTE_P) === 0) return doSwapPage(k, mm, addr, write, pt, idx, lo, hi);
  if (write && (lo & PTE_RW) === 0) return doWpPage(k, mm, addr, pt, idx, lo, hi);
  // ptep_set_access_flags(): a spurious fault just sets A (and D).
  k.setEntry(mm, pt, idx, 1, addr, (lo | PTE_A | (write ? PTE_D : 0)) >>> 0, hi);
  return 0;
}

/** do_anonymous_page(): the zero page for a read, a new zeroed page for a write. No notifier. */
function doAnonymousPage(k: HostKernel, mm: Mm, addr: number, write: boolean): number {
  const pt = k.tableAlloc(mm, addr, 1);
  if (pt < 0) return VM_FAULT_OOM;
  const idx = tableIndex(addr, 1);
  const pa = addr - (addr % PAGE_SIZE);
  const vma = mm.findVma(addr);
  if (vma !== undefined && vma.uffd !== null) return handleUserfault(k, mm, vma, addr, write); // userfaultfd_missing()
  if (!write) {
    const z = k.zeroPfn;
    k.setEntry(mm, pt, idx, 1, pa, frameLo(z, PAGE_COPY_LO | _PAGE_SPECIAL), frameHi(z, PAGE_NX_HI));
    if (k.bus.on) k.bus.emit("host.zero_page", { mm: mm.id, hva: pa, pfn: z, huge: 0 });
    return 0;
  }
  const page = allocPages(k, 0, GFP_HIGHUSER_MOVABLE | __GFP_ZERO, "anon");
  if (page < 0) return VM_FAULT_OOM;
  if (mm.dead) {
    freePages(k, page, 0);
    return VM_FAULT_OOM;
  }
  if (k.mem.readLo(pt, idx) !== 0 || k.mem.readHi(pt, idx) !== 0) {
    freePages(k, page, 0);
    return 0;
  }
  k.meta.flags[page] = PG_anon | PG_swapbacked;
  k.setEntry(mm, pt, idx, 1, pa, frameLo(page, PAGE_RW_DIRTY_LO), frameHi(page, PAGE_NX_HI));
  folioAddLru(k, page);
  return 0;
}

/** do_wp_page(): a write to a read-only present PTE. COW from the zero page, else reuse the exclusive anon page. */
function doWpPage(k: HostKernel, mm: Mm, addr: number, pt: number, idx: number, lo: number, hi: number): number {
  const pfn = entryPfn(lo, hi);
  const pa = addr - (addr % PAGE_SIZE);
  // wp_can_reuse_anon_folio() never reuses a KSM folio.
  if (pfn !== k.zeroPfn && k.meta.mapcount[pfn] === 1 && (k.meta.flags[pfn]! & PG_ksm) === 0) {
    // wp_can_reuse_anon_folio(): drop the swap copy, then wp_page_reuse().
    if ((k.meta.flags[pfn]! & PG_swapcache) !== 0) folioFreeSwap(k, pfn);
    k.setEntry(mm, pt, idx, 1, pa, (lo | PTE_RW | PTE_D | PTE_A) >>> 0, hi);
    k.stat.wp_page_reuse++;
    if (k.bus.on) k.bus.emit("host.wp_reuse", { mm: mm.id, hva: pa, pfn });
    return 0;
  }
  return wpPageCopy(k, mm, pa, pt, idx, lo, hi);
}

/** wp_page_copy(): a new page replaces the old mapping inside invalidate_range_start/end. */
function wpPageCopy(k: HostKernel, mm: Mm, pa: number, pt: number, idx: number, lo: number, hi: number): number {
  const old = entryPfn(lo, hi);
  const fromZero = old === k.zeroPfn;
  const page = allocPages(k, 0, GFP_HIGHUSER_MOVABLE | (fromZero ? __GFP_ZERO : 0), "cow");
  if (page < 0) return VM_FAULT_OOM;
  if (mm.dead) {
    freePages(k, page, 0);
    return VM_FAULT_OOM;
  }
  if (!fromZero) k.mem.copyFrame(page, old); // __wp_page_copy_user()
  const range = { mm, start: pa, end: pa + PAGE_SIZE, event: "clear" as const };
  invalidateRangeStart(k.bus, mm.notifiers, range);
  if (k.mem.readLo(pt, idx) === lo && k.mem.readHi(pt, idx) === hi) {
    k.setEntry(mm, pt, idx, 1, pa, 0, 0); // ptep_clear_flush()
    k.meta.flags[page] = PG_anon | PG_swapbacked;
    k.setEntry(mm, pt, idx, 1, pa, frameLo(page, PAGE_RW_DIRTY_LO), frameHi(page, PAGE_NX_HI));
    folioAddLru(k, page);
    if (k.bus.on) k.bus.emit("host.cow", { mm: mm.id, hva: pa, from: old, to: page, huge: 0 });
    k.ksm.wpCopied(old, lo);
  } else {
    freePages(k, page, 0);
  }
  invalidateRangeEnd(k.bus, mm.notifiers, range);
  return 0;
}

/** do_swap_page(): swap cache lookup or a read from the device (major fault); no notifier. */
function doSwapPage(k: HostKernel, mm: Mm, addr: number, write: boolean, pt: number, idx: number, lo: number, hi: number): number {
  const swap = k.swap;
  if (!swap) throw new Error(`swap entry in a PTE of mm ${mm.id} without a swap device`);
  const m = k.meta;
  const slot = swpOffset(lo, hi);
  const pa = addr - (addr % PAGE_SIZE);
  let ret = 0;
  let pfn = swap.cache[slot]!; // swap_cache_get_folio()
  if (pfn !== 0) {
    k.stat.swap_cache_hit++;
    if ((m.flags[pfn]! & PG_readahead) !== 0) {
      m.flags[pfn] = m.flags[pfn]! & ~PG_readahead;
      k.stat.swap_ra_hit++;
    }
  } else {
    pfn = swapinReadahead(k, slot);
    if (pfn < 0 || mm.dead) return VM_FAULT_OOM;
    ret = VM_FAULT_MAJOR;
  }
  if (mm.dead) return VM_FAULT_OOM;
  if (k.mem.readLo(pt, idx) !== lo || k.mem.readHi(pt, idx) !== hi) return ret; // !pte_same
  swap.free(slot); // swap_free(entry): the PTE's reference
  // should_try_to_free_swap(): swap at least half full, or a write with no other user.
  if (swap.full50 || write) folioFreeSwap(k, pfn);
  let pteLo = PAGE_COPY_LO;
  if (write) pteLo = PAGE_RW_DIRTY_LO; // exclusive (the swap PTE carried the E bit): map writable at once
  m.flags[pfn] = m.flags[pfn]! & ~PG_readahead;
  k.setEntry(mm, pt, idx, 1, pa, frameLo(pfn, pteLo), frameHi(pfn, PAGE_NX_HI));
  if (k.bus.on) k.bus.emit("host.swap_map", { mm: mm.id, hva: pa, pfn, slot, major: ret !== 0 ? 1 : 0, write: write ? 1 : 0 });
  return ret;
}

// ---- get_user_pages -----------------------------------------------------------------------

export type GupResult =
  | { ok: true; pfn: number; writable: boolean; level: 1 | 2 | 3; major: boolean }
  | { ok: false; error: "EFAULT" | "ENOMEM" | "EHWPOISON" };

/** follow_page_mask(): the frame mapping addr if the mapping allows the access, else -1. Sets k.w*. */
function followPage(k: HostKernel, mm: Mm, addr: number, write: boolean): number {
  k.walk(mm, addr);
  const lo = k.wLo;
  if ((lo & PTE_P) === 0) return -1;
  if (write && (lo & PTE_RW) === 0) return -1;
  const level = k.wLevel;
  const base = leafPfn(lo, k.wHi, level);
  return level === 1 ? base : base + Math.floor((addr % LEVEL_SIZE[level]!) / PAGE_SIZE);
}

function gupOk(k: HostKernel, pfn: number, major: boolean): GupResult {
  return { ok: true, pfn, writable: (k.wLo & PTE_RW) !== 0, level: k.wLevel as 1 | 2 | 3, major };
}

/**
 * get_user_pages_unlocked(FOLL_TOUCH [| FOLL_WRITE]) for one page, as hva_to_pfn_slow()
 * uses it: fault the page in (a read of an untouched page maps the zero page), then touch
 * it: a write marks the folio dirty, and the folio is marked accessed.
 */
export function getUserPages(k: HostKernel, mm: Mm, addr: number, write: boolean): GupResult {
  if (mm.dead || !mm.findVma(addr)) return { ok: false, error: "EFAULT" };
  let major = false;
  for (let tries = 0; tries < 8; tries++) {
    const pfn = followPage(k, mm, addr, write);
    if (pfn >= 0) {
      const level = k.wLevel;
      const lo = k.wLo;
      if (level === 1) {
        if (pfn !== k.zeroPfn) {
          const m = k.meta;
          if (write && (lo & PTE_D) === 0) m.flags[pfn] = m.flags[pfn]! | PG_dirty;
          folioMarkAccessed(k, pfn);
        }
      } else if (!k.hugetlb.isHugetlb(leafPfn(lo, k.wHi, level))) {
        // touch_pmd()
        const want = (lo | PTE_A | (write ? PTE_D : 0)) >>> 0;
        if (want !== lo) k.setEntry(mm, k.wTable, k.wIdx, level, addr, want, k.wHi);
      }
      return gupOk(k, pfn, major);
    }
    const ret = handleMmFault(k, mm, addr, write);
    if ((ret & VM_FAULT_MAJOR) !== 0) major = true;
    if ((ret & VM_FAULT_ERROR) !== 0) {
      if ((ret & VM_FAULT_OOM) !== 0) return { ok: false, error: "ENOMEM" };
      if ((ret & VM_FAULT_HWPOISON) !== 0) return { ok: false, error: "EHWPOISON" };
      return { ok: false, error: "EFAULT" };
    }
  }
  return { ok: false, error: "EFAULT" };
}

/** get_user_page_fast_only(): a lockless walk; fails on anything not mapped with the needed permission, and on the zero pages. */
export function getUserPagesFast(k: HostKernel, mm: Mm, addr: number, write: boolean): GupResult | null {
  if (mm.dead) return null;
  const pfn = followPage(k, mm, addr, write);
  if (pfn < 0) return null;
  const head = leafPfn(k.wLo, k.wHi, k.wLevel);
  if (head === k.zeroPfn || head === k.hugeZeroPfn || (k.wLo & _PAGE_SPECIAL) !== 0) return null;
  return gupOk(k, pfn, false);
}

// ---- the process's own accesses ------------------------------------------------------------

/** A load (returns the content tag) or store (writes `value`) by the process, faulting as needed. */
export function userAccess(k: HostKernel, mm: Mm, addr: number, write: boolean, value: number): number {
  for (let tries = 0; tries < 8; tries++) {
    if (mm.dead) return ACCESS_SEGV;
    k.walk(mm, addr);
    const lo = k.wLo;
    if ((lo & PTE_P) !== 0 && (!write || (lo & PTE_RW) !== 0)) {
      const level = k.wLevel;
      const need = write ? PTE_A | PTE_D : PTE_A;
      if ((lo & need) !== need) k.setEntry(mm, k.wTable, k.wIdx, level, addr, (lo | need) >>> 0, k.wHi);
      const base = leafPfn(lo, k.wHi, level);
      const pfn = level === 1 ? base : base + Math.floor((addr % LEVEL_SIZE[level]!) / PAGE_SIZE);
      const content = k.mem.content;
      if (write) content[pfn] = value >>> 0;
      return content[pfn]!;
    }
    const ret = handleMmFault(k, mm, addr, write);
    if ((ret & VM_FAULT_ERROR) !== 0) {
      if ((ret & VM_FAULT_OOM) !== 0) return ACCESS_OOM;
      if ((ret & VM_FAULT_SIGBUS) !== 0) return ACCESS_SIGBUS;
      return ACCESS_SEGV;
    }
  }
  return ACCESS_SEGV;
}

// ---- probe ---------------------------------------------------------------------------------

/** What the host tables say about one address (no side effects). */
export interface PteProbe {
  /** "none": nothing mapped (level says where the walk stopped); "present": a page; "swap": a swap entry. */
  state: "none" | "present" | "swap";
  level: number;
  /** Frame mapping the address (the exact 4 KiB frame inside a huge page), -1 if none. */
  pfn: number;
  writable: boolean;
  accessed: boolean;
  dirty: boolean;
  zeroPage: boolean;
  /** Swap slot of a swap entry, else 0. */
  slot: number;
  /** The raw entry words. */
  lo: number;
  hi: number;
}

export function probe(k: HostKernel, mm: Mm, addr: number): PteProbe {
  const none: PteProbe = {
    state: "none",
    level: 1,
    pfn: -1,
    writable: false,
    accessed: false,
    dirty: false,
    zeroPage: false,
    slot: 0,
    lo: 0,
    hi: 0,
  };
  if (mm.dead) return none;
  k.walk(mm, addr);
  const { wLo: lo, wHi: hi, wLevel: level } = k;
  if ((lo & PTE_P) === 0) {
    if (level === 1 && (lo !== 0 || hi !== 0)) return { ...none, state: "swap", slot: swpOffset(lo, hi), lo, hi };
    return { ...none, level, lo, hi };
  }
  const base = leafPfn(lo, hi, level);
  const pfn = level === 1 ? base : base + Math.floor((addr % LEVEL_SIZE[level]!) / PAGE_SIZE);
  return {
    state: "present",
    level,
    pfn,
    writable: (lo & PTE_RW) !== 0,
    accessed: (lo & PTE_A) !== 0,
    dirty: (lo & PTE_D) !== 0,
    zeroPage: base === k.zeroPfn || base === k.hugeZeroPfn,
    slot: 0,
    lo,
    hi,
  };
}
