// SPDX-License-Identifier: MIT
// The guest kernel: boots on a set of CPU ports over the guest RAM the firmware reported,
// creates processes, places and removes their mappings, handles their page faults and switches
// between them. It sees only guest-physical memory, through the ports.
//
// simplified: no kernel half in process PGDs (pgd_ctor) and no direct map: kernel accesses are the port's physical ones.
// simplified: swapper_pg_dir and the zero page come from the buddy allocator at boot, not the kernel image.
// simplified: only the first 1 MiB is reserved; the kernel image, memmap and boot allocations take no guest RAM.

import { EventBus } from "../hw/events.js";
import { LEVEL_SIZE, PAGE_SIZE } from "../hw/addr.js";
import type { CpuPort } from "../hw/cpu_port.js";
import { GuestFaultHandler, type FaultResult } from "./fault.js";
import { type GuestDisk, GuestPageCache, NULL_DISK, type PageCacheSnapshot } from "./filemap.js";
import { type FrameAllocSnapshot, type GpaRange, GuestFrameAllocator } from "./frame_alloc.js";
import type { GuestEventMap } from "./guest_events.js";
import { type MmStruct, VM_EXEC, VM_HUGETLB, VM_READ, VM_SHARED, VM_WRITE, type Vma } from "./mm.js";
import { GuestPgtable } from "./pgtable.js";
import { GuestProcess } from "./process.js";
import { newGuestStats } from "./stats.js";
import { type GuestSwapDisk, GuestSwapState } from "./swap_state.js";
import { type GuestSwapStats, newGuestSwapStats } from "./swap_stats.js";
import { GuestReclaim, type GuestWatermarks } from "./vmscan.js";
import { GuestTlb, MmuGather, TLB_FLUSH_ALL, TLB_SINGLE_PAGE_FLUSH_CEILING } from "./tlb.js";
import { DEFAULT_MMAP_BASE, MMAP_MIN_ADDR, detachRange, firstEndingAbove, insertVma, rangeIsFree, unmappedAreaTopdown } from "./vma.js";

export interface GuestKernelOptions {
  /** Usable guest RAM as e820 reports it: [start, end) guest-physical byte ranges. */
  ram: readonly GpaRange[];
  /** One port per guest CPU (at least one). */
  cpus: readonly CpuPort[];
  /** Paging levels (CR4.LA57 gives 5); default 4. */
  levels?: 4 | 5;
  bus?: EventBus<GuestEventMap>;
  /** Use PCIDs when the CPU has CR4.PCIDE (default true; false is the "nopcid" boot option). */
  pcid?: boolean;
  /** Map the shared zero page on read faults (default true). */
  zeroPage?: boolean;
  /** mmap_base (default 0x7ffff7fff000). */
  mmapBase?: number;
  /** tlb_single_page_flush_ceiling (default 33). */
  tlbSinglePageFlushCeiling?: number;
  /** Low memory the kernel never allocates (default 1 MiB, as x86 Linux since 5.13). */
  reserveLow?: number;
  /** The virtual disk file pages are read from (default: one that leaves the frame's content alone). */
  disk?: GuestDisk;
  /** A swap device of `bytes` on its own virtual disk: anonymous reclaim, kswapd and watermarks (default: no swap). */
  swap?: { bytes: number; disk: GuestSwapDisk; watermarks?: GuestWatermarks };
}

export interface MmapOptions {
  /** Back the mapping with guest huge pages (MAP_HUGETLB | MAP_HUGE_2MB / MAP_HUGE_1GB). */
  hugePage?: "2m" | "1g";
  /** PROT_WRITE (default true). */
  write?: boolean;
  /** PROT_EXEC (default false). */
  exec?: boolean;
  /** Place it exactly here (MAP_FIXED_NOREPLACE); throws if taken. */
  addr?: number;
  // ---- file mappings (page cache)
  /** Map this file of the guest's filesystem (created on first use, `size` bytes or more) instead of anonymous memory. */
  file?: string;
  /** MAP_SHARED: writes go to the page cache (default false: MAP_PRIVATE, writes copy). */
  shared?: boolean;
  /** File offset of the mapping, in pages (default 0). */
  pgoff?: number;
}

