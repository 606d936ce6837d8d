// SPDX-License-Identifier: MIT
// Idle page tracking, /sys/kernel/mm/page_idle/bitmap (mm/page_idle.c): writing a pfn's bit
// clears the young state of every mapping of the folio, in the host's PTE and, through
// mmu_notifier_clear_young(), in secondary MMUs (KVM ages its sptes; no TLB flush), then marks
// the folio idle; reading the bit re-checks the mappings and reports whether it is still idle.
//
// simplified: PG_idle and PG_young are kept here per frame, not in the page flags; vmscan does not read them.
// simplified: any mapped frame counts as an LRU folio (page_idle_get_folio(): the test's pagevec caveat does not arise).

import { PAGE_SIZE } from "../hw/addr.js";
import { PTE_A } from "../hw/x86_pte.js";
import type { HostKernel } from "./kernel.js";
import type { MmuNotifierChain, NotifierMm } from "./mmu_notifier.js";
import { rmapWalk } from "./rmap.js";

/** mmu_notifier_clear_young(): OR of every subscriber's answer, no flush. */
function notifierClearYoung(chain: MmuNotifierChain, mm: NotifierMm, start: number, end: number): boolean {
  const subs = chain.subscriptions;
  let young = false;
  for (let i = subs.length - 1; i >= 0; i--) young = subs[i]!.clearYoung(mm, start, end) || young;
  return young;
}

export class PageIdle {
  /** PG_idle and PG_young per frame. */
  private readonly idle: Uint8Array;
  private readonly young: Uint8Array;
  /** Folios whose mappings were walked, and of those the ones found young (memvirt's). */
  clearPteRefs = 0;
  referenced = 0;

  constructor(private readonly k: HostKernel) {
    this.idle = new Uint8Array(k.mem.nframes);
    this.young = new Uint8Array(k.mem.nframes);
  }

  /**
   * page_idle_clear_pte_refs(): for each mapping (page_idle_clear_pte_refs_one()),
   * ptep_clear_young_notify(): the PTE's accessed bit test-and-cleared, OR-ed with the
   * secondary MMUs' mmu_notifier_clear_young(); referenced: clear PG_idle, set PG_young.
   */
  private clearPteRefs_(pfn: number): void {
    const k = this.k;
    const mm = rmapWalk(k, pfn);
    if (mm === null) return;
    this.clearPteRefs++;
    const addr = k.meta.mapAddr[pfn]!;
    const level = k.wLevel;
    const lo = k.wLo;
    let referenced = (lo & PTE_A) !== 0;
    if (referenced) k.setEntry(mm, k.wTable, k.wIdx, level, addr, (lo & ~PTE_A) >>> 0, k.wHi);
    const size = level === 2 ? 512 * PAGE_SIZE : PAGE_SIZE;
    referenced = notifierClearYoung(mm.notifiers, mm, addr, addr + size) || referenced;
    if (referenced) {
      this.referenced++;
      this.idle[pfn] = 0;
      this.young[pfn] = 1;
    }
  }

  /** A mapped frame, page_idle_get_folio()'s LRU folio; else null. */
  private folio(pfn: number): boolean {
    return pfn > 0 && pfn < this.idle.length && this.k.meta.mapcount[pfn]! > 0;
  }

  /** page_idle_bitmap_write() of one set bit: clear the folio's references, then folio_set_idle(). */
  markIdle(pfn: number): void {
    if (!this.folio(pfn)) return;
    this.clearPteRefs_(pfn);
    this.idle[pfn] = 1;
  }

  /** page_idle_bitmap_read() of one bit: an idle folio's references re-checked; whether it is still idle. */
  isIdle(pfn: number): boolean {
    if (!this.folio(pfn)) return false;
    if (this.idle[pfn]) this.clearPteRefs_(pfn);
    return this.idle[pfn] === 1;
  }
}
