// SPDX-License-Identifier: MIT
// A simulated host built from a scenario: the host kernel, and per VM the QEMU process
// (guest RAM, memslots), the KVM VM with its vCPUs, the guest kernel running on them, and
// the guest processes with their workload steps. runAccess() is one guest access, end to end.

import { LEVEL_SIZE, PAGE_SIZE } from "../hw/addr.js";
import { EventBus } from "../hw/events.js";
import { PTE_P, PTE_PAT_HUGE, PTE_PS, entryPfn } from "../hw/x86_pte.js";
import { ACC_USER, ACC_WRITE, TLB_AMD_ZEN4, TLB_INTEL_GOLDEN_COVE, type TlbConfig, XLATE_GUEST_PF, XLATE_OK } from "../hw/mmu.js";
import { HostKernel } from "../host/kernel.js";
import { PG_buddy } from "../host/page_flags.js";
import { filePageContent } from "../guest/filemap.js";
import { GuestKernel, type MmapOptions } from "../guest/kernel.js";
import { VM_SHARED } from "../guest/mm.js";
import type { GuestProcess } from "../guest/process.js";
import { SelftestGuest } from "../guest/selftest.js";
import { framesAtLevel as framesAt } from "../kvm/tdp_mmu.js";
import { VCPU_FAILED } from "../kvm/vcpu.js";
import { VirtMap } from "../qemu/virt_map.js";
import { QemuVm } from "../qemu/vm.js";
import { OP_WRITE, type AccessStream } from "../workload/stream.js";
import { VcpuPort, VmFailure } from "./guest_port.js";
import { NativeTwin } from "./native_twin.js";
import type { ProcessConfig, Scenario, VmConfig } from "./scenario_schema.js";

export interface Region {
  gva: number;
  size: number;
}

/** A guest process, its place in its step list, and what the checker expects it to read. */
export class ProcState {
  stepIdx = 0;
  stream: AccessStream | null = null;
  readonly regions = new Map<string, Region>();
  done = false;
  accesses = 0;
  /** The current stream is a trace: map the regions its addresses fall in as they come. */
  traceMapping = false;
  /** Regions mapped for trace replay. */
  traceRegions = 0;
  /** The current trace's program image: the guest file its code and read-only data pages map (see Engine.mapTraceRegions). */
  traceImage = "";
  /** A churn step in progress: rounds left, bytes per round, pages written per round. */
  churn: { kind: "mmapChurn" | "processChurn"; left: number; size: number; touch: number; round: number } | null = null;
  /** The accesses run at CPL 3 (user); a selftest-style guest's region may say CPL 0. */
  user = true;
  /** Without a kernel: the space whose tables map the current step's region (what the data checker keys writes by). */
  space: object | null = null;
  constructor(
    readonly vm: VmState,
    readonly cfg: ProcessConfig,
    /** The guest process; null in a guest without a kernel, whose vCPU runs the steps itself. */
    readonly process: GuestProcess | null,
    readonly cpu: number,
  ) {}

  /** The guest process, which a guest without a kernel does not have. */
  get proc(): GuestProcess {
    if (this.process === null) throw new Error(`${this.vm.cfg.name}/${this.cfg.name}: a guest without a kernel has no processes`);
    return this.process;
  }
}

/** A scenario's `tlb` as the hardware's geometry: a named core, or N entries 16-way (2 MiB entries shared). */
export function tlbConfig(t: VmConfig["tlb"]): TlbConfig {
  if (t === "zen4") return TLB_AMD_ZEN4;
  if (t === "golden-cove") return TLB_INTEL_GOLDEN_COVE;
  return { "4k": { sets: t / 16, ways: 16 }, "2m": "shared", "1g": TLB_INTEL_GOLDEN_COVE["1g"] };
}

/** Marks a page whose content the run cannot predict (after MADV_FREE of its backing). */
export const UNKNOWN = -1;

