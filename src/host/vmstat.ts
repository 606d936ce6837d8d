// SPDX-License-Identifier: MIT
// The host's counters under their /proc/vmstat names (include/linux/vm_event_item.h,
// mmzone.h), declared once with a unit and a sentence. Cumulative events live in VmEvents;
// the nr_* gauges are computed from the allocator, LRU and swap state by HostKernel.vmstat().

import type { CounterDesc } from "../hw/counters.js";

/** Cumulative event counters (count_vm_event()). Field names are the Linux names. */
export class VmEvents {
  pgfault = 0;
  pgmajfault = 0;
  pgalloc_normal = 0;
  pgfree = 0;
  pswpin = 0;
  pswpout = 0;
  pgscan_kswapd = 0;
  pgscan_direct = 0;
  pgsteal_kswapd = 0;
  pgsteal_direct = 0;
  pgactivate = 0;
  pgdeactivate = 0;
  pgrefill = 0;
  pglazyfree = 0;
  pglazyfreed = 0;
  pageoutrun = 0;
  allocstall_normal = 0;
  workingset_refault_anon = 0;
  workingset_activate_anon = 0;
  workingset_restore_anon = 0;
  swap_ra = 0;
  swap_ra_hit = 0;
  thp_fault_alloc = 0;
  thp_fault_fallback = 0;
  thp_split_pmd = 0;
  thp_split_page = 0;
  thp_zero_page_alloc = 0;
  thp_zero_page_alloc_failed = 0;
  oom_kill = 0;
  /** Not in Linux: rmap walks made by reclaim (folio_referenced / try_to_unmap), one per mapping visited. */
  rmap_walks = 0;
  /** Not in Linux: page-table entries read by those walks (pgd, pud, pmd, pte). */
  rmap_walk_reads = 0;
  /** Not in Linux: cycles spent in swap reads (pswpin x swapInCycles). */
  swapin_cycles = 0;
  /** Not in Linux: cycles spent in swap writes (pswpout x swapOutCycles). */
  swapout_cycles = 0;
}

export const HOST_VM_EVENTS: readonly CounterDesc[] = [
  { name: "pgfault", kind: "cumulative", unit: "events", description: "Page faults handled by handle_mm_fault(), minor and major." },
  { name: "pgmajfault", kind: "cumulative", unit: "events", description: "Page faults that needed I/O (a swap read)." },
  { name: "pgalloc_normal", kind: "cumulative", unit: "pages", description: "Pages allocated from the buddy allocator." },
  { name: "pgfree", kind: "cumulative", unit: "pages", description: "Pages freed to the buddy allocator." },
  { name: "pswpin", kind: "cumulative", unit: "pages", description: "Pages read from swap." },
  { name: "pswpout", kind: "cumulative", unit: "pages", description: "Pages written to swap." },
  { name: "pgscan_kswapd", kind: "cumulative", unit: "pages", description: "Inactive-list pages scanned by kswapd." },
  { name: "pgscan_direct", kind: "cumulative", unit: "pages", description: "Inactive-list pages scanned by direct reclaim." },
  { name: "pgsteal_kswapd", kind: "cumulative", unit: "pages", description: "Pages reclaimed by kswapd." },
  { name: "pgsteal_direct", kind: "cumulative", unit: "pages", description: "Pages reclaimed by direct reclaim." },
  { name: "pgactivate", kind: "cumulative", unit: "pages", description: "Pages moved to the active list." },
  { name: "pgdeactivate", kind: "cumulative", unit: "pages", description: "Pages moved from the active to the inactive list." },
  { name: "pgrefill", kind: "cumulative", unit: "pages", description: "Active-list pages scanned by shrink_active_list()." },
  { name: "pglazyfree", kind: "cumulative", unit: "pages", description: "Pages made lazyfree by MADV_FREE." },
  { name: "pglazyfreed", kind: "cumulative", unit: "pages", description: "Lazyfree pages discarded by reclaim without swap." },
  { name: "pageoutrun", kind: "cumulative", unit: "events", description: "kswapd balance_pgdat() runs." },
  { name: "allocstall_normal", kind: "cumulative", unit: "events", description: "Allocations that entered direct reclaim." },
  {
    name: "workingset_refault_anon",
    kind: "cumulative",
    unit: "pages",
    description: "Swapped-in pages that had been evicted (a shadow entry was found).",
  },
  {
    name: "workingset_activate_anon",
    kind: "cumulative",
    unit: "pages",
    description: "Refaulted pages activated at once (refault distance within the workingset).",
  },
  { name: "workingset_restore_anon", kind: "cumulative", unit: "pages", description: "Refaulted pages that were active before eviction." },
  { name: "swap_ra", kind: "cumulative", unit: "pages", description: "Pages read by swap readahead beyond the faulting one." },
  { name: "swap_ra_hit", kind: "cumulative", unit: "pages", description: "Readahead pages later used by a fault." },
  { name: "thp_fault_alloc", kind: "cumulative", unit: "events", description: "Faults that mapped a newly allocated 2 MiB THP." },
  { name: "thp_fault_fallback", kind: "cumulative", unit: "events", description: "Faults that wanted a THP but fell back to 4 KiB pages." },
  { name: "thp_split_pmd", kind: "cumulative", unit: "events", description: "Huge PMDs split into 512 PTEs." },
  { name: "thp_split_page", kind: "cumulative", unit: "events", description: "THPs split into 4 KiB pages." },
  { name: "thp_zero_page_alloc", kind: "cumulative", unit: "events", description: "Huge zero page allocations." },
  { name: "thp_zero_page_alloc_failed", kind: "cumulative", unit: "events", description: "Failed huge zero page allocations." },
  { name: "oom_kill", kind: "cumulative", unit: "events", description: "Processes killed by the OOM killer." },
  {
    name: "rmap_walks",
    kind: "cumulative",
    unit: "events",
    description: "Reverse-map walks from a page to its PTE (per mapping visited).",
  },
  { name: "rmap_walk_reads", kind: "cumulative", unit: "references", description: "Page-table entries read by reverse-map walks." },
  { name: "swapin_cycles", kind: "cumulative", unit: "cycles", description: "Cycles of swap reads (swapInCycles each)." },
  { name: "swapout_cycles", kind: "cumulative", unit: "cycles", description: "Cycles of swap writes (swapOutCycles each)." },
];

