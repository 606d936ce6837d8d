// SPDX-License-Identifier: MIT
// A KVM virtual machine (struct kvm) and its vCPUs (struct kvm_vcpu), as in
// include/linux/kvm_host.h and virt/kvm/kvm_main.c: memslots, the MMU that maps guest memory
// (chosen by x86.ts: the TDP MMU for EPT/NPT, or the shadow MMU for shadow paging), the
// invalidation sequence that the fault path and the mmu_notifier share, remote TLB flushes;
// per vCPU its MMU (vcpu->arch.mmu, see vcpu_mmu.ts), vcpu->mode, kicks and exits.
//
// The vCPU is the CPU the guest kernel runs on (hw/cpu_port.ts). Under EPT/NPT its page-table
// reads and writes and its clear_page() are guest-physical accesses that go through EPT/NPT like
// any other (and may exit to KVM, which faults the host page in); CR3 loads and INVLPG run on the
// hardware MMU without an exit, as the guest owns them. Under shadow paging a write to a frame
// KVM write-protects traps (KVM unsyncs the frame, or emulates the write), any other write is a
// plain guest memory write, and every CR3 load and INVLPG exits to KVM.
//
// simplified: under shadow paging the guest kernel's own reads of guest RAM never exit (its direct map is taken as present).

import { type Gfn, type Gpa, type Gva, PAGE_SIZE } from "../hw/addr.js";
import type { Cpu } from "../hw/cpu_port.js";
import type { EventBus } from "../hw/events.js";
import { type TlbConfig, XLATE_OK } from "../hw/mmu.js";
import type { HwMmu, MmuCore } from "../hw/mmu_core.js";
import type { PhysMem } from "../hw/phys_mem.js";
import type { MmuNotifier, MmuNotifierRange, NotifierMm } from "../host/mmu_notifier.js";
import type { KvmEventMap } from "./kvm_events.js";
import type { KvmDirtyRing } from "./dirty_ring.js";
import { type Memslot, Memslots } from "./memslot.js";
import { type HostMmOps, KvmPageFault, type KvmMmu, type VcpuMmu } from "./mmu.js";
import { vmxFlushPmlBuffer } from "./pml.js";
import { newVcpuStat, newVmStat } from "./stats.js";

export type TdpMode = "ept" | "npt";
/** How guest memory is translated: nested paging (EPT, NPT) or shadow page tables. */
export type MmuMode = TdpMode | "shadow";

export interface KvmOptions {
  mode: MmuMode;
  levels: 4 | 5;
  /** EPT accessed/dirty flags (EPTP bit 6); NPT always has them. */
  eptAd: boolean;
  vcpus: number;
  /** The vCPUs' TLB geometry (default: Intel Golden Cove's). */
  tlb?: TlbConfig;
  /** The MMU implementation the vCPUs run on: the wasm core (default) or the JS reference. */
  mmuCore?: MmuCore;
}

/** The points of kvm_tdp_page_fault() at which another agent may run (see tdp_fault.ts). */
export type FaultRacePoint = "before-faultin" | "after-faultin";

/** What x86.ts builds for a VM (kvm_arch_init_vm(), kvm_mmu_init_vm()) and each vCPU (kvm_mmu_create()). */
export interface KvmArch {
  readonly mmu: KvmMmu;
  createVcpuMmu(vcpu: Vcpu): VcpuMmu;
}

export class Kvm {
  readonly memslots = new Memslots();
  readonly stats = newVmStat();
  readonly vcpus: Vcpu[] = [];
  /** The MMU in use, whichever it is (the operations the notifier and the VM need). */
  readonly mmu: KvmMmu;
  // The invalidation protocol (kvm->mmu_invalidate_*).
  mmuInvalidateSeq = 0;
  mmuInvalidateInProgress = 0;
  mmuInvalidateRangeStart = 0;
  mmuInvalidateRangeEnd = 0;
  /** The vCPU whose exit KVM is handling now (outside guest mode), or null in host context. */
  currentVcpu: Vcpu | null = null;
  /** The scheduler's hook into the fault path's race points (null: the fault runs straight through). */
  racePoint: ((vcpu: Vcpu, point: FaultRacePoint, gfn: number) => void) | null = null;
  /** Debug switch: skip the invalidation re-check before install (to show what it prevents). */
  debugSkipSeqCheck = false;
  /** Sptes installed for a page an invalidation had already taken (only possible with debugSkipSeqCheck). */
  staleInstalls = 0;
  /** The gfn and pfn of the last stale install (later faults that raced fail naming it). */
  staleGfn = 0;
  stalePfn = 0;
  /** The mmu_notifier KVM registers on the VMM's mm (kvm_mmu_notifier_ops). */
  readonly notifier: MmuNotifier;

