// SPDX-License-Identifier: MIT
// The host Linux kernel's memory manager: one node of RAM with its buddy allocator and
// watermarks, the shared zero pages, processes (mm_struct) with real x86-64 page tables in
// host frames, the LRU, swap, kswapd, the OOM killer and the mmu_notifier chain.
//
// HostKernel holds the state; the algorithms live in files named after their kernel
// counterparts (memory.ts, huge_memory.ts, rmap.ts, vmscan.ts, swap_state.ts, mmap.ts,
// madvise.ts, hugetlb.ts, oom_kill.ts) and take the kernel as their first argument.
// setEntry() is the only writer of host page-table words.

import { type Hva, LEVEL_SIZE, PAGE_SIZE, hex, tableIndex } from "../hw/addr.js";
import { readCounters } from "../hw/counters.js";
import type { EventBus } from "../hw/events.js";
import { PhysMem } from "../hw/phys_mem.js";
import { PTE_D, PTE_P, PTE_PS, PTE_RW, entryPfn, frameHi, frameLo, x86LevelName } from "../hw/x86_pte.js";
import { BuddyAllocator, type Watermarks, defaultWatermarks } from "./buddy.js";
import type { HostEventMap } from "./host_events.js";
import { HugetlbPool, type HugetlbPageSize } from "./hugetlb.js";
import { Lru } from "./lru.js";
import { madvise, type MadviseAdvice } from "./madvise.js";
import {
  ACCESS_SEGV,
  type GupResult,
  VM_FAULT_ERROR,
  getUserPages,
  getUserPagesFast,
  handleMmFault,
  probe,
  type PteProbe,
  userAccess,
} from "./memory.js";
import { Mm } from "./mm_types.js";
import { exitMmap, type MmapOptions, mmap, munmap } from "./mmap.js";
import { FrameMeta, PG_dirty, PG_pgtable, PG_reserved } from "./page_flags.js";
import { GFP_PGTABLE_USER, allocPages, freePages } from "./page_alloc.js";
import { _PAGE_TABLE, leafPfn } from "./pgtable.js";
import { folioAddRmap, folioRemoveRmap } from "./rmap.js";
import { folioMarkAccessed } from "./swap.js";
import { SwapDevice } from "./swapfile.js";
import { checkInvariants } from "./invariants.js";
import { HOST_COUNTERS, type VmGauges, newVmEvents } from "./vmstat.js";
import { Kswapd } from "./vmscan.js";
import { Ksm, type KsmConfig } from "./ksm.js";
import { Zswap, type ZswapConfig } from "./zswap.js";

export type ThpMode = "never" | "madvise" | "always";

export interface HostConfig {
  /** Host RAM in bytes (a multiple of 4 KiB). */
  ram: number;
  /** Swap device size in bytes; 0 = no swap. */
  swap: number;
  /** /sys/kernel/mm/transparent_hugepage/enabled. */
  thp: ThpMode;
  /** Watermarks in bytes; default derived from RAM as Linux does. */
  watermarks?: Watermarks;
  /** /proc/sys/vm/page-cluster: swap readahead of 2^n pages; 0 = off (the default here; Linux defaults to 3). */
  pageCluster?: number;
  /** Cycles one swap-in read costs (accumulated in swapin_cycles and lastFaultCycles). */
  swapInCycles?: number;
  /** Cycles one swap-out write costs. */
  swapOutCycles?: number;
  /** "sync": a kswapd wakeup runs kswapd to completion at once; "agent": a scheduler calls kswapdStep(). */
  kswapd?: "sync" | "agent";
  /** /sys/kernel/mm/transparent_hugepage/use_zero_page (default true). */
  thpUseZeroPage?: boolean;
  /** Check the page-table invariants after every operation (slow; for tests). */
  debugChecks?: boolean;
  /** /sys/kernel/mm/ksm tunables (ksmd stopped when absent). */
  ksm?: Partial<KsmConfig>;
  /** /sys/module/zswap/parameters; absent: no zswap and no zeromap (pre-6.12 swap core). Needs swap. */
  zswap?: Partial<ZswapConfig>;
}

