// SPDX-License-Identifier: MIT
// The host's counters under their /proc/vmstat names (include/linux/vm_event_item.h,
// mmzone.h), declared once with a unit and a sentence. Cumulative events are the fields of
// VmEvents (count_vm_event()); the nr_* gauges are computed from the allocator, LRU and swap
// state by HostKernel.vmstat(); per-process counters are fields of Mm.

import { type CounterDecls, type Counters, counterList, counterStorage, zeroCounters } from "../hw/counters.js";

export const HOST_VM_EVENT_STATS = {
  pgfault: { kind: "cumulative", unit: "events", description: "Page faults handled by handle_mm_fault(), minor and major." },
  pgmajfault: { kind: "cumulative", unit: "events", description: "Page faults that needed I/O (a swap read)." },
  pgalloc_normal: { kind: "cumulative", unit: "pages", description: "Pages allocated from the buddy allocator." },
  pgfree: { kind: "cumulative", unit: "pages", description: "Pages freed to the buddy allocator." },
  pswpin: { kind: "cumulative", unit: "pages", description: "Pages read from swap." },
  pswpout: { kind: "cumulative", unit: "pages", description: "Pages written to swap." },
  pgscan_kswapd: { kind: "cumulative", unit: "pages", description: "Inactive-list pages scanned by kswapd." },
  pgscan_direct: { kind: "cumulative", unit: "pages", description: "Inactive-list pages scanned by direct reclaim." },
  pgsteal_kswapd: { kind: "cumulative", unit: "pages", description: "Pages reclaimed by kswapd." },
  pgsteal_direct: { kind: "cumulative", unit: "pages", description: "Pages reclaimed by direct reclaim." },
  pgactivate: { kind: "cumulative", unit: "pages", description: "Pages moved to the active list." },
  pgdeactivate: { kind: "cumulative", unit: "pages", description: "Pages moved from the active to the inactive list." },
  pgrefill: { kind: "cumulative", unit: "pages", description: "Active-list pages scanned by shrink_active_list()." },
  pglazyfree: { kind: "cumulative", unit: "pages", description: "Pages made lazyfree by MADV_FREE." },
  pglazyfreed: { kind: "cumulative", unit: "pages", description: "Lazyfree pages discarded by reclaim without swap." },
  pageoutrun: { kind: "cumulative", unit: "events", description: "kswapd balance_pgdat() runs." },
  allocstall_normal: { kind: "cumulative", unit: "events", description: "Allocations that entered direct reclaim." },
  workingset_refault_anon: {
    kind: "cumulative",
    unit: "pages",
    description: "Swapped-in pages that had been evicted (a shadow entry was found).",
  },
  workingset_activate_anon: {
    kind: "cumulative",
    unit: "pages",
    description: "Refaulted pages activated at once (refault distance within the workingset).",
  },
  workingset_restore_anon: { kind: "cumulative", unit: "pages", description: "Refaulted pages that were active before eviction." },
  swap_ra: { kind: "cumulative", unit: "pages", description: "Pages read by swap readahead beyond the faulting one." },
  swap_ra_hit: { kind: "cumulative", unit: "pages", description: "Readahead pages later used by a fault." },
  // issue 17: what the summary's swap-in sentence counts
  swap_cache_hit: {
    kind: "cumulative",
    unit: "pages",
    description: "Swap-ins that found the page still in the swap cache (do_swap_page() without I/O: a minor fault).",
    kernel: false,
  },
  wp_page_reuse: {
    kind: "cumulative",
    unit: "events",
    description: "Write faults on a read-only PTE of an exclusive anon page, made writable in place (do_wp_page() -> wp_page_reuse()).",
    kernel: false,
  },
  thp_fault_alloc: { kind: "cumulative", unit: "events", description: "Faults that mapped a newly allocated 2 MiB THP." },
  thp_fault_fallback: { kind: "cumulative", unit: "events", description: "Faults that wanted a THP but fell back to 4 KiB pages." },
  thp_split_pmd: { kind: "cumulative", unit: "events", description: "Huge PMDs split into 512 PTEs." },
  thp_split_page: { kind: "cumulative", unit: "events", description: "THPs split into 4 KiB pages." },
  thp_zero_page_alloc: { kind: "cumulative", unit: "events", description: "Huge zero page allocations." },
  thp_zero_page_alloc_failed: { kind: "cumulative", unit: "events", description: "Failed huge zero page allocations." },
  oom_kill: { kind: "cumulative", unit: "events", description: "Processes killed by the OOM killer." },
  rmap_walks: {
    kind: "cumulative",
    unit: "events",
    description: "Reverse-map walks made by reclaim (folio_referenced(), try_to_unmap()), one per mapping visited.",
    kernel: false,
  },
  rmap_walk_reads: {
    kind: "cumulative",
    unit: "references",
    description: "Page-table entries (pgd, pud, pmd, pte) read by those walks.",
    kernel: false,
  },
  swapin_cycles: { kind: "cumulative", unit: "cycles", description: "Cycles spent in swap reads (pswpin x swapInCycles).", kernel: false },
  swapout_cycles: {
    kind: "cumulative",
    unit: "cycles",
    description: "Cycles spent in swap writes (pswpout x swapOutCycles).",
    kernel: false,
  },
} as const satisfies CounterDecls;