  // ---- dirty logging (dirty_log.ts)
  /** kvm->manual_dirty_log_protect: KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET. */
  manualDirtyLogProtect = 0;
  /** kvm->dirty_ring_size in entries (0: the memslots' bitmaps log). */
  dirtyRingSize = 0;
  /** The eager_page_split module parameter (on by default). */
  eagerPageSplit = true;
  /** The VMM's handler of KVM_EXIT_DIRTY_RING_FULL (it collects the rings and resets them), or null. */
  dirtyRingFullHandler: ((vcpu: Vcpu) => void) | null = null;
  /** enable_pml for this VM (pml.ts): dirty logging by page-modification logging, not write protection. */
  enablePml = false;

  constructor(
    readonly name: string,
    readonly mem: PhysMem,
    readonly host: HostMmOps,
    readonly opts: KvmOptions,
    readonly bus: EventBus<KvmEventMap>,
    initArch: (kvm: Kvm) => KvmArch,
  ) {
    const arch = initArch(this);
    this.mmu = arch.mmu;
    for (let i = 0; i < opts.vcpus; i++) this.vcpus.push(new Vcpu(this, i, arch));
    this.notifier = new KvmMmuNotifier(this);
  }

  /** KVM_SET_USER_MEMORY_REGION; the shadow-page limit follows the memslots (kvm_arch_commit_memory_region). */
  addMemslot(slot: Memslot): void {
    this.memslots.add(slot);
    this.mmu.memslotPagesChanged(this.memslots.slots.reduce((n, s) => n + s.npages, 0));
  }

  /** Every present leaf of the MMU in use: (gfn, level, pfn). For the checker and the visualizer. */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number) => void): void {
    this.mmu.forEachLeaf(fn);
  }

  /** kvm_unmap_gfn_range(): zaps the leaves mapping [gfnStart, gfnEnd); returns how many. */
  unmapGfnRange(gfnStart: number, gfnEnd: number): number {
    return this.mmu.unmapGfnRange(gfnStart, gfnEnd);
  }

  /** kvm_age_gfn() / kvm_test_age_gfn(). */
  ageGfnRange(gfnStart: number, gfnEnd: number, clear: boolean): boolean {
    return this.mmu.age(gfnStart, gfnEnd, clear);
  }

  /** kvm_mmu_zap_all(): every spte goes (the TDP root stays unless `freeRoot`). */
  zapAll(freeRoot: boolean): void {
    this.mmu.zapAll(freeRoot);
  }

  /**
   * kvm_flush_remote_tlbs(): KVM_REQ_TLB_FLUSH on every vCPU (kvm_make_all_cpus_request()), each
   * serviced at that vCPU's next VM entry, however many were made meanwhile. Only vCPUs in (or
   * exiting) guest mode get the IPI (kvm_request_needs_ipi(), not the vCPU running this code), and
   * remote_tlb_flush counts the flushes that sent one; the IPI kicks the vCPU out of the guest.
   */
  flushRemoteTlbs(): void {
    this.stats.remote_tlb_flush_requests++;
    let ipi = false;
    for (const v of this.vcpus) {
      v.requestTlbFlush();
      if (v !== this.currentVcpu && v.mode !== OUTSIDE_GUEST_MODE) {
        v.kick();
        ipi = true;
      }
    }
    if (ipi) this.stats.remote_tlb_flush++;
    if (this.bus.on) this.bus.emit("kvm.remote_tlb_flush", { vm: this.name, ipi: ipi ? 1 : 0 });
  }

  /** mmu_invalidate_retry_gfn(): an invalidation ran since `seq` or is running over gfn. */
  invalidationRaced(seq: number, gfn: number): boolean {
    if (this.mmuInvalidateInProgress > 0 && gfn >= this.mmuInvalidateRangeStart && gfn < this.mmuInvalidateRangeEnd) return true;
    return this.mmuInvalidateSeq !== seq;
  }

  /** kvm_mmu_invalidate_begin(): one more invalidation in progress; a first one starts an empty range. */
  invalidateBegin(): void {
    if (this.mmuInvalidateInProgress++ === 0) {
      this.mmuInvalidateRangeStart = Number.POSITIVE_INFINITY;
      this.mmuInvalidateRangeEnd = Number.NEGATIVE_INFINITY;
    }
  }

  /** kvm_mmu_invalidate_range_add(): widen the in-progress range to cover [gfnStart, gfnEnd). */
  invalidateRangeAdd(gfnStart: number, gfnEnd: number): void {
    this.mmuInvalidateRangeStart = Math.min(this.mmuInvalidateRangeStart, gfnStart);
    this.mmuInvalidateRangeEnd = Math.max(this.mmuInvalidateRangeEnd, gfnEnd);
  }

  /** kvm_mmu_invalidate_end(): the sequence moves on, faults may map the range again. */
  invalidateEnd(): void {
    this.mmuInvalidateSeq++;
    this.mmuInvalidateInProgress--;
  }

  /** kvm_vm_stat plus the sum over vCPUs of kvm_vcpu_stat, as SCENARIO.md's report wants. */
  statsWithVcpus(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.stats)) out[k] = v as number;
    for (const vc of this.vcpus) {
      for (const [k, v] of Object.entries(vc.stats)) if (typeof v === "number") out[k] = (out[k] ?? 0) + v;
    }
    return out;
  }

  /** VM teardown: every spte and table goes. */
  destroy(): void {
    this.zapAll(true);
    for (const v of this.vcpus) v.archMmu.unload();
    this.flushRemoteTlbs();
  }
}