export const DEFAULT_SWAP_IN_CYCLES = 30000;
export const DEFAULT_SWAP_OUT_CYCLES = 30000;

export class HostKernel {
  readonly cfg: Required<Omit<HostConfig, "watermarks" | "zswap">> & { watermarks?: Watermarks };
  readonly bus: EventBus<HostEventMap>;
  readonly mem: PhysMem;
  readonly meta: FrameMeta;
  readonly buddy: BuddyAllocator;
  readonly lru: Lru;
  readonly swap: SwapDevice | null;
  readonly hugetlb: HugetlbPool;
  readonly kswapd: Kswapd;
  /** KSM: the mergeable mms, the stable and unstable trees, ksmd's cursor (mm/ksm.c). */
  readonly ksm: Ksm;
  /** zswap and the swap core's zeromap (mm/zswap.c, mm/page_io.c), when configured. */
  readonly zswap: Zswap | null = null;
  readonly stat = newVmEvents();
  /** Watermarks in pages. */
  readonly wmark: Watermarks;
  /** min_free_kbytes derived from RAM (informational when watermarks are overridden). */
  readonly minFreeKbytes: number;
  /** Pages the allocator manages (RAM minus the zero page). */
  readonly managedPages: number;
  /** The shared zero page (ZERO_PAGE(0)). */
  readonly zeroPfn: number;
  /** The huge zero page (2 MiB), allocated on first use; -1 until then. */
  hugeZeroPfn = -1;

  // Gauges kept up to date by the code that changes them.
  nrAnonMapped = 0;
  nrAnonThps = 0;
  nrSwapcached = 0;
  nrPageTablePages = 0;
  /** vm_committed_as, in pages. */
  committedAs = 0;
  /** lruvec->nonresident_age (workingset clock). */
  nonresidentAge = 0;
  /** lruvec->refaults[WORKINGSET_ANON] snapshot (snapshot_refaults()). */
  refaultsSnapshot = 0;

  /** The process whose fault is being handled (current->mm), null for kswapd. */
  current: Mm | null = null;
  /** Cycles of I/O spent by the last handleMmFault / getUserPages / userAccess call. */
  lastFaultCycles = 0;
  /** Set by readSwapCacheAsync(): whether the last call read the page from the device. */
  swapReadNew = false;
  /** The message of the last OOM kill, or "" (for callers that get a failure). */
  lastOomMessage = "";

  // Result of the last walk() (no allocation on the access path).
  wTable = 0;
  wIdx = 0;
  wLevel = 0;
  wLo = 0;
  wHi = 0;

  private readonly mms: (Mm | undefined)[] = [undefined];

