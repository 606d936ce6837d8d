// SPDX-License-Identifier: MIT
// The two per-vCPU MMUs (VcpuMmu, mmu.ts), one chosen when the vCPU is created. Under EPT/NPT
// the guest owns its tables, CR3 and INVLPG; its accesses, the kernel's table reads and writes
// included, go through EPT/NPT and exit on a violation. Under shadow paging the hardware walks
// KVM's shadow tables: the exits are the guest's #PFs (which KVM intercepts), its CR3 loads and
// INVLPGs, and its writes to frames KVM write-protects.
//
// simplified: the emulator decodes nothing: a guest table write is a page-table-writing MOV of 8 bytes, clear_page() is not one, a user store is an 8-byte MOV.
// simplified: no last_retry_eip/addr memo (the guest never loops on an unprotected frame).

import { PAGE_SIZE } from "../hw/addr.js";
import {
  ACC_READ,
  ACC_WRITE,
  EPTQ_EXECUTABLE,
  EPTQ_FETCH,
  EPTQ_READABLE,
  EPTQ_WRITABLE,
  EPTQ_WRITE,
  XLATE_EPT_MISCONFIG,
  XLATE_EPT_VIOLATION,
  XLATE_GUEST_PF,
  XLATE_NPF,
  XLATE_OK,
  XLATE_PML_FULL,
  defaultMmuConfig,
} from "../hw/mmu.js";
import { type HwMmu, createMmu } from "../hw/mmu_core.js";
import { PFERR_FETCH, PFERR_PRESENT, PFERR_USER, PFERR_WRITE } from "../hw/x86_pte.js";
import {
  EXITING_GUEST_MODE,
  IN_GUEST_MODE,
  KERNEL_WRITE_EMULATED,
  OUTSIDE_GUEST_MODE,
  type TdpMode,
  VCPU_FAILED,
  type Vcpu,
} from "./kvm.js";
import { kvmDirtyRingCheckRequest } from "./dirty_log.js";
import { RET_PF_EMULATE, RET_PF_FAILED, RET_PF_RETRY, type VcpuMmu } from "./mmu.js";
import { vmxFlushPmlBuffer } from "./pml.js";
import { type PageFaultFn, kvmMmuDoPageFault } from "./page_fault.js";
import { kernelWriteFault, shadowPageFault } from "./shadow_fault.js";
import type { ShadowMmu } from "./shadow_mmu.js";
import type { KvmMmuPage } from "./shadow_page.js";
import type { ShadowSync } from "./shadow_sync.js";
import { ROOTS_ALL, ShadowVcpuMmu } from "./shadow_vcpu.js";
import { tdpPageFault } from "./tdp_fault.js";
import type { TdpMmu } from "./tdp_mmu.js";
import type { KvmEventMap } from "./kvm_events.js";

/** A fault that keeps coming back means a bug, not a workload: stop rather than spin. */
const MAX_FAULTS_PER_ACCESS = 64;

/** The vCPU on EPT/NPT: the hardware walks the guest's tables, then KVM's TDP tables. */
export class TdpVcpuMmu implements VcpuMmu {
  readonly hw: HwMmu;
  /** KVM_REQ_TLB_FLUSH pending. */
  private reqTlbFlush = false;
  /** vcpu->arch.mmu->page_fault: kvm_tdp_page_fault() on this VM's TDP MMU. */
  private readonly pageFault: PageFaultFn;

  constructor(
    private readonly vcpu: Vcpu,
    private readonly tdp: TdpMmu,
    mode: TdpMode,
  ) {
    const o = vcpu.kvm.opts;
    this.hw = createMmu(
      vcpu.kvm.mem,
      defaultMmuConfig(mode, { guestLevels: o.levels, nestedLevels: o.levels, eptAd: o.eptAd, ...(o.tlb ? { tlb: o.tlb } : {}) }),
      o.mmuCore,
    );
    this.hw.setNestedContext(vcpu.id + 1, tdp.root);
    this.pageFault = (kvm, v, f) => tdpPageFault(kvm, v, tdp, f);
  }

  access(gva: number, acc: number): number {
    this.enter();
    return this.accessFrom(gva, acc, this.hw.access(gva, acc));
  }

