// SPDX-License-Identifier: MIT
// The reverse map (mm/rmap.c): from an anonymous folio to the PTE that maps it, and the
// two walks reclaim makes over it: folio_referenced() (aging) and try_to_unmap() (eviction).
//
// simplified: each anon folio records its one mapping (mm, address) instead of an
// anon_vma chain; there is no fork, so a private anon folio is mapped at most once.
// The walk itself is real: find the VMA, then read pgd, pud, pmd (and pte) entries of the
// mm's tables, counted in rmap_walk_reads.

import { PAGE_SIZE } from "../hw/addr.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS } from "../hw/x86_pte.js";
import type { HostKernel } from "./kernel.js";
import type { Mm } from "./mm_types.js";
import { invalidateRangeEnd, invalidateRangeStart, notifierClearFlushYoung } from "./mmu_notifier.js";
import { PG_anon, PG_dirty, PG_swapbacked } from "./page_flags.js";
import { leafPfn, swpHi, swpLo } from "./pgtable.js";

/** folio_add_new_anon_rmap() / folio_add_anon_rmap_pte(): the folio is now mapped at (mm, addr). Called by HostKernel.setEntry(). */
export function folioAddRmap(k: HostKernel, pfn: number, mm: Mm, addr: number, nr: number): void {
  const m = k.meta;
  // NR_ANON_MAPPED counts a folio once, on its first mapping (a KSM page has many).
  if (m.mapcount[pfn]!++ === 0) k.nrAnonMapped += nr;
  m.mapMm[pfn] = mm.id;
  m.mapAddr[pfn] = addr;
  m.flags[pfn] = m.flags[pfn]! | PG_anon;
  mm.rss += nr;
  if (nr === 512) k.nrAnonThps++;
  if (k.bus.on) k.bus.emit("host.rmap_add", { pfn, mm: mm.id, hva: addr, nr });
}

/** folio_remove_rmap_pte() / _pmd(). Called by HostKernel.setEntry(). */
export function folioRemoveRmap(k: HostKernel, pfn: number, mm: Mm, nr: number): void {
  const m = k.meta;
  if (m.mapcount[pfn] === 0) throw new Error(`rmap underflow on frame 0x${pfn.toString(16)}`);
  if (--m.mapcount[pfn]! === 0) k.nrAnonMapped -= nr;
  mm.rss -= nr;
  if (nr === 512) k.nrAnonThps--;
  if (k.bus.on) k.bus.emit("host.rmap_remove", { pfn, mm: mm.id, hva: m.mapAddr[pfn]!, nr });
}

/**
 * rmap_walk_anon() + page_vma_mapped_walk() for one mapped folio: VMA lookup, then the
 * table walk to the entry that maps it. Leaves the entry in k.w*; returns the mm, or null
 * if the folio is not mapped. Counted in rmap_walks / rmap_walk_reads.
 */
export function rmapWalk(k: HostKernel, pfn: number): Mm | null {
  const m = k.meta;
  if (m.mapcount[pfn] === 0) return null;
  const mm = k.mmById(m.mapMm[pfn]!);
  const addr = m.mapAddr[pfn]!;
  if (!mm?.findVma(addr)) return null;
  const reads = k.walk(mm, addr);
  k.stat.rmap_walks++;
  k.stat.rmap_walk_reads += reads;
  if (k.bus.on) k.bus.emit("host.rmap_walk", { pfn, mm: mm.id, hva: addr, reads });
  if ((k.wLo & PTE_P) === 0 || leafPfn(k.wLo, k.wHi, k.wLevel) !== pfn) {
    throw new Error(`rmap of frame 0x${pfn.toString(16)} points at mm ${mm.id} 0x${addr.toString(16)}, which maps something else`);
  }
  return mm;
}

/**
 * folio_referenced(): how many mappings of the folio were young. For each mapping,
 * folio_referenced_one() test-and-clears the PTE (or PMD) accessed bit
 * (ptep_clear_flush_young) OR-ed with the secondary MMUs' answer
 * (mmu_notifier_clear_flush_young).
 */
export function folioReferenced(k: HostKernel, pfn: number): number {
  const mm = rmapWalk(k, pfn);
  if (!mm) return 0;
  const addr = k.meta.mapAddr[pfn]!;
  const level = k.wLevel;
  const lo = k.wLo;
  let young = (lo & PTE_A) !== 0;
  if (young) k.setEntry(mm, k.wTable, k.wIdx, level, addr, (lo & ~PTE_A) >>> 0, k.wHi);
  const size = level === 2 ? 512 * PAGE_SIZE : PAGE_SIZE;
  young = notifierClearFlushYoung(k.bus, mm.notifiers, mm, addr, addr + size) || young;
  return young ? 1 : 0;
}

/**
 * try_to_unmap() for a small anon folio with its one mapping (try_to_unmap_one()):
 * invalidate_range_start, clear the PTE, write the swap entry (or discard a clean lazyfree
 * page), invalidate_range_end. Returns false if the folio stays mapped (a lazyfree page
 * that was written again).
 */
export function tryToUnmap(k: HostKernel, pfn: number): boolean {
  const mm = rmapWalk(k, pfn);
  if (!mm) return true;
  if (k.wLevel !== 1 || (k.wLo & PTE_PS) !== 0) throw new Error("try_to_unmap on a PMD-mapped folio: split it first");
  const m = k.meta;
  const addr = m.mapAddr[pfn]!;
  const table = k.wTable;
  const idx = k.wIdx;
  const range = { mm, start: addr, end: addr + PAGE_SIZE, event: "clear" as const };
  invalidateRangeStart(k.bus, mm.notifiers, range);
  // ptep_clear_flush()
  const pteLo = k.mem.readLo(table, idx);
  const pteHi = k.mem.readHi(table, idx);
  k.setEntry(mm, table, idx, 1, addr, 0, 0);
  if ((pteLo & PTE_D) !== 0) m.flags[pfn] = m.flags[pfn]! | PG_dirty;
  let ok = true;
  if ((m.flags[pfn]! & PG_swapbacked) === 0) {
    // MADV_FREE'd: a clean page is discarded; a redirtied one is swap-backed again and stays.
    if ((m.flags[pfn]! & PG_dirty) !== 0) {
      m.flags[pfn] = m.flags[pfn]! | PG_swapbacked;
      k.setEntry(mm, table, idx, 1, addr, pteLo, pteHi);
      ok = false;
    }
  } else {
    const slot = m.swap[pfn]!;
    k.swap!.duplicate(slot);
    k.setEntry(mm, table, idx, 1, addr, swpLo(slot, true), swpHi(slot));
  }
  if (k.bus.on) k.bus.emit("host.unmap", { pfn, mm: mm.id, hva: addr, slot: m.swap[pfn]!, ok: ok ? 1 : 0 });
  invalidateRangeEnd(k.bus, mm.notifiers, range);
  return ok;
}
