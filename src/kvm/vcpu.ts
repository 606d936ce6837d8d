// SPDX-License-Identifier: MIT
// A vCPU (struct kvm_vcpu): the hardware MMU it runs the guest on, its exits, and its
// statistics. access() is vcpu_enter_guest() reduced to memory: run the guest's access on
// the hardware; on an EPT violation or #NPF exit, let KVM fix it and re-enter.

import {
  ACC_FETCH,
  ACC_WRITE,
  EPTQ_EXECUTABLE,
  EPTQ_FETCH,
  EPTQ_READABLE,
  EPTQ_WRITABLE,
  EPTQ_WRITE,
  Mmu,
  XLATE_EPT_MISCONFIG,
  XLATE_EPT_VIOLATION,
  XLATE_GUEST_PF,
  XLATE_NPF,
  XLATE_OK,
  defaultMmuConfig,
} from "../hw/mmu.js";
import { PFERR_FETCH, PFERR_PRESENT, PFERR_WRITE } from "../hw/x86_pte.js";
import type { Kvm } from "./kvm.js";
import type { Memslot } from "./memslot.js";
import { VcpuStat } from "./stats.js";
import { RET_PF_FAILED, tdpPageFault } from "./tdp_fault.js";

/** access() outcome when the VM cannot go on (the host could not back guest memory). */
export const VCPU_FAILED = -1;

/** A fault that keeps coming back means a bug, not a workload: stop rather than spin. */
const MAX_FAULTS_PER_ACCESS = 64;

export class Vcpu {
  readonly stats = new VcpuStat();
  readonly mmu: Mmu;
  /** IN_GUEST_MODE: set while the vCPU runs guest code, clear while KVM handles an exit. */
  inGuestMode = false;
  /** kvm_vcpu_gfn_to_memslot()'s last-used slot. */
  lastSlot: Memslot | null = null;
  /** Why the last access failed (VCPU_FAILED). */
  error = "";

  constructor(
    readonly kvm: Kvm,
    readonly id: number,
  ) {
    const o = kvm.opts;
    this.mmu = new Mmu(kvm.mem, defaultMmuConfig(o.mode, { guestLevels: o.levels, nestedLevels: o.levels, eptAd: o.eptAd }));
    // VPID 0 is the host's; KVM gives each vCPU its own (allocate_vpid()).
    this.mmu.setNestedContext(id + 1, kvm.tdp.root);
  }

  /** A guest access to `gva`: XLATE_OK (hpa in mmu.hpa), XLATE_GUEST_PF for the guest's own #PF, or VCPU_FAILED. */
  access(gva: number, acc: number): number {
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      this.inGuestMode = true;
      const r = this.mmu.access(gva, acc);
      if (r === XLATE_OK || r === XLATE_GUEST_PF) return r;
      if (this.handleExit(r) === RET_PF_FAILED) return VCPU_FAILED;
    }
    return this.fail(`gva 0x${gva.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} EPT/NPT exits`);
  }

  /** A guest-physical access by the guest kernel (its page-table writes): through EPT/NPT only. */
  physAccess(gpa: number, acc: number): number {
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      this.inGuestMode = true;
      const r = this.mmu.accessPhys(gpa, acc);
      if (r === XLATE_OK) return r;
      if (this.handleExit(r) === RET_PF_FAILED) return VCPU_FAILED;
    }
    return this.fail(`gpa 0x${gpa.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} EPT/NPT exits`);
  }

  private fail(why: string): number {
    this.error = why;
    return VCPU_FAILED;
  }

  /** A VM exit: count it, hand it to its handler (handle_ept_violation / npf_interception), resume. */
  private handleExit(r: number): number {
    this.inGuestMode = false;
    this.stats.exits++;
    const mmu = this.mmu;
    let reason: string;
    let errorCode: number;
    if (r === XLATE_EPT_VIOLATION) {
      reason = "EPT_VIOLATION";
      // __vmx_handle_ept_violation(): the exit qualification as an x86 error code.
      const q = mmu.exitQual;
      errorCode = (q & EPTQ_WRITE ? PFERR_WRITE : 0) | (q & EPTQ_FETCH ? PFERR_FETCH : 0);
      if (q & (EPTQ_READABLE | EPTQ_WRITABLE | EPTQ_EXECUTABLE)) errorCode |= PFERR_PRESENT;
    } else if (r === XLATE_NPF) {
      reason = "NPF";
      errorCode = mmu.errorCode % 2 ** 32;
    } else if (r === XLATE_EPT_MISCONFIG) {
      this.stats.exitReasons.EPT_MISCONFIG = (this.stats.exitReasons.EPT_MISCONFIG ?? 0) + 1;
      this.error = `EPT misconfiguration at gpa 0x${mmu.faultGpa.toString(16)}: ${mmu.faultReason}`;
      return RET_PF_FAILED;
    } else {
      this.error = `unexpected translation outcome ${r}`;
      return RET_PF_FAILED;
    }
    this.stats.exitReasons[reason] = (this.stats.exitReasons[reason] ?? 0) + 1;
    const kvm = this.kvm;
    kvm.currentVcpu = this;
    if (kvm.bus.on) kvm.bus.emit("kvm.exit", { vcpu: this.id, reason, gpa: mmu.faultGpa, error: errorCode });
    const ret = tdpPageFault(kvm, this, mmu.faultGpa, errorCode);
    kvm.currentVcpu = null;
    if (ret === RET_PF_FAILED) this.error = kvm.lastFaultError;
    else if (kvm.bus.on) kvm.bus.emit("kvm.entry", { vcpu: this.id });
    return ret;
  }

  /** KVM_REQ_TLB_FLUSH serviced: INVEPT single-context (or a new ASID on AMD) for this vCPU. */
  flushTlbRequest(): void {
    this.stats.tlb_flush++;
    this.mmu.invept(1, this.kvm.tdp.root);
  }
}

/** Access-kind helpers for callers that speak in reads and writes. */
export function accWrite(write: boolean): number {
  return write ? ACC_WRITE : 0;
}

export { ACC_FETCH };