  constructor(cfg: HostConfig, bus: EventBus<HostEventMap>) {
    if (cfg.thp !== "never" && cfg.thp !== "madvise" && cfg.thp !== "always") throw new RangeError(`thp must be never, madvise or always`);
    this.cfg = {
      ram: cfg.ram,
      swap: cfg.swap,
      thp: cfg.thp,
      pageCluster: cfg.pageCluster ?? 0,
      swapInCycles: cfg.swapInCycles ?? DEFAULT_SWAP_IN_CYCLES,
      swapOutCycles: cfg.swapOutCycles ?? DEFAULT_SWAP_OUT_CYCLES,
      kswapd: cfg.kswapd ?? "sync",
      thpUseZeroPage: cfg.thpUseZeroPage ?? true,
      debugChecks: cfg.debugChecks ?? false,
      ksm: cfg.ksm ?? {},
      ...(cfg.watermarks ? { watermarks: cfg.watermarks } : {}),
    };
    if (this.cfg.pageCluster < 0 || this.cfg.pageCluster > 10) throw new RangeError(`pageCluster must be 0..10`);
    this.bus = bus;
    this.mem = new PhysMem(cfg.ram);
    this.meta = new FrameMeta(this.mem.nframes, this.mem.wasm);
    this.buddy = new BuddyAllocator(this.meta, this.mem.nframes);
    this.lru = new Lru(this.meta);
    this.swap = cfg.swap > 0 ? new SwapDevice(cfg.swap) : null;
    this.hugetlb = new HugetlbPool(this);
    this.kswapd = new Kswapd(this);
    this.ksm = new Ksm(this, cfg.ksm);
    // The zero page lives in the kernel image in Linux; here it is frame 0, which the buddy
    // allocator never hands out (so pfn 0 can stand for "none" in the swap cache).
    this.zeroPfn = 0;
    this.meta.flags[0] = PG_reserved;
    this.managedPages = this.mem.nframes - 1;
    const def = defaultWatermarks(this.managedPages);
    this.minFreeKbytes = def.minFreeKbytes;
    if (cfg.watermarks) {
      const w = cfg.watermarks;
      const p = (b: number) => Math.floor(b / PAGE_SIZE);
      this.wmark = { min: p(w.min), low: p(w.low), high: p(w.high) };
      if (!(this.wmark.min <= this.wmark.low && this.wmark.low <= this.wmark.high))
        throw new RangeError("watermarks must satisfy min <= low <= high");
    } else {
      this.wmark = { min: def.min, low: def.low, high: def.high };
    }
    if (cfg.zswap) {
      if (!this.swap) throw new RangeError("zswap needs a swap device (host.swap > 0)");
      this.zswap = new Zswap(this, cfg.zswap, this.swap.max);
      this.swap.frontswap = this.zswap;
    }
  }

  // ---- processes -----------------------------------------------------------------------

  /** fork+exec of a new process: an mm with only its top-level table. */
  createProcess(name: string): Mm {
    const id = this.mms.length;
    const pgd = this.pteAllocOneRaw();
    if (pgd < 0) throw new Error(`cannot create process ${name}: out of memory for its page table`);
    const mm = new Mm(id, name, pgd);
    mm.pgtablesBytes = PAGE_SIZE;
    this.mms.push(mm);
    if (this.bus.on) this.bus.emit("host.process", { mm: id, name, pgd });
    return mm;
  }

  /** The live process with this id. */
  mmById(id: number): Mm | undefined {
    return this.mms[id];
  }

  /** Live processes in creation order. */
  processes(): Mm[] {
    return this.mms.filter((m): m is Mm => m !== undefined);
  }

  /** @internal Removes a torn-down mm from the process list. */
  forgetMm(mm: Mm): void {
    this.mms[mm.id] = undefined;
  }

  /** mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|flags): the start hva. Throws MmError. */
  mmap(mm: Mm, length: number, opts: MmapOptions = {}): Hva {
    const r = mmap(this, mm, length, opts);
    this.debugCheck();
    return r;
  }

  /** munmap(addr, length). */
  munmap(mm: Mm, addr: number, length: number): void {
    munmap(this, mm, addr, length);
    this.debugCheck();
  }

  /** madvise(addr, length, advice). */
  madvise(mm: Mm, addr: number, length: number, advice: MadviseAdvice): void {
    madvise(this, mm, addr, length, advice);
    this.debugCheck();
  }

  /** exit(): the mm is torn down (mmu_notifier release first) and every page freed. */
  exit(mm: Mm): void {
    exitMmap(this, mm);
    this.debugCheck();
  }

  // ---- faults and accesses --------------------------------------------------------------

  /** handle_mm_fault(): VM_FAULT_* bits (0 = handled, minor). */
  handleMmFault(mm: Mm, hva: number, write: boolean): number {
    this.lastFaultCycles = 0;
    const r = handleMmFault(this, mm, hva, write);
    this.debugCheck();
    return r;
  }

  /** get_user_pages(FOLL_TOUCH [| FOLL_WRITE]) for one page: faults it in as needed. */
  getUserPages(mm: Mm, hva: number, write: boolean): GupResult {
    this.lastFaultCycles = 0;
    const r = getUserPages(this, mm, hva, write);
    this.debugCheck();
    return r;
  }

