// SPDX-License-Identifier: MIT
// KVM's MMU interface (arch/x86/kvm/mmu.h, mmu/mmu_internal.h): the RET_PF_* codes, the fault
// struct (struct kvm_page_fault), the VM-wide operations every MMU implements (struct kvm_mmu's
// page tables as the notifier and the VM see them), and the fault front door both MMUs share:
// kvm_mmu_do_page_fault() counts, kvm_faultin_pfn() snapshots the invalidation sequence and
// faults the host page in between the race points, is_page_fault_stale() re-checks it.

import type { HwMmu } from "../hw/mmu_core.js";
import type { Kvm } from "./kvm.js";
import type { Memslot } from "./memslot.js";
import { gfnToHva, slotMaxLevel } from "./memslot.js";
import type { ShadowVcpuMmu } from "./shadow_vcpu.js";
import type { VcpuStat } from "./stats.js";
import type { Vcpu } from "./vcpu.js";

/** RET_PF_* (mmu_internal.h). */
export const RET_PF_CONTINUE = 0;
export const RET_PF_RETRY = 1;
export const RET_PF_FIXED = 2;
export const RET_PF_SPURIOUS = 3;
export const RET_PF_EMULATE = 4;
/** Not a kernel code: the host could not back the page (the VMM would get -EFAULT / SIGBUS). */
export const RET_PF_FAILED = -1;

/** struct kvm_page_fault: one per vCPU, filled by each fault (no allocation per fault). */
export class KvmPageFault {
  /** The faulting address: a gpa (TDP) or a gva (shadow paging). */
  addr = 0;
  errorCode = 0;
  write = false;
  present = false;
  gfn = 0;
  /** The guest-physical address failure messages name. */
  gpa = 0;
  hva = 0;
  /** The host frame of gfn, and whether the host maps it writable (fault->map_writable). */
  pfn = -1;
  mapWritable = false;
  slotMaxLevel = 1;
  /** fault->mmu_seq. */
  mmuSeq = 0;
  /** An invalidation ran since mmuSeq (seen with the re-check skipped). */
  raced = false;
  /** Installed although an invalidation took the page (only with the seq re-check skipped). */
  stale = false;
  /** Why the fault returned RET_PF_FAILED. */
  reason = "";

  init(addr: number, errorCode: number, write: boolean, present: boolean): void {
    this.addr = addr;
    this.errorCode = errorCode;
    this.write = write;
    this.present = present;
    this.pfn = -1;
    this.raced = false;
    this.stale = false;
  }

  fail(reason: string): number {
    this.reason = reason;
    return RET_PF_FAILED;
  }
}

/** The VM-wide side of an MMU (TDP or shadow), as the notifier and the VM call it. */
export interface KvmMmu {
  /** kvm_unmap_gfn_range(): zaps the leaves mapping [start, end); returns how many. */
  unmapGfnRange(start: number, end: number): number;
  /** kvm_age_gfn() / kvm_test_age_gfn(). */
  age(start: number, end: number, clear: boolean): boolean;
  /** kvm_mmu_zap_all(): every spte goes (the TDP root stays unless `freeRoot`). */
  zapAll(freeRoot: boolean): void;
  /** Every present leaf: (gfn, level, pfn). For the checker and the visualizer. */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number) => void): void;
  /** kvm_arch_commit_memory_region(): the memslots now hold `pages` pages. */
  memslotPagesChanged(pages: number): void;
}

/**
 * The per-vCPU side of an MMU (vcpu->arch.mmu and the exits it takes), one chosen when the
 * vCPU is created. Accesses return XLATE_OK, XLATE_GUEST_PF (access() only) or VCPU_FAILED;
 * the table reads and writes return a host frame, KERNEL_WRITE_EMULATED or VCPU_FAILED.
 */
export interface VcpuMmu {
  /** The hardware MMU the vCPU runs on. */
  readonly hw: HwMmu;
  /** The shadow-paging context, or null under EPT/NPT. */
  readonly shadow: ShadowVcpuMmu | null;
  /** A guest access to gva (hpa in hw.hpa). */
  access(gva: number, acc: number): number;
  /** A guest-physical access by the guest kernel (hpa in hw.hpa). */
  physAccess(gpa: number, acc: number): number;
  /** The guest kernel reads guest RAM at gpa (its page tables). */
  readTable(gpa: number): number;
  /** The guest kernel writes guest RAM at gpa: an 8-byte table entry (`ptWrite`) or a page clear or copy. */
  writeTable(gpa: number, ptWrite: boolean, lo: number, hi: number): number;
  /** The guest's MOV to CR3. */
  setCr3(rootGfn: number, pcid: number, noFlush: boolean): number;
  /** The guest's INVLPG. */
  invlpg(gva: number): number;
  /** The guest's full local flush: a MOV to CR3 of the CR3 it has (native_flush_tlb_local). */
  flushTlb(): number;
  /** KVM_SET_SREGS's CR3, no exit. */
  setSregsCr3(rootGfn: number, pcid: number): void;
  /** kvm_make_request(KVM_REQ_TLB_FLUSH). */
  requestTlbFlush(): void;
  /** kvm_make_request(KVM_REQ_MMU_FREE_OBSOLETE_ROOTS). */
  requestFreeObsoleteRoots(): void;
  /** kvm_mmu_unload(): the vCPU's roots go. */
  unload(): void;
  /** VM entry around an exit that is not an MMU fault: requests serviced, guest mode. False if it failed. */
  enter(): boolean;
}