export interface GuestProcessSnapshot {
  pid: number;
  name: string;
  pgd: number;
  ctxId: number;
  tlbGen: number;
  vmas: Vma[];
  VmPTE: number;
  RssAnon: number;
  HugetlbPages: number;
  RssFile: number;
  min_flt: number;
  maj_flt: number;
}

export interface GuestKernelSnapshot {
  alloc: FrameAllocSnapshot;
  stats: Record<string, number>;
  pageCache: PageCacheSnapshot;
  nextPid: number;
  nextCtxId: number;
  initTlbGen: number;
  procs: GuestProcessSnapshot[];
  cpus: { loadedPid: number; currentPid: number; loadedAsid: number; nextAsid: number; ctxIds: Float64Array; tlbGens: Float64Array }[];
}

export class GuestKernel {
  readonly levels: 4 | 5;
  readonly stats = newGuestStats();
  readonly bus: EventBus<GuestEventMap>;
  readonly alloc: GuestFrameAllocator;
  readonly pgtable: GuestPgtable;
  readonly tlb: GuestTlb;
  readonly faults: GuestFaultHandler;
  readonly pageCache: GuestPageCache;
  /** Reclaim with swap (guest.swap), its counters; null without swap. */
  readonly reclaim: GuestReclaim | null = null;
  readonly swapStats: GuestSwapStats | null = null;
  /** init_mm: the kernel's own address space (swapper_pg_dir), loaded when no process runs. */
  readonly initMm: MmStruct;
  readonly zeroGfn: number;
  /** Exclusive top of user addresses. */
  readonly taskSize: number;
  readonly mmapBase: number;
  private readonly procs = new Map<number, GuestProcess>();
  private readonly current: (GuestProcess | null)[];
  private readonly gather = new MmuGather();
  private nextPid = 1;
  private nextCtxId = 2;

  constructor(opts: GuestKernelOptions) {
    if (opts.cpus.length === 0) throw new RangeError("the guest kernel needs at least one CPU port");
    this.levels = opts.levels ?? 4;
    this.bus = opts.bus ?? new EventBus<GuestEventMap>();
    this.taskSize = LEVEL_SIZE[this.levels]! * 256 - PAGE_SIZE;
    this.mmapBase = opts.mmapBase ?? DEFAULT_MMAP_BASE;
    this.alloc = new GuestFrameAllocator(opts.ram, { reserved: [[0, opts.reserveLow ?? 0x100000]] });
    this.pgtable = new GuestPgtable(this.levels, this.alloc, this.stats, this.bus);
    const port = opts.cpus[0]!;
    const swapper = this.pgtable.allocPages(port, 0);
    const zero = this.pgtable.allocPages(port, 0);
    if (swapper < 0 || zero < 0) throw new RangeError("guest RAM too small to boot");
    this.zeroGfn = zero;
    this.initMm = { pid: 0, pgd: swapper, ctxId: 1, tlbGen: 0, VmPTE: 0, RssAnon: 0, HugetlbPages: 0, RssFile: 0 };
    const usePcid = (opts.pcid ?? true) && port.pcide;
    this.tlb = new GuestTlb(opts.cpus, this.initMm, usePcid, this.stats, this.bus);
    this.tlb.ceiling = opts.tlbSinglePageFlushCeiling ?? TLB_SINGLE_PAGE_FLUSH_CEILING;
    this.faults = new GuestFaultHandler(
      this.pgtable,
      this.tlb,
      this.stats,
      this.bus,
      { zeroPage: opts.zeroPage ?? true, taskSize: this.taskSize },
      zero,
    );
    this.pageCache = new GuestPageCache(this.pgtable, this.tlb, this.stats, this.bus, opts.disk ?? NULL_DISK, () => this.procs.values());
    this.pgtable.cache = this.pageCache;
    this.faults.cache = this.pageCache;
    this.current = opts.cpus.map(() => null);
    this.tlb.boot();
    if (opts.swap !== undefined) [this.reclaim, this.swapStats] = this.attachSwap(opts.swap);
  }

  /** Live processes, by pid. */
  get processes(): readonly GuestProcess[] {
    return [...this.procs.values()];
  }

  process(pid: number): GuestProcess | undefined {
    return this.procs.get(pid);
  }

  /** The process running on CPU `cpu`, or null. */
  currentProcess(cpu = 0): GuestProcess | null {
    return this.current[cpu] ?? null;
  }

