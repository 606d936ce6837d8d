// SPDX-License-Identifier: MIT
// The fault front door both MMUs share (arch/x86/kvm/mmu/mmu_internal.h, mmu.c):
// kvm_mmu_do_page_fault() counts, kvm_faultin_pfn() snapshots the invalidation sequence and
// faults the host page in between the race points, is_page_fault_stale() re-checks it.

import type { Kvm, Vcpu } from "./kvm.js";
import { type Memslot, gfnToHva, kvmSlotDirtyTrackEnabled, slotMaxLevel } from "./memslot.js";
import { type KvmPageFault, RET_PF_CONTINUE, RET_PF_EMULATE, RET_PF_FIXED, RET_PF_RETRY, RET_PF_SPURIOUS } from "./mmu.js";
import type { VcpuStat } from "./stats.js";

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
function countPageFault(stats: VcpuStat, r: number): number {
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
  // kvm_mmu_hugepage_adjust(): no huge mapping while the slot logs dirty pages (4 KiB granularity).
  f.slotMaxLevel = kvmSlotDirtyTrackEnabled(slot) ? 1 : slotMaxLevel(slot, gfn);
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
    if (pfn < 0) return f.fail(`the host could not back gpa 0x${f.gpa.toString(16)} (hva 0x${f.hva.toString(16)}): ${host.gupError(pfn)}`);
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
 * fault (f.stale) and recorded on the VM, so the fault fails before the guest uses it.
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
    kvm.staleGfn = f.gfn;
    kvm.stalePfn = f.pfn;
    kvm.staleInstalls++;
  }
  return false;
}

/** Why a fault that installed (or raced) a stale mapping fails. */
export function staleMappingReason(gfn: number, pfn: number): string {
  return `stale mapping: gfn 0x${gfn.toString(16)} installed with pfn 0x${pfn.toString(16)}, which an invalidation took away while the fault was in flight (the sequence re-check was skipped)`;
}
