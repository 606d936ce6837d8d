// SPDX-License-Identifier: MIT
// The guest kernel's counters, declared once with a sentence each. Page counts are in 4 KiB
// pages, as /proc/vmstat reports them. Kernel-wide counters use the guest's /proc/vmstat names;
// per-process ones the /proc/<pid>/status and task_struct names.

import { type CounterDecls, type Counters, counterList, counterStorage, zeroCounters } from "../hw/counters.js";

export const GUEST_STATS = {
  pgfault: {
    kind: "cumulative",
    unit: "events",
    description: "Guest page faults that reached handle_mm_fault (a VMA allowed the access).",
  },
  segv: {
    kind: "cumulative",
    unit: "events",
    description: "Guest page faults that ended in SIGSEGV or SIGBUS (no VMA, or the VMA forbids the access).",
    kernel: false,
  },
  pgalloc: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages the guest's buddy allocator handed out (data, page tables, huge pages).",
  },
  pgfree: { kind: "cumulative", unit: "pages", description: "Pages returned to the guest's buddy allocator." },
  nr_free_pages: { kind: "instant", unit: "pages", description: "Free pages in the guest's buddy allocator." },
  nr_anon_pages: {
    kind: "instant",
    unit: "pages",
    description: "Guest anonymous 4 KiB pages mapped by some process (the zero page excluded).",
  },
  nr_page_table_pages: {
    kind: "instant",
    unit: "pages",
    description: "Guest page-table pages of all processes (the PGD included; the kernel's own excluded).",
  },
  nr_hugetlb_pages: {
    kind: "instant",
    unit: "pages",
    description: "Pages held by mapped guest huge pages (2 MiB = 512, 1 GiB = 262144).",
    kernel: false,
  },
  zero_page_maps: {
    kind: "cumulative",
    unit: "events",
    description: "Read faults answered by mapping the shared zero page read-only (do_anonymous_page).",
    kernel: false,
  },
  cow_faults: {
    kind: "cumulative",
    unit: "events",
    description: "Write faults that got a private page: from the zero page or a page-cache page (wp_page_copy, do_cow_fault).",
    kernel: false,
  },
  spurious_faults: {
    kind: "cumulative",
    unit: "events",
    description: "Faults on an entry that already allowed the access (stale TLB or another CPU fixed it).",
    kernel: false,
  },
  pteWrites: {
    kind: "cumulative",
    unit: "entries",
    description: "Guest page-table entry writes, every level (each is one guest memory write).",
    kernel: false,
  },
  pteReads: {
    kind: "cumulative",
    unit: "entries",
    description: "Guest page-table entry reads made by the guest kernel (not by the hardware walker).",
    kernel: false,
  },
  clearPages: {
    kind: "cumulative",
    unit: "pages",
    description: "4 KiB pages the guest zeroed (clear_page), for tables and data.",
    kernel: false,
  },
  cr3Loads: {
    kind: "cumulative",
    unit: "events",
    description: "MOV to CR3 by the guest kernel (context switches to a new mm, boot).",
    kernel: false,
  },
  ctxt: { kind: "cumulative", unit: "events", description: "Context switches (/proc/stat ctxt)." },
  nr_tlb_local_flush_one: {
    kind: "cumulative",
    unit: "events",
    description: "Single-page TLB invalidations (INVLPG) on the CPU that changed the tables.",
  },
  nr_tlb_local_flush_all: {
    kind: "cumulative",
    unit: "events",
    description: "Full TLB flushes (CR3 reload) on the CPU that changed the tables.",
  },
  nr_tlb_remote_flush: { kind: "cumulative", unit: "events", description: "TLB shootdowns sent to other CPUs running the same mm." },
  nr_tlb_remote_flush_received: {
    kind: "cumulative",
    unit: "events",
    description: "TLB shootdowns handled by a CPU on behalf of another.",
  },
  processes: { kind: "cumulative", unit: "events", description: "Processes created since boot (/proc/stat processes)." },
  nr_processes: { kind: "instant", unit: "events", description: "Live processes." },
  pgmajfault: {
    kind: "cumulative",
    unit: "events",
    description:
      "Faults that waited for the disk (VM_FAULT_MAJOR): a file page not in the page cache (filemap_fault), or with guest.swap a swap-in (do_swap_page).",
  },
  pgpgin: {
    kind: "cumulative",
    unit: "KiB",
    description: "Data read from the virtual disk, in KiB as /proc/vmstat shows it (sectors / 2): 4 per page.",
  },
  disk_reads: {
    kind: "cumulative",
    unit: "events",
    description: "Read requests completed by the virtual disk (/proc/diskstats reads).",
    kernel: false,
  },
  nr_file_pages: { kind: "instant", unit: "pages", description: "Pages in the guest's page cache (NR_FILE_PAGES)." },
  nr_mapped: { kind: "instant", unit: "pages", description: "Page-cache pages mapped by some process (NR_FILE_MAPPED)." },
  nr_dirty: {
    kind: "instant",
    unit: "pages",
    description: "Page-cache pages written through a shared mapping; never written back, so never reclaimed (NR_FILE_DIRTY).",
  },
  pgsteal_direct: {
    kind: "cumulative",
    unit: "pages",
    description:
      "Pages the guest freed in direct reclaim: clean page-cache pages when its buddy allocator ran out, and with guest.swap anonymous pages swapped out too.",
  },
  // ---- virtio-balloon and free page reporting
  balloon_inflate: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages the virtio-balloon driver took from the guest and gave to the host (BALLOON_INFLATE).",
  },
  balloon_deflate: {
    kind: "cumulative",
    unit: "pages",
    description: "Pages the virtio-balloon driver took back from the host and freed in the guest (BALLOON_DEFLATE).",
  },
  nr_balloon_pages: {
    kind: "instant",
    unit: "pages",
    description: "Pages in the balloon now (NR_BALLOON_PAGES, Linux 6.15+): the driver's num_pages, taken out of the guest's free memory.",
  },
  page_reporting_runs: {
    kind: "cumulative",
    unit: "events",
    description: "Runs of free page reporting's delayed work (page_reporting_process), 2 s after a reportable free.",
    kernel: false,
  },
  pages_reported: {
    kind: "cumulative",
    unit: "pages",
    description: "Free pages reported to the host in blocks of page_reporting_order or more, which QEMU then discarded.",
    kernel: false,
  },
} as const satisfies CounterDecls;

