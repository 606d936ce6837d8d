// SPDX-License-Identifier: MIT
// kvm_tdp_page_fault() (arch/x86/kvm/mmu/mmu.c, tdp_mmu.c): an EPT violation or #NPF handled
// the way the TDP MMU handles it, behind the front door of mmu.ts:
//   1. fast_page_fault(): lockless fix-ups (access tracking restore, spurious faults)
//   2. kvm_faultin_pfn(): seq snapshot, race points, gfn -> memslot -> hva -> get_user_pages
//   3. mmu_lock; is_page_fault_stale(): retry if an invalidation ran since the snapshot
//   4. kvm_tdp_mmu_map() at the largest level the host mapping and the slot allow

import { PAGE_SIZE } from "../hw/addr.js";
import type { Kvm, Vcpu } from "./kvm.js";
import { markPageDirtyInSlot } from "./dirty_mark.js";
import { type Memslot, kvmSlotDirtyTrackEnabled, kvmVcpuGfnToMemslot } from "./memslot.js";
import { type KvmPageFault, RET_PF_CONTINUE, RET_PF_FIXED, RET_PF_RETRY, RET_PF_SPURIOUS } from "./mmu.js";
import { isPageFaultStale, kvmFaultinPfn, staleMappingReason } from "./page_fault.js";
import {
  ACC_ALL,
  ACC_EXEC_MASK,
  ACC_USER_MASK,
  isAccessTracked,
  isMmuWritable,
  makeSpte,
  restoreAccessTrack,
  spteOut,
  spteWritable,
} from "./spte.js";
import { type TdpMmu, framesAtLevel } from "./tdp_mmu.js";

/** kvm_tdp_page_fault(): the TDP MMU's page_fault. */
export function tdpPageFault(kvm: Kvm, vcpu: Vcpu, tdp: TdpMmu, f: KvmPageFault): number {
  const gpa = f.addr;
  const gfn = Math.floor(gpa / PAGE_SIZE);
  f.gfn = gfn;
  f.gpa = gpa;
  const fast = fastPageFault(kvm, vcpu, tdp, f);
  if (fast !== RET_PF_CONTINUE) return fast;

  const slot = kvmVcpuGfnToMemslot(vcpu, kvm.memslots, gfn);
  if (slot === null) return f.fail(`guest accessed gpa 0x${gpa.toString(16)}, which no memory slot covers (MMIO is not modelled)`);
  const r = kvmFaultinPfn(kvm, vcpu, f, slot);
  if (r !== RET_PF_CONTINUE) return r;
  if (isPageFaultStale(kvm, vcpu, f)) return RET_PF_RETRY;
  return tdpMap(kvm, tdp, f, slot);
}

/** fast_page_fault(): not-present with access tracking, or a present write fault. */
function fastPageFault(kvm: Kvm, vcpu: Vcpu, tdp: TdpMmu, f: KvmPageFault): number {
  if (!tdp.lookup(f.gfn)) return RET_PF_CONTINUE;
  const lo = tdp.leafLo;
  const hi = tdp.leafHi;
  if (isAccessTracked(tdp.masks, lo, hi)) {
    const [nlo, nhi] = restoreAccessTrack(lo, hi);
    tdp.updateLeaf(f.gfn, nlo, nhi);
    vcpu.stats.pf_fast++;
    if (kvm.bus.on) kvm.bus.emit("kvm.fast_fault", { vcpu: vcpu.id, gfn: f.gfn, fix: "access-track" });
    return RET_PF_FIXED;
  }
  if (!f.write || spteWritable(tdp.masks, lo)) {
    // The spte already allows the access: another vCPU fixed it meanwhile, or a TLB was stale.
    // fast_page_fault() sees it for present faults; the slow path's map() for the others.
    if (f.present) vcpu.stats.pf_fast++;
    return RET_PF_SPURIOUS;
  }
  if (f.present && isMmuWritable(tdp.masks, lo, hi)) return fastFixWrprot(kvm, vcpu, tdp, f);
  return RET_PF_CONTINUE;
}

/**
 * fast_page_fault() on a write to an MMU-writable spte (write-protected for dirty logging):
 * W set by cmpxchg without mmu_lock, the page marked dirty (fast_pf_fix_direct_spte()). A huge
 * spte in a logging slot goes to the slow path, which maps 4 KiB.
 */
function fastFixWrprot(kvm: Kvm, vcpu: Vcpu, tdp: TdpMmu, f: KvmPageFault): number {
  const slot = kvmVcpuGfnToMemslot(vcpu, kvm.memslots, f.gfn);
  if (slot === null || (tdp.leafLevel > 1 && kvmSlotDirtyTrackEnabled(slot))) return RET_PF_CONTINUE;
  tdp.updateLeaf(f.gfn, (tdp.leafLo | tdp.masks.writable) >>> 0, tdp.leafHi);
  markPageDirtyInSlot(kvm, slot, f.gfn);
  vcpu.stats.pf_fast++;
  if (kvm.bus.on) kvm.bus.emit("kvm.fast_fault", { vcpu: vcpu.id, gfn: f.gfn, fix: "write-protect" });
  return RET_PF_FIXED;
}

/** kvm_mmu_hugepage_adjust() (the host mapping level, capped by the slot) and kvm_tdp_mmu_map(). */
function tdpMap(kvm: Kvm, tdp: TdpMmu, f: KvmPageFault, slot: Memslot): number {
  const host = kvm.host;
  const writable = f.mapWritable;
  const level = Math.min(host.hostMappingLevel(f.hva), f.slotMaxLevel);
  const frames = framesAtLevel(level);
  const baseGfn = Math.floor(f.gfn / frames) * frames;
  const basePfn = f.pfn - (f.gfn - baseGfn);
  makeSpte(tdp.masks, basePfn, level, writable ? ACC_ALL : ACC_EXEC_MASK | ACC_USER_MASK, true, true, writable);
  const r = tdp.map(f.gfn, spteOut[0], spteOut[1], level);
  if (r === "nomem") return f.fail("the host is out of memory for EPT/NPT tables");
  // make_spte(): a writable spte in a logging slot marks the page dirty (the level is 4 KiB there).
  if (writable && r === "fixed" && kvmSlotDirtyTrackEnabled(slot)) markPageDirtyInSlot(kvm, slot, f.gfn);
  // kvm_release_faultin_page(unused = false, dirty = map_writable): the fast path may make the
  // spte writable later without the host knowing, so the folio is dirtied now.
  if (writable) host.markDirty(f.pfn);
  if (f.raced && kvm.staleInstalls > 0) return f.fail(staleMappingReason(kvm.staleGfn, kvm.stalePfn));
  return r === "spurious" ? RET_PF_SPURIOUS : RET_PF_FIXED;
}