  /** A new process with an empty address space: mm_alloc() + pgd_alloc() (a zeroed PGD). */
  createProcess(name: string, cpu = 0): GuestProcess {
    const port = this.tlb.cpus[cpu]!.port;
    const pgd = this.pgtable.allocPages(port, 0);
    if (pgd < 0) throw new Error(`out of guest memory creating process "${name}"`);
    const proc = new GuestProcess(this, this.nextPid++, name, pgd, this.nextCtxId++);
    proc.VmPTE = 1;
    this.stats.nr_page_table_pages++;
    this.stats.processes++;
    this.stats.nr_processes++;
    this.procs.set(proc.pid, proc);
    if (this.bus.on) this.bus.emit("guest.process_create", { pid: proc.pid, gfn: pgd, name });
    return proc;
  }

  /** mmap() of anonymous memory or of a file: places a VMA (top-down from mmap_base) and returns its gva. No page is touched. */
  mmap(proc: GuestProcess, name: string, size: number, opts: MmapOptions = {}): number {
    this.checkAlive(proc);
    const level = opts.hugePage === "1g" ? 3 : opts.hugePage === "2m" ? 2 : 1;
    const align = LEVEL_SIZE[level]!;
    if (!(size > 0) || !Number.isFinite(size)) throw new RangeError(`mmap size must be positive, not ${size}`);
    const len = Math.ceil(size / align) * align; // hugetlb lengths round up to the huge page size
    const flags =
      VM_READ |
      (opts.write === false ? 0 : VM_WRITE) |
      (opts.exec ? VM_EXEC : 0) |
      (level > 1 ? VM_HUGETLB : 0) |
      (opts.shared ? VM_SHARED : 0);
    if (opts.file === undefined && (opts.shared || opts.pgoff !== undefined))
      throw new RangeError("mmap: shared and pgoff apply to file mappings only (shared anonymous memory is not modelled)");
    if (opts.file !== undefined && level > 1) throw new RangeError("mmap: a file mapping with huge pages (hugetlbfs) is not modelled");
    const pgoff = opts.pgoff ?? 0;
    if (!Number.isInteger(pgoff) || pgoff < 0) throw new RangeError(`mmap: pgoff ${pgoff} is not a page index`);
    let start: number;
    if (opts.addr !== undefined) {
      start = opts.addr;
      if (start % align !== 0 || start < MMAP_MIN_ADDR || start + len > this.taskSize) {
        throw new RangeError(`mmap at 0x${start.toString(16)}: not ${align}-aligned or outside user space`);
      }
      if (!rangeIsFree(proc.vmas, start, start + len)) throw new RangeError(`mmap at 0x${start.toString(16)}: range already mapped`);
    } else {
      start = unmappedAreaTopdown(proc.vmas, len, align, Math.min(this.mmapBase, this.taskSize));
      if (start < 0) throw new RangeError(`mmap of ${len} bytes: no room in the address space`);
    }
    if (opts.file !== undefined) {
      const file = this.pageCache.open(opts.file, pgoff * PAGE_SIZE + len);
      insertVma(proc.vmas, { start, end: start + len, name, flags, pageLevel: 1, file, pgoff });
    } else insertVma(proc.vmas, { start, end: start + len, name, flags, pageLevel: level });
    return start;
  }

  /** munmap(): unmap_region() = zap the leaves, free_pgtables(), then flush and free (tlb_finish_mmu). */
  munmap(proc: GuestProcess, gva: number, size: number, cpu = 0): void {
    this.checkAlive(proc);
    if (gva % PAGE_SIZE !== 0 || !(size > 0)) throw new RangeError(`munmap(0x${gva.toString(16)}, ${size}): bad address or length`);
    const end = gva + Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    const removed = detachRange(proc.vmas, gva, end);
    if (removed.length === 0) return;
    const i = firstEndingAbove(proc.vmas, gva);
    const floor = i > 0 ? proc.vmas[i - 1]!.end : 0;
    const ceiling = i < proc.vmas.length ? proc.vmas[i]!.start : this.pgtable.top;
    const port = this.tlb.cpus[cpu]!.port;
    const tlb = this.gather;
    tlb.reset(proc, false);
    for (const v of removed) this.pgtable.zapRange(port, proc, v.start, v.end, tlb, this.zeroGfn);
    this.freePgtables(port, proc, removed, floor, ceiling);
    this.tlbFinishMmu(cpu);
  }

