// SPDX-License-Identifier: MIT
// The guest's page-fault handler: do_user_addr_fault() (VMA lookup, access_error()) and
// handle_mm_fault() for private anonymous memory: do_anonymous_page() (zero page on a read,
// a cleared private page on a write), wp_page_copy() for a write to the zero page, the
// spurious-fault path, and hugetlb_fault() for 2 MiB / 1 GiB VMAs. Entries are left as Linux
// leaves them on x86: A preset (vm_page_prot has _PAGE_ACCESSED), D preset with RW.
//
// File mappings go through do_fault() (do_read_fault, do_cow_fault, do_shared_fault) and the
// page cache (filemap.ts); a write to a page-cache page mapped read-only by a private mapping
// is wp_page_copy(), by a shared one wp_page_shared().
//
// With guest.swap, a swap PTE is do_swap_page() (swap_state.ts) and new anonymous pages go on the LRU (vmscan.ts).
//
// simplified: no THP, no mprotect; no fault-around (filemap_map_pages): a file fault maps one page.
// simplified: a hugetlb page comes straight from the buddy allocator (no hugetlb pool, no reservation).

import { type Gfn, LEVEL_SIZE, PAGE_SIZE, alignDown } from "../hw/addr.js";
import type { EventBus } from "../hw/events.js";
import {
  PFERR_PK,
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_WRITE,
  PTE_A,
  PTE_D,
  PTE_HI_NX,
  PTE_P,
  PTE_PS,
  PTE_RW,
  frameHi,
  frameLo,
} from "../hw/x86_pte.js";
import type { CpuPort } from "../hw/cpu_port.js";
import type { GuestPageCache } from "./filemap.js";
import { ORDER_1G, ORDER_2M } from "./frame_alloc.js";
import type { GuestEventMap } from "./guest_events.js";
import { VM_EXEC, VM_READ, VM_SHARED, VM_WRITE, type Vma } from "./mm.js";
import { type GuestPgtable, PAGE_USER_RO, PTE_MKWRITE_DIRTY, PTE_SOFT_DIRTY, PTE_SPECIAL, leafPfn } from "./pgtable.js";
import type { GuestProcess } from "./process.js";
import type { GuestStats } from "./stats.js";
import type { GuestSwapState } from "./swap_state.js";
import type { GuestReclaim } from "./vmscan.js";
import type { GuestTlb } from "./tlb.js";

/** How a guest page fault ended: mapped, SIGSEGV, SIGBUS (no huge page left), or out of memory. */
export type FaultResult = "fixed" | "segv" | "sigbus" | "oom";

export interface FaultConfig {
  /** Map the shared zero page on read faults (default true; false is like mm_forbids_zeropage). */
  zeroPage: boolean;
  /** Exclusive top of user addresses (TASK_SIZE_MAX + 1 page). */
  taskSize: number;
}

export class GuestFaultHandler {
  /** The page cache file faults read through (the kernel sets it). */
  cache: GuestPageCache | null = null;
  /** Guest swap (guest.swap): swap-in and the anon LRU; null without swap. */
  swap: GuestSwapState | null = null;
  reclaim: GuestReclaim | null = null;
  /** The fault being handled read from the disk (VM_FAULT_MAJOR). */
  private major = false;

  constructor(
    private readonly pg: GuestPgtable,
    private readonly tlb: GuestTlb,
    private readonly stats: GuestStats,
    private readonly bus: EventBus<GuestEventMap>,
    private readonly config: FaultConfig,
    /** The guest frame of the zero page (empty_zero_page). */
    readonly zeroGfn: number,
  ) {}

  /** A #PF on CPU `cpu` while running `proc`: CR2 = `gva`, error code `errorCode` (PFERR_* bits). */
  handle(proc: GuestProcess, gva: number, errorCode: number, cpu: number): FaultResult {
    this.major = false;
    const result = this.doUserAddrFault(proc, gva, errorCode, cpu);
    // mm_account_fault(): a fault that waited for the disk is major.
    if (result === "fixed") {
      if (this.major) proc.maj_flt++;
      else proc.min_flt++;
    } else if (result !== "oom") this.stats.segv++;
    if (this.bus.on) this.bus.emit("guest.pgfault", { cpu, pid: proc.pid, gva, errorCode, result });
    return result;
  }