  /** get_user_page_fast_only(): succeeds only if the page is mapped (writable, for a write); never faults. */
  getUserPagesFast(mm: Mm, hva: number, write: boolean): GupResult | null {
    return getUserPagesFast(this, mm, hva, write);
  }

  /** host_pfn_mapping_level(): 3 if a PUD leaf maps hva, 2 for a PMD leaf, else 1. */
  hostPfnMappingLevel(mm: Mm, hva: number): 1 | 2 | 3 {
    if (mm.dead) return 1;
    this.walk(mm, hva);
    if (this.wLevel > 1 && (this.wLo & PTE_P) !== 0) return this.wLevel as 2 | 3;
    return 1;
  }

  /**
   * A load or store by the process itself (QEMU touching guest RAM): walks the host tables,
   * faults as needed, sets A/D, and returns the content tag read (after a write, the value
   * written). A negative result is a failure: ACCESS_SEGV, ACCESS_OOM or ACCESS_SIGBUS.
   */
  userAccess(mm: Mm, hva: number, write: boolean, value = 0): number {
    this.lastFaultCycles = 0;
    if (mm.dead) return ACCESS_SEGV;
    return userAccess(this, mm, hva, write, value);
  }

  /** What maps hva, with no side effects (the probe() of the host tables). */
  probe(mm: Mm, hva: number): PteProbe {
    return probe(this, mm, hva);
  }

  /** folio_mark_accessed() on the folio containing pfn (KVM: kvm_set_page_accessed()). */
  folioMarkAccessed(pfn: number): void {
    folioMarkAccessed(this, this.meta.compoundHead(pfn));
  }

  /** folio_mark_dirty() on the folio containing pfn (KVM: kvm_set_page_dirty() after a guest write). */
  folioMarkDirty(pfn: number): void {
    const h = this.meta.compoundHead(pfn);
    if ((this.meta.flags[h]! & PG_reserved) === 0) this.meta.flags[h] = this.meta.flags[h]! | PG_dirty;
  }

  // ---- hugetlb ---------------------------------------------------------------------------

  /** echo count > /sys/kernel/mm/hugepages/hugepages-<size>/nr_hugepages: returns the pool size reached. */
  reserveHugetlb(pageSize: HugetlbPageSize, count: number): number {
    return this.hugetlb.setPoolSize(pageSize, count);
  }

  // ---- kswapd ----------------------------------------------------------------------------

  kswapdRunning(): boolean {
    return this.kswapd.running;
  }

  /** One kswapd batch; false when kswapd went (or was) to sleep. */
  kswapdStep(): boolean {
    return this.kswapd.step();
  }

  // ---- statistics ------------------------------------------------------------------------

  get nrFreePages(): number {
    return this.buddy.nrFree;
  }

  /** /proc/vmstat: every host counter by its Linux name. */
  vmstat(): Record<string, number> {
    const h2 = this.hugetlb.pool(2 * 1024 * 1024);
    const h1 = this.hugetlb.pool(1024 * 1024 * 1024);
    const gauges: VmGauges = {
      nr_free_pages: this.buddy.nrFree,
      nr_anon_pages: this.nrAnonMapped,
      nr_inactive_anon: this.lru.nrPages[0]!,
      nr_active_anon: this.lru.nrPages[1]!,
      nr_inactive_file: this.lru.nrPages[2]!,
      nr_active_file: this.lru.nrPages[3]!,
      nr_swapcached: this.nrSwapcached,
      nr_page_table_pages: this.nrPageTablePages,
      nr_anon_transparent_hugepages: this.nrAnonThps,
      nr_swap_pages: this.swap ? this.swap.nrSwapPages : 0,
      total_swap_pages: this.swap ? this.swap.totalSwapPages : 0,
      committed_as: this.committedAs,
      nr_hugepages_2048kB: h2.nr,
      free_hugepages_2048kB: h2.free,
      resv_hugepages_2048kB: h2.resv,
      nr_hugepages_1048576kB: h1.nr,
      free_hugepages_1048576kB: h1.free,
      resv_hugepages_1048576kB: h1.resv,
      kswapd_running: this.kswapd.running ? 1 : 0,
    };
    return readCounters(HOST_COUNTERS, { ...this.stat, ...gauges });
  }

