// SPDX-License-Identifier: MIT
// kvm_tdp_page_fault() (arch/x86/kvm/mmu/mmu.c, tdp_mmu.c): an EPT violation or #NPF handled
// the way the TDP MMU handles it, split at the points where the host may run in between:
//   1. fast_page_fault(): lockless fix-ups (access tracking restore, spurious faults)
//   2. read mmu_invalidate_seq; bail out early if an invalidation covers the gfn
//   -- race point "before-faultin"
//   3. kvm_faultin_pfn(): gfn -> memslot -> hva -> get_user_pages (the host fault path)
//   -- race point "after-faultin"
//   4. take mmu_lock; is_page_fault_stale(): retry if an invalidation ran since step 2
//   5. kvm_tdp_mmu_map() at the largest level the host mapping and the slot allow
// and counted as kvm_mmu_do_page_fault() counts (pf_taken, pf_fixed, pf_spurious, pf_fast).

import { PAGE_SIZE } from "../hw/addr.js";
import { PFERR_PRESENT, PFERR_WRITE } from "../hw/x86_pte.js";
import type { Kvm } from "./kvm.js";
import { gfnToHva, slotMaxLevel } from "./memslot.js";
import { ACC_ALL, ACC_EXEC_MASK, ACC_USER_MASK, isAccessTracked, makeSpte, restoreAccessTrack, spteOut, spteWritable } from "./spte.js";
import { framesAtLevel } from "./tdp_mmu.js";
import type { Vcpu } from "./vcpu.js";

export const RET_PF_RETRY = 1;
export const RET_PF_FIXED = 2;
export const RET_PF_SPURIOUS = 3;
/** Not a kernel code: the host could not back the page (the VMM would get -EFAULT / SIGBUS). */
export const RET_PF_FAILED = -1;

export function tdpPageFault(kvm: Kvm, vcpu: Vcpu, gpa: number, errorCode: number): number {
  const stats = vcpu.stats;
  stats.pf_taken++;
  const r = faultSteps(kvm, vcpu, gpa, errorCode);
  if (r === RET_PF_FIXED) stats.pf_fixed++;
  else if (r === RET_PF_SPURIOUS) stats.pf_spurious++;
  else if (r === RET_PF_RETRY) kvm.stats.mmu_fault_retries++;
  return r;
}

function faultSteps(kvm: Kvm, vcpu: Vcpu, gpa: number, errorCode: number): number {
  const gfn = Math.floor(gpa / PAGE_SIZE);
  const write = (errorCode & PFERR_WRITE) !== 0;
  const present = (errorCode & PFERR_PRESENT) !== 0;
  const tdp = kvm.tdp;
  const bus = kvm.bus;

  // 1. fast_page_fault(): not-present with access tracking, or a present write fault.
  if (tdp.lookup(gfn)) {
    const lo = tdp.leafLo;
    const hi = tdp.leafHi;
    if (isAccessTracked(tdp.masks, lo, hi)) {
      const [nlo, nhi] = restoreAccessTrack(lo, hi);
      tdp.updateLeaf(gfn, nlo, nhi);
      vcpu.stats.pf_fast++;
      if (bus.on) bus.emit("kvm.fast_fault", { vcpu: vcpu.id, gfn, fix: "access-track" });
      return RET_PF_FIXED;
    }
    if (!write || spteWritable(tdp.masks, lo)) {
      // The spte already allows the access: another vCPU fixed it meanwhile, or a TLB was stale.
      // fast_page_fault() sees it for present faults; the slow path's map() for the others.
      if (present) vcpu.stats.pf_fast++;
      return RET_PF_SPURIOUS;
    }
  }

  // kvm_vcpu_gfn_to_memslot(): the last-used slot, else a search.
  let slot = vcpu.lastSlot;
  if (slot === null || gfn < slot.baseGfn || gfn >= slot.baseGfn + slot.npages) {
    slot = kvm.memslots.find(gfn);
    if (slot === null) {
      kvm.lastFaultError = `guest accessed gpa 0x${gpa.toString(16)}, which no memory slot covers (MMIO is not modelled)`;
      return RET_PF_FAILED;
    }
    vcpu.lastSlot = slot;
  }

  // 2. Snapshot the invalidation sequence (kvm_faultin_pfn()); early retry if one covers gfn.
  const mmuSeq = kvm.mmuInvalidateSeq;
  if (kvm.mmuInvalidateInProgress > 0 && kvm.invalidationRaced(mmuSeq, gfn)) return RET_PF_RETRY;
  if (kvm.racePoint !== null) kvm.racePoint(vcpu, "before-faultin", gfn);

  // 3. hva_to_pfn(): fast GUP asking for a writable mapping (reads too), else the slow path.
  const hva = gfnToHva(slot, gfn);
  const host = kvm.host;
  let writable = true;
  let pfn = host.gupFast(hva, true);
  if (pfn < 0) {
    pfn = host.gup(hva, write);
    if (pfn < 0) {
      kvm.lastFaultError = `the host could not back gpa 0x${gpa.toString(16)} (hva 0x${hva.toString(16)}): ${host.lastError}`;
      return RET_PF_FAILED;
    }
    writable = host.gupWritable;
    // A read fault opportunistically upgrades to writable if the host PTE allows it now.
    if (!write && !writable && host.gupFast(hva, true) === pfn) writable = true;
  }
  if (bus.on) bus.emit("kvm.faultin", { vcpu: vcpu.id, gfn, hva, pfn, writable: writable ? 1 : 0 });
  if (kvm.racePoint !== null) kvm.racePoint(vcpu, "after-faultin", gfn);

  // 4. mmu_lock; is_page_fault_stale().
  const raced = kvm.invalidationRaced(mmuSeq, gfn);
  if (raced && !kvm.debugSkipSeqCheck) {
    if (bus.on) bus.emit("kvm.fault_retry", { vcpu: vcpu.id, gfn, seq: mmuSeq });
    return RET_PF_RETRY;
  }
  // With the check skipped, a raced pfn may already be gone: say so at once, before the guest uses it.
  if (raced && host.gupFast(hva, false) !== pfn) {
    kvm.lastFaultError = `stale mapping: gfn 0x${gfn.toString(16)} installed with pfn 0x${pfn.toString(16)}, which an invalidation took away while the fault was in flight (the sequence re-check was skipped)`;
    kvm.staleInstalls++;
  }

  // 5. kvm_mmu_hugepage_adjust(): the host mapping level, capped by the slot's alignment.
  const level = Math.min(host.hostMappingLevel(hva), slotMaxLevel(slot, gfn));
  const frames = framesAtLevel(level);
  const baseGfn = Math.floor(gfn / frames) * frames;
  const basePfn = pfn - (gfn - baseGfn);
  makeSpte(tdp.masks, basePfn, level, writable ? ACC_ALL : ACC_EXEC_MASK | ACC_USER_MASK, true, true, writable);
  const r = tdp.map(gfn, spteOut[0], spteOut[1], level);
  if (r === "nomem") {
    kvm.lastFaultError = "the host is out of memory for EPT/NPT tables";
    return RET_PF_FAILED;
  }
  // kvm_release_faultin_page(unused = false, dirty = map_writable): the fast path may make the
  // spte writable later without the host knowing, so the folio is dirtied now.
  if (writable) host.markDirty(pfn);
  if (raced && kvm.staleInstalls > 0) return RET_PF_FAILED;
  return r === "spurious" ? RET_PF_SPURIOUS : RET_PF_FIXED;
}