  private doUserAddrFault(proc: GuestProcess, gva: number, ec: number, cpu: number): FaultResult {
    if ((ec & PFERR_RSVD) !== 0) return "segv"; // pgtable_bad()
    if (gva < 0 || gva >= this.config.taskSize) return "segv";
    const vma = proc.findVma(gva);
    if (vma === null || accessError(ec, vma)) return "segv";
    this.stats.pgfault++;
    const port = this.tlb.cpus[cpu]!.port;
    if (vma.pageLevel > 1) return this.hugetlbFault(port, proc, vma, gva, ec);
    return this.handlePteFault(port, proc, vma, gva, ec, cpu);
  }

  /** __handle_mm_fault() + handle_pte_fault() for a 4 KiB anonymous VMA. */
  private handlePteFault(port: CpuPort, proc: GuestProcess, vma: Vma, gva: number, ec: number, cpu: number): FaultResult {
    const pg = this.pg;
    const write = (ec & PFERR_WRITE) !== 0;
    const page = alignDown(gva, 4096);
    const gpa = pg.walkAlloc(port, proc, page, 1);
    if (gpa < 0) return "oom";
    const lo = pg.lo;
    const hi = pg.hi;
    if ((lo & PTE_P) === 0) {
      if (lo !== 0 || hi !== 0) return this.swapIn(port, proc, vma, page, gpa, lo, hi, write);
      if (vma.file !== undefined) return this.doFault(port, proc, vma, page, gpa, write);
      return this.doAnonymousPage(port, proc, vma, page, gpa, write);
    }
    if (write && (lo & PTE_RW) === 0) return this.doWpPage(port, proc, vma, page, gpa, lo, hi, cpu);
    return this.spurious(port, proc, gpa, 1, page, lo, hi, write);
  }

  /** do_swap_page() for a swap PTE (a PTE with contents without swap is a bug). */
  private swapIn(
    port: CpuPort,
    proc: GuestProcess,
    vma: Vma,
    page: number,
    gpa: number,
    lo: number,
    hi: number,
    write: boolean,
  ): FaultResult {
    if (this.swap === null || this.reclaim === null) throw new Error("non-present guest PTE with contents, and no guest swap");
    if (!this.swap.doSwapPage(port, proc, vma, page, gpa, lo, hi, write, this.reclaim)) return "oom";
    this.major = true;
    return "fixed";
  }

  /** do_anonymous_page(). */
  private doAnonymousPage(port: CpuPort, proc: GuestProcess, vma: Vma, page: number, gpa: number, write: boolean): FaultResult {
    const nx = (vma.flags & VM_EXEC) === 0 ? PTE_HI_NX : 0;
    if (!write && this.config.zeroPage) {
      // pte_mkspecial(pfn_pte(my_zero_pfn(addr), vma->vm_page_prot)): read-only, no RSS.
      this.pg.setEntry(port, proc, gpa, 1, page, 0, 0, frameLo(this.zeroGfn, PAGE_USER_RO | PTE_SPECIAL), frameHi(this.zeroGfn, nx));
      this.stats.zero_page_maps++;
      return "fixed";
    }
    const gfn = this.pg.allocPages(port, 0);
    if (gfn < 0) return "oom";
    const flags = PAGE_USER_RO | ((vma.flags & VM_WRITE) !== 0 ? PTE_MKWRITE_DIRTY : 0);
    this.pg.setEntry(port, proc, gpa, 1, page, 0, 0, frameLo(gfn, flags), frameHi(gfn, nx));
    proc.RssAnon++;
    this.reclaim?.addAnon(gfn, proc, page);
    this.stats.nr_anon_pages++;
    return "fixed";
  }

