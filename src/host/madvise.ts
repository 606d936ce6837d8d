// SPDX-License-Identifier: MIT
// madvise() (mm/madvise.c) on private anonymous memory.
//   DONTNEED: zap the range (notifier CLEAR); the next touch gets zero-filled memory.
//   FREE:     make pages lazyfree (clean, on the file LRU): reclaim discards them unless
//             written again; swap copies are dropped (notifier CLEAR around it).
//   PAGEOUT:  reclaim the range's pages now, ignoring references (reclaim_pages()).
//   COLD:     clear young bits and deactivate (no notifier: secondary MMUs keep their A bits).
//   HUGEPAGE / NOHUGEPAGE: set VM_HUGEPAGE / VM_NOHUGEPAGE on the VMAs (splitting them).
// simplified: MADV_FREE and MADV_COLD/PAGEOUT split a THP they cover only partly, and
// otherwise treat it as a whole (madvise_free_huge_pmd / madvise_cold_or_pageout_pte_range).

import { LEVEL_SIZE, PAGE_2M, PAGE_SIZE, hex, tableIndex } from "../hw/addr.js";
import { PTE_A, PTE_D, PTE_P, entryPfn } from "../hw/x86_pte.js";
import { splitHugePmd } from "./huge_memory.js";
import type { HostKernel } from "./kernel.js";
import { type Mm, VM_HUGEPAGE, VM_MERGEABLE, VM_NOHUGEPAGE } from "./mm_types.js";
import { invalidateRangeEnd, invalidateRangeStart } from "./mmu_notifier.js";
import { MmError, freeSwapAndCache, rangeMapped, vmasInRange, zapWithNotify } from "./mmap.js";
import { PG_active, PG_anon, PG_dirty, PG_ksm, PG_lru, PG_referenced, PG_swapbacked, PG_swapcache } from "./page_flags.js";
import { leafPfn, swpOffset } from "./pgtable.js";
import { folioDeactivate } from "./swap.js";
import { folioFreeSwap } from "./swap_state.js";
import { reclaimPages } from "./vmscan.js";

export type MadviseAdvice = "dontneed" | "free" | "pageout" | "cold" | "hugepage" | "nohugepage" | "mergeable" | "unmergeable";

export function madvise(k: HostKernel, mm: Mm, addr: number, length: number, advice: MadviseAdvice): void {
  if (addr % PAGE_SIZE !== 0 || length < 0) throw new MmError("EINVAL", `madvise(${hex(addr)}, ${length})`);
  if (mm.dead || length === 0) return;
  const end = addr + Math.ceil(length / PAGE_SIZE) * PAGE_SIZE;
  const mapped = rangeMapped(mm, addr, end);
  if (k.bus.on) k.bus.emit("host.madvise", { mm: mm.id, hva: addr, len: end - addr, advice });
  if (advice === "mergeable" || advice === "unmergeable") {
    ksmMadvise(k, mm, addr, end, advice === "mergeable");
  } else if (advice === "hugepage" || advice === "nohugepage") {
    // madvise_update_vma(): the flag change splits VMAs at the range boundaries.
    for (const v of vmasInRange(k, mm, addr, end)) {
      if (v.hugetlbShift !== 0) continue;
      v.flags = advice === "hugepage" ? (v.flags | VM_HUGEPAGE) & ~VM_NOHUGEPAGE : (v.flags | VM_NOHUGEPAGE) & ~VM_HUGEPAGE;
    }
  } else {
    // madvise_walk_vmas(): each VMA's part of the range, without splitting VMAs.
    for (const v of mm.vmas.filter((x) => x.start < end && addr < x.end)) {
      const s = Math.max(addr, v.start);
      const e = Math.min(end, v.end);
      if (advice === "dontneed") zapWithNotify(k, mm, [v], s, e, "clear");
      else if (v.hugetlbShift !== 0) continue;
      else if (advice === "free") madviseFree(k, mm, s, e);
      else if (advice === "pageout" || advice === "cold") madviseColdOrPageout(k, mm, s, e, advice === "pageout");
      else throw new MmError("EINVAL", `unknown advice ${String(advice)}`);
    }
  }
  if (!mapped) throw new MmError("ENOMEM", `part of ${hex(addr)}+${end - addr} is not mapped`);
}

/** ksm_madvise(): MADV_MERGEABLE registers the mm with ksmd (__ksm_enter); MADV_UNMERGEABLE breaks every KSM page first. */
function ksmMadvise(k: HostKernel, mm: Mm, start: number, end: number, merge: boolean): void {
  for (const v of vmasInRange(k, mm, start, end)) {
    if (v.hugetlbShift !== 0) continue; // VM_HUGETLB is never mergeable
    if (merge) {
      if ((v.flags & VM_MERGEABLE) === 0) k.ksm.enter(mm);
      v.flags |= VM_MERGEABLE;
    } else if ((v.flags & VM_MERGEABLE) !== 0) {
      k.ksm.unmerge(mm, v.start, v.end);
      v.flags &= ~VM_MERGEABLE;
    }
  }
}

/**
 * Visits every non-none PTE of [start, end), splitting huge PMDs that the range covers
 * only partly; huge PMDs fully inside go to `huge`.
 */
