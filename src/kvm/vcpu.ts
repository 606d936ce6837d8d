// SPDX-License-Identifier: MIT
// A vCPU (struct kvm_vcpu): the hardware MMU it runs the guest on, its exits, and its
// statistics. access() is vcpu_enter_guest() reduced to memory: run the guest's access on
// the hardware; on an EPT violation or #NPF exit, let KVM fix it and re-enter. Under shadow
// paging the hardware walks KVM's shadow tables, and the exits are the guest's #PFs (which
// KVM intercepts), its CR3 loads and INVLPGs, and its writes to frames KVM write-protects.
//
// simplified: the emulator decodes nothing: a guest table write is a page-table-writing MOV of 8 bytes, clear_page() is not one, a user store is an 8-byte MOV.
// simplified: no last_retry_eip/addr memo (the guest never loops on an unprotected frame).

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
import { PAGE_SIZE } from "../hw/addr.js";
import { PFERR_FETCH, PFERR_PRESENT, PFERR_USER, PFERR_WRITE } from "../hw/x86_pte.js";
import type { Kvm } from "./kvm.js";
import type { Memslot } from "./memslot.js";
import { KvmPageFault, RET_PF_EMULATE, RET_PF_FAILED, kvmMmuDoPageFault } from "./mmu.js";
import { kernelWriteFault, shadowPageFault } from "./shadow_fault.js";
import { ShadowVcpuMmu } from "./shadow_vcpu.js";
import { VcpuStat } from "./stats.js";
import { tdpPageFault } from "./tdp_fault.js";

/** access() outcome when the VM cannot go on (the host could not back guest memory). */
export const VCPU_FAILED = -1;

/** shadowKernelWrite() outcome: KVM's emulator did the write (the guest must not do it again). */
export const KERNEL_WRITE_EMULATED = -2;

/** vcpu->mode (include/linux/kvm_host.h). */
export const OUTSIDE_GUEST_MODE = 0;
export const IN_GUEST_MODE = 1;
/** Kicked by an IPI while in guest mode: the VM exit it causes is taken at the next entry point. */
export const EXITING_GUEST_MODE = 2;

/** A fault that keeps coming back means a bug, not a workload: stop rather than spin. */
const MAX_FAULTS_PER_ACCESS = 64;

export class Vcpu {
  readonly stats = new VcpuStat();
  /** struct kvm_page_fault, reused by every fault of this vCPU. */
  readonly fault = new KvmPageFault();
  readonly mmu: Mmu;
  /**
   * vcpu->mode: IN_GUEST_MODE from the first entry while the vCPU has guest code to run (the
   * engine's other agents run beside it), OUTSIDE_GUEST_MODE while KVM handles its exit or while
   * it is halted or stopped (halt()), EXITING_GUEST_MODE once an IPI kicked it.
   */
  mode = OUTSIDE_GUEST_MODE;
  /** KVM_REQ_TLB_FLUSH pending (EPT/NPT; the shadow context keeps its own requests). */
  private reqTlbFlush = false;
  /** kvm_vcpu_gfn_to_memslot()'s last-used slot. */
  lastSlot: Memslot | null = null;
  /** Why the last access failed (VCPU_FAILED). */
  error = "";
  /** The shadow-paging context (roots, guest CR3, requests), or null under EPT/NPT. */
  readonly shadow: ShadowVcpuMmu | null;

  constructor(
    readonly kvm: Kvm,
    readonly id: number,
  ) {
    const o = kvm.opts;
    if (o.mode === "shadow") {
      this.mmu = new Mmu(kvm.mem, defaultMmuConfig("native", { guestLevels: o.levels, ...(o.tlb ? { tlb: o.tlb } : {}) }));
      // VPID 0 is the host's; KVM gives each vCPU its own (allocate_vpid()).
      this.mmu.setNestedContext(id + 1, -1);
      const mmu = this.mmu;
      this.shadow = new ShadowVcpuMmu(kvm.shadow!, kvm.shadowSync!, mmu, this.stats, id + 1, {
        levels: o.levels,
        maxPhyAddr: mmu.config.maxPhyAddr,
        get cr0Wp() {
          return mmu.cr0Wp;
        },
        get efer_nx() {
          return mmu.efeNxe;
        },
        get smep() {
          return mmu.smep;
        },
        get smap() {
          return mmu.smap;
        },
      });
    } else {
      this.mmu = new Mmu(
        kvm.mem,
        defaultMmuConfig(o.mode, { guestLevels: o.levels, nestedLevels: o.levels, eptAd: o.eptAd, ...(o.tlb ? { tlb: o.tlb } : {}) }),
      );
      this.mmu.setNestedContext(id + 1, kvm.tdp.root);
      this.shadow = null;
    }
  }