  /** do_fault(): a file page not yet mapped here: do_read_fault(), do_cow_fault() or do_shared_fault(). */
  private doFault(port: CpuPort, proc: GuestProcess, vma: Vma, page: number, gpa: number, write: boolean): FaultResult {
    const file = vma.file!;
    const cache = this.cache!;
    const index = (vma.pgoff ?? 0) + (page - vma.start) / PAGE_SIZE;
    if (index >= Math.ceil(file.size / PAGE_SIZE)) return "sigbus"; // filemap_fault(): index >= max_idx
    const got = cache.fault(port, file, index);
    if (got === null) return "oom";
    if (got.major) this.major = true;
    const src = got.gfn;
    const nx = (vma.flags & VM_EXEC) === 0 ? PTE_HI_NX : 0;
    if (write && (vma.flags & VM_SHARED) === 0) {
      // do_cow_fault(): a private copy of the cache page (copy_user_highpage), mapped writable; the cache page is not mapped.
      const gfn = this.allocCopy(port, src);
      if (gfn < 0) return "oom";
      this.pg.setEntry(port, proc, gpa, 1, page, 0, 0, frameLo(gfn, PAGE_USER_RO | PTE_MKWRITE_DIRTY), frameHi(gfn, nx));
      proc.RssAnon++;
      this.reclaim?.addAnon(gfn, proc, page);
      this.stats.nr_anon_pages++;
      this.stats.cow_faults++;
      return "fixed";
    }
    // finish_fault() -> set_pte_range(): the cache page itself, read-only for a read (the
    // private mapping's PAGE_COPY; a shared one is write-notify), writable and dirty for a
    // shared write (do_shared_fault(): fault_dirty_shared_page()).
    let flags = PAGE_USER_RO;
    if (write) {
      flags |= PTE_MKWRITE_DIRTY;
      cache.markDirty(src);
    }
    this.pg.setEntry(port, proc, gpa, 1, page, 0, 0, frameLo(src, flags), frameHi(src, nx));
    cache.mapped(src);
    proc.RssFile++;
    return "fixed";
  }

  /** A page for a private copy of `src`, not cleared but copied into; `src` is held against reclaim meanwhile. -1 if none. */
  private allocCopy(port: CpuPort, src: number): number {
    const cache = this.cache!;
    cache.locked = src;
    const gfn = this.pg.allocPages(port, 0, false);
    cache.locked = -1;
    if (gfn >= 0) port.copyPage(gfn as Gfn, src as Gfn);
    return gfn;
  }

  /** do_wp_page(): a write to a read-only PTE of a writable VMA. */
  private doWpPage(
    port: CpuPort,
    proc: GuestProcess,
    vma: Vma,
    page: number,
    gpa: number,
    lo: number,
    hi: number,
    cpu: number,
  ): FaultResult {
    const pg = this.pg;
    const pfn = leafPfn(lo, hi, 1);
    if (vma.file !== undefined && this.cache!.isCachePage(pfn)) return this.wpFilePage(port, proc, vma, page, gpa, lo, hi, pfn, cpu);
    if (pfn !== this.zeroGfn) {
      // wp_page_reuse(): the page is ours alone, make it writable in place.
      pg.setEntry(port, proc, gpa, 1, page, lo, hi, (lo | PTE_A | PTE_MKWRITE_DIRTY) >>> 0, hi);
      return "fixed";
    }
    // wp_page_copy() from the zero page: a cleared page, ptep_clear_flush(), set_pte_at().
    const gfn = pg.allocPages(port, 0);
    if (gfn < 0) return "oom";
    pg.setEntry(port, proc, gpa, 1, page, lo, hi, 0, 0);
    this.tlb.flushTlbPage(cpu, proc, page);
    const nx = (vma.flags & VM_EXEC) === 0 ? PTE_HI_NX : 0;
    pg.setEntry(port, proc, gpa, 1, page, 0, 0, frameLo(gfn, PAGE_USER_RO | PTE_MKWRITE_DIRTY), frameHi(gfn, nx));
    proc.RssAnon++;
    this.reclaim?.addAnon(gfn, proc, page);
    this.stats.nr_anon_pages++;
    this.stats.cow_faults++;
    return "fixed";
  }