  /** access() after its first hardware try gave `r` (entered already; a batch in the core may have made that try). */
  accessFrom(gva: number, acc: number, r: number): number {
    for (let n = 1; r !== XLATE_OK && r !== XLATE_GUEST_PF; n++) {
      if (this.handleExit(r) === RET_PF_FAILED) return VCPU_FAILED;
      if (n === MAX_FAULTS_PER_ACCESS)
        return this.vcpu.fail(`gva 0x${gva.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} EPT/NPT exits`);
      this.enter();
      r = this.hw.access(gva, acc);
    }
    return r;
  }

  physAccess(gpa: number, acc: number): number {
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      this.enter();
      const r = this.hw.accessPhys(gpa, acc);
      if (r === XLATE_OK) return r;
      if (this.handleExit(r) === RET_PF_FAILED) return VCPU_FAILED;
    }
    return this.vcpu.fail(`gpa 0x${gpa.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} EPT/NPT exits`);
  }

  readTable(gpa: number): number {
    return this.physAccess(gpa, ACC_READ) === XLATE_OK ? Math.floor(this.hw.hpa / PAGE_SIZE) : VCPU_FAILED;
  }

  writeTable(gpa: number, _ptWrite: boolean, _lo: number, _hi: number): number {
    return this.physAccess(gpa, ACC_WRITE) === XLATE_OK ? Math.floor(this.hw.hpa / PAGE_SIZE) : VCPU_FAILED;
  }

  setCr3(rootGfn: number, pcid: number, noFlush: boolean): number {
    this.hw.loadCr3(rootGfn, pcid, noFlush);
    return XLATE_OK;
  }

  invlpg(gva: number): number {
    this.hw.invlpg(gva);
    return XLATE_OK;
  }

  flushTlb(): number {
    const mmu = this.hw;
    mmu.loadCr3(mmu.cr3Frame, mmu.pcid, false);
    return XLATE_OK;
  }

  setSregsCr3(rootGfn: number, pcid: number): void {
    this.hw.loadCr3(rootGfn, pcid, false);
  }

  requestTlbFlush(): void {
    this.reqTlbFlush = true;
  }

  requestFreeObsoleteRoots(): void {}

  unload(): void {}

  preFaultMemory(gpa: number, write: boolean): number {
    return kvmMmuDoPageFault(this.vcpu.kvm, this.vcpu, this.pageFault, gpa, write ? PFERR_WRITE : 0, write, false);
  }

  guestRootGfn(): number {
    return this.hw.cr3Frame;
  }

  accessedGfn(_gva: number): number {
    return Math.floor(this.hw.gpa / PAGE_SIZE);
  }

  /**
   * vcpu_enter_guest() as the model sees it before each hardware access: a kicked vCPU takes its
   * EXTERNAL_INTERRUPT exit, pending requests are serviced, and the vCPU is in guest mode.
   */
  enter(): boolean {
    const v = this.vcpu;
    if (v.mode === EXITING_GUEST_MODE) v.kickExit();
    if (v.dirtyRing?.softFullRequest) kvmDirtyRingCheckRequest(v);
    if (this.reqTlbFlush) {
      // KVM_REQ_TLB_FLUSH: kvm_vcpu_flush_tlb_all(), INVEPT single-context here (a new ASID on AMD).
      this.reqTlbFlush = false;
      v.stats.tlb_flush++;
      this.hw.invept(1, this.tdp.root);
    }
    v.mode = IN_GUEST_MODE;
    return true;
  }

  /** A VM exit: count it, hand it to its handler (handle_ept_violation / npf_interception), resume. */
  private handleExit(r: number): number {
    const v = this.vcpu;
    v.mode = OUTSIDE_GUEST_MODE;
    v.stats.exits++;
    const mmu = this.hw;
    if (v.kvm.enablePml) vmxFlushPmlBuffer(v);
    if (r === XLATE_PML_FULL) return this.handlePmlFull();
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
      v.stats.exitReasons.EPT_MISCONFIG = (v.stats.exitReasons.EPT_MISCONFIG ?? 0) + 1;
      v.error = `EPT misconfiguration at gpa 0x${mmu.faultGpa.toString(16)}: ${mmu.faultReason}`;
      return RET_PF_FAILED;
    } else {
      v.error = `unexpected translation outcome ${r}`;
      return RET_PF_FAILED;
    }
    v.stats.exitReasons[reason] = (v.stats.exitReasons[reason] ?? 0) + 1;
    const kvm = v.kvm;
    kvm.currentVcpu = v;
    if (kvm.bus.on) kvm.bus.emit("kvm.exit", { vcpu: v.id, reason, gpa: mmu.faultGpa, error: errorCode });
    const ret = kvmMmuDoPageFault(
      kvm,
      v,
      this.pageFault,
      mmu.faultGpa,
      errorCode,
      (errorCode & PFERR_WRITE) !== 0,
      (errorCode & PFERR_PRESENT) !== 0,
    );
    kvm.currentVcpu = null;
    if (ret === RET_PF_FAILED) v.error = v.fault.reason;
    else if (kvm.bus.on) kvm.bus.emit("kvm.entry", { vcpu: v.id });
    return ret;
  }

  /** handle_pml_full(): the buffer was flushed at the exit; the guest re-runs the write. */
  private handlePmlFull(): number {
    const v = this.vcpu;
    v.stats.exitReasons.PML_FULL = (v.stats.exitReasons.PML_FULL ?? 0) + 1;
    const bus = v.kvm.bus;
    if (bus.on) {
      bus.emit("kvm.exit", { vcpu: v.id, reason: "PML_FULL", gpa: this.hw.faultGpa });
      bus.emit("kvm.entry", { vcpu: v.id });
    }
    return RET_PF_RETRY;
  }
}

