// SPDX-License-Identifier: MIT
// A simulated host built from a scenario: the host kernel, and per VM the QEMU process
// (guest RAM, memslots), the KVM VM with its vCPUs, the guest kernel running on them, and
// the guest processes with their workload steps. runAccess() is one guest access, end to end,
// on the vCPU and on the native twin's CPU through the same access loop (accessLoop); the
// machine tells the checker (sim/checker.ts) what each access and frame event did.

import { type Gva, PAGE_SIZE } from "../hw/addr.js";
import type { Cpu, CpuPort } from "../hw/cpu_port.js";
import { EventBus } from "../hw/events.js";
import { ACC_USER, ACC_WRITE, TLB_AMD_ZEN4, TLB_INTEL_GOLDEN_COVE, type TlbConfig, XLATE_GUEST_PF, XLATE_OK } from "../hw/mmu.js";
import type { MmuCore } from "../hw/mmu_core.js";
import { HostKernel } from "../host/kernel.js";
import { filePageContent } from "../guest/filemap.js";
import { GuestKernel, type MmapOptions } from "../guest/kernel.js";
import type { GuestProcess } from "../guest/process.js";
import { VirtioBalloonDriver } from "../guest/virtio_balloon.js";
import { SelftestGuest } from "../guest/selftest.js";
import { type GuestPageObserver, type Vcpu, VmFailure } from "../kvm/kvm.js";
import { VirtMap } from "../qemu/virt_map.js";
import { VirtioBalloon } from "../qemu/virtio_balloon.js";
import { QemuVm } from "../qemu/vm.js";
import { OP_WRITE, type AccessStream } from "../workload/stream.js";
import { CONTENT_DUP, CONTENT_UNIQUE, CONTENT_ZERO, dupContent } from "../workload/content.js";
import type { KsmConfig } from "../host/ksm.js";
import { Checker, type MemoryObserver } from "./checker.js";
import { MODEL_HZ } from "./cost.js";
import type { MigrationRun } from "./migrate.js";
import { NativeTwin } from "./native_twin.js";
import type { ProcessConfig, Scenario, VmConfig } from "./scenario_schema.js";
import type { EventMap } from "./sim_events.js";
import { setupDirtyLog } from "./dirty_log_action.js";
import { QemuSwapDisk } from "./guest_swap_disk.js";

export interface Region {
  gva: number;
  size: number;
}

/** A guest process and its place in its step list. */
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
  /** The current trace's program image: the guest file its code and read-only data pages map (see StepRunner.mapTraceRegions). */
  traceImage = "";
  /** A churn step in progress: rounds left, bytes per round, pages written per round. */
  churn: { kind: "mmapChurn" | "processChurn"; left: number; size: number; touch: number; round: number } | null = null;
  /** What the current step's writes store (workload/content.ts) and, for dup, its number of classes. */
  content = CONTENT_UNIQUE;
  contentClasses = 1;
  /** The accesses run at CPL 3 (user); a selftest-style guest's region may say CPL 0. */
  user = true;
  /** Without a kernel: the space whose tables map the current step's region (the checker keys its writes by it). */
  space: object | null = null;
  /** The process's twin on the native baseline, or null (no baseline, or no process). */
  readonly nativeProcess: GuestProcess | null;
  constructor(
    readonly vm: VmState,
    readonly cfg: ProcessConfig,
    /** The guest process; null in a guest without a kernel, whose vCPU runs the steps itself. */
    readonly process: GuestProcess | null,
    readonly cpu: number,
  ) {
    this.nativeProcess = process !== null && vm.native !== null ? vm.native.twin(process) : null;
  }

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

/** Guest page faults one access may take before the run fails as a livelock (the handler keeps saying "fixed"). */
export const MAX_GUEST_FAULTS_PER_ACCESS = 64;