/** Per-process counters, fields of GuestProcess. */
export const GUEST_PROCESS_STATS = {
  RssAnon: { kind: "instant", unit: "pages", description: "Anonymous 4 KiB pages mapped (MM_ANONPAGES; zero-page mappings excluded)." },
  HugetlbPages: { kind: "instant", unit: "pages", description: "Pages held by the process's huge-page mappings (2 MiB = 512)." },
  VmPTE: { kind: "instant", unit: "pages", description: "Page-table pages of the process, the PGD included." },
  RssFile: { kind: "instant", unit: "pages", description: "Page-cache pages the process maps (MM_FILEPAGES)." },
  min_flt: {
    kind: "cumulative",
    unit: "events",
    description: "Page faults the process took that were fixed without disk I/O (task_struct min_flt).",
  },
  maj_flt: {
    kind: "cumulative",
    unit: "events",
    description: "Page faults that read a file page (or, with guest.swap, a swapped page) from the disk (task_struct maj_flt).",
  },
} as const satisfies CounterDecls;

/** The counters of a guest without a kernel (guest/selftest.ts): what its guest code did. */
export const SELFTEST_STATS = {
  pte_writes: { kind: "cumulative", unit: "entries", description: "Stores of the guest code to its PTEs (level-1 entries)." },
  pde_writes: { kind: "cumulative", unit: "entries", description: "Stores of the guest code to its PDEs (level-2 entries)." },
  invlpg: { kind: "cumulative", unit: "events", description: "INVLPG executed by the guest code." },
  cr3_loads: { kind: "cumulative", unit: "events", description: "MOV to CR3 executed by the guest code." },
  ucalls: { kind: "cumulative", unit: "events", description: "Syncs with the VMM (GUEST_SYNC ucalls: I/O exits that change nothing)." },
} as const satisfies CounterDecls;

export const GUEST_COUNTERS = counterList(GUEST_STATS);
export const GUEST_PROCESS_COUNTERS = counterList(GUEST_PROCESS_STATS);
export const SELFTEST_COUNTERS = counterList(SELFTEST_STATS);

export type GuestStats = Counters<typeof GUEST_STATS>;

export const newGuestStats: () => GuestStats = counterStorage(zeroCounters(GUEST_STATS));

export type SelftestStats = Counters<typeof SELFTEST_STATS>;

export const newSelftestStats: () => SelftestStats = counterStorage(zeroCounters(SELFTEST_STATS));