function forEachEntry(
  k: HostKernel,
  mm: Mm,
  start: number,
  end: number,
  pte: (table: number, idx: number, addr: number, lo: number, hi: number) => void,
  huge: (table: number, idx: number, addr: number, lo: number, hi: number) => void,
): void {
  let addr = start;
  while (addr < end) {
    k.walk(mm, addr);
    const level = k.wLevel;
    if (level > 1) {
      const size = LEVEL_SIZE[level]!;
      const base = addr - (addr % size);
      if ((k.wLo & PTE_P) === 0) {
        addr = base + size;
        continue;
      }
      if (base < start || base + size > end) {
        splitHugePmd(k, mm, k.wTable, k.wIdx, base);
        continue;
      }
      huge(k.wTable, k.wIdx, base, k.wLo, k.wHi);
      addr = base + size;
      continue;
    }
    const table = k.wTable;
    const stop = Math.min(end, addr - (addr % PAGE_2M) + PAGE_2M);
    for (let idx = tableIndex(addr, 1); addr < stop; idx++, addr += PAGE_SIZE) {
      const lo = k.mem.readLo(table, idx);
      const hi = k.mem.readHi(table, idx);
      if (lo !== 0 || hi !== 0) pte(table, idx, addr, lo, hi);
    }
  }
}

/** folio_mark_lazyfree() (lru_lazyfree_fn): clean, not swap-backed, to the inactive file list. */
function folioMarkLazyfree(k: HostKernel, pfn: number): void {
  const m = k.meta;
  const f = m.flags[pfn]!;
  if ((f & PG_anon) === 0 || (f & PG_swapbacked) === 0 || (f & (PG_swapcache | PG_ksm)) !== 0) return;
  const onLru = (f & PG_lru) !== 0;
  if (onLru) k.lru.del(pfn);
  m.flags[pfn] = m.flags[pfn]! & ~(PG_active | PG_referenced | PG_swapbacked);
  if (onLru) k.lru.add(pfn);
  k.stat.pglazyfree += m.nrPages(pfn);
}

/** madvise_free_single_vma(). */
function madviseFree(k: HostKernel, mm: Mm, start: number, end: number): void {
  const m = k.meta;
  const range = { mm, start, end, event: "clear" as const };
  invalidateRangeStart(k.bus, mm.notifiers, range);
  forEachEntry(
    k,
    mm,
    start,
    end,
    (table, idx, addr, lo, hi) => {
      if ((lo & PTE_P) === 0) {
        // A swap entry: the data is not needed any more.
        k.setEntry(mm, table, idx, 1, addr, 0, 0);
        freeSwapAndCache(k, swpOffset(lo, hi));
        return;
      }
      const pfn = entryPfn(lo, hi);
      if (pfn === k.zeroPfn || m.mapcount[pfn] !== 1) return;
      if ((m.flags[pfn]! & (PG_swapcache | PG_dirty)) !== 0) {
        if ((m.flags[pfn]! & PG_swapcache) !== 0 && !folioFreeSwap(k, pfn)) return;
        m.flags[pfn] = m.flags[pfn]! & ~PG_dirty;
      }
      if ((lo & (PTE_A | PTE_D)) !== 0) k.setEntry(mm, table, idx, 1, addr, (lo & ~(PTE_A | PTE_D)) >>> 0, hi);
      folioMarkLazyfree(k, pfn);
    },
    (table, idx, addr, lo, hi) => {
      const pfn = leafPfn(lo, hi, 2);
      if (pfn === k.hugeZeroPfn) return;
      m.flags[pfn] = m.flags[pfn]! & ~PG_dirty;
      if ((lo & (PTE_A | PTE_D)) !== 0) k.setEntry(mm, table, idx, 2, addr, (lo & ~(PTE_A | PTE_D)) >>> 0, hi);
      folioMarkLazyfree(k, pfn);
    },
  );
  invalidateRangeEnd(k.bus, mm.notifiers, range);
}

/** madvise_cold_or_pageout_pte_range(), then reclaim_pages() for PAGEOUT. */
function madviseColdOrPageout(k: HostKernel, mm: Mm, start: number, end: number, pageout: boolean): void {
  const m = k.meta;
  const list: number[] = [];
  const visit = (table: number, idx: number, addr: number, lo: number, hi: number, level: number) => {
    if ((lo & PTE_P) === 0) return;
    const pfn = leafPfn(lo, hi, level);
    if (pfn === k.zeroPfn || pfn === k.hugeZeroPfn || m.mapcount[pfn] !== 1) return;
    if ((lo & PTE_A) !== 0) k.setEntry(mm, table, idx, level, addr, (lo & ~PTE_A) >>> 0, hi);
    m.flags[pfn] = m.flags[pfn]! & ~PG_referenced;
    if (pageout) {
      if ((m.flags[pfn]! & PG_lru) !== 0) {
        k.lru.del(pfn); // folio_isolate_lru()
        list.push(pfn);
      }
    } else {
      folioDeactivate(k, pfn);
    }
  };
  forEachEntry(
    k,
    mm,
    start,
    end,
    (t, i, a, lo, hi) => visit(t, i, a, lo, hi, 1),
    (t, i, a, lo, hi) => visit(t, i, a, lo, hi, 2),
  );
  if (list.length > 0) reclaimPages(k, list);
}