/** Guest page faults one access may take before the run fails as a livelock (the handler keeps saying "fixed"). */
export const MAX_GUEST_FAULTS_PER_ACCESS = 64;

export class VmState {
  readonly qemu: QemuVm;
  /** The guest kernel; null with guest.kernel none. */
  readonly kernel: GuestKernel | null;
  /** With guest.kernel none: the guest code, and the page tables the VMM built for it. */
  readonly selftest: SelftestGuest | null = null;
  readonly virtMap: VirtMap | null = null;
  readonly ports: VcpuPort[];
  readonly procs: ProcState[] = [];
  /** Per vCPU: its processes (time-shared) and which one runs now. */
  readonly runQueues: ProcState[][];
  readonly current: (ProcState | null)[];
  /** Per vCPU: accesses its current process has run since it was switched to. */
  readonly timesliceUsed: number[] = [];
  /**
   * What each guest page should read: gfn -> the value last written (absent: zero, UNKNOWN: any).
   * Keyed by guest frame, so a balloon's madvise on a gpa range or the guest clearing a frame
   * it reuses can update it.
   */
  readonly expected = new Map<number, number>();
  /** The same guest on bare metal, in lockstep (the native baseline), or null. */
  readonly native: NativeTwin | null;
  constructor(
    readonly cfg: VmConfig,
    host: HostKernel,
    bus: EventBus,
    native = false,
  ) {
    this.qemu = new QemuVm(
      host,
      {
        name: cfg.name,
        ram: cfg.ram,
        vcpus: cfg.vcpus,
        mmu: cfg.mmu,
        backing: cfg.backing,
        prealloc: cfg.prealloc,
        levels: cfg.guest.levels,
        tlb: tlbConfig(cfg.tlb),
      },
      bus,
    );
    this.ports = this.qemu.kvm.vcpus.map(
      (v) =>
        new VcpuPort(
          v,
          (gfn) => this.expected.delete(gfn),
          (dst, src) => {
            const want = this.expected.get(src);
            if (want === undefined) this.expected.delete(dst);
            else this.expected.set(dst, want);
          },
          cfg.guest.pcid,
        ),
    );
    this.runQueues = this.ports.map(() => []);
    this.current = this.ports.map(() => null);
    if (cfg.guest.kernel === "none") {
      this.kernel = null;
      this.native = null;
      this.virtMap = buildVirtMap(this.qemu, cfg);
      this.selftest = new SelftestGuest(this.virtMap, this.ports);
      for (const p of cfg.processes) {
        const ps = new ProcState(this, p, null, p.vcpu);
        for (const sp of this.virtMap.spaces) for (const r of sp.regions) ps.regions.set(r.name, { gva: r.gva, size: r.size });
        this.procs.push(ps);
        this.runQueues[p.vcpu]!.push(ps);
        // KVM_SET_SREGS: the vCPU starts with CR3 at its space's root.
        const space = p.space === undefined ? 0 : this.selftest.space(p.space);
        this.qemu.kvm.vcpus[p.vcpu]!.setSregsCr3(this.virtMap.spaces[space]!.pgd, this.selftest.pcidOf(p.vcpu, space));
        this.selftest.started(p.vcpu, space);
      }
      return;
    }
    this.kernel = new GuestKernel({
      ram: this.qemu.ranges.map((r) => [r.start, r.end] as const),
      cpus: this.ports,
      levels: cfg.guest.levels,
      bus,
      pcid: cfg.guest.pcid,
      zeroPage: cfg.guest.zeroPage,
      disk: { readPage: (gfn, ino, index) => this.diskRead(gfn, ino, index) },
    });
    this.native = native
      ? new NativeTwin(
          this.qemu.ranges.map((r) => [r.start, r.end] as const),
          cfg.vcpus,
          cfg.guest.levels,
          tlbConfig(cfg.tlb),
          cfg.guest,
        )
      : null;
    for (const p of cfg.processes) {
      const proc = this.createProcess(p.name, p.vcpu);
      const ps = new ProcState(this, p, proc, p.vcpu);
      this.procs.push(ps);
      this.runQueues[p.vcpu]!.push(ps);
    }
    // The files the processes map, each as large as its largest mapping (whichever process maps it first).
    const files = new Map<string, number>();
    for (const p of cfg.processes)
      for (const st of p.steps) if (st.kind === "mmapFile") files.set(st.file, Math.max(files.get(st.file) ?? 0, st.size));
    for (const [file, size] of files) this.createFile(file, size);
  }