/** gva -> the gfn a root's spte shadows there (ShadowMmu.gfnAt()), memoised until any spte changes (spteGen). */
class ShadowedGfnMemo {
  static readonly SIZE = 1024;
  private readonly vpn = new Float64Array(ShadowedGfnMemo.SIZE).fill(-1);
  private readonly gen = new Float64Array(ShadowedGfnMemo.SIZE);
  private readonly root = new Float64Array(ShadowedGfnMemo.SIZE);
  private readonly gfn = new Float64Array(ShadowedGfnMemo.SIZE);

  gfnAt(shadow: ShadowMmu, sp: KvmMmuPage, gva: number): number {
    const vpn = Math.floor(gva / PAGE_SIZE);
    const i = vpn & (ShadowedGfnMemo.SIZE - 1);
    const gen = shadow.spteGen;
    if (this.vpn[i] === vpn && this.gen[i] === gen && this.root[i] === sp.spt) return this.gfn[i]!;
    const gfn = shadow.gfnAt(sp, gva);
    this.vpn[i] = vpn;
    this.gen[i] = gen;
    this.root[i] = sp.spt;
    this.gfn[i] = gfn;
    return gfn;
  }
}

/** The vCPU under shadow paging: the hardware runs natively on the shadow root of `shadow`. */
export class ShadowPagingVcpuMmu implements VcpuMmu {
  readonly hw: HwMmu;
  readonly shadow: ShadowVcpuMmu;
  private readonly gfnMemo = new ShadowedGfnMemo();
  /** vcpu->arch.mmu->page_fault, and the write fault on a write-protected frame, bound to this vCPU's context. */
  private readonly pageFault: PageFaultFn;
  private readonly writeFault: PageFaultFn;