/** access() outcome when the VM cannot go on (the host could not back guest memory). */
export const VCPU_FAILED = -1;

/** VcpuMmu.writeTable() outcome: KVM's emulator did the write (the guest must not do it again). */
export const KERNEL_WRITE_EMULATED = -2;

/** vcpu->mode (include/linux/kvm_host.h). */
export const OUTSIDE_GUEST_MODE = 0;
export const IN_GUEST_MODE = 1;
/** Kicked by an IPI while in guest mode: the VM exit it causes is taken at the next entry point. */
export const EXITING_GUEST_MODE = 2;

/** The VM cannot go on: the host could not back guest memory (OOM), or KVM hit a dead end. */
export class VmFailure extends Error {}

/** Told of the guest pages a vCPU clears or copies whole (a checker of what each guest frame should read). */
export interface GuestPageObserver {
  frameCleared(gfn: number): void;
  frameCopied(dst: number, src: number): void;
}

export class Vcpu implements Cpu {
  readonly stats = newVcpuStat();
  /** struct kvm_page_fault, reused by every fault of this vCPU. */
  readonly fault = new KvmPageFault();
  /** vcpu->arch.mmu: TDP or shadow paging, for the vCPU's life. */
  readonly archMmu: VcpuMmu;
  /** The hardware MMU the vCPU runs the guest on. */
  readonly mmu: HwMmu;
  /**
   * vcpu->mode: IN_GUEST_MODE from the first entry while the vCPU has guest code to run (the
   * engine's other agents run beside it), OUTSIDE_GUEST_MODE while KVM handles its exit or while
   * it is halted or stopped (halt()), EXITING_GUEST_MODE once an IPI kicked it.
   */
  mode = OUTSIDE_GUEST_MODE;
  /** vcpu->last_used_slot (kvm_vcpu_gfn_to_memslot()). */
  lastUsedSlot: Memslot | null = null;
  /** What KVM_RUN tells the VMM when an access fails (VCPU_FAILED): kvm_run's exit information, in words. */
  error = "";
  /** The entry the guest's last readEntry() read. */
  lo = 0;
  hi = 0;
  /** Told of the guest's page clears and copies, or null. */
  pageObserver: GuestPageObserver | null = null;
  /** vcpu->dirty_ring, with KVM_CAP_DIRTY_LOG_RING (dirty_log.ts). */
  dirtyRing: KvmDirtyRing | null = null;

  constructor(
    readonly kvm: Kvm,
    readonly id: number,
    arch: KvmArch,
  ) {
    this.archMmu = arch.createVcpuMmu(this);
    this.mmu = this.archMmu.hw;
  }

  /** A guest access to `gva`: XLATE_OK (hpa in mmu.hpa), XLATE_GUEST_PF for the guest's own #PF, or VCPU_FAILED. */
  access(gva: number, acc: number): number {
    return this.archMmu.access(gva, acc);
  }

  /** A guest-physical access by the guest kernel: XLATE_OK (hpa in mmu.hpa) or VCPU_FAILED. */
  physAccess(gpa: number, acc: number): number {
    return this.archMmu.physAccess(gpa, acc);
  }