export const HOST_VM_GAUGES: readonly CounterDesc[] = [
  { name: "nr_free_pages", kind: "instant", unit: "pages", description: "Free pages in the buddy allocator." },
  { name: "nr_anon_pages", kind: "instant", unit: "pages", description: "Anonymous pages mapped by some process (NR_ANON_MAPPED)." },
  { name: "nr_active_anon", kind: "instant", unit: "pages", description: "Pages on the active anon LRU list." },
  { name: "nr_inactive_anon", kind: "instant", unit: "pages", description: "Pages on the inactive anon LRU list." },
  { name: "nr_active_file", kind: "instant", unit: "pages", description: "Pages on the active file LRU list (lazyfree anon only here)." },
  {
    name: "nr_inactive_file",
    kind: "instant",
    unit: "pages",
    description: "Pages on the inactive file LRU list (lazyfree anon only here).",
  },
  { name: "nr_swapcached", kind: "instant", unit: "pages", description: "Pages in the swap cache." },
  { name: "nr_page_table_pages", kind: "instant", unit: "pages", description: "Pages holding host page tables (NR_PAGETABLE)." },
  { name: "nr_anon_transparent_hugepages", kind: "instant", unit: "pages", description: "THPs (2 MiB each) mapped by a huge PMD." },
  { name: "nr_swap_pages", kind: "instant", unit: "pages", description: "Free swap slots (get_nr_swap_pages())." },
  { name: "total_swap_pages", kind: "instant", unit: "pages", description: "Usable swap slots." },
  {
    name: "committed_as",
    kind: "instant",
    unit: "pages",
    description: "Committed virtual memory (vm_committed_as; MAP_NORESERVE excluded).",
  },
  { name: "nr_hugepages_2048kB", kind: "instant", unit: "pages", description: "2 MiB hugetlb pool size (huge pages)." },
  { name: "free_hugepages_2048kB", kind: "instant", unit: "pages", description: "Free 2 MiB hugetlb pages." },
  { name: "resv_hugepages_2048kB", kind: "instant", unit: "pages", description: "Reserved, not yet faulted 2 MiB hugetlb pages." },
  { name: "nr_hugepages_1048576kB", kind: "instant", unit: "pages", description: "1 GiB hugetlb pool size (huge pages)." },
  { name: "free_hugepages_1048576kB", kind: "instant", unit: "pages", description: "Free 1 GiB hugetlb pages." },
  { name: "resv_hugepages_1048576kB", kind: "instant", unit: "pages", description: "Reserved, not yet faulted 1 GiB hugetlb pages." },
  { name: "kswapd_running", kind: "instant", unit: "events", description: "1 while kswapd is awake." },
];

/** Every host counter, events then gauges. */
export const HOST_COUNTERS: readonly CounterDesc[] = [...HOST_VM_EVENTS, ...HOST_VM_GAUGES];

/** Per-process counters (Mm fields), for printers. */
export const HOST_MM_COUNTERS: readonly CounterDesc[] = [
  { name: "rss", kind: "instant", unit: "pages", description: "Anonymous pages mapped (MM_ANONPAGES)." },
  { name: "rssZeroPage", kind: "instant", unit: "pages", description: "PTEs mapping the shared zero page (not in rss)." },
  { name: "swapents", kind: "instant", unit: "pages", description: "Swap entries in the page tables (MM_SWAPENTS)." },
  { name: "hugetlbPages", kind: "instant", unit: "pages", description: "hugetlb memory mapped, in 4 KiB pages." },
  { name: "pgtablesBytes", kind: "instant", unit: "bytes", description: "Page-table memory (mm->pgtables_bytes)." },
  { name: "minFlt", kind: "cumulative", unit: "events", description: "Minor faults of the process." },
  { name: "majFlt", kind: "cumulative", unit: "events", description: "Major faults of the process." },
];