  /** Verifies rmap, LRU, swap-count and accounting invariants; throws on the first violation. */
  checkInvariants(): void {
    checkInvariants(this);
  }

  private debugCheck(): void {
    if (this.cfg.debugChecks) checkInvariants(this);
  }

  // ---- page tables (internal) ------------------------------------------------------------

  /**
   * Walks mm's tables for addr, without side effects: leaves the last entry visited in
   * wTable/wIdx/wLevel/wLo/wHi (a leaf, a non-present entry, or a level-1 entry) and
   * returns the number of entries read.
   */
  walk(mm: Mm, addr: number): number {
    const mem = this.mem;
    let table = mm.pgd;
    let level = 4;
    let reads = 0;
    for (;;) {
      const idx = tableIndex(addr, level);
      const off = mem.entryOffset(table, idx);
      const lo = mem.words[off]!;
      const hi = mem.words[off + 1]!;
      reads++;
      if (level === 1 || (lo & PTE_P) === 0 || (lo & PTE_PS) !== 0) {
        this.wTable = table;
        this.wIdx = idx;
        this.wLevel = level;
        this.wLo = lo;
        this.wHi = hi;
        return reads;
      }
      table = entryPfn(lo, hi);
      level--;
    }
  }

  /**
   * pud_alloc / pmd_alloc / pte_alloc: the frame of the table at `target` level (3 = PUD
   * table, 2 = PMD table, 1 = PTE table) that covers addr, allocating missing levels.
   * -1 if an allocation failed or the mm died meanwhile; -2 if a huge leaf is in the way.
   */
  tableAlloc(mm: Mm, addr: number, target: number): number {
    let table = mm.pgd;
    for (let level = 4; level > target; level--) {
      const idx = tableIndex(addr, level);
      const lo = this.mem.readLo(table, idx);
      if ((lo & PTE_P) === 0) {
        const t = this.pteAllocOne(mm);
        if (t < 0) return -1;
        if (mm.dead) {
          this.pteFreeRaw(t);
          return -1;
        }
        this.setEntry(mm, table, idx, level, addr, frameLo(t, _PAGE_TABLE), frameHi(t));
        table = t;
      } else if ((lo & PTE_PS) !== 0) {
        return -2;
      } else {
        table = entryPfn(lo, this.mem.readHi(table, idx));
      }
    }
    return table;
  }

  /** pte_alloc_one() / pmd_alloc_one() / pud_alloc_one(): a zeroed table page charged to mm. -1 on OOM. */
  pteAllocOne(mm: Mm): number {
    const t = this.pteAllocOneRaw();
    if (t >= 0) mm.pgtablesBytes += PAGE_SIZE;
    return t;
  }

  /** pte_free(): returns a table page charged to mm. */
  pteFree(mm: Mm, pfn: number): void {
    mm.pgtablesBytes -= PAGE_SIZE;
    this.pteFreeRaw(pfn);
  }

  private pteAllocOneRaw(): number {
    const t = allocPages(this, 0, GFP_PGTABLE_USER, "pgtable");
    if (t < 0) return -1;
    this.mem.allocTable(t);
    this.meta.flags[t] = PG_pgtable;
    this.nrPageTablePages++;
    return t;
  }

  private pteFreeRaw(pfn: number): void {
    this.mem.freeTable(pfn);
    this.meta.flags[pfn] = 0;
    this.nrPageTablePages--;
    freePages(this, pfn, 0);
  }