  // ---- page cache: the virtual disk and what file pages hold

  /** What each written file page holds: ino * 2^36 + page index -> the value last written through a shared mapping. */
  readonly fileData = new Map<number, number>();
  /** Some process has a shared file mapping (its writes go to fileData, checked per write only then). */
  private sharedFileMaps = false;

  /**
   * virtio-blk: QEMU's I/O thread reads the file page from the disk image into guest RAM at
   * its hva (a host fault on QEMU's mm if the page is not there yet; no EPT/NPT access).
   */
  private diskRead(gfn: number, ino: number, index: number): void {
    const value = filePageContent(ino, index);
    const hva = this.qemu.gpaToHva(gfn * PAGE_SIZE);
    if (this.qemu.host.userAccess(this.qemu.mm, hva, true, value) < 0)
      throw new VmFailure(
        `${this.cfg.name}: QEMU could not write a disk read into guest RAM at gfn 0x${gfn.toString(16)}: the host is out of memory`,
      );
    this.expected.set(gfn, value);
  }

  /** What `proc` should read at `gva` when it never wrote there itself: file data in a file mapping, zero elsewhere. */
  unwrittenValue(proc: GuestProcess, gva: number): number {
    const v = proc.findVma(gva);
    if (v === null || v.file === undefined) return 0;
    const index = (v.pgoff ?? 0) + Math.floor((gva - v.start) / PAGE_SIZE);
    return this.fileData.get(v.file.ino * 2 ** 36 + index) ?? filePageContent(v.file.ino, index);
  }

  /** A write by `proc` at `gva` that went to a shared file mapping's page-cache page: recorded as the file's data; false if not one. */
  sharedFileWrite(proc: GuestProcess, gva: number, value: number): boolean {
    if (!this.sharedFileMaps) return false;
    const v = proc.findVma(gva);
    if (v === null || v.file === undefined || (v.flags & VM_SHARED) === 0) return false;
    this.fileData.set(v.file.ino * 2 ** 36 + (v.pgoff ?? 0) + Math.floor((gva - v.start) / PAGE_SIZE), value);
    return true;
  }

  /** Creates file `name` of `size` bytes in the guest's filesystem (and the native twin's), if there is none. */
  createFile(name: string, size: number): void {
    this.guest.pageCache.open(name, size);
    this.native?.guest.pageCache.open(name, size);
  }

  /** The guest kernel, which a guest without one (guest.kernel: none) does not have. */
  get guest(): GuestKernel {
    if (this.kernel === null) throw new Error(`${this.cfg.name}: a guest without a kernel has no processes to manage`);
    return this.kernel;
  }

  /** What each process (or, without a kernel, each address space) last wrote, by virtual page (forgotten on munmap and exit). */
  private readonly writtenByGva = new Map<object, Map<number, number>>();

  expectedByGva(proc: object): Map<number, number> {
    let m = this.writtenByGva.get(proc);
    if (m === undefined) {
      m = new Map();
      this.writtenByGva.set(proc, m);
    }
    return m;
  }

  createProcess(name: string, cpu: number): GuestProcess {
    const proc = this.guest.createProcess(name, cpu);
    this.native?.createProcess(proc, cpu);
    return proc;
  }