/** An MMU's page_fault (vcpu->arch.mmu->page_fault), on the vCPU's preallocated fault. */
export type PageFaultFn = (kvm: Kvm, vcpu: Vcpu, f: KvmPageFault) => number;

/** kvm_mmu_do_page_fault(): counted once here (pf_taken, then by outcome). */
export function kvmMmuDoPageFault(
  kvm: Kvm,
  vcpu: Vcpu,
  fn: PageFaultFn,
  addr: number,
  errorCode: number,
  write: boolean,
  present: boolean,
): number {
  const f = vcpu.fault;
  f.init(addr, errorCode, write, present);
  vcpu.stats.pf_taken++;
  return countPageFault(vcpu.stats, fn(kvm, vcpu, f));
}

/** The outcome counters of kvm_mmu_do_page_fault(). */
export function countPageFault(stats: VcpuStat, r: number): number {
  if (r === RET_PF_FIXED) stats.pf_fixed++;
  else if (r === RET_PF_EMULATE) stats.pf_emulate++;
  else if (r === RET_PF_SPURIOUS) stats.pf_spurious++;
  return r;
}

/**
 * kvm_faultin_pfn(): f.gfn in `slot` -> hva -> host frame, with the invalidation sequence read
 * first (an early retry if an invalidation covers gfn) and the race points around get_user_pages.
 * Returns RET_PF_CONTINUE, RET_PF_RETRY or RET_PF_FAILED.
 */
export function kvmFaultinPfn(kvm: Kvm, vcpu: Vcpu, f: KvmPageFault, slot: Memslot): number {
  const gfn = f.gfn;
  f.hva = gfnToHva(slot, gfn);
  f.slotMaxLevel = slotMaxLevel(slot, gfn);
  f.mmuSeq = kvm.mmuInvalidateSeq;
  if (kvm.mmuInvalidateInProgress > 0 && kvm.invalidationRaced(f.mmuSeq, gfn)) {
    kvm.stats.mmu_fault_retries++;
    return RET_PF_RETRY;
  }
  if (kvm.racePoint !== null) kvm.racePoint(vcpu, "before-faultin", gfn);
  // hva_to_pfn(): fast GUP asking for a writable mapping (reads too), else the slow path.
  const host = kvm.host;
  let writable = true;
  let pfn = host.gupFast(f.hva, true);
  if (pfn < 0) {
    pfn = host.gup(f.hva, f.write);
    if (pfn < 0) return f.fail(`the host could not back gpa 0x${f.gpa.toString(16)} (hva 0x${f.hva.toString(16)}): ${host.lastError}`);
    writable = host.gupWritable;
    // A read fault opportunistically upgrades to writable if the host PTE allows it now.
    if (!f.write && !writable && host.gupFast(f.hva, true) === pfn) writable = true;
  }
  f.pfn = pfn;
  f.mapWritable = writable;
  if (kvm.bus.on) kvm.bus.emit("kvm.faultin", { vcpu: vcpu.id, gfn, hva: f.hva, pfn, writable: writable ? 1 : 0 });
  if (kvm.racePoint !== null) kvm.racePoint(vcpu, "after-faultin", gfn);
  return RET_PF_CONTINUE;
}

/**
 * is_page_fault_stale() under mmu_lock: true (retry) if an invalidation ran since the snapshot.
 * With the re-check skipped (debug), a raced pfn the host no longer maps is flagged on the
 * fault (f.stale, with its reason), so the fault fails before the guest uses it.
 */
export function isPageFaultStale(kvm: Kvm, vcpu: Vcpu, f: KvmPageFault): boolean {
  const raced = kvm.invalidationRaced(f.mmuSeq, f.gfn);
  if (!raced) return false;
  f.raced = true;
  if (!kvm.debugSkipSeqCheck) {
    kvm.stats.mmu_fault_retries++;
    if (kvm.bus.on) kvm.bus.emit("kvm.fault_retry", { vcpu: vcpu.id, gfn: f.gfn, seq: f.mmuSeq });
    return true;
  }
  if (kvm.host.gupFast(f.hva, false) !== f.pfn) {
    f.stale = true;
    kvm.staleReason = `stale mapping: gfn 0x${f.gfn.toString(16)} installed with pfn 0x${f.pfn.toString(16)}, which an invalidation took away while the fault was in flight (the sequence re-check was skipped)`;
    f.reason = kvm.staleReason;
    kvm.staleInstalls++;
  }
  return false;
}