  constructor(
    private readonly vcpu: Vcpu,
    private readonly shadowMmu: ShadowMmu,
    private readonly shadowSync: ShadowSync,
  ) {
    const o = vcpu.kvm.opts;
    const mmu = createMmu(vcpu.kvm.mem, defaultMmuConfig("native", { guestLevels: o.levels, ...(o.tlb ? { tlb: o.tlb } : {}) }), o.mmuCore);
    // VPID 0 is the host's; KVM gives each vCPU its own (allocate_vpid()).
    mmu.setNestedContext(vcpu.id + 1, -1);
    this.hw = mmu;
    const sh = new ShadowVcpuMmu(shadowMmu, shadowSync, mmu, vcpu.stats, vcpu.id + 1, {
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
    this.shadow = sh;
    this.pageFault = (kvm, v, f) => shadowPageFault(kvm, v, sh, f);
    this.writeFault = (_kvm, _v, f) => kernelWriteFault(shadowMmu, f);
  }

  /** The hardware walks the shadow tables; a #PF exits to KVM's shadow fault. */
  access(gva: number, acc: number): number {
    const v = this.vcpu;
    const sh = this.shadow;
    const mmu = this.hw;
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      if (!this.enterKvm()) return VCPU_FAILED;
      v.mode = IN_GUEST_MODE;
      const r = mmu.access(gva, acc);
      if (r === XLATE_OK) return r;
      if (r !== XLATE_GUEST_PF) return v.fail(`unexpected translation outcome ${r} under shadow paging`);
      // The #PF is intercepted (exception bitmap): an EXCEPTION_NMI exit into kvm_mmu_page_fault().
      const errorCode = mmu.errorCode;
      const ret = this.exit("EXCEPTION_NMI", { gva, error: errorCode }, () =>
        kvmMmuDoPageFault(v.kvm, v, this.pageFault, gva, errorCode, (errorCode & PFERR_WRITE) !== 0, (errorCode & PFERR_PRESENT) !== 0),
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
    return v.fail(`gva 0x${gva.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} shadow page faults`);
  }

  /** Guest RAM is reached through the memslots (see writeTable()). */
  physAccess(gpa: number, acc: number): number {
    const gm = this.shadowMmu.gmem;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = gm.hostFrame(gfn, (acc & ACC_WRITE) !== 0);
    if (f < 0) return this.vcpu.fail(gm.failure(f, gfn));
    this.hw.hpa = f * PAGE_SIZE + (gpa % PAGE_SIZE);
    return XLATE_OK;
  }

  /** Through the guest's direct map, which KVM never write-protects against reads: no exit. */
  readTable(gpa: number): number {
    if (!this.enterKvm()) return VCPU_FAILED;
    const gm = this.shadowMmu.gmem;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    const f = gm.hostFrame(gfn, false);
    return f < 0 ? this.vcpu.fail(gm.failure(f, gfn)) : f;
  }

  /**
   * A frame KVM write-protects faults first: KVM unsyncs it (the write then runs), emulates the
   * write (an upper-level table), or, for an instruction that does not write page tables, stops
   * shadowing the frame and lets the guest retry (retry_instruction()).
   */
  writeTable(gpa: number, ptWrite: boolean, lo: number, hi: number): number {
    const shadow = this.shadowMmu;
    const gfn = Math.floor(gpa / PAGE_SIZE);
    for (let n = 0; n < MAX_FAULTS_PER_ACCESS; n++) {
      if (!this.enterKvm()) return VCPU_FAILED;
      if (!shadow.dmapRo.has(gfn)) {
        const f = shadow.gmem.hostFrame(gfn, true);
        return f < 0 ? this.vcpu.fail(shadow.gmem.failure(f, gfn)) : f;
      }
      const ret = this.exit("EXCEPTION_NMI", { gpa, error: PFERR_PRESENT | PFERR_WRITE }, () =>
        kvmMmuDoPageFault(this.vcpu.kvm, this.vcpu, this.writeFault, gfn * PAGE_SIZE, PFERR_PRESENT | PFERR_WRITE, true, true),
      );
      if (ret !== RET_PF_EMULATE) continue;
      if (ptWrite) {
        // emulator_write_phys() + kvm_page_track_write().
        const w = shadow.gmem.writeGpte(gpa, lo, hi);
        if (w < 0) return this.vcpu.fail(shadow.gmem.failure(w, gfn));
        this.shadowSync.trackWrite(gpa, 8);
        return KERNEL_WRITE_EMULATED;
      }
      // retry_instruction(): not a page-table write: kvm_mmu_unprotect_page() and re-execute.
      shadow.unprotectGfn(gfn);
    }
    return this.vcpu.fail(`guest write to gpa 0x${gpa.toString(16)} still faults after ${MAX_FAULTS_PER_ACCESS} tries`);
  }

  /** A CR_ACCESS exit (CR3-load exiting is on under shadow paging). */
  setCr3(rootGfn: number, pcid: number, noFlush: boolean): number {
    if (!this.enterKvm()) return VCPU_FAILED;
    this.exit("CR_ACCESS", { cr3: rootGfn * PAGE_SIZE + pcid, noFlush: noFlush ? 1 : 0 }, () => {
      this.shadow.setCr3(rootGfn, pcid, noFlush);
      return 0;
    });
    return this.enterKvm() ? XLATE_OK : VCPU_FAILED;
  }

  /** An INVLPG exit (handle_invlpg -> kvm_mmu_invlpg). */
  invlpg(gva: number): number {
    if (!this.enterKvm()) return VCPU_FAILED;
    this.exit("INVLPG", { gva }, () => {
      this.shadow.invlpg(gva);
      return 0;
    });
    return this.enterKvm() ? XLATE_OK : VCPU_FAILED;
  }

  /** A MOV to CR3 of the CR3 the guest has. */
  flushTlb(): number {
    const sh = this.shadow;
    return this.setCr3(sh.cr3Gfn, sh.activePcid, false);
  }

  setSregsCr3(rootGfn: number, pcid: number): void {
    this.shadow.setSregsCr3(rootGfn, pcid);
  }

  requestTlbFlush(): void {
    this.shadow.reqTlbFlush = true;
  }

  requestFreeObsoleteRoots(): void {
    this.shadow.reqFreeObsoleteRoots = true;
  }

  unload(): void {
    this.shadow.freeRoots(ROOTS_ALL);
  }

  enter(): boolean {
    if (!this.enterKvm()) return false;
    this.vcpu.mode = IN_GUEST_MODE;
    return true;
  }

  /** KVM_PRE_FAULT_MEMORY faults by gpa: kvm_tdp_map_page() refuses shadow paging (-EOPNOTSUPP). */
  preFaultMemory(gpa: number, _write: boolean): number {
    return this.vcpu.fault.fail(`KVM_PRE_FAULT_MEMORY at gpa 0x${gpa.toString(16)}: not supported under shadow paging`);
  }

  guestRootGfn(): number {
    return this.shadow.cr3Gfn;
  }

  /** The hardware's physical address is a host one: the gfn comes from the spte that maps gva (its shadowed translation). */
  accessedGfn(gva: number): number {
    const sp = this.shadow.root.sp;
    return sp === null ? -1 : this.gfnMemo.gfnAt(this.shadowMmu, sp, gva);
  }

  /** vcpu_enter_guest() up to the entry: KVM's requests serviced and a root loaded. */
  private enterKvm(): boolean {
    const v = this.vcpu;
    const sh = this.shadow;
    if (v.mode === EXITING_GUEST_MODE) v.kickExit();
    if (v.dirtyRing?.softFullRequest) kvmDirtyRingCheckRequest(v);
    this.shadowMmu.gmem.vcpu = v;
    const r = sh.enter();
    if (r === 0) return true;
    v.error = this.shadowMmu.failure(r);
    return false;
  }

  /** One VM exit: counted by reason, handled in KVM (outside guest mode), then resumed. */
  private exit(reason: string, fields: Omit<KvmEventMap["kvm.exit"], "vcpu" | "reason">, handler: () => number): number {
    const v = this.vcpu;
    v.mode = OUTSIDE_GUEST_MODE;
    v.stats.exits++;
    v.stats.exitReasons[reason] = (v.stats.exitReasons[reason] ?? 0) + 1;
    const kvm = v.kvm;
    kvm.currentVcpu = v;
    this.shadowMmu.gmem.vcpu = v;
    if (kvm.bus.on) kvm.bus.emit("kvm.exit", { vcpu: v.id, reason, ...fields });
    const ret = handler();
    kvm.currentVcpu = null;
    if (ret === RET_PF_FAILED) v.error = v.fault.reason;
    else if (kvm.bus.on) kvm.bus.emit("kvm.entry", { vcpu: v.id });
    return ret;
  }

  /**
   * x86_emulate_instruction() for a guest store KVM had to emulate (a write to a frame KVM
   * shadows as a guest table): the emulator translates gva again with KVM's walker, does the
   * store in guest RAM, and tells the shadow MMU (kvm_page_track_write()).
   */
  private emulateAccess(gva: number, acc: number): number {
    const sh = this.shadow;
    const gm = this.shadowMmu.gmem;
    const write = (acc & ACC_WRITE) !== 0;
    if (!sh.walker.walk(sh.cr3Gfn, gva, (acc & (PFERR_WRITE | PFERR_USER | PFERR_FETCH)) >>> 0)) {
      return this.vcpu.fail(`emulating the access to gva 0x${gva.toString(16)}: the guest walk failed`);
    }
    const gfn = sh.walker.gfn;
    const f = gm.hostFrame(gfn, write);
    if (f < 0) return this.vcpu.fail(gm.failure(f, gfn));
    const off = gva % PAGE_SIZE;
    this.hw.hpa = f * PAGE_SIZE + off;
    this.hw.gpa = gfn * PAGE_SIZE + off;
    if (write) this.shadowSync.trackWrite(gfn * PAGE_SIZE + off - (off % 8), 8);
    return XLATE_OK;
  }
}
