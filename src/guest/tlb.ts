// SPDX-License-Identifier: MIT
// The guest's TLB management, after arch/x86/mm/tlb.c and mm/mmu_gather.c: per-CPU PCID slots
// (choose_new_asid), switch_mm_irqs_off(), flush_tlb_mm_range() with Linux's single-page
// ceiling, flush_tlb_func() on the local and remote CPUs, and the mmu_gather that collects an
// unmap's range and the pages to free after the flush.
//
// simplified: no PTI: one PCID per mm (asid + 1), no user/kernel PCID pair.
// simplified: no lazy-TLB mode except for an exiting mm; mm_cpumask = the CPUs that have the mm loaded.
// simplified: the shootdown IPI is not modelled; the remote CPU's flush goes straight through its port.
// simplified: one flush per unmap (no mid-unmap flush when the mmu_gather page batches fill up).

import { type Gfn, type Gva, LEVEL_SIZE, PAGE_SIZE } from "../hw/addr.js";
import type { EventBus } from "../hw/events.js";
import type { CpuPort } from "../hw/cpu_port.js";
import type { GuestEventMap } from "./guest_events.js";
import type { MmStruct } from "./mm.js";
import type { GuestStats } from "./stats.js";

/** TLB_NR_DYN_ASIDS: PCID slots per CPU. */
export const TLB_NR_DYN_ASIDS = 6;
/** tlb_single_page_flush_ceiling: more pages than this and a range flush becomes a full flush. */
export const TLB_SINGLE_PAGE_FLUSH_CEILING = 33;
/** TLB_FLUSH_ALL. */
export const TLB_FLUSH_ALL = -1;

/** One guest CPU: its port and the per-CPU cpu_tlbstate. */
export class GuestCpu {
  /** ctxs[asid].ctx_id and ctxs[asid].tlb_gen. */
  readonly ctxIds = new Float64Array(TLB_NR_DYN_ASIDS);
  readonly tlbGens = new Float64Array(TLB_NR_DYN_ASIDS);
  loadedAsid = 0;
  nextAsid = 1;

  constructor(
    readonly index: number,
    /** The CPU; another after a live migration (the kernel resumes on the destination's vCPUs). */
    public port: CpuPort,
    public loadedMm: MmStruct,
  ) {}
}

/** struct mmu_gather: the range an unmap touched and what to free once the TLBs are flushed. */
export class MmuGather {
  mm: MmStruct | null = null;
  fullmm = false;
  start = Number.POSITIVE_INFINITY;
  end = 0;
  /** cleared_ptes / cleared_pmds / cleared_puds / cleared_p4ds as bits 1..4. */
  cleared = 0;
  freedTables = false;
  /** (gfn, order) pairs of data pages. */
  readonly pages: number[] = [];
  /** Table pages. */
  readonly tables: number[] = [];

  reset(mm: MmStruct, fullmm: boolean): void {
    this.mm = mm;
    this.fullmm = fullmm;
    this.start = Number.POSITIVE_INFINITY;
    this.end = 0;
    this.cleared = 0;
    this.freedTables = false;
    this.pages.length = 0;
    this.tables.length = 0;
  }

  /** __tlb_adjust_range(). */
  adjustRange(addr: number, size: number): void {
    if (addr < this.start) this.start = addr;
    if (addr + size > this.end) this.end = addr + size;
  }

  /** tlb_remove_tlb_entry() / tlb_remove_huge_tlb_entry() for a leaf at `level`. */
  removeLeaf(addr: number, level: number): void {
    this.adjustRange(addr, LEVEL_SIZE[level]!);
    this.cleared |= 1 << level;
  }

  /** pte_free_tlb() and friends: table `gfn` at `level` covering from `addr` is freed after the flush. */
  freeTable(gfn: number, addr: number, level: number): void {
    this.adjustRange(addr, PAGE_SIZE);
    this.freedTables = true;
    if (level <= 3) this.cleared |= 1 << (level + 1);
    this.tables.push(gfn);
  }

  addPage(gfn: number, order: number): void {
    this.pages.push(gfn, order);
  }

  /** tlb_get_unmap_shift(), as a size in bytes. */
  strideSize(): number {
    for (let l = 1; l <= 4; l++) if ((this.cleared & (1 << l)) !== 0) return LEVEL_SIZE[l]!;
    return PAGE_SIZE;
  }

  get needsFlush(): boolean {
    return this.freedTables || this.cleared !== 0;
  }
}

export class GuestTlb {
  readonly cpus: GuestCpu[] = [];
  ceiling = TLB_SINGLE_PAGE_FLUSH_CEILING;

  constructor(
    ports: readonly CpuPort[],
    readonly initMm: MmStruct,
    readonly usePcid: boolean,
    private readonly stats: GuestStats,
    private readonly bus: EventBus<GuestEventMap>,
  ) {
    for (let i = 0; i < ports.length; i++) this.cpus.push(new GuestCpu(i, ports[i]!, initMm));
  }

