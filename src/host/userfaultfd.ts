// SPDX-License-Identifier: MIT
// userfaultfd in MISSING mode (fs/userfaultfd.c, mm/userfaultfd.c): UFFDIO_REGISTER marks the
// VMAs of a range (VM_UFFD_MISSING, vma->vm_userfaultfd_ctx); a fault on a none PTE there is
// handed to the process that reads the uffd (handle_userfault from do_anonymous_page) instead
// of being filled with a zero page or a new page; that reader resolves it with UFFDIO_COPY
// (a new page holding its data) or UFFDIO_ZEROPAGE, which wakes the faulting thread.
// simplified: the reader is called synchronously from the fault (the faulting thread's sleep
// is the reader's time, which the reader accounts); pages are placed 4 KiB at a time (a THP
// range faults at PMD level first, as do_huge_pmd_anonymous_page does); no hugetlb ranges, no
// WP or MINOR modes, no fork events.

import { PAGE_SIZE, tableIndex } from "../hw/addr.js";
import { type CounterDecls, type Counters, zeroCounters } from "../hw/counters.js";
import { frameHi, frameLo } from "../hw/x86_pte.js";
import type { HostKernel } from "./kernel.js";
import type { Mm, Vma } from "./mm_types.js";
import { GFP_HIGHUSER_MOVABLE, allocPages, freePages } from "./page_alloc.js";
import { PG_anon, PG_swapbacked } from "./page_flags.js";
import { PAGE_COPY_LO, PAGE_NX_HI, PAGE_RW_DIRTY_LO, _PAGE_SPECIAL } from "./pgtable.js";
import { folioAddLru } from "./swap.js";

/** UFFDIO_REGISTER_MODE_MISSING (include/uapi/linux/userfaultfd.h). */
export const UFFDIO_REGISTER_MODE_MISSING = 1;
/** vm_fault_t VM_FAULT_RETRY: handle_userfault() returns it once the reader woke the fault. */
const VM_FAULT_RETRY = 0x400;
const VM_FAULT_SIGBUS = 0x2;
const EEXIST = -17;
const ENOMEM = -12;
const ENOENT = -2;

/** memvirt's counters of one userfaultfd (Linux keeps none: these are what its reader would count). */
export const UFFD_STATS = {
  uffd_missing_faults: {
    kind: "cumulative",
    unit: "events",
    description: "Missing-page faults handed to the reader (handle_userfault() with VM_UFFD_MISSING).",
    kernel: false,
  },
  uffd_copy: { kind: "cumulative", unit: "pages", description: "Pages placed by UFFDIO_COPY.", kernel: false },
  uffd_zeropage: { kind: "cumulative", unit: "pages", description: "Zero pages mapped by UFFDIO_ZEROPAGE.", kernel: false },
  uffd_eexist: {
    kind: "cumulative",
    unit: "events",
    description: "UFFDIO_COPY / ZEROPAGE calls refused with -EEXIST (the page was already there).",
    kernel: false,
  },
} as const satisfies CounterDecls;

/** The process reading the uffd: it must resolve a fault on `addr` (page-aligned) with copy() or zeropage(). */
export interface UserfaultfdReader {
  missing(ctx: UserfaultfdCtx, addr: number, write: boolean): void;
}

/** struct userfaultfd_ctx: one uffd of one mm. */
export class UserfaultfdCtx {
  readonly stats: Counters<typeof UFFD_STATS> = zeroCounters(UFFD_STATS);
  constructor(
    readonly k: HostKernel,
    readonly mm: Mm,
    public reader: UserfaultfdReader,
  ) {}

  /** UFFDIO_REGISTER (userfaultfd_register()): every VMA of [start, start+len) must be anonymous 4 KiB memory. */
  register(start: number, len: number, mode: number): void {
    if (mode !== UFFDIO_REGISTER_MODE_MISSING) throw new RangeError(`UFFDIO_REGISTER: mode ${mode} is not modelled (MISSING only)`);
    for (let a = start; a < start + len; ) {
      const vma = this.mm.findVma(a);
      if (!vma) throw new RangeError(`UFFDIO_REGISTER: 0x${a.toString(16)} is not mapped in mm ${this.mm.id}`);
      if (vma.hugetlbShift !== 0) throw new RangeError("UFFDIO_REGISTER: hugetlb mappings are not modelled");
      vma.uffd = this;
      a = vma.end;
    }
  }

