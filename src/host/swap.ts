// SPDX-License-Identifier: MIT
// LRU helpers of mm/swap.c: adding new folios, folio_mark_accessed(), activation and
// deactivation outside reclaim (MADV_COLD).

import type { HostKernel } from "./kernel.js";
import { LRU_NAMES } from "./lru.js";
import { PG_active, PG_lru, PG_referenced, PG_reserved } from "./page_flags.js";

/** folio_add_lru() / folio_add_lru_vma(): a new folio goes to the head of its list (inactive anon since 5.9). */
export function folioAddLru(k: HostKernel, pfn: number): void {
  k.lru.add(pfn);
  if (k.bus.on) k.bus.emit("host.lru_add", { pfn, lru: LRU_NAMES[k.lru.folioLru(pfn)]!, nr: k.meta.nrPages(pfn) });
}

/**
 * folio_mark_accessed(): inactive & unreferenced -> referenced; inactive & referenced ->
 * activate (folio_activate + workingset_activation); active -> referenced.
 */
export function folioMarkAccessed(k: HostKernel, pfn: number): void {
  const m = k.meta;
  const f = m.flags[pfn]!;
  if ((f & PG_reserved) !== 0 || (f & PG_lru) === 0) {
    if ((f & PG_reserved) === 0) m.flags[pfn] = f | PG_referenced;
    return;
  }
  if ((f & PG_active) === 0 && (f & PG_referenced) !== 0) {
    // folio_activate()
    k.lru.del(pfn);
    m.flags[pfn] = (f | PG_active) & ~PG_referenced;
    k.lru.add(pfn);
    const nr = m.nrPages(pfn);
    k.stat.pgactivate += nr;
    k.nonresidentAge += nr; // workingset_activation() -> workingset_age_nonresident()
    if (k.bus.on) k.bus.emit("host.activate", { pfn, nr, why: "mark_accessed" });
  } else if ((f & PG_referenced) === 0) {
    m.flags[pfn] = f | PG_referenced;
  }
}

/** lru_deactivate_fn() via folio_deactivate() (MADV_COLD): an active folio goes to the inactive list. */
export function folioDeactivate(k: HostKernel, pfn: number): void {
  const m = k.meta;
  const f = m.flags[pfn]!;
  if ((f & PG_lru) === 0 || (f & PG_active) === 0) return;
  k.lru.del(pfn);
  m.flags[pfn] = f & ~(PG_active | PG_referenced);
  k.lru.add(pfn);
  k.stat.pgdeactivate += m.nrPages(pfn);
}
