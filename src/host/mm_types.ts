// SPDX-License-Identifier: MIT
// struct mm_struct and struct vm_area_struct (include/linux/mm_types.h) for the host
// processes: the VMM (QEMU) and anything else that competes for host memory.

import type { Counters } from "../hw/counters.js";
import { type MmuNotifier, MmuNotifierChain, type NotifierMm } from "./mmu_notifier.js";
import type { UserfaultfdCtx } from "./userfaultfd.js";
import type { HOST_MM_STATS } from "./vmstat.js";

/** vm_flags bits, with Linux's values (include/linux/mm.h). */
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_LOCKED = 0x2000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_HUGETLB = 0x400000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
/** MADV_MERGEABLE: ksmd may merge the VMA's pages (bit 31; tested with `& VM_MERGEABLE) !== 0`). */
export const VM_MERGEABLE = 0x80000000;

/** A private anonymous mapping [start, end). */
export class Vma {
  constructor(
    public start: number,
    public end: number,
    public flags: number,
    /** log2 of the hugetlb page size (21 or 30) for a MAP_HUGETLB mapping, else 0. */
    public hugetlbShift = 0,
    /** hugetlb pages reserved for this mapping and not yet faulted (the resv_map count). */
    public resv = 0,
  ) {}

  /** vma->vm_userfaultfd_ctx with VM_UFFD_MISSING: missing-page faults go to this uffd's reader. */
  uffd: UserfaultfdCtx | null = null;

  get length(): number {
    return this.end - this.start;
  }
}

/** One host process's address space. */
export class Mm implements NotifierMm, Counters<typeof HOST_MM_STATS> {
  /** VMAs sorted by start, non-overlapping (the maple tree). */
  readonly vmas: Vma[] = [];
  /** mm->notifier_subscriptions. */
  readonly notifiers = new MmuNotifierChain();
  /** MM_ANONPAGES: anonymous pages mapped (get_mm_counter(mm, MM_ANONPAGES)). */
  rss = 0;
  /** PTEs mapping the shared zero page (4 KiB units; a huge zero PMD counts 512). Not part of rss. */
  rssZeroPage = 0;
  /** MM_SWAPENTS: swap entries in the page tables. */
  swapents = 0;
  /** Pages of hugetlb memory mapped (4 KiB units). */
  hugetlbPages = 0;
  /** mm->pgtables_bytes: page-table pages (the top level, lower tables, deposited THP tables). */
  pgtablesBytes = 0;
  /** mm->total_vm in pages. */
  totalVm = 0;
  /** Page faults that completed without I/O (task min_flt). */
  minFlt = 0;
  /** Page faults that read from swap (task maj_flt). */
  majFlt = 0;
  /** Torn down (exit or OOM kill): no VMAs, no tables; every access fails. */
  dead = false;
  /** Page tables deposited for THP PMDs, keyed by the 2 MiB-aligned address (pgtable_trans_huge_deposit). */
  readonly deposited = new Map<number, number>();

  constructor(
    readonly id: number,
    readonly name: string,
    /** Frame of the top-level table (PML4), the mm's pgd. */
    public pgd: number,
  ) {}

  /** mmu_notifier_register(). Newest subscribers are called first. */
  registerNotifier(n: MmuNotifier): void {
    if (this.dead) throw new Error(`mm ${this.id} (${this.name}) is gone: cannot register an mmu_notifier`);
    this.notifiers.subscriptions.push(n);
  }

  /** find_vma() restricted to VMAs containing `addr` (vma_lookup()). */
  findVma(addr: number): Vma | undefined {
    const v = this.vmas;
    let lo = 0;
    let hi = v.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = v[mid]!;
      if (addr < m.start) hi = mid - 1;
      else if (addr >= m.end) lo = mid + 1;
      else return m;
    }
    return undefined;
  }

  /** Whether any VMA intersects [start, end). */
  overlaps(start: number, end: number): boolean {
    for (const v of this.vmas) if (v.start < end && start < v.end) return true;
    return false;
  }

  insertVma(vma: Vma): void {
    let i = 0;
    while (i < this.vmas.length && this.vmas[i]!.start < vma.start) i++;
    this.vmas.splice(i, 0, vma);
  }
}