export class VmState {
  /** This VM's index in Machine.vms (and its id with the checker). */
  readonly id: number;
  /** The VM's QEMU: the destination's once a migration switched over (see migrateTo). */
  qemu: QemuVm;
  /** The guest kernel; null with guest.kernel none. */
  readonly kernel: GuestKernel | null;
  /** With guest.kernel none: the guest code, and the page tables the VMM built for it. */
  readonly selftest: SelftestGuest | null = null;
  readonly virtMap: VirtMap | null = null;
  readonly procs: ProcState[] = [];
  /** Per vCPU: its processes (time-shared) and which one runs now. */
  readonly runQueues: ProcState[][];
  readonly current: (ProcState | null)[];
  /** Per vCPU: accesses its current process has run since it was switched to. */
  readonly timesliceUsed: number[] = [];
  /** The same guest on bare metal, in lockstep (the native baseline), or null. */
  readonly native: NativeTwin | null;
  /** The virtio-balloon device and its guest driver, if the VM has one (bare metal has none). */
  readonly balloon: { device: VirtioBalloon; driver: VirtioBalloonDriver } | null = null;
  constructor(
    readonly cfg: VmConfig,
    host: HostKernel,
    bus: EventBus<EventMap>,
    private readonly checker: MemoryObserver,
    native = false,
    mmuCore?: MmuCore,
  ) {
    const id = checker.addVm();
    this.id = id;
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
        ...(mmuCore ? { mmuCore } : {}),
      },
      bus,
    );
    // -machine mem-merge=on: QEMU's qemu_madvise(QEMU_MADV_MERGEABLE) on guest RAM.
    if (cfg.mergeable) host.madvise(this.qemu.mm, this.qemu.ramHva, cfg.ram, "mergeable");
    setupDirtyLog(this.qemu.kvm, cfg.dirtyLog);
    const vcpus = this.qemu.kvm.vcpus;
    const pages: GuestPageObserver = {
      frameCleared: (gfn) => checker.frameCleared(id, gfn),
      frameCopied: (dst, src) => checker.frameCopied(id, dst, src),
    };
    for (const v of vcpus) {
      v.setSregsPcide(cfg.guest.pcid);
      v.pageObserver = pages;
    }
    this.runQueues = vcpus.map(() => []);
    this.current = vcpus.map(() => null);
    if (cfg.guest.kernel === "none") {
      this.kernel = null;
      this.native = null;
      this.virtMap = buildVirtMap(this.qemu, cfg);
      this.selftest = new SelftestGuest(this.virtMap, vcpus);
      this.startWithoutKernel(this.virtMap, this.selftest);
      return;
    }
    this.kernel = new GuestKernel({
      ram: this.qemu.ranges.map((r) => [r.start, r.end] as const),
      cpus: vcpus,
      levels: cfg.guest.levels,
      bus,
      pcid: cfg.guest.pcid,
      zeroPage: cfg.guest.zeroPage,
      disk: { readPage: (gfn, ino, index) => this.diskRead(gfn, ino, index) },
      ...(cfg.guest.swap > 0 ? { swap: { bytes: cfg.guest.swap, disk: new QemuSwapDisk(() => this.qemu, checker, id, cfg.name) } } : {}),
    });
    this.native = native
      ? new NativeTwin(
          this.qemu.ranges.map((r) => [r.start, r.end] as const),
          cfg.vcpus,
          cfg.guest.levels,
          tlbConfig(cfg.tlb),
          cfg.guest,
          mmuCore,
        )
      : null;
    if (cfg.balloon !== undefined) this.balloon = this.attachBalloon(cfg.balloon, vcpus[0]!, checker);
    for (const p of cfg.processes) {
      const proc = this.createProcess(p.name, p.vcpu);
      const ps = new ProcState(this, p, proc, p.vcpu);
      this.procs.push(ps);
      this.runQueues[p.vcpu]!.push(ps);
    }
    this.createMappedFiles();
  }

  /** -device virtio-balloon: QEMU's device, and the guest's driver probed at boot (its reporting starts one delay later). */
  private attachBalloon(b: NonNullable<VmConfig["balloon"]>, port: CpuPort, checker: MemoryObserver) {
    const device = new VirtioBalloon(this.qemu, { deflateOnOom: b.deflateOnOom, freePageReporting: b.freePageReporting });
    device.onDiscard = (gpa, size) => checker.rangeDiscarded(this.id, gpa, size, "DONTNEED");
    const k = this.guest;
    const driver = new VirtioBalloonDriver(device, k.pgtable, k.alloc, k.stats, port, {
      reportingOrder: b.reportingOrder,
      reportingDelay: (b.reportingDelayMs / 1000) * MODEL_HZ,
      retryDelay: 0.2 * MODEL_HZ,
    });
    driver.probe(0);
    return { device, driver };
  }

  /** A guest without a kernel: each process on its vCPU, CR3 at its space's root (KVM_SET_SREGS). */
  private startWithoutKernel(virtMap: VirtMap, selftest: SelftestGuest): void {
    for (const p of this.cfg.processes) {
      const ps = new ProcState(this, p, null, p.vcpu);
      for (const sp of virtMap.spaces) for (const r of sp.regions) ps.regions.set(r.name, { gva: r.gva, size: r.size });
      this.procs.push(ps);
      this.runQueues[p.vcpu]!.push(ps);
      const space = p.space === undefined ? 0 : selftest.space(p.space);
      this.qemu.kvm.vcpus[p.vcpu]!.setSregsCr3(virtMap.spaces[space]!.pgd, selftest.pcidOf(p.vcpu, space));
      selftest.started(p.vcpu, space);
    }
  }

  /** The files the processes map, each as large as its largest mapping (whichever process maps it first). */
  private createMappedFiles(): void {
    const files = new Map<string, number>();
    for (const p of this.cfg.processes)
      for (const st of p.steps) if (st.kind === "mmapFile") files.set(st.file, Math.max(files.get(st.file) ?? 0, st.size));
    for (const [file, size] of files) this.createFile(file, size);
  }

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
    this.qemu.markDirty(gfn * PAGE_SIZE); // live migration: QEMU's own write
    this.checker.frameFilled(this.id, gfn, value);
  }

  /** Creates file `name` of `size` bytes in the guest's filesystem (and the native twin's), if there is none. */
  createFile(name: string, size: number): void {
    this.guest.pageCache.open(name, size);
    this.native?.guest.pageCache.open(name, size);
  }

  // ---- live migration (sim/migrate.ts) ----
  /** QEMUs this VM ran on before a migration (their counters still count in the VM's cost). */
  readonly retired: QemuVm[] = [];

  /** The guest resumes on `dst`'s vCPUs (the vCPU state was copied by the caller). */
  migrateTo(dst: QemuVm): void {
    this.retired.push(this.qemu);
    this.qemu = dst;
    this.kernel?.resumeOn(dst.kvm.vcpus);
  }

  /** The guest kernel, which a guest without one (guest.kernel: none) does not have. */
  get guest(): GuestKernel {
    if (this.kernel === null) throw new Error(`${this.cfg.name}: a guest without a kernel has no processes to manage`);
    return this.kernel;
  }

  createProcess(name: string, cpu: number): GuestProcess {
    const proc = this.guest.createProcess(name, cpu);
    this.native?.createProcess(proc, cpu);
    return proc;
  }

  mmap(proc: GuestProcess, name: string, size: number, opts: MmapOptions = {}): number {
    const gva = this.guest.mmap(proc, name, size, opts);
    if (opts.shared) this.checker.sharedFileMapped(this.id);
    this.native?.mmap(proc, name, size, opts, gva);
    return gva;
  }

  munmap(proc: GuestProcess, gva: number, size: number, cpu: number): void {
    this.guest.munmap(proc, gva, size, cpu);
    this.checker.unmapped(this.id, proc, gva, size);
    this.native?.munmap(proc, gva, size, cpu);
  }

  contextSwitch(proc: GuestProcess, cpu: number): void {
    this.guest.contextSwitch(proc, cpu);
    this.native?.contextSwitch(proc, cpu);
  }

  exit(proc: GuestProcess, cpu: number): void {
    this.guest.exit(proc, cpu);
    this.checker.exited(this.id, proc);
    this.native?.exit(proc, cpu);
  }
}

