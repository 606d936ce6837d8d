// SPDX-License-Identifier: MIT
// The guest kernel's counters and event kinds, declared once with a sentence each. Page counts
// are in 4 KiB pages, as /proc/vmstat reports them. Kernel-wide counters use the guest's
// /proc/vmstat names; per-process ones the /proc/<pid>/status and task_struct names.

import type { CounterDesc } from "../hw/counters.js";
import type { EventKindDesc } from "../hw/events.js";

export class GuestStats {
  pgfault = 0;
  segv = 0;
  pgalloc = 0;
  pgfree = 0;
  nr_free_pages = 0;
  nr_anon_pages = 0;
  nr_page_table_pages = 0;
  nr_hugetlb_pages = 0;
  zero_page_maps = 0;
  cow_faults = 0;
  spurious_faults = 0;
  pteWrites = 0;
  pteReads = 0;
  clearPages = 0;
  cr3Loads = 0;
  ctxt = 0;
  nr_tlb_local_flush_one = 0;
  nr_tlb_local_flush_all = 0;
  nr_tlb_remote_flush = 0;
  nr_tlb_remote_flush_received = 0;
  processes = 0;
  nr_processes = 0;
  // Page cache (filemap.ts).
  pgmajfault = 0;
  pgpgin = 0;
  disk_reads = 0;
  nr_file_pages = 0;
  nr_mapped = 0;
  nr_dirty = 0;
  pgsteal_direct = 0;

  toJSON(): Record<string, number> {
    return { ...this } as unknown as Record<string, number>;
  }
}

export const GUEST_COUNTERS: readonly CounterDesc[] = [
  {
    name: "pgfault",
    kind: "cumulative",
    unit: "events",
    description: "Guest page faults that reached handle_mm_fault (a VMA allowed the access).",
  },
  {
    name: "segv",
    kind: "cumulative",
    unit: "events",
    description: "Guest page faults that ended in SIGSEGV or SIGBUS (no VMA, or the VMA forbids the access).",
  },
  {
    name: "pgalloc",
    kind: "cumulative",
    unit: "pages",
    description: "Pages the guest's buddy allocator handed out (data, page tables, huge pages).",
  },
  { name: "pgfree", kind: "cumulative", unit: "pages", description: "Pages returned to the guest's buddy allocator." },
  { name: "nr_free_pages", kind: "instant", unit: "pages", description: "Free pages in the guest's buddy allocator." },
  {
    name: "nr_anon_pages",
    kind: "instant",
    unit: "pages",
    description: "Guest anonymous 4 KiB pages mapped by some process (the zero page excluded).",
  },
  {
    name: "nr_page_table_pages",
    kind: "instant",
    unit: "pages",
    description: "Guest page-table pages of all processes (the PGD included; the kernel's own excluded).",
  },
  {
    name: "nr_hugetlb_pages",
    kind: "instant",
    unit: "pages",
    description: "Pages held by mapped guest huge pages (2 MiB = 512, 1 GiB = 262144).",
  },
  {
    name: "zero_page_maps",
    kind: "cumulative",
    unit: "events",
    description: "Read faults answered by mapping the shared zero page read-only (do_anonymous_page).",
  },
  {
    name: "cow_faults",
    kind: "cumulative",
    unit: "events",
    description: "Write faults that got a private page: from the zero page or a page-cache page (wp_page_copy, do_cow_fault).",
  },
  {
    name: "spurious_faults",
    kind: "cumulative",
    unit: "events",
    description: "Faults on an entry that already allowed the access (stale TLB or another CPU fixed it).",
  },
  {
    name: "pteWrites",
    kind: "cumulative",
    unit: "entries",
    description: "Guest page-table entry writes, every level (each is one guest memory write).",
  },
  {
    name: "pteReads",
    kind: "cumulative",
    unit: "entries",
    description: "Guest page-table entry reads made by the guest kernel (not by the hardware walker).",
  },
  { name: "clearPages", kind: "cumulative", unit: "pages", description: "4 KiB pages the guest zeroed (clear_page), for tables and data." },
  {
    name: "cr3Loads",
    kind: "cumulative",
    unit: "events",
    description: "MOV to CR3 by the guest kernel (context switches to a new mm, boot).",
  },
  { name: "ctxt", kind: "cumulative", unit: "events", description: "Context switches (/proc/stat ctxt)." },
  {
    name: "nr_tlb_local_flush_one",
    kind: "cumulative",
    unit: "events",
    description: "Single-page TLB invalidations (INVLPG) on the CPU that changed the tables.",
  },
  {
    name: "nr_tlb_local_flush_all",
    kind: "cumulative",
    unit: "events",
    description: "Full TLB flushes (CR3 reload) on the CPU that changed the tables.",
  },
  {
    name: "nr_tlb_remote_flush",
    kind: "cumulative",
    unit: "events",
    description: "TLB shootdowns sent to other CPUs running the same mm.",
  },
  {
    name: "nr_tlb_remote_flush_received",
    kind: "cumulative",
    unit: "events",
    description: "TLB shootdowns handled by a CPU on behalf of another.",
  },
  { name: "processes", kind: "cumulative", unit: "events", description: "Processes created since boot (/proc/stat processes)." },
  { name: "nr_processes", kind: "instant", unit: "events", description: "Live processes." },
  // Page cache.
  {
    name: "pgmajfault",
    kind: "cumulative",
    unit: "events",
    description: "Faults on a file page that was not in the page cache and had to be read from the disk (filemap_fault, VM_FAULT_MAJOR).",
  },
  {
    name: "pgpgin",
    kind: "cumulative",
    unit: "KiB",
    description: "Data read from the virtual disk, in KiB as /proc/vmstat shows it (sectors / 2): 4 per page.",
  },
  {
    name: "disk_reads",
    kind: "cumulative",
    unit: "events",
    description: "Read requests completed by the virtual disk (/proc/diskstats reads).",
  },
  { name: "nr_file_pages", kind: "instant", unit: "pages", description: "Pages in the guest's page cache (NR_FILE_PAGES)." },
  { name: "nr_mapped", kind: "instant", unit: "pages", description: "Page-cache pages mapped by some process (NR_FILE_MAPPED)." },
  {
    name: "nr_dirty",
    kind: "instant",
    unit: "pages",
    description: "Page-cache pages written through a shared mapping; never written back, so never reclaimed (NR_FILE_DIRTY).",
  },
  {
    name: "pgsteal_direct",
    kind: "cumulative",
    unit: "pages",
    description: "Clean page-cache pages the guest dropped in direct reclaim when its buddy allocator ran out.",
  },
];