  /**
   * One attempt of an EPT/NPT fault on `gpa` by this vCPU, as when it runs while another CPU
   * holds an invalidation open (KVM_PRE_FAULT_MEMORY): the RET_PF_* code, without the retry
   * loop (a retry would spin until invalidate_range_end). RET_PF_FAILED under shadow paging.
   */
  faultOnce(gpa: number, write: boolean): number {
    const kvm = this.kvm;
    const prev = kvm.currentVcpu;
    const mode = this.mode;
    this.mode = OUTSIDE_GUEST_MODE;
    kvm.currentVcpu = this;
    const r = this.archMmu.preFaultMemory(gpa, write);
    kvm.currentVcpu = prev;
    this.mode = mode;
    return r;
  }

  /** The access cannot go on: `why` is kept in error. */
  fail(why: string): number {
    this.error = why;
    return VCPU_FAILED;
  }

  /** kvm_make_request(KVM_REQ_TLB_FLUSH): serviced at the next VM entry, once however often it was made. */
  requestTlbFlush(): void {
    this.archMmu.requestTlbFlush();
  }

  /** The IPI of kvm_kick_many_cpus() reached the vCPU in guest mode: it will exit. */
  kick(): void {
    if (this.mode === IN_GUEST_MODE) this.mode = EXITING_GUEST_MODE;
  }

  /**
   * The vCPU stops running guest code (HLT with nothing to run, or stopped by the VMM): it leaves
   * guest mode, taking the exit of a pending kick first.
   * simplified: the HLT exit itself is not counted.
   */
  halt(): void {
    if (this.mode === EXITING_GUEST_MODE) this.kickExit();
    else if (this.kvm.enablePml) vmxFlushPmlBuffer(this); // the exit of the HLT (vmx_handle_exit())
    this.mode = OUTSIDE_GUEST_MODE;
  }

  /** The VM exit an IPI causes (EXIT_REASON_EXTERNAL_INTERRUPT, handle_external_interrupt()), taken at entry. */
  kickExit(): void {
    if (this.kvm.enablePml) vmxFlushPmlBuffer(this);
    this.stats.exits++;
    this.stats.irq_exits++;
    this.stats.exitReasons.EXTERNAL_INTERRUPT = (this.stats.exitReasons.EXTERNAL_INTERRUPT ?? 0) + 1;
    if (this.kvm.bus.on) this.kvm.bus.emit("kvm.exit", { vcpu: this.id, reason: "EXTERNAL_INTERRUPT" });
  }

  /**
   * An I/O exit to userspace (a selftest's ucall: OUT to the ucall port, KVM_EXIT_IO). It counts
   * an exit and touches nothing in the MMU; requests pending under shadow paging are serviced
   * at the next entry, as always. Returns XLATE_OK or VCPU_FAILED.
   */
  ioExit(): number {
    if (!this.archMmu.enter()) return VCPU_FAILED;
    this.mode = OUTSIDE_GUEST_MODE;
    if (this.kvm.enablePml) vmxFlushPmlBuffer(this);
    this.stats.exits++;
    this.stats.exitReasons.IO_INSTRUCTION = (this.stats.exitReasons.IO_INSTRUCTION ?? 0) + 1;
    if (this.kvm.bus.on) {
      this.kvm.bus.emit("kvm.exit", { vcpu: this.id, reason: "IO_INSTRUCTION" });
      this.kvm.bus.emit("kvm.entry", { vcpu: this.id });
    }
    return this.archMmu.enter() ? XLATE_OK : VCPU_FAILED;
  }

  /** KVM_SET_SREGS before the first KVM_RUN: CR3 (and CR4.PCIDE's PCID) set by the VMM, no exit. */
  setSregsCr3(rootGfn: number, pcid: number): void {
    this.archMmu.setSregsCr3(rootGfn, pcid);
  }

  /** KVM_SET_SREGS's CR4.PCIDE: off for a guest booted with "nopcid". */
  setSregsPcide(on: boolean): void {
    this.mmu.pcide = on;
  }

  // ---------------------------------------------------------------- the guest kernel's CPU port

  get pcide(): boolean {
    return this.mmu.pcide;
  }

  /** A table read or write outcome: the host frame, or KERNEL_WRITE_EMULATED; a failure stops the VM. */
  private check(r: number): number {
    if (r < 0 && r !== KERNEL_WRITE_EMULATED) throw new VmFailure(`vCPU ${this.id}: ${this.error}`);
    return r;
  }

  readEntry(gpa: Gpa): void {
    const f = this.check(this.archMmu.readTable(gpa));
    const mem = this.kvm.mem;
    if (mem.isTable(f)) {
      const idx = (gpa % PAGE_SIZE) / 8;
      this.lo = mem.readLo(f, idx);
      this.hi = mem.readHi(f, idx);
    } else {
      // A page that never held a table (zero page, fresh page) reads as zeroes.
      this.lo = 0;
      this.hi = 0;
    }
  }