  /** Boot: every CPU runs init_mm in ASID 0 (initialize_tlbstate_and_flush). */
  boot(): void {
    for (const c of this.cpus) {
      c.loadedMm = this.initMm;
      c.loadedAsid = 0;
      c.nextAsid = 1;
      c.ctxIds.fill(0);
      c.tlbGens.fill(0);
      c.ctxIds[0] = this.initMm.ctxId;
      c.tlbGens[0] = this.initMm.tlbGen;
      this.loadCr3(c, this.initMm, 0, true);
    }
  }

  /** switch_mm_irqs_off(): load `next` on CPU `cpu`, reusing its PCID slot when it still has one. */
  switchMm(cpu: number, next: MmStruct): void {
    const c = this.cpus[cpu]!;
    const nextGen = next.tlbGen;
    let asid: number;
    let needFlush: boolean;
    if (c.loadedMm === next) {
      if (c.tlbGens[c.loadedAsid] === nextGen) return;
      asid = c.loadedAsid;
      needFlush = true;
    } else if (!this.usePcid) {
      asid = 0;
      needFlush = true;
    } else {
      // mirrors choose_new_asid().
      asid = -1;
      needFlush = true;
      for (let i = 0; i < TLB_NR_DYN_ASIDS; i++) {
        if (c.ctxIds[i] !== next.ctxId) continue;
        asid = i;
        needFlush = c.tlbGens[i]! < nextGen;
        break;
      }
      if (asid < 0) {
        asid = c.nextAsid++;
        if (asid >= TLB_NR_DYN_ASIDS) {
          asid = 0;
          c.nextAsid = 1;
        }
      }
    }
    c.ctxIds[asid] = next.ctxId;
    c.tlbGens[asid] = nextGen;
    c.loadedMm = next;
    c.loadedAsid = asid;
    this.loadCr3(c, next, asid, needFlush);
  }

  /** load_new_mm_cr3(). */
  private loadCr3(c: GuestCpu, mm: MmStruct, asid: number, needFlush: boolean): void {
    const pcid = this.usePcid ? asid + 1 : 0;
    const noFlush = this.usePcid && !needFlush;
    c.port.loadCr3(mm.pgd as Gfn, pcid, noFlush);
    this.stats.cr3Loads++;
    if (this.bus.on) this.bus.emit("guest.cr3_load", { cpu: c.index, pid: mm.pid, gfn: mm.pgd, pcid, noFlush: noFlush ? 1 : 0 });
  }

  /**
   * flush_tlb_mm_range() from CPU `cpu`: every CPU running `mm` flushes [start, end) one
   * `stride` at a time, or entirely past the ceiling. `fullmm` (exit) switches those CPUs,
   * which run the dying mm lazily, to init_mm instead.
   */
  flushTlbMmRange(cpu: number, mm: MmStruct, start: number, end: number, stride: number, fullmm = false): void {
    if (end === TLB_FLUSH_ALL || Math.floor((end - start) / stride) > this.ceiling) {
      start = 0;
      end = TLB_FLUSH_ALL;
    }
    const newGen = ++mm.tlbGen;
    let remote = false;
    for (let i = 0; i < this.cpus.length; i++) {
      const ci = (cpu + i) % this.cpus.length;
      const c = this.cpus[ci]!;
      if (c.loadedMm !== mm) continue;
      const local = ci === cpu;
      if (!local) {
        if (!remote) this.stats.nr_tlb_remote_flush++;
        remote = true;
        this.stats.nr_tlb_remote_flush_received++;
      }
      if (fullmm) this.switchMm(ci, this.initMm);
      else this.flushTlbFunc(c, start, end, stride, newGen, local);
    }
  }

  /** flush_tlb_page(). */
  flushTlbPage(cpu: number, mm: MmStruct, gva: number): void {
    this.flushTlbMmRange(cpu, mm, gva, gva + PAGE_SIZE, PAGE_SIZE);
  }

  /** flush_tlb_func(): bring this CPU's view of its loaded mm up to the mm's tlb_gen. */
  private flushTlbFunc(c: GuestCpu, start: number, end: number, stride: number, newGen: number, local: boolean): void {
    const localGen = c.tlbGens[c.loadedAsid]!;
    const mmGen = c.loadedMm.tlbGen;
    if (localGen === mmGen) return;
    if (end !== TLB_FLUSH_ALL && newGen === localGen + 1 && newGen === mmGen) {
      let n = 0;
      for (let a = start; a < end; a += stride) {
        c.port.invlpg(a as Gva);
        n++;
        if (this.bus.on) this.bus.emit("guest.invlpg", { cpu: c.index, gva: a });
      }
      if (local) this.stats.nr_tlb_local_flush_one += n;
    } else {
      c.port.flushTlb();
      if (local) this.stats.nr_tlb_local_flush_all++;
      if (this.bus.on) this.bus.emit("guest.tlb_flush", { cpu: c.index, pid: c.loadedMm.pid });
    }
    c.tlbGens[c.loadedAsid] = mmGen;
  }
}