/** Per-process counters, fields of GuestProcess. */
export const GUEST_PROCESS_COUNTERS: readonly CounterDesc[] = [
  {
    name: "RssAnon",
    kind: "instant",
    unit: "pages",
    description: "Anonymous 4 KiB pages mapped (MM_ANONPAGES; zero-page mappings excluded).",
  },
  { name: "HugetlbPages", kind: "instant", unit: "pages", description: "Pages held by the process's huge-page mappings (2 MiB = 512)." },
  { name: "VmPTE", kind: "instant", unit: "pages", description: "Page-table pages of the process, the PGD included." },
  { name: "RssFile", kind: "instant", unit: "pages", description: "Page-cache pages the process maps (MM_FILEPAGES)." },
  {
    name: "min_flt",
    kind: "cumulative",
    unit: "events",
    description: "Page faults the process took that were fixed without disk I/O (task_struct min_flt).",
  },
  {
    name: "maj_flt",
    kind: "cumulative",
    unit: "events",
    description: "Page faults that read a file page from the disk (task_struct maj_flt).",
  },
];

export const GUEST_EVENT_KINDS: readonly EventKindDesc[] = [
  {
    kind: "guest.pgfault",
    description: "The guest kernel handled a page fault: pid, gva, errorCode, result.",
    mirrors: "do_user_addr_fault() / handle_mm_fault()",
  },
  {
    kind: "guest.pte_write",
    description: "The guest wrote one page-table entry into guest RAM: pid, gpa, level, gva it maps, lo, hi.",
    mirrors: "set_pte_at() / pmd_populate() / pte_clear()",
  },
  {
    kind: "guest.cr3_load",
    description: "The guest loaded CR3 on a CPU: cpu, pid, root gfn, pcid, noFlush.",
    mirrors: "switch_mm_irqs_off() -> load_new_mm_cr3()",
  },
  { kind: "guest.invlpg", description: "The guest invalidated one page in a CPU's TLB: cpu, gva.", mirrors: "flush_tlb_one_user()" },
  { kind: "guest.tlb_flush", description: "The guest flushed a CPU's TLB for the current PCID: cpu, pid.", mirrors: "flush_tlb_local()" },
  { kind: "guest.process_create", description: "A guest process was created: pid, PGD gfn.", mirrors: "mm_alloc() / pgd_alloc()" },
  {
    kind: "guest.process_exit",
    description: "A guest process exited and freed its memory: pid, pages freed.",
    mirrors: "exit_mmap() / pgd_free()",
  },
  {
    kind: "guest.page_cache_read",
    description: "The guest read a file page from its virtual disk into a new page-cache frame: ino, file, index, gfn.",
    mirrors: "filemap_fault() -> filemap_read_folio()",
  },
  {
    kind: "guest.page_cache_drop",
    description: "Direct reclaim dropped a clean page-cache page (unmapping it first): ino, file, index, gfn.",
    mirrors: "shrink_folio_list() -> try_to_unmap() / __remove_mapping()",
  },
];
