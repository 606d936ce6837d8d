// SPDX-License-Identifier: MIT
// The event kinds the host mm emits (only while someone listens on the bus), each with
// the kernel function it stands for, so a narration of SEED-PATHS paths 1 and 5 can be
// written from the stream.

import type { EventKindDesc } from "../hw/events.js";

export const HOST_EVENT_KINDS: readonly EventKindDesc[] = [
  // Address spaces
  {
    kind: "host.process",
    description: "A host process (mm) is created with its top-level page table.",
    mirrors: "mm_alloc() / pgd_alloc()",
  },
  { kind: "host.mmap", description: "Anonymous memory is reserved as virtual address space; nothing is backed yet.", mirrors: "do_mmap()" },
  {
    kind: "host.munmap",
    description: "A range is unmapped: PTEs cleared, pages and swap slots freed, empty tables freed.",
    mirrors: "do_vmi_munmap() / unmap_region()",
  },
  {
    kind: "host.madvise",
    description: "madvise() on a range (dontneed, free, pageout, cold, hugepage, nohugepage).",
    mirrors: "do_madvise()",
  },
  { kind: "host.exit", description: "A process's mm is torn down and every page it held is freed.", mirrors: "exit_mmap()" },
  // Fault path (path 1 and path 4's host half)
  { kind: "host.fault", description: "A page fault enters the host mm for (mm, hva).", mirrors: "handle_mm_fault()" },
  {
    kind: "host.zero_page",
    description: "A read of untouched memory maps the shared zero page read-only (no RSS, no LRU).",
    mirrors: "do_anonymous_page() / set_huge_zero_folio()",
  },
  {
    kind: "host.page_alloc",
    description: "The buddy allocator hands out a block (purpose: anon, cow, pgtable, swapin, thp...).",
    mirrors: "__alloc_pages()",
  },
  {
    kind: "host.rmap_add",
    description: "The reverse map records where the anonymous page is mapped (mm, hva).",
    mirrors: "folio_add_new_anon_rmap()",
  },
  {
    kind: "host.rmap_remove",
    description: "A mapping of an anonymous page is removed from the reverse map.",
    mirrors: "folio_remove_rmap_pte()",
  },
  { kind: "host.lru_add", description: "A new page is put on the LRU (inactive anon since Linux 5.9).", mirrors: "folio_add_lru_vma()" },
  {
    kind: "host.cow",
    description: "A write after a zero-page read: a new page replaces the zero page, between notifier start and end.",
    mirrors: "wp_page_copy() / do_huge_zero_wp_pmd()",
  },
  {
    kind: "host.wp_reuse",
    description: "A write to a read-only mapping of an exclusive page makes it writable in place.",
    mirrors: "wp_page_reuse()",
  },
  {
    kind: "host.thp_alloc",
    description: "A 2 MiB transparent huge page is mapped by a huge PMD.",
    mirrors: "do_huge_pmd_anonymous_page()",
  },
  {
    kind: "host.thp_fallback",
    description: "No free 2 MiB block: the fault falls back to 4 KiB pages.",
    mirrors: "count_vm_event(THP_FAULT_FALLBACK)",
  },
  {
    kind: "host.thp_split",
    description: "A huge PMD is split into 512 PTEs (and its THP into 4 KiB pages).",
    mirrors: "__split_huge_pmd()",
  },
  { kind: "host.hugetlb_fault", description: "A hugetlb page from the pool is mapped at PMD or PUD level.", mirrors: "hugetlb_no_page()" },
  {
    kind: "host.swap_map",
    description: "A swapped-out page is mapped again (after a swap-cache hit or a read).",
    mirrors: "do_swap_page()",
  },
  // Reclaim (path 5)
  { kind: "host.kswapd_wake", description: "Free memory fell below the low watermark: kswapd is woken.", mirrors: "wakeup_kswapd()" },
  {
    kind: "host.kswapd_sleep",
    description: "Free memory is above the high watermark (or reclaim keeps failing): kswapd sleeps.",
    mirrors: "kswapd_try_to_sleep()",
  },
  {
    kind: "host.direct_reclaim",
    description: "Free memory fell below the min watermark: the allocating task reclaims itself.",
    mirrors: "__alloc_pages_direct_reclaim()",
  },
  {
    kind: "host.lru_scan",
    description: "A batch of folios isolated from an LRU tail and processed.",
    mirrors: "shrink_inactive_list() / shrink_active_list()",
  },
  {
    kind: "host.folio_references",
    description: "Aging decision for one folio: young PTEs (host A bit OR secondary MMU) -> keep, activate or reclaim.",
    mirrors: "folio_check_references()",
  },
  {
    kind: "host.activate",
    description: "A folio moves to the active list.",
    mirrors: "folio_activate() / shrink_folio_list() activate_locked",
  },
  {
    kind: "host.rmap_walk",
    description: "Reclaim follows the reverse map to the PTE: VMA lookup, then a page-table walk (reads counted).",
    mirrors: "rmap_walk_anon() + page_vma_mapped_walk()",
  },
  {
    kind: "host.notifier.start",
    description: "Secondary MMUs are told a range is about to change; they drop their mappings.",
    mirrors: "mmu_notifier_invalidate_range_start()",
  },
  {
    kind: "host.notifier.end",
    description: "The change is done; secondary MMUs may map the range again.",
    mirrors: "mmu_notifier_invalidate_range_end()",
  },
  {
    kind: "host.notifier.clear_flush_young",
    description: "Aging asks secondary MMUs whether the range was accessed (and clears it).",
    mirrors: "mmu_notifier_clear_flush_young()",
  },
  { kind: "host.notifier.clear_young", description: "Same without a TLB flush.", mirrors: "mmu_notifier_clear_young()" },
  { kind: "host.notifier.test_young", description: "A query of a secondary MMU's accessed state.", mirrors: "mmu_notifier_test_young()" },
  {
    kind: "host.notifier.release",
    description: "The mm is going away: secondary MMUs drop everything.",
    mirrors: "mmu_notifier_release()",
  },
  { kind: "host.swap_alloc", description: "A swap slot is allocated and the page enters the swap cache.", mirrors: "add_to_swap()" },
  {
    kind: "host.unmap",
    description: "The PTE is cleared and replaced by a swap entry (or a clean lazyfree page is dropped).",
    mirrors: "try_to_unmap_one()",
  },
  { kind: "host.swap_out", description: "The page's content is written to its swap slot.", mirrors: "swap_writepage()" },
  {
    kind: "host.swap_in",
    description: "A page is read back from its swap slot into a new frame (major fault).",
    mirrors: "swap_read_folio()",
  },
  { kind: "host.swap_free", description: "A swap slot becomes free.", mirrors: "swap_free() / put_swap_folio()" },
  {
    kind: "host.refault",
    description: "A swapped-in page had been evicted: refault distance against the workingset.",
    mirrors: "workingset_refault()",
  },
  { kind: "host.free", description: "A block goes back to the buddy allocator.", mirrors: "free_unref_page() / __free_pages()" },
  { kind: "host.oom", description: "Nothing can be reclaimed: the OOM killer kills the largest process.", mirrors: "oom_kill_process()" },
];