  /** do_wp_page() on a page-cache page: wp_page_shared() for a shared mapping, wp_page_copy() for a private one. */
  private wpFilePage(
    port: CpuPort,
    proc: GuestProcess,
    vma: Vma,
    page: number,
    gpa: number,
    lo: number,
    hi: number,
    src: number,
    cpu: number,
  ): FaultResult {
    const pg = this.pg;
    const cache = this.cache!;
    if ((vma.flags & VM_SHARED) !== 0) {
      // wp_page_shared(): the page becomes writable in place and dirty (fault_dirty_shared_page).
      pg.setEntry(port, proc, gpa, 1, page, lo, hi, (lo | PTE_A | PTE_MKWRITE_DIRTY) >>> 0, hi);
      cache.markDirty(src);
      return "fixed";
    }
    // wp_page_copy(): copy the cache page, ptep_clear_flush(), set_pte_at() the copy.
    const gfn = this.allocCopy(port, src);
    if (gfn < 0) return "oom";
    pg.setEntry(port, proc, gpa, 1, page, lo, hi, 0, 0);
    this.tlb.flushTlbPage(cpu, proc, page);
    const nx = (vma.flags & VM_EXEC) === 0 ? PTE_HI_NX : 0;
    pg.setEntry(port, proc, gpa, 1, page, 0, 0, frameLo(gfn, PAGE_USER_RO | PTE_MKWRITE_DIRTY), frameHi(gfn, nx));
    cache.unmapped(src);
    proc.RssFile--;
    proc.RssAnon++;
    this.reclaim?.addAnon(gfn, proc, page);
    this.stats.nr_anon_pages++;
    this.stats.cow_faults++;
    return "fixed";
  }

  /** The entry already allows the access: ptep_set_access_flags(), which on x86 writes only for a write fault. */
  private spurious(
    port: CpuPort,
    proc: GuestProcess,
    gpa: number,
    level: number,
    addr: number,
    lo: number,
    hi: number,
    write: boolean,
  ): FaultResult {
    this.stats.spurious_faults++;
    const newLo = (lo | PTE_A | (write ? PTE_D | PTE_SOFT_DIRTY : 0)) >>> 0;
    if (write && newLo !== lo) this.pg.setEntry(port, proc, gpa, level, addr, lo, hi, newLo, hi);
    return "fixed";
  }

  /** hugetlb_fault() -> hugetlb_no_page() / hugetlb_wp(). */
  private hugetlbFault(port: CpuPort, proc: GuestProcess, vma: Vma, gva: number, ec: number): FaultResult {
    const pg = this.pg;
    const level = vma.pageLevel;
    const size = LEVEL_SIZE[level]!;
    const haddr = alignDown(gva, size);
    const write = (ec & PFERR_WRITE) !== 0;
    const gpa = pg.walkAlloc(port, proc, haddr, level);
    if (gpa < 0) return "oom";
    const lo = pg.lo;
    const hi = pg.hi;
    if ((lo & PTE_P) === 0) {
      if (lo !== 0 || hi !== 0) throw new Error("non-present guest huge entry with contents: not modelled");
      const gfn = pg.allocPages(port, level === 2 ? ORDER_2M : ORDER_1G); // alloc_hugetlb_folio + clear_huge_page
      if (gfn < 0) return "sigbus";
      const nx = (vma.flags & VM_EXEC) === 0 ? PTE_HI_NX : 0;
      // make_huge_pte(vma, page, writable = VM_SHARED && VM_WRITE): a private mapping starts read-only.
      const newLo = frameLo(gfn, PAGE_USER_RO | PTE_PS);
      const newHi = frameHi(gfn, nx);
      pg.setEntry(port, proc, gpa, level, haddr, 0, 0, newLo, newHi);
      const pages = size / 4096;
      proc.HugetlbPages += pages;
      this.stats.nr_hugetlb_pages += pages;
      // "Optimization, do the COW without a second fault": hugetlb_wp() reuses the page, set_huge_ptep_writable().
      if (write) pg.setEntry(port, proc, gpa, level, haddr, newLo, newHi, (newLo | PTE_MKWRITE_DIRTY) >>> 0, newHi);
      return "fixed";
    }
    if (write && (lo & PTE_RW) === 0) {
      pg.setEntry(port, proc, gpa, level, haddr, lo, hi, (lo | PTE_A | PTE_MKWRITE_DIRTY) >>> 0, hi);
      return "fixed";
    }
    return this.spurious(port, proc, gpa, level, haddr, lo, hi, write);
  }
}

/** access_error(): may this VMA take this fault at all? */
function accessError(ec: number, vma: Vma): boolean {
  if ((ec & PFERR_PK) !== 0) return true;
  if ((ec & PFERR_WRITE) !== 0) return (vma.flags & VM_WRITE) === 0;
  if ((ec & PFERR_PRESENT) !== 0) return true;
  return (vma.flags & (VM_READ | VM_WRITE | VM_EXEC)) === 0;
}