  /** The process exits: exit_mmap() (zap everything, free every table, flush) and pgd_free(). */
  exit(proc: GuestProcess, cpu = 0): void {
    this.checkAlive(proc);
    const freeBefore = this.alloc.nrFree;
    for (let c = 0; c < this.current.length; c++) if (this.current[c] === proc) this.current[c] = null;
    const port = this.tlb.cpus[cpu]!.port;
    const tlb = this.gather;
    tlb.reset(proc, true);
    for (const v of proc.vmas) this.pgtable.zapRange(port, proc, v.start, v.end, tlb, this.zeroGfn);
    this.freePgtables(port, proc, proc.vmas, 0, this.pgtable.top);
    this.tlbFinishMmu(cpu);
    // A CPU still running the dead mm lazily leaves it before the PGD goes (mmdrop_lazy_tlb).
    for (const c of this.tlb.cpus) if (c.loadedMm === proc) this.tlb.switchMm(c.index, this.initMm);
    this.pgtable.freeTable(proc, proc.pgd);
    proc.vmas.length = 0;
    proc.alive = false;
    this.procs.delete(proc.pid);
    this.stats.nr_processes--;
    if (this.bus.on) this.bus.emit("guest.process_exit", { pid: proc.pid, freed: this.alloc.nrFree - freeBefore });
  }

  /** Runs `proc` on CPU `cpu` (context_switch -> switch_mm_irqs_off). */
  contextSwitch(proc: GuestProcess, cpu = 0): void {
    this.checkAlive(proc);
    if (this.current[cpu] === proc) return;
    this.stats.ctxt++;
    this.tlb.switchMm(cpu, proc);
    this.current[cpu] = proc;
  }

  /** A #PF raised on CPU `cpu` for `proc` at `gva` with `errorCode` (the hardware's PFERR_* bits). */
  handlePageFault(proc: GuestProcess, gva: number, errorCode: number, cpu = 0): FaultResult {
    this.checkAlive(proc);
    const r = this.faults.handle(proc, gva, errorCode, cpu);
    if (this.reclaim?.kswapdAwake) this.reclaim.kswapdStep(cpu);
    return r;
  }

  /** swapon: the swap device and reclaim with it (watermarks from the RAM free after boot). */
  private attachSwap(o: NonNullable<GuestKernelOptions["swap"]>): [GuestReclaim, GuestSwapStats] {
    const sw = newGuestSwapStats();
    const swap = new GuestSwapState(o.bytes, this.pgtable, this.stats, sw, this.bus, o.disk);
    const r = new GuestReclaim(this.pgtable, this.alloc, this.tlb, this.stats, sw, this.bus, this.pageCache, swap, o.watermarks);
    this.pgtable.reclaim = r;
    this.faults.swap = swap;
    this.faults.reclaim = r;
    return [r, sw];
  }

  /** free_pgtables(): groups nearby 4 KiB VMAs into one free_pgd_range() call; hugetlb VMAs go alone. */
  private freePgtables(port: CpuPort, mm: MmStruct, vmas: readonly Vma[], floor: number, ceiling: number): void {
    const pmd = LEVEL_SIZE[2]!;
    for (let i = 0; i < vmas.length; ) {
      const first = vmas[i]!;
      let last = first;
      i++;
      if (first.pageLevel === 1) {
        while (i < vmas.length && vmas[i]!.pageLevel === 1 && vmas[i]!.start <= last.end + pmd) last = vmas[i++]!;
      }
      this.pgtable.freePgdRange(port, mm, first.start, last.end, floor, i < vmas.length ? vmas[i]!.start : ceiling, this.gather);
    }
  }

  /** tlb_finish_mmu(): flush what the gather covered, then free its pages and tables. */
  private tlbFinishMmu(cpu: number): void {
    const g = this.gather;
    const mm = g.mm!;
    if (g.needsFlush) {
      if (g.fullmm) this.tlb.flushTlbMmRange(cpu, mm, 0, TLB_FLUSH_ALL, g.strideSize(), true);
      else this.tlb.flushTlbMmRange(cpu, mm, g.start, g.end, g.strideSize());
    }
    for (let i = 0; i < g.pages.length; i += 2) this.pgtable.freePages(g.pages[i]!, g.pages[i + 1]!);
    for (const t of g.tables) this.pgtable.freeTable(mm, t);
    g.reset(mm, false);
  }