  mmap(proc: GuestProcess, name: string, size: number, opts: MmapOptions = {}): number {
    const gva = this.guest.mmap(proc, name, size, opts);
    if (opts.shared) this.sharedFileMaps = true;
    this.native?.mmap(proc, name, size, opts, gva);
    return gva;
  }

  munmap(proc: GuestProcess, gva: number, size: number, cpu: number): void {
    this.guest.munmap(proc, gva, size, cpu);
    const m = this.writtenByGva.get(proc);
    if (m !== undefined) {
      const first = Math.floor(gva / PAGE_SIZE);
      const last = Math.floor((gva + size - 1) / PAGE_SIZE);
      if (last - first < m.size) for (let p = first; p <= last; p++) m.delete(p);
      else for (const p of [...m.keys()]) if (p >= first && p <= last) m.delete(p);
    }
    this.native?.munmap(proc, gva, size, cpu);
  }

  contextSwitch(proc: GuestProcess, cpu: number): void {
    this.guest.contextSwitch(proc, cpu);
    this.native?.contextSwitch(proc, cpu);
  }

  exit(proc: GuestProcess, cpu: number): void {
    this.guest.exit(proc, cpu);
    this.writtenByGva.delete(proc);
    this.native?.exit(proc, cpu);
  }
}

export class Machine {
  readonly bus: EventBus;
  readonly host: HostKernel;
  readonly vms: VmState[] = [];
  // Data checking.
  dataErrors = 0;
  invariantViolations = 0;
  readonly violations: string[] = [];
  /**
   * Compare each access's translation (the TLB's, or under shadow paging the shadow entry's)
   * with the guest kernel's own tables: a stale entry is a violation even when the data happens
   * to match. Off by default (on with run --check=full and in memvirt check): it walks the guest
   * tables per access. Guests without a kernel may use a stale entry until their INVLPG: not checked.
   */
  checkShadowWalks = false;
  /** Guest reads made, and a digest of the values they returned (the same under every MMU mode). */
  valuesRead = 0;
  readDigest = 0;
  private writeSeq = 0;

  constructor(
    readonly scenario: Scenario,
    bus = new EventBus(),
    /** Run each VM's guest on bare metal in lockstep too, for the native baseline (default on). */
    opts: { native?: boolean } = {},
  ) {
    this.bus = bus;
    const h = scenario.host;
    this.host = new HostKernel(
      { ram: h.ram, swap: h.swap, thp: h.thp, kswapd: "agent", ...(h.watermarks ? { watermarks: h.watermarks } : {}) },
      bus,
    );
    for (const vm of scenario.vms) this.vms.push(new VmState(vm, this.host, bus, opts.native ?? true));
  }