/** The ACC_* kind of each OP_* (a table, not a branch: reads and writes come in random order). */
export const ACC_OF_OP = new Uint8Array(256);
ACC_OF_OP[OP_WRITE] = ACC_WRITE;

export class Machine {
  readonly bus: EventBus<EventMap>;
  readonly host: HostKernel;
  readonly vms: VmState[] = [];
  readonly checker: Checker;
  /** Live migrations in progress or done (sim/migrate.ts). */
  readonly migrations: MigrationRun[] = [];
  /** Guest writes so far: each writes a value of its own, so a lost or misplaced write reads back wrong. */
  /** Writes of CONTENT_UNIQUE values so far: the n-th stores imul(n, 0x9e3779b1) | 1 (WriteValues). */
  writeSeq = 0;

  constructor(
    readonly scenario: Scenario,
    bus = new EventBus<EventMap>(),
    /**
     * native: run each VM's guest on bare metal in lockstep too, for the native baseline (default
     * on); mmuCore: the MMU implementation every vCPU and twin CPU runs on (default the wasm core).
     */
    opts: { native?: boolean; mmuCore?: MmuCore } = {},
  ) {
    this.bus = bus;
    const h = scenario.host;
    this.host = new HostKernel(
      {
        ram: h.ram,
        swap: h.swap,
        thp: h.thp,
        kswapd: "agent",
        ...(h.watermarks ? { watermarks: h.watermarks } : {}),
        ...(h.ksm ? { ksm: ksmConfig(h.ksm) } : {}),
        ...(h.zswap ? { zswap: { ...h.zswap } } : {}),
      },
      bus,
    );
    this.checker = new Checker(this.host, this.vms);
    for (const vm of scenario.vms) this.vms.push(new VmState(vm, this.host, bus, this.checker, opts.native ?? true, opts.mmuCore));
  }

