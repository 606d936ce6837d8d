// SPDX-License-Identifier: MIT
// The event kinds the host mm emits (only while someone listens on the bus), declared once:
// a sentence, the kernel function it stands for and the fields, so a narration of SEED-PATHS
// paths 1 and 5 can be written from the stream.

import type { EventDecls, EventMapOf } from "../hw/events.js";

export const HOST_EVENTS = {
  // Address spaces
  "host.process": {
    description: "A host process (mm) is created with its top-level page table.",
    mirrors: "mm_alloc() / pgd_alloc()",
    fields: { mm: "number", name: "string", pgd: "number" },
  },
  "host.mmap": {
    description: "Anonymous memory is reserved as virtual address space; nothing is backed yet.",
    mirrors: "do_mmap()",
    fields: { mm: "number", hva: "number", len: "number", flags: "number" },
  },
  "host.munmap": {
    description: "A range is unmapped: PTEs cleared, pages and swap slots freed, empty tables freed.",
    mirrors: "do_vmi_munmap() / unmap_region()",
    fields: { mm: "number", hva: "number", len: "number" },
  },
  "host.madvise": {
    description: "madvise() on a range (dontneed, free, pageout, cold, hugepage, nohugepage).",
    mirrors: "do_madvise()",
    fields: { mm: "number", hva: "number", len: "number", advice: "string" },
  },
  "host.exit": {
    description: "A process's mm is torn down and every page it held is freed.",
    mirrors: "exit_mmap()",
    fields: { mm: "number", name: "string", vmas: "number" },
  },
  // Fault path (path 1 and path 4's host half)
  "host.fault": {
    description: "A page fault enters the host mm for (mm, hva).",
    mirrors: "handle_mm_fault()",
    fields: { mm: "number", hva: "number", write: "number" },
  },
  "host.zero_page": {
    description: "A read of untouched memory maps the shared zero page read-only (no RSS, no LRU).",
    mirrors: "do_anonymous_page() / set_huge_zero_folio()",
    fields: { mm: "number", hva: "number", pfn: "number", huge: "number" },
  },
  "host.page_alloc": {
    description: "The buddy allocator hands out a block (purpose: anon, cow, pgtable, swapin, thp...).",
    mirrors: "__alloc_pages()",
    fields: { pfn: "number", order: "number", purpose: "string", free: "number" },
  },
  "host.rmap_add": {
    description: "The reverse map records where the anonymous page is mapped (mm, hva).",
    mirrors: "folio_add_new_anon_rmap()",
    fields: { pfn: "number", mm: "number", hva: "number", nr: "number" },
  },
  "host.rmap_remove": {
    description: "A mapping of an anonymous page is removed from the reverse map.",
    mirrors: "folio_remove_rmap_pte()",
    fields: { pfn: "number", mm: "number", hva: "number", nr: "number" },
  },
  "host.lru_add": {
    description: "A new page is put on the LRU (inactive anon since Linux 5.9).",
    mirrors: "folio_add_lru_vma()",
    fields: { pfn: "number", lru: "string", nr: "number" },
  },
  "host.cow": {
    description: "A write after a zero-page read: a new page replaces the zero page, between notifier start and end.",
    mirrors: "wp_page_copy() / do_huge_zero_wp_pmd()",
    fields: { mm: "number", hva: "number", from: "number", to: "number", huge: "number" },
  },
  "host.wp_reuse": {
    description: "A write to a read-only mapping of an exclusive page makes it writable in place.",
    mirrors: "wp_page_reuse()",
    fields: { mm: "number", hva: "number", pfn: "number" },
  },
  "host.thp_alloc": {
    description: "A 2 MiB transparent huge page is mapped by a huge PMD.",
    mirrors: "do_huge_pmd_anonymous_page()",
    fields: { mm: "number", hva: "number", pfn: "number" },
  },
  "host.thp_fallback": {
    description: "No free 2 MiB block: the fault falls back to 4 KiB pages.",
    mirrors: "count_vm_event(THP_FAULT_FALLBACK)",
    fields: { mm: "number", hva: "number", free: "number" },
  },
  "host.thp_split": {
    description: "A huge PMD is split into 512 PTEs (and its THP into 4 KiB pages).",
    mirrors: "__split_huge_pmd()",
    fields: { mm: "number", hva: "number", pfn: "number", zero: "number" },
  },
  "host.userfault": {
    description: "A fault on a missing page of a userfaultfd-registered range is handed to the uffd's reader.",
    mirrors: "handle_userfault()",
    fields: { mm: "number", hva: "number", write: "number" },
  },
  "host.uffd_place": {
    description: "The uffd reader places a page (UFFDIO_COPY) or the zero page (UFFDIO_ZEROPAGE), waking the fault.",
    mirrors: "mfill_atomic_pte_copy() / mfill_atomic_pte_zeropage()",
    fields: { mm: "number", hva: "number", pfn: "number", zero: "number" },
  },
  "host.hugetlb_fault": {
    description: "A hugetlb page from the pool is mapped at PMD or PUD level.",
    mirrors: "hugetlb_no_page()",
    fields: { mm: "number", hva: "number", pfn: "number", pages: "number" },
  },
  "host.swap_map": {
    description: "A swapped-out page is mapped again (after a swap-cache hit or a read).",
    mirrors: "do_swap_page()",
    fields: { mm: "number", hva: "number", pfn: "number", slot: "number", major: "number", write: "number" },
  },
  // Reclaim (path 5)
  "host.kswapd_wake": {
    description: "Free memory fell below the low watermark: kswapd is woken.",
    mirrors: "wakeup_kswapd()",
    fields: { order: "number", free: "number", low: "number", high: "number" },
  },
  "host.kswapd_sleep": {
    description: "Free memory is above the high watermark (or reclaim keeps failing): kswapd sleeps.",
    mirrors: "kswapd_try_to_sleep()",
    fields: { free: "number", high: "number", failures: "number" },
  },
  "host.direct_reclaim": {
    description: "Free memory fell below the min watermark: the allocating task reclaims itself.",
    mirrors: "__alloc_pages_direct_reclaim()",
    fields: { order: "number", free: "number", min: "number" },
  },
  "host.lru_scan": {
    description: "A batch of folios isolated from an LRU tail and processed.",
    mirrors: "shrink_inactive_list() / shrink_active_list()",
    fields: {
      lru: "string",
      by: "string",
      scanned: "number",
      isolated: "number?",
      reclaimed: "number?",
      deactivated: "number?",
      priority: "number",
    },
  },
  "host.folio_references": {
    description: "Aging decision for one folio: young PTEs (host A bit OR secondary MMU) -> keep, activate or reclaim.",
    mirrors: "folio_check_references()",
    fields: { pfn: "number", referenced_ptes: "number", referenced: "number", decision: "string" },
  },
  "host.activate": {
    description: "A folio moves to the active list.",
    mirrors: "folio_activate() / shrink_folio_list() activate_locked",
    fields: { pfn: "number", nr: "number", why: "string" },
  },
  "host.rmap_walk": {
    description: "Reclaim follows the reverse map to the PTE: VMA lookup, then a page-table walk (reads counted).",
    mirrors: "rmap_walk_anon() + page_vma_mapped_walk()",
    fields: { pfn: "number", mm: "number", hva: "number", reads: "number" },
  },
  "host.notifier.start": {
    description: "Secondary MMUs are told a range is about to change; they drop their mappings.",
    mirrors: "mmu_notifier_invalidate_range_start()",
    fields: { mm: "number", start: "number", end: "number", event: "string" },
  },
  "host.notifier.end": {
    description: "The change is done; secondary MMUs may map the range again.",
    mirrors: "mmu_notifier_invalidate_range_end()",
    fields: { mm: "number", start: "number", end: "number", event: "string" },
  },
  "host.notifier.clear_flush_young": {
    description: "Aging asks secondary MMUs whether the range was accessed (and clears it).",
    mirrors: "mmu_notifier_clear_flush_young()",
    fields: { mm: "number", start: "number", end: "number", young: "number" },
  },
  "host.notifier.release": {
    description: "The mm is going away: secondary MMUs drop everything.",
    mirrors: "mmu_notifier_release()",
    fields: { mm: "number" },
  },
  "host.swap_alloc": {
    description: "A swap slot is allocated and the page enters the swap cache.",
    mirrors: "add_to_swap()",
    fields: { pfn: "number", slot: "number", free: "number" },
  },
  "host.unmap": {
    description: "The PTE is cleared and replaced by a swap entry (or a clean lazyfree page is dropped).",
    mirrors: "try_to_unmap_one()",
    fields: { pfn: "number", mm: "number", hva: "number", slot: "number", ok: "number" },
  },
  "host.swap_out": {
    description: "The page's content is written to its swap slot.",
    mirrors: "swap_writepage()",
    fields: { pfn: "number", slot: "number", mm: "number", hva: "number" },
  },
  "host.swap_in": {
    description: "A page is read back from its swap slot into a new frame (major fault).",
    mirrors: "swap_read_folio()",
    fields: { pfn: "number", slot: "number" },
  },
  "host.swap_free": {
    description: "A swap slot becomes free.",
    mirrors: "swap_free() / put_swap_folio()",
    fields: { slot: "number", free: "number" },
  },
  "host.refault": {
    description: "A swapped-in page had been evicted: refault distance against the workingset.",
    mirrors: "workingset_refault()",
    fields: { pfn: "number", distance: "number", workingsetSize: "number", activate: "number" },
  },
  "host.free": {
    description: "A block goes back to the buddy allocator.",
    mirrors: "free_unref_page() / __free_pages()",
    fields: { pfn: "number", order: "number", free: "number" },
  },
  "host.oom": {
    description: "Nothing can be reclaimed: the OOM killer kills the largest process.",
    mirrors: "oom_kill_process()",
    fields: {
      victim: "number",
      name: "string",
      message: "string",
      invoker: "string",
      order: "number",
      rss: "number?",
      swapents: "number?",
    },
  },
} as const satisfies EventDecls;

export type HostEventMap = EventMapOf<typeof HOST_EVENTS>;