  /** One guest access by `ps` to `gva`: translate (faulting as needed), then read or write the page. */
  runAccess(ps: ProcState, gva: number, op: number): void {
    const vm = ps.vm;
    const vcpu = vm.qemu.kvm.vcpus[ps.cpu]!;
    const write = op === OP_WRITE;
    const acc = (ps.user ? ACC_USER : 0) | (write ? ACC_WRITE : 0);
    for (let guestFaults = 0; ; ) {
      const r = vcpu.access(gva, acc);
      if (r === XLATE_OK) break;
      if (r === XLATE_GUEST_PF) {
        if (++guestFaults > MAX_GUEST_FAULTS_PER_ACCESS)
          throw new VmFailure(
            `${vm.cfg.name}/${ps.cfg.name}: livelock in the guest #PF retry loop: gva 0x${gva.toString(16)} still faults after the guest kernel fixed it ${MAX_GUEST_FAULTS_PER_ACCESS} times`,
          );
        // The guest's own #PF: under EPT/NPT it does not exit; under shadow paging KVM reflected it.
        if (vm.kernel === null || ps.process === null)
          throw new VmFailure(
            `${vm.cfg.name}/${ps.cfg.name}: guest #PF (error code 0x${vcpu.mmu.errorCode.toString(16)}) at gva 0x${gva.toString(16)} in a guest without a kernel to handle it: the VMM's tables do not allow this access`,
          );
        const res = vm.kernel.handlePageFault(ps.process, gva, vcpu.mmu.errorCode, ps.cpu);
        if (res !== "fixed") throw new VmFailure(`${vm.cfg.name}/${ps.cfg.name}: guest ${res} at gva 0x${gva.toString(16)}`);
        continue;
      }
      if (r === VCPU_FAILED) throw new VmFailure(`${vm.cfg.name}/${ps.cfg.name}: ${vcpu.error}`);
    }
    ps.accesses++;
    const frame = Math.floor(vcpu.mmu.hpa / PAGE_SIZE);
    if (ps.process !== null) vm.native?.access(ps.process, ps.cpu, gva, op);
    const mem = this.host.mem;
    if ((this.host.meta.flags[frame]! & PG_buddy) !== 0) {
      this.violation(
        `${vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} reached host frame 0x${frame.toString(16)}, which is free: a stale translation`,
      );
    }
    // Natively the hardware's physical address is a host one: under shadow paging the guest
    // frame comes from the spte that maps gva (its shadowed translation).
    const gfn = vcpu.shadow !== null ? vcpu.shadow.gfnOf(gva) : Math.floor(vcpu.mmu.gpa / PAGE_SIZE);
    if (gfn < 0) {
      this.violation(
        `${vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} was translated, but no shadow entry maps it: a stale TLB entry`,
      );
    }
    if (this.checkShadowWalks && vm.kernel !== null && gfn >= 0) {
      const want = this.guestGfnOf(vm, vcpu.shadow !== null ? vcpu.shadow.cr3Gfn : vcpu.mmu.cr3Frame, gva);
      if (want !== -2 && want !== gfn)
        this.violation(
          `${vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} went to gfn 0x${gfn.toString(16)}, but the guest's tables map ${want < 0 ? "nothing" : `gfn 0x${want.toString(16)}`} there: a stale ${vcpu.shadow !== null ? "shadow entry or " : ""}TLB entry`,
        );
    }
    const page = Math.floor(gva / PAGE_SIZE);
    const byGva = vm.expectedByGva(ps.process ?? ps.space!);
    if (write) {
      const v = (Math.imul(++this.writeSeq, 0x9e3779b1) | 1) >>> 0;
      mem.content[frame] = v;
      vm.expected.set(gfn, v);
      if (ps.process === null || !vm.sharedFileWrite(ps.process, gva, v)) byGva.set(page, v);
    } else {
      const got = mem.content[frame]!;
      this.valuesRead++;
      this.readDigest = (Math.imul(this.readDigest, 0x01000193) ^ got) >>> 0;
      // Two views of what the guest should read: what its frame last held (zero after the
      // guest cleared it or the host discarded it), and what its process last wrote at this
      // address (which no host action may take away from a page still in use).
      const want = vm.expected.get(gfn) ?? 0;
      let wrote = byGva.get(page);
      if (wrote === undefined) wrote = ps.process === null ? 0 : vm.unwrittenValue(ps.process, gva);
      if (want !== UNKNOWN && (got !== want || got !== wrote)) {
        this.dataErrors++;
        if (this.violations.length < 20) {
          const lost =
            got === want && got !== wrote
              ? ` (the process wrote 0x${wrote.toString(16)} there: the host discarded a page the guest was using)`
              : "";
          this.violations.push(
            `${vm.cfg.name}/${ps.cfg.name}: gva 0x${gva.toString(16)} read 0x${got.toString(16)}, expected 0x${(got !== want ? want : wrote).toString(16)}${lost}`,
          );
        }
      }
    }
  }

  violation(msg: string): void {
    this.invariantViolations++;
    if (this.violations.length < 20) this.violations.push(msg);
  }