  /**
   * The only writer of host page-table words (set_pte_at / set_pmd_at / pmd_populate /
   * pte_clear and the A/D updates the CPU makes). It keeps the rmap, mapcounts, RSS,
   * MM_SWAPENTS and zero-page counts in step with the entry, and checks the rules of
   * handle_changed_spte(): a present leaf is never repointed to another frame without
   * being cleared first, and is never removed or write-protected while the mm has
   * notifier subscribers unless an invalidate_range_start covering it is in progress.
   */
  setEntry(mm: Mm, table: number, idx: number, level: number, addr: number, lo: number, hi: number): void {
    const mem = this.mem;
    const off = mem.entryOffset(table, idx);
    const oldLo = mem.words[off]!;
    const oldHi = mem.words[off + 1]!;
    if (oldLo === lo && oldHi === hi) return;
    const oldLeaf = (oldLo & PTE_P) !== 0 && (level === 1 || (oldLo & PTE_PS) !== 0);
    const newLeaf = (lo & PTE_P) !== 0 && (level === 1 || (lo & PTE_PS) !== 0);
    if (oldLeaf) {
      const oldPfn = leafPfn(oldLo, oldHi, level);
      if (newLeaf) {
        if (leafPfn(lo, hi, level) !== oldPfn) {
          throw new Error(
            `host ${x86LevelName(level)} for ${hex(addr)} of mm ${mm.id} repointed from pfn ${hex(oldPfn)} without being cleared`,
          );
        }
        if ((oldLo & PTE_RW) !== 0 && (lo & PTE_RW) === 0) this.assertInvalidating(mm, addr, level);
      } else {
        this.assertInvalidating(mm, addr, level);
        this.unaccountLeaf(mm, oldPfn, level);
        // ksm_might_unmap_zero_page(): a dirty zero-page PTE is one use_zero_pages made.
        if (level === 1 && oldPfn === this.zeroPfn && (oldLo & PTE_D) !== 0) this.ksm.stats.ksm_zero_pages--;
      }
    } else if (level === 1 && (oldLo & PTE_P) === 0 && (oldLo !== 0 || oldHi !== 0)) {
      mm.swapents--;
    }
    mem.words[off] = lo;
    mem.words[off + 1] = hi;
    if (newLeaf) {
      if (!oldLeaf) this.accountLeaf(mm, leafPfn(lo, hi, level), level, addr);
    } else if (level === 1 && (lo & PTE_P) === 0 && (lo !== 0 || hi !== 0)) {
      mm.swapents++;
    }
  }

  private assertInvalidating(mm: Mm, addr: number, level: number): void {
    const chain = mm.notifiers;
    if (!chain.hasSubscriptions) return;
    const size = LEVEL_SIZE[level]!;
    const start = addr - (addr % size);
    if (!chain.covers(start, start + size)) {
      throw new Error(
        `host ${x86LevelName(level)} for ${hex(start)} of mm ${mm.id} changed outside mmu_notifier_invalidate_range_start/end`,
      );
    }
  }

  private accountLeaf(mm: Mm, pfn: number, level: number, addr: number): void {
    if (level === 1 && pfn === this.zeroPfn) mm.rssZeroPage++;
    else if (level === 2 && pfn === this.hugeZeroPfn) mm.rssZeroPage += 512;
    else if (this.hugetlb.isHugetlb(pfn)) mm.hugetlbPages += LEVEL_SIZE[level]! / PAGE_SIZE;
    else {
      const size = LEVEL_SIZE[level]!;
      folioAddRmap(this, pfn, mm, addr - (addr % size), size / PAGE_SIZE);
    }
  }

  private unaccountLeaf(mm: Mm, pfn: number, level: number): void {
    if (level === 1 && pfn === this.zeroPfn) mm.rssZeroPage--;
    else if (level === 2 && pfn === this.hugeZeroPfn) mm.rssZeroPage -= 512;
    else if (this.hugetlb.isHugetlb(pfn)) mm.hugetlbPages -= LEVEL_SIZE[level]! / PAGE_SIZE;
    else folioRemoveRmap(this, pfn, mm, LEVEL_SIZE[level]! / PAGE_SIZE);
  }
}

/** Whether a VM_FAULT_* result is an error. */
export function faultFailed(ret: number): boolean {
  return (ret & VM_FAULT_ERROR) !== 0;
}