export const HOST_VM_GAUGE_STATS = {
  nr_free_pages: { kind: "instant", unit: "pages", description: "Free pages in the buddy allocator." },
  nr_anon_pages: { kind: "instant", unit: "pages", description: "Anonymous pages mapped by some process (NR_ANON_MAPPED)." },
  nr_active_anon: { kind: "instant", unit: "pages", description: "Pages on the active anon LRU list." },
  nr_inactive_anon: { kind: "instant", unit: "pages", description: "Pages on the inactive anon LRU list." },
  nr_active_file: { kind: "instant", unit: "pages", description: "Pages on the active file LRU list (lazyfree anon only here)." },
  nr_inactive_file: { kind: "instant", unit: "pages", description: "Pages on the inactive file LRU list (lazyfree anon only here)." },
  nr_swapcached: { kind: "instant", unit: "pages", description: "Pages in the swap cache." },
  nr_page_table_pages: { kind: "instant", unit: "pages", description: "Pages holding host page tables (NR_PAGETABLE)." },
  nr_anon_transparent_hugepages: { kind: "instant", unit: "pages", description: "THPs (2 MiB each) mapped by a huge PMD." },
  nr_swap_pages: { kind: "instant", unit: "pages", description: "Free swap slots (get_nr_swap_pages())." },
  total_swap_pages: { kind: "instant", unit: "pages", description: "Usable swap slots." },
  committed_as: { kind: "instant", unit: "pages", description: "Committed virtual memory (vm_committed_as; MAP_NORESERVE excluded)." },
  nr_hugepages_2048kB: { kind: "instant", unit: "pages", description: "2 MiB hugetlb pool size (huge pages)." },
  free_hugepages_2048kB: { kind: "instant", unit: "pages", description: "Free 2 MiB hugetlb pages." },
  resv_hugepages_2048kB: { kind: "instant", unit: "pages", description: "Reserved, not yet faulted 2 MiB hugetlb pages." },
  nr_hugepages_1048576kB: { kind: "instant", unit: "pages", description: "1 GiB hugetlb pool size (huge pages)." },
  free_hugepages_1048576kB: { kind: "instant", unit: "pages", description: "Free 1 GiB hugetlb pages." },
  resv_hugepages_1048576kB: { kind: "instant", unit: "pages", description: "Reserved, not yet faulted 1 GiB hugetlb pages." },
  kswapd_running: { kind: "instant", unit: "events", description: "1 while kswapd is awake.", kernel: false },
} as const satisfies CounterDecls;

export const HOST_MM_STATS = {
  rss: { kind: "instant", unit: "pages", description: "Anonymous pages mapped (MM_ANONPAGES)." },
  rssZeroPage: { kind: "instant", unit: "pages", description: "PTEs mapping the shared zero page (not in rss).", kernel: false },
  swapents: { kind: "instant", unit: "pages", description: "Swap entries in the page tables (MM_SWAPENTS)." },
  hugetlbPages: { kind: "instant", unit: "pages", description: "hugetlb memory mapped, in 4 KiB pages." },
  pgtablesBytes: { kind: "instant", unit: "bytes", description: "Page-table memory (mm->pgtables_bytes)." },
  minFlt: { kind: "cumulative", unit: "events", description: "Minor faults of the process." },
  majFlt: { kind: "cumulative", unit: "events", description: "Major faults of the process." },
} as const satisfies CounterDecls;

export const HOST_VM_EVENTS = counterList(HOST_VM_EVENT_STATS);
export const HOST_VM_GAUGES = counterList(HOST_VM_GAUGE_STATS);
/** Every host counter, events then gauges. */
export const HOST_COUNTERS = [...HOST_VM_EVENTS, ...HOST_VM_GAUGES];
/** Per-process counters (Mm fields), for printers. */
export const HOST_MM_COUNTERS = counterList(HOST_MM_STATS);

/** Cumulative event counters (count_vm_event()), under the Linux names. */
export type VmEvents = Counters<typeof HOST_VM_EVENT_STATS>;
export type VmGauges = Counters<typeof HOST_VM_GAUGE_STATS>;
/** What /proc/vmstat shows: the events, then the gauges. */
export type VmStatValues = VmEvents & VmGauges;

export const newVmEvents: () => VmEvents = counterStorage(zeroCounters(HOST_VM_EVENT_STATS));