  /** The gfn the guest's tables rooted at `rootGfn` map at gva, read without side effects: -1 if none, -2 if a table is not in host RAM. */
  private guestGfnOf(vm: VmState, rootGfn: number, gva: number): number {
    const mem = this.host.mem;
    let table = rootGfn;
    for (let level: number = vm.cfg.guest.levels; level >= 1; level--) {
      const p = this.host.probe(vm.qemu.mm, vm.qemu.gpaToHva(table * PAGE_SIZE));
      if (p.state !== "present" || !mem.isTable(p.pfn)) return -2;
      const idx = Math.floor(gva / LEVEL_SIZE[level]!) % 512;
      const lo = mem.readLo(p.pfn, idx);
      const hi = mem.readHi(p.pfn, idx);
      if ((lo & PTE_P) === 0) return -1;
      if (level === 1 || (level <= 3 && (lo & PTE_PS) !== 0)) {
        const size = LEVEL_SIZE[level]!;
        return entryPfn(level > 1 ? lo & ~PTE_PAT_HUGE : lo, hi) + Math.floor((gva % size) / PAGE_SIZE);
      }
      table = entryPfn(lo, hi);
    }
    return -1;
  }

  /**
   * The structures' own invariants: the host mm's (rmap, LRU, swap counts, accounting, free
   * lists: host/invariants.ts) and each shadow MMU's (rmaps, parent links, counts, write
   * tracking: kvm/shadow_check.ts). O(memory): the engine runs it at the end of a run, and
   * with checks "full" every CHECK_EVERY slices. Returns the number of violations found.
   */
  checkStructures(): number {
    let bad = 0;
    try {
      this.host.checkInvariants();
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("host mm invariant")) throw e;
      this.violation(e.message);
      bad++;
    }
    for (const vm of this.vms) {
      const sh = vm.qemu.kvm.shadow;
      if (sh === null) continue;
      for (const msg of sh.checkInvariants()) {
        this.violation(`${vm.cfg.name}: shadow MMU invariant: ${msg}`);
        bad++;
      }
    }
    return bad;
  }

  /**
   * The invariant of the mmu_notifier protocol: every EPT/NPT or shadow leaf maps the frame
   * that QEMU's page tables map at the leaf's hva. Returns the number of stale leaves found.
   */
  checkStaleMappings(): number {
    let stale = 0;
    for (const vm of this.vms) {
      const kvm = vm.qemu.kvm;
      kvm.forEachLeaf((gfn, level, pfn) => {
        const hva = vm.qemu.gpaToHva(gfn * PAGE_SIZE);
        const p = this.host.probe(vm.qemu.mm, hva);
        const hostPfn = p.state === "present" ? p.pfn - (p.pfn % framesAt(level)) : -1;
        if (hostPfn !== pfn) {
          stale++;
          this.violation(
            `${vm.cfg.name}: ${kvm.opts.mode.toUpperCase()} leaf (level ${level}) maps gfn 0x${gfn.toString(16)} to pfn 0x${pfn.toString(16)}, but QEMU's hva 0x${hva.toString(16)} maps ${hostPfn < 0 ? "nothing" : `pfn 0x${hostPfn.toString(16)}`}: a stale mapping`,
          );
        }
      });
    }
    return stale;
  }
}

/** The VMM's virt_map() of a guest without a kernel: its scenario spaces as page tables in guest RAM. */
function buildVirtMap(qemu: QemuVm, cfg: VmConfig): VirtMap {
  const spaces = cfg.guest.spaces ?? [];
  return new VirtMap(
    qemu,
    cfg.guest.levels,
    spaces.map((sp) => ({
      name: sp.name,
      share: sp.share === undefined ? -1 : spaces.findIndex((o) => o.name === sp.share),
      regions: sp.regions.map((r) => ({ name: r.name, gva: r.gva, size: r.size, level: r.page === "2m" ? 2 : 1, user: r.cpl === 3 })),
    })),
  );
}