  private checkAlive(proc: GuestProcess): void {
    if (!proc.alive || this.procs.get(proc.pid) !== proc) throw new Error(`process ${proc.pid} ("${proc.name}") is not alive`);
  }

  /** The machine resumed on other CPUs (a live migration's destination): same state, new ports. */
  resumeOn(ports: readonly CpuPort[]): void {
    for (const c of this.tlb.cpus) c.port = ports[c.index]!;
  }

  snapshot(): GuestKernelSnapshot {
    if (this.reclaim !== null) throw new Error("a snapshot of a guest kernel with swap (guest.swap) is not modelled");
    return {
      alloc: this.alloc.snapshot(),
      stats: { ...this.stats },
      pageCache: this.pageCache.snapshot(),
      nextPid: this.nextPid,
      nextCtxId: this.nextCtxId,
      initTlbGen: this.initMm.tlbGen,
      procs: [...this.procs.values()].map((p) => ({
        pid: p.pid,
        name: p.name,
        pgd: p.pgd,
        ctxId: p.ctxId,
        tlbGen: p.tlbGen,
        vmas: p.vmas.map((v) => ({ ...v })),
        VmPTE: p.VmPTE,
        RssAnon: p.RssAnon,
        HugetlbPages: p.HugetlbPages,
        RssFile: p.RssFile,
        min_flt: p.min_flt,
        maj_flt: p.maj_flt,
      })),
      cpus: this.tlb.cpus.map((c, i) => ({
        loadedPid: c.loadedMm.pid,
        currentPid: this.current[i]?.pid ?? 0,
        loadedAsid: c.loadedAsid,
        nextAsid: c.nextAsid,
        ctxIds: c.ctxIds.slice(),
        tlbGens: c.tlbGens.slice(),
      })),
    };
  }

  /** Puts the kernel back as it was; GuestProcess objects of live pids are reused, others die. */
  restore(s: GuestKernelSnapshot): void {
    if (s.cpus.length !== this.tlb.cpus.length) throw new Error("snapshot of a kernel with a different CPU count");
    this.alloc.restore(s.alloc);
    Object.assign(this.stats, s.stats);
    this.pageCache.restore(s.pageCache);
    this.nextPid = s.nextPid;
    this.nextCtxId = s.nextCtxId;
    this.initMm.tlbGen = s.initTlbGen;
    const old = this.procs;
    const next = new Map<number, GuestProcess>();
    for (const ps of s.procs) {
      let p = old.get(ps.pid);
      if (p === undefined || p.name !== ps.name) p = new GuestProcess(this, ps.pid, ps.name, ps.pgd, ps.ctxId);
      p.pgd = ps.pgd;
      p.ctxId = ps.ctxId;
      p.tlbGen = ps.tlbGen;
      p.vmas.length = 0;
      for (const v of ps.vmas) p.vmas.push({ ...v });
      p.VmPTE = ps.VmPTE;
      p.RssAnon = ps.RssAnon;
      p.HugetlbPages = ps.HugetlbPages;
      p.RssFile = ps.RssFile;
      p.min_flt = ps.min_flt;
      p.maj_flt = ps.maj_flt;
      p.alive = true;
      next.set(p.pid, p);
    }
    for (const [pid, p] of old) if (next.get(pid) !== p) p.alive = false;
    this.procs.clear();
    for (const [pid, p] of next) this.procs.set(pid, p);
    const mmOf = (pid: number): MmStruct => (pid === 0 ? this.initMm : this.procs.get(pid)!);
    s.cpus.forEach((cs, i) => {
      const c = this.tlb.cpus[i]!;
      c.loadedMm = mmOf(cs.loadedPid);
      c.loadedAsid = cs.loadedAsid;
      c.nextAsid = cs.nextAsid;
      c.ctxIds.set(cs.ctxIds);
      c.tlbGens.set(cs.tlbGens);
      this.current[i] = cs.currentPid === 0 ? null : this.procs.get(cs.currentPid)!;
    });
  }
}