  /** A guest access to `gva`: XLATE_OK (hpa in mmu.hpa), XLATE_GUEST_PF for the guest's own #PF, or VCPU_FAILED. */
  access(gva: number, acc: number): number {
    if (this.shadow !== null) return this.shadowAccess(gva, acc);
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      this.vmEnter();
      const r = this.mmu.access(gva, acc);
      if (r === XLATE_OK || r === XLATE_GUEST_PF) return r;
      if (this.handleExit(r) === RET_PF_FAILED) return VCPU_FAILED;
    }
    return this.fail(`gva 0x${gva.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} EPT/NPT exits`);
  }

  /** A guest-physical access by the guest kernel (its page-table writes): through EPT/NPT only. */
  physAccess(gpa: number, acc: number): number {
    if (this.shadow !== null) {
      // Under shadow paging guest RAM is reached through the memslots (see shadowKernelWrite()).
      const f = this.kvm.shadow!.gmem.hostFrame(Math.floor(gpa / PAGE_SIZE), (acc & ACC_WRITE) !== 0);
      if (f < 0) return this.fail(this.kvm.shadow!.gmem.lastError);
      this.mmu.hpa = f * PAGE_SIZE + (gpa % PAGE_SIZE);
      return XLATE_OK;
    }
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      this.vmEnter();
      const r = this.mmu.accessPhys(gpa, acc);
      if (r === XLATE_OK) return r;
      if (this.handleExit(r) === RET_PF_FAILED) return VCPU_FAILED;
    }
    return this.fail(`gpa 0x${gpa.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} EPT/NPT exits`);
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

  private fail(why: string): number {
    this.error = why;
    return VCPU_FAILED;
  }

  /** A VM exit: count it, hand it to its handler (handle_ept_violation / npf_interception), resume. */
  private handleExit(r: number): number {
    this.mode = OUTSIDE_GUEST_MODE;
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
    const ret = kvmMmuDoPageFault(
      kvm,
      this,
      tdpPageFault,
      mmu.faultGpa,
      errorCode,
      (errorCode & PFERR_WRITE) !== 0,
      (errorCode & PFERR_PRESENT) !== 0,
    );
    kvm.currentVcpu = null;
    if (ret === RET_PF_FAILED) this.error = this.fault.reason;
    else if (kvm.bus.on) kvm.bus.emit("kvm.entry", { vcpu: this.id });
    return ret;
  }

  /** kvm_make_request(KVM_REQ_TLB_FLUSH): serviced at the next VM entry, once however often it was made. */
  requestTlbFlush(): void {
    if (this.shadow !== null) this.shadow.reqTlbFlush = true;
    else this.reqTlbFlush = true;
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

  /**
   * vcpu_enter_guest() as the model sees it before each hardware access: a kicked vCPU takes its
   * EXTERNAL_INTERRUPT exit, pending requests are serviced, and the vCPU is in guest mode.
   */
  private vmEnter(): void {
    if (this.mode === EXITING_GUEST_MODE) this.kickExit();
    if (this.reqTlbFlush) {
      // KVM_REQ_TLB_FLUSH: kvm_vcpu_flush_tlb_all(), INVEPT single-context here (a new ASID on AMD).
      this.reqTlbFlush = false;
      this.stats.tlb_flush++;
      this.mmu.invept(1, this.kvm.tdp.root);
    }
    this.mode = IN_GUEST_MODE;
  }

  /** The VM exit an IPI causes (EXIT_REASON_EXTERNAL_INTERRUPT, handle_external_interrupt()). */
  private kickExit(): void {
    this.stats.exits++;
    this.stats.irq_exits++;
    this.stats.exitReasons.EXTERNAL_INTERRUPT = (this.stats.exitReasons.EXTERNAL_INTERRUPT ?? 0) + 1;
    if (this.kvm.bus.on) this.kvm.bus.emit("kvm.exit", { vcpu: this.id, reason: "EXTERNAL_INTERRUPT" });
  }

  // ---------------------------------------------------------------- shadow paging

  /** vcpu_enter_guest() under shadow paging: service KVM's requests and make sure a root is loaded. */
  private shadowEnter(): boolean {
    const sh = this.shadow!;
    if (this.mode === EXITING_GUEST_MODE) this.kickExit();
    this.kvm.shadow!.gmem.counter = this.stats;
    if (sh.enter()) return true;
    this.error = sh.error;
    return false;
  }

  /** One VM exit under shadow paging: counted by reason, handled in KVM (outside guest mode), then resumed. */
  private shadowExit(reason: string, fields: Record<string, number>, handler: () => number): number {
    this.mode = OUTSIDE_GUEST_MODE;
    this.stats.exits++;
    this.stats.exitReasons[reason] = (this.stats.exitReasons[reason] ?? 0) + 1;
    const kvm = this.kvm;
    kvm.currentVcpu = this;
    kvm.shadow!.gmem.counter = this.stats;
    if (kvm.bus.on) kvm.bus.emit("kvm.exit", { vcpu: this.id, reason, ...fields });
    const ret = handler();
    kvm.currentVcpu = null;
    if (ret === RET_PF_FAILED) this.error = this.fault.reason;
    else if (kvm.bus.on) kvm.bus.emit("kvm.entry", { vcpu: this.id });
    return ret;
  }

  /** access() under shadow paging: the hardware walks the shadow tables; a #PF exits to KVM's shadow fault. */
  private shadowAccess(gva: number, acc: number): number {
    const sh = this.shadow!;
    const mmu = this.mmu;
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      if (!this.shadowEnter()) return VCPU_FAILED;
      this.mode = IN_GUEST_MODE;
      const r = mmu.access(gva, acc);
      if (r === XLATE_OK) return r;
      if (r !== XLATE_GUEST_PF) return this.fail(`unexpected translation outcome ${r} under shadow paging`);
      // The #PF is intercepted (exception bitmap): an EXCEPTION_NMI exit into kvm_mmu_page_fault().
      const errorCode = mmu.errorCode;
      const ret = this.shadowExit("EXCEPTION_NMI", { gva, error: errorCode }, () =>
        kvmMmuDoPageFault(
          this.kvm,
          this,
          shadowPageFault,
          gva,
          errorCode,
          (errorCode & PFERR_WRITE) !== 0,
          (errorCode & PFERR_PRESENT) !== 0,
        ),
      );
      if (ret === RET_PF_FAILED) return VCPU_FAILED;
      if (sh.pendingPf >= 0) {
        // The guest's own fault, reflected: its #PF handler runs with this CR2 and error code.
        mmu.errorCode = sh.pendingPf;
        mmu.faultGva = gva;
        sh.pendingPf = -1;
        return XLATE_GUEST_PF;
      }
      if (ret === RET_PF_EMULATE) return this.emulateAccess(gva, acc);
    }
    return this.fail(`gva 0x${gva.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} shadow page faults`);
  }

  /**
   * x86_emulate_instruction() for a guest store KVM had to emulate (a write to a frame KVM
   * shadows as a guest table): the emulator translates gva again with KVM's walker, does the
   * store in guest RAM, and tells the shadow MMU (kvm_page_track_write()).
   */
  private emulateAccess(gva: number, acc: number): number {
    const sh = this.shadow!;
    const shadow = this.kvm.shadow!;
    const write = (acc & ACC_WRITE) !== 0;
    if (!sh.walker.walk(sh.cr3Gfn, gva, (acc & (PFERR_WRITE | PFERR_USER | PFERR_FETCH)) >>> 0)) {
      return this.fail(`emulating the access to gva 0x${gva.toString(16)}: the guest walk failed`);
    }
    const gfn = sh.walker.gfn;
    const f = shadow.gmem.hostFrame(gfn, write);
    if (f < 0) return this.fail(shadow.gmem.lastError);
    const off = gva % PAGE_SIZE;
    this.mmu.hpa = f * PAGE_SIZE + off;
    this.mmu.gpa = gfn * PAGE_SIZE + off;
    if (write) this.kvm.shadowSync!.trackWrite(gfn * PAGE_SIZE + off - (off % 8), 8);
    return XLATE_OK;
  }

  /**
   * The guest kernel reads guest RAM (its page tables) at gpa: through its direct map, which
   * KVM never write-protects against reads, so no exit. Returns the host frame, or VCPU_FAILED.
   */
  shadowKernelRead(gpa: number): number {
    if (!this.shadowEnter()) return VCPU_FAILED;
    const gm = this.kvm.shadow!.gmem;
    const f = gm.hostFrame(Math.floor(gpa / PAGE_SIZE), false);
    return f < 0 ? this.fail(gm.lastError) : f;
  }

  /**
   * The guest kernel writes guest RAM at gpa: an 8-byte page-table entry (`ptWrite`, a MOV
   * the emulator knows writes page tables) or a clear_page of the frame. A frame KVM
   * write-protects faults first: KVM unsyncs it (the write then runs), emulates the write
   * (an upper-level table), or, for an instruction that does not write page tables, stops
   * shadowing the frame and lets the guest retry (retry_instruction()).
   * Returns the host frame to write, KERNEL_WRITE_EMULATED, or VCPU_FAILED.
   */
  shadowKernelWrite(gpa: number, ptWrite: boolean, lo: number, hi: number): number {
    const shadow = this.kvm.shadow!;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      if (!this.shadowEnter()) return VCPU_FAILED;
      if (!shadow.dmapRo.has(gfn)) {
        const f = shadow.gmem.hostFrame(gfn, true);
        return f < 0 ? this.fail(shadow.gmem.lastError) : f;
      }
      const ret = this.shadowExit("EXCEPTION_NMI", { gpa, error: PFERR_PRESENT | PFERR_WRITE }, () =>
        kvmMmuDoPageFault(this.kvm, this, kernelWriteFault, gfn * PAGE_SIZE, PFERR_PRESENT | PFERR_WRITE, true, true),
      );
      if (ret !== RET_PF_EMULATE) continue;
      if (ptWrite) {
        // emulator_write_phys() + kvm_page_track_write().
        if (!shadow.gmem.writeGpte(gpa, lo, hi)) return this.fail(shadow.gmem.lastError);
        this.kvm.shadowSync!.trackWrite(gpa, 8);
        return KERNEL_WRITE_EMULATED;
      }
      // retry_instruction(): not a page-table write: kvm_mmu_unprotect_page() and re-execute.
      shadow.unprotectGfn(gfn);
    }
    return this.fail(`guest write to gpa 0x${gpa.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} tries`);
  }

  /** The guest's MOV to CR3: a CR_ACCESS exit (CR3-load exiting is on under shadow paging). */
  shadowSetCr3(rootGfn: number, pcid: number, noFlush: boolean): number {
    if (!this.shadowEnter()) return VCPU_FAILED;
    this.shadowExit("CR_ACCESS", { cr3: rootGfn * PAGE_SIZE + pcid, noFlush: noFlush ? 1 : 0 }, () => {
      this.shadow!.setCr3(rootGfn, pcid, noFlush);
      return 0;
    });
    return this.shadowEnter() ? XLATE_OK : VCPU_FAILED;
  }

  /** The guest's INVLPG: an INVLPG exit (handle_invlpg -> kvm_mmu_invlpg). */
  shadowInvlpg(gva: number): number {
    if (!this.shadowEnter()) return VCPU_FAILED;
    this.shadowExit("INVLPG", { gva }, () => {
      this.shadow!.invlpg(gva);
      return 0;
    });
    return this.shadowEnter() ? XLATE_OK : VCPU_FAILED;
  }

  // ---------------------------------------------------------------- selftest-style guests

  /**
   * An I/O exit to userspace (a selftest's ucall: OUT to the ucall port, KVM_EXIT_IO). It counts
   * an exit and touches nothing in the MMU; requests pending under shadow paging are serviced
   * at the next entry, as always. Returns XLATE_OK or VCPU_FAILED.
   */
  ioExit(): number {
    if (!this.enterForExit()) return VCPU_FAILED;
    this.mode = OUTSIDE_GUEST_MODE;
    this.stats.exits++;
    this.stats.exitReasons.IO_INSTRUCTION = (this.stats.exitReasons.IO_INSTRUCTION ?? 0) + 1;
    if (this.kvm.bus.on) {
      this.kvm.bus.emit("kvm.exit", { vcpu: this.id, reason: "IO_INSTRUCTION" });
      this.kvm.bus.emit("kvm.entry", { vcpu: this.id });
    }
    return this.enterForExit() ? XLATE_OK : VCPU_FAILED;
  }

  /** VM entry around an exit that is not an MMU fault: requests serviced, guest mode. */
  private enterForExit(): boolean {
    if (this.shadow === null) {
      this.vmEnter();
      return true;
    }
    if (!this.shadowEnter()) return false;
    this.mode = IN_GUEST_MODE;
    return true;
  }

  /** KVM_SET_SREGS before the first KVM_RUN: CR3 (and CR4.PCIDE's PCID) set by the VMM, no exit. */
  setSregsCr3(rootGfn: number, pcid: number): void {
    if (this.shadow !== null) this.shadow.setSregsCr3(rootGfn, pcid);
    else this.mmu.loadCr3(rootGfn, pcid, false);
  }

  /** The guest's full local flush: a MOV to CR3 of the CR3 it has (native_flush_tlb_local). */
  shadowFlushTlb(): number {
    const sh = this.shadow!;
    return this.shadowSetCr3(sh.cr3Gfn, sh.activePcid, false);
  }
}

/** Access-kind helpers for callers that speak in reads and writes. */
export function accWrite(write: boolean): number {
  return write ? ACC_WRITE : 0;
}

export { ACC_FETCH };