  /** UFFDIO_UNREGISTER: the range's faults are the kernel's again. */
  unregister(start: number, len: number): void {
    for (const vma of this.mm.vmas) if (vma.uffd === this && vma.start < start + len && start < vma.end) vma.uffd = null;
  }

  /** UFFDIO_COPY of one page (mfill_atomic_pte_copy()): a new anon page with frame `src`'s data at `dst`. */
  copy(dst: number, src: number): number {
    return this.place(dst, src);
  }

  /** UFFDIO_ZEROPAGE of one page (mfill_atomic_pte_zeropage()): the zero page, read-only. */
  zeropage(dst: number): number {
    return this.place(dst, -1);
  }

  /** mfill_atomic(): -EEXIST if something is mapped at dst already, else the PTE is installed (no notifier: it was none). */
  private place(dst: number, src: number): number {
    const k = this.k;
    const mm = this.mm;
    const pa = dst - (dst % PAGE_SIZE);
    const vma = mm.findVma(pa);
    if (!vma || vma.uffd !== this) return ENOENT;
    const pt = k.tableAlloc(mm, pa, 1);
    if (pt < 0) return ENOMEM;
    const idx = tableIndex(pa, 1);
    if (k.mem.readLo(pt, idx) !== 0 || k.mem.readHi(pt, idx) !== 0) {
      this.stats.uffd_eexist++;
      return EEXIST;
    }
    if (src < 0) {
      const z = k.zeroPfn;
      k.setEntry(mm, pt, idx, 1, pa, frameLo(z, PAGE_COPY_LO | _PAGE_SPECIAL), frameHi(z, PAGE_NX_HI));
      this.stats.uffd_zeropage++;
      if (k.bus.on) k.bus.emit("host.uffd_place", { mm: mm.id, hva: pa, pfn: z, zero: 1 });
      return 0;
    }
    const page = allocPages(k, 0, GFP_HIGHUSER_MOVABLE, "anon");
    if (page < 0 || mm.dead) return ENOMEM;
    k.mem.copyFrame(page, src);
    // Recheck after the allocation (it may have reclaimed): pte_none() under the lock.
    if (k.mem.readLo(pt, idx) !== 0 || k.mem.readHi(pt, idx) !== 0) {
      freePages(k, page, 0);
      this.stats.uffd_eexist++;
      return EEXIST;
    }
    k.meta.flags[page] = PG_anon | PG_swapbacked;
    k.setEntry(mm, pt, idx, 1, pa, frameLo(page, PAGE_RW_DIRTY_LO), frameHi(page, PAGE_NX_HI));
    folioAddLru(k, page);
    this.stats.uffd_copy++;
    if (k.bus.on) k.bus.emit("host.uffd_place", { mm: mm.id, hva: pa, pfn: page, zero: 0 });
    return 0;
  }
}

/** userfaultfd_missing(vma). */
export function userfaultfdMissing(vma: Vma | undefined): boolean {
  return vma !== undefined && vma.uffd !== null;
}

/**
 * handle_userfault(vmf, VM_UFFD_MISSING): the fault waits for the reader; VM_FAULT_RETRY once it
 * placed the page (the fault is retried and finds it), SIGBUS if the reader left it missing.
 */
export function handleUserfault(k: HostKernel, mm: Mm, vma: Vma, addr: number, write: boolean): number {
  const ctx = vma.uffd!;
  const pa = addr - (addr % PAGE_SIZE);
  ctx.stats.uffd_missing_faults++;
  if (k.bus.on) k.bus.emit("host.userfault", { mm: mm.id, hva: pa, write: write ? 1 : 0 });
  ctx.reader.missing(ctx, pa, write);
  k.walk(mm, pa);
  return k.wLo !== 0 || k.wHi !== 0 ? VM_FAULT_RETRY : VM_FAULT_SIGBUS;
}
