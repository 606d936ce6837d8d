// SPDX-License-Identifier: MIT
// A vCPU (struct kvm_vcpu): its MMU (vcpu->arch.mmu, a VcpuMmu chosen at creation: see
// vcpu_mmu.ts), its exits, and its statistics. access() is vcpu_enter_guest() reduced to memory:
// run the guest's access on the hardware; on an exit, let KVM fix it and re-enter.

import { ACC_FETCH, ACC_WRITE, XLATE_OK } from "../hw/mmu.js";
import type { HwMmu } from "../hw/mmu_core.js";
import { PFERR_WRITE } from "../hw/x86_pte.js";
import type { Kvm } from "./kvm.js";
import type { Memslot } from "./memslot.js";
import { KvmPageFault, type VcpuMmu, kvmMmuDoPageFault } from "./mmu.js";
import type { ShadowVcpuMmu } from "./shadow_vcpu.js";
import { VcpuStat } from "./stats.js";
import { tdpPageFault } from "./tdp_fault.js";

/** access() outcome when the VM cannot go on (the host could not back guest memory). */
export const VCPU_FAILED = -1;

/** VcpuMmu.writeTable() outcome: KVM's emulator did the write (the guest must not do it again). */
export const KERNEL_WRITE_EMULATED = -2;

/** vcpu->mode (include/linux/kvm_host.h). */
export const OUTSIDE_GUEST_MODE = 0;
export const IN_GUEST_MODE = 1;
/** Kicked by an IPI while in guest mode: the VM exit it causes is taken at the next entry point. */
export const EXITING_GUEST_MODE = 2;

export class Vcpu {
  readonly stats = new VcpuStat();
  /** struct kvm_page_fault, reused by every fault of this vCPU. */
  readonly fault = new KvmPageFault();
  /** vcpu->arch.mmu: TDP or shadow paging, for the vCPU's life. */
  readonly archMmu: VcpuMmu;
  /** The hardware MMU the vCPU runs the guest on. */
  readonly mmu: HwMmu;
  /** The shadow-paging context (roots, guest CR3, requests), or null under EPT/NPT. For readers. */
  readonly shadow: ShadowVcpuMmu | null;
  /**
   * vcpu->mode: IN_GUEST_MODE from the first entry while the vCPU has guest code to run (the
   * engine's other agents run beside it), OUTSIDE_GUEST_MODE while KVM handles its exit or while
   * it is halted or stopped (halt()), EXITING_GUEST_MODE once an IPI kicked it.
   */
  mode = OUTSIDE_GUEST_MODE;
  /** kvm_vcpu_gfn_to_memslot()'s last-used slot. */
  lastSlot: Memslot | null = null;
  /** Why the last access failed (VCPU_FAILED). */
  error = "";

  constructor(
    readonly kvm: Kvm,
    readonly id: number,
    createMmu: (vcpu: Vcpu) => VcpuMmu,
  ) {
    this.archMmu = createMmu(this);
    this.mmu = this.archMmu.hw;
    this.shadow = this.archMmu.shadow;
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
   * holds an invalidation open (KVM_PRE_FAULT_MEMORY makes the same call): the RET_PF_* code,
   * without the retry loop (a retry would spin until invalidate_range_end). TDP only.
   */
  faultOnce(gpa: number, write: boolean): number {
    const kvm = this.kvm;
    const prev = kvm.currentVcpu;
    const mode = this.mode;
    this.mode = OUTSIDE_GUEST_MODE;
    kvm.currentVcpu = this;
    const r = kvmMmuDoPageFault(kvm, this, tdpPageFault, gpa, write ? PFERR_WRITE : 0, write, false);
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
    this.mode = OUTSIDE_GUEST_MODE;
  }

  /** The VM exit an IPI causes (EXIT_REASON_EXTERNAL_INTERRUPT, handle_external_interrupt()), taken at entry. */
  kickExit(): void {
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
}

/** Access-kind helpers for callers that speak in reads and writes. */
export function accWrite(write: boolean): number {
  return write ? ACC_WRITE : 0;
}

export { ACC_FETCH };