  /**
   * One guest access by `ps` to `gva`: translate (faulting as needed) on its vCPU, and on its
   * native twin's CPU, read or write the page, tell the checker.
   */
  runAccess(ps: ProcState, gva: number, op: number): void {
    const vcpu = ps.vm.qemu.kvm.vcpus[ps.cpu]!;
    const acc = (ps.user ? ACC_USER : 0) | ACC_OF_OP[op]!;
    // Each CPU's first try has a call site of its own (one class of CPU each, so a TLB hit
    // inlines); accessLoop() does the rest.
    this.completeAccess(ps, vcpu, gva, acc, vcpu.access(gva as Gva, acc));
  }

  /** runAccess() once the vCPU's access returned `r` (the batched loop, sim/access_batch.ts, made that try in the core). */
  completeAccess(ps: ProcState, vcpu: Vcpu, gva: number, acc: number, r: number): void {
    const vm = ps.vm;
    if (r !== XLATE_OK) accessLoop(vcpu, vm.kernel, ps.process, ps, gva, acc, false, r);
    ps.accesses++;
    const frame = Math.floor(vcpu.mmu.hpa / PAGE_SIZE);
    const native = vm.native;
    if (native !== null && ps.nativeProcess !== null) {
      const cpu = native.cpus[ps.cpu]!;
      const rn = cpu.access(gva as Gva, acc);
      if (rn !== XLATE_OK) accessLoop(cpu, native.guest, ps.nativeProcess, ps, gva, acc, true, rn);
    }
    const content = this.host.mem.content;
    let value: number;
    const write = (acc & ACC_WRITE) !== 0;
    if (write) content[frame] = value = this.nextWriteValue(ps, gva);
    else value = content[frame]!;
    this.checker.access(ps, vcpu, gva, frame, write, value);
  }