  writeEntry(gpa: Gpa, lo: number, hi: number): void {
    const f = this.check(this.archMmu.writeTable(gpa, true, lo, hi));
    if (f === KERNEL_WRITE_EMULATED) return;
    const mem = this.kvm.mem;
    if (!mem.isTable(f)) mem.allocTable(f);
    mem.writeEntry(f, (gpa % PAGE_SIZE) / 8, lo, hi);
  }

  zeroPage(gfn: Gfn): void {
    const f = this.check(this.archMmu.writeTable(gfn * PAGE_SIZE, false, 0, 0));
    this.kvm.mem.zeroFrame(f);
    this.pageObserver?.frameCleared(gfn);
  }

  copyPage(dst: Gfn, src: Gfn): void {
    // Like the guest's copy loop: each side is a guest-physical access through EPT/NPT (or the direct map under shadow paging).
    const fd = this.check(this.archMmu.writeTable(dst * PAGE_SIZE, false, 0, 0));
    const fs = this.check(this.archMmu.readTable(src * PAGE_SIZE));
    this.kvm.mem.copyFrame(fd, fs);
    this.pageObserver?.frameCopied(dst, src);
  }

  loadCr3(rootGfn: Gfn, pcid: number, noFlush: boolean): void {
    this.check(this.archMmu.setCr3(rootGfn, pcid, noFlush));
  }

  invlpg(gva: Gva): void {
    this.check(this.archMmu.invlpg(gva));
  }

  flushTlb(): void {
    this.check(this.archMmu.flushTlb());
  }

  ucall(): void {
    this.check(this.ioExit());
  }
}

/** kvm_mmu_notifier_ops: the host mm tells KVM what is going away or being aged. */
class KvmMmuNotifier implements MmuNotifier {
  constructor(private readonly kvm: Kvm) {}

  /** kvm_mmu_notifier_invalidate_range_start(): zap the sptes of every overlapping slot, flush once. */
  invalidateRangeStart(range: MmuNotifierRange): void {
    const kvm = this.kvm;
    let begun = false;
    let zapped = 0;
    let firstGfn = -1;
    kvm.memslots.hvaRangeToGfns(range.start, range.end, (_slot, gfnStart, gfnEnd) => {
      // on_lock = kvm_mmu_invalidate_begin, run when the first overlapping slot takes mmu_lock.
      if (!begun) firstGfn = gfnStart;
      if (!begun) kvm.invalidateBegin();
      begun = true;
      kvm.invalidateRangeAdd(gfnStart, gfnEnd);
      zapped += kvm.unmapGfnRange(gfnStart, gfnEnd);
    });
    // No overlapping slot: nothing happens (and end finds none either).
    if (!begun) return;
    kvm.stats.mmu_notifier_invalidations++;
    kvm.stats.mmu_notifier_zapped += zapped;
    if (kvm.bus.on) kvm.bus.emit("kvm.notifier_zap", { vm: kvm.name, start: range.start, end: range.end, gfn: firstGfn, zapped });
    if (zapped > 0) kvm.flushRemoteTlbs();
  }

  /** kvm_mmu_notifier_invalidate_range_end(): seq++, in_progress--. */
  invalidateRangeEnd(range: MmuNotifierRange): void {
    const kvm = this.kvm;
    let overlaps = false;
    kvm.memslots.hvaRangeToGfns(range.start, range.end, () => {
      overlaps = true;
    });
    if (overlaps) kvm.invalidateEnd();
  }

  /** kvm_mmu_notifier_clear_flush_young(): no flush on x86 since 6.13 (KVM_ELIDE_TLB_FLUSH_IF_YOUNG). */
  clearFlushYoung(_mm: NotifierMm, start: number, end: number): boolean {
    return this.age(start, end, true);
  }

  clearYoung(_mm: NotifierMm, start: number, end: number): boolean {
    return this.age(start, end, true);
  }

  testYoung(_mm: NotifierMm, addr: number): boolean {
    return this.age(addr, addr + 1, false);
  }

  /** kvm_mmu_notifier_release(): kvm_flush_shadow_all(). */
  release(_mm: NotifierMm): void {
    this.kvm.zapAll(false);
    this.kvm.flushRemoteTlbs();
  }

  private age(start: number, end: number, clear: boolean): boolean {
    let young = false;
    this.kvm.memslots.hvaRangeToGfns(start, end, (_slot, gfnStart, gfnEnd) => {
      if (this.kvm.ageGfnRange(gfnStart, gfnEnd, clear)) young = true;
    });
    return young;
  }
}