  /** The value the next guest write of `ps` to `gva` stores: unique, or its step's content class (KSM). */
  nextWriteValue(ps: ProcState, gva: number): number {
    return ps.content === CONTENT_UNIQUE ? (Math.imul(++this.writeSeq, 0x9e3779b1) | 1) >>> 0 : contentValue(ps, gva);
  }

  // ---- perf (issue 13): the batched loop's write value, as a signed 32-bit integer (never a heap number)
  writesUnique(ps: ProcState): boolean {
    return ps.content === CONTENT_UNIQUE;
  }

  /** nextWriteValue(ps, gva) | 0. */
  nextWriteValueI32(ps: ProcState, gva: number): number {
    return ps.content === CONTENT_UNIQUE ? Math.imul(++this.writeSeq, 0x9e3779b1) | 1 : contentValue(ps, gva) | 0;
  }
}

/**
 * The access loop of every CPU, a vCPU or the native twin's CPU on bare metal, after a first try
 * that did not go through (`r`): the kernel handles its own #PF (exc_page_fault()) and the
 * instruction runs again, until the access goes through (hpa in cpu.mmu.hpa); anything else
 * stops the run.
 */
export function accessLoop(
  cpu: Cpu,
  kernel: GuestKernel | null,
  proc: GuestProcess | null,
  ps: ProcState,
  gva: number,
  acc: number,
  native: boolean,
  r: number,
): void {
  for (let guestFaults = 0; r !== XLATE_OK; r = cpu.access(gva as Gva, acc)) {
    if (r !== XLATE_GUEST_PF) throw new VmFailure(`${where(ps, native)}: ${cpu.error}`);
    if (++guestFaults > MAX_GUEST_FAULTS_PER_ACCESS)
      throw new VmFailure(
        `${where(ps, native)}: livelock in the guest #PF retry loop: gva 0x${gva.toString(16)} still faults after the guest kernel fixed it ${MAX_GUEST_FAULTS_PER_ACCESS} times`,
      );
    // The guest's own #PF: under EPT/NPT it does not exit; under shadow paging KVM reflected it.
    if (kernel === null || proc === null)
      throw new VmFailure(
        `${where(ps, native)}: guest #PF (error code 0x${cpu.mmu.errorCode.toString(16)}) at gva 0x${gva.toString(16)} in a guest without a kernel to handle it: the VMM's tables do not allow this access`,
      );
    const res = kernel.handlePageFault(proc, gva, cpu.mmu.errorCode, ps.cpu);
    if (res !== "fixed") throw new VmFailure(`${where(ps, native)}: guest ${res} at gva 0x${gva.toString(16)}`);
  }
}

/** Who failed, for a failure's message. */
function where(ps: ProcState, native: boolean): string {
  return `${ps.vm.cfg.name}/${ps.cfg.name}${native ? " (native twin)" : ""}`;
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

// ---- KSM (issue 15) ------------------------------------------------------------------------

/** A write's value under a step's `content` other than unique. */
function contentValue(ps: ProcState, gva: number): number {
  return ps.content === CONTENT_ZERO ? 0 : dupContent(gva, ps.contentClasses);
}

/** A step's `content` on its process. */
export function setStepContent(ps: ProcState, content: "unique" | "zero" | { dup: number } | undefined): void {
  ps.content = content === undefined || content === "unique" ? CONTENT_UNIQUE : content === "zero" ? CONTENT_ZERO : CONTENT_DUP;
  ps.contentClasses = typeof content === "object" ? content.dup : 1;
}

/** host.ksm as the host kernel's /sys/kernel/mm/ksm tunables. */
function ksmConfig(k: { run: 0 | 1; pages_to_scan: number; sleep_millisecs: number; use_zero_pages: boolean }): Partial<KsmConfig> {
  return { run: k.run, pagesToScan: k.pages_to_scan, sleepMillisecs: k.sleep_millisecs, useZeroPages: k.use_zero_pages };
}
