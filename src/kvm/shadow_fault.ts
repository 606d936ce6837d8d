// SPDX-License-Identifier: MIT
// The shadow page fault (arch/x86/kvm/mmu/paging_tmpl.h FNAME(page_fault), FNAME(fetch),
// FNAME(pte_prefetch); mmu.c kvm_mmu_page_fault()): with shadow paging KVM intercepts the
// guest's #PF. It walks the guest's tables; a fault the guest's tables explain is reflected
// into the guest (pf_guest). Otherwise it builds the shadow path: a shadow page per guest
// table on the way (write-protecting that table), direct pages where KVM maps a guest huge
// page with smaller sptes, then the leaf, split like the TDP fault at its race points:
//   1. walk the guest tables (FNAME(walk_addr)); write to a write-tracked table -> emulate
//   2. read mmu_invalidate_seq -- race point "before-faultin"
//   3. kvm_faultin_pfn(): gfn -> memslot -> hva -> get_user_pages -- race point "after-faultin"
//   4. mmu_lock; is_page_fault_stale(); make_mmu_pages_available(); FNAME(fetch)
// Also here: the write fault the guest kernel takes when it writes a frame KVM write-protects.
//
// simplified: no FNAME(is_self_change_mapping) check and no NX huge-page mitigation.
// simplified: no MMIO sptes, no async page faults, no CR0.WP=0 trick (the guest runs with CR0.WP=1).

import { PFERR_RSVD, entryPfn } from "../hw/x86_pte.js";
import { type GuestWalker, gpteAccess, protectCleanGpte } from "./guest_walker.js";
import type { Kvm, Vcpu } from "./kvm.js";
import { gfnToHva, kvmSlotDirtyTrackEnabled, kvmVcpuGfnToMemslot } from "./memslot.js";
import {
  ENOMEM,
  type KvmPageFault,
  RET_PF_CONTINUE,
  RET_PF_EMULATE,
  RET_PF_FAILED,
  RET_PF_FIXED,
  RET_PF_RETRY,
  RET_PF_SPURIOUS,
} from "./mmu.js";
import { isPageFaultStale, kvmFaultinPfn, staleMappingReason } from "./page_fault.js";
import type { ShadowMmu } from "./shadow_mmu.js";
import { ACC_WRITE_MASK, type KvmMmuPage, childRole, pagesPerSpte, sptepIndex, sptepOf } from "./shadow_page.js";
import type { ShadowVcpuMmu } from "./shadow_vcpu.js";
import { X86_MASKS, indexAt, isLargeSpte, isShadowPresent } from "./spte.js";

/** PTE_PREFETCH_NUM: sptes around a 4 KiB fault that FNAME(pte_prefetch) fills too. */
export const PTE_PREFETCH_NUM = 8;

/** FNAME(page_fault)(): shadow paging's page_fault (f.addr is the gva). */
export function shadowPageFault(kvm: Kvm, vcpu: Vcpu, sh: ShadowVcpuMmu, f: KvmPageFault): number {
  const shadow = sh.shadow;
  const gva = f.addr;
  const w = sh.walker;
  if (!w.walk(sh.cr3Gfn, gva, f.errorCode & ~PFERR_RSVD)) {
    if (w.hostError < 0)
      return f.fail(`walking the guest tables for gva 0x${gva.toString(16)}: ${shadow.gmem.failure(w.hostError, w.hostErrorGfn)}`);
    // The guest's own fault: reflect it (the guest's #PF handler runs next).
    sh.injectPageFault(gva, w.faultErrorCode);
    if (kvm.bus.on) kvm.bus.emit("kvm.inject_pf", { vcpu: vcpu.id, gva, error: w.faultErrorCode });
    return RET_PF_RETRY;
  }
  const gfn = w.gfn;
  f.gfn = gfn;
  f.gpa = gfn * 4096;
  const slot = kvmVcpuGfnToMemslot(vcpu, kvm.memslots, gfn);
  if (slot === null) return f.fail(`guest accessed gpa 0x${f.gpa.toString(16)}, which no memory slot covers (MMIO is not modelled)`);
  // page_fault_handle_page_track(): a write through a present spte to a write-tracked table.
  if (f.present && f.write && shadow.track.isWriteTracked(gfn)) {
    if (sh.root.sp !== null) shadow.clearFloodAlongPath(sh.root.sp, gva);
    return RET_PF_EMULATE;
  }
  const e = shadow.topupPageCache();
  if (e < 0) return f.fail(shadow.failure(e));
  const r = kvmFaultinPfn(kvm, vcpu, f, slot);
  if (r !== RET_PF_CONTINUE) return r;
  // mmu_lock: is_page_fault_stale(), make_mmu_pages_available(), FNAME(fetch).
  if (isPageFaultStale(kvm, vcpu, f)) return RET_PF_RETRY;
  const avail = shadow.makeMmuPagesAvailable();
  if (avail < 0) return f.fail(shadow.failure(avail));
  const ret = fetch(kvm, vcpu, sh, f, w);
  // kvm_mmu_finish_page_fault(): kvm_release_faultin_page(unused = RETRY, dirty = map_writable).
  if (ret !== RET_PF_RETRY && ret !== RET_PF_FAILED && f.mapWritable) kvm.host.markDirty(f.pfn);
  return f.stale ? f.fail(staleMappingReason(f.gfn, f.pfn)) : ret;
}

/** FNAME(fetch)(): the shadow path for the fault, from the root down to the leaf. */
function fetch(kvm: Kvm, vcpu: Vcpu, sh: ShadowVcpuMmu, f: KvmPageFault, w: GuestWalker): number {
  const shadow = sh.shadow;
  const gva = f.addr;
  const directAccess = w.pteAccess;
  // The top gpte is still there? (The root table is write-protected, or no longer in use.)
  if (w.gpteChanged(w.maxLevel)) return RET_PF_RETRY;
  let sp = sh.root.sp;
  if (sp === null || sp.invalid) {
    sh.reqFreeObsoleteRoots = true;
    return RET_PF_RETRY;
  }
  let level = sp.level;
  let sptep: number;
  // The indirect levels: one shadow page per guest table the walk went through.
  for (;;) {
    sptep = sptepOf(sp.spt, indexAt(gva, level));
    sp.writeFloodingCount = 0;
    if (level === w.level) break;
    const lo = shadow.spteLo(sptep);
    const exists = isShadowPresent(lo) && !isLargeSpte(X86_MASKS, lo);
    let child: KvmMmuPage | null = null;
    if (!exists) {
      // kvm_mmu_get_child_sp(): the page shadowing the guest table one level down.
      child = shadow.getShadowPage(w.tableGfn[level - 2]!, childRole(sp.role, false, w.ptAccess[level - 2]!));
      if (child === null) return f.fail(shadow.failure(-ENOMEM));
      // Sync it before linking: the guest need not flush for a non-present -> present change.
      if (child.unsyncChildren > 0) sh.sync.syncChildren(child);
    }
    if (w.gpteChanged(level - 1)) return RET_PF_RETRY;
    if (child !== null) shadow.linkShadowPage(sptep, child);
    sp = shadow.childOf(shadow.spteLo(sptep), shadow.spteHi(sptep));
    level--;
  }

  // kvm_mmu_hugepage_adjust(): no bigger than the guest maps, the host maps, the slot allows,
  // and never over a frame KVM shadows.
  let goal = w.level;
  while (goal > 1 && shadow.track.lpageDisallowed(f.gfn, goal)) goal--;
  if (goal > 1) goal = Math.min(goal, kvm.host.hostMappingLevel(f.hva), f.slotMaxLevel);

  // The direct levels: a guest huge page mapped with smaller sptes.
  while (level > goal) {
    const baseGfn = roundGfn(f.gfn, level);
    validateDirectSpte(kvm, shadow, sptep, directAccess);
    const lo = shadow.spteLo(sptep);
    if (!(isShadowPresent(lo) && !isLargeSpte(X86_MASKS, lo))) {
      const child = shadow.getShadowPage(baseGfn, childRole(sp.role, true, directAccess));
      if (child === null) return f.fail(shadow.failure(-ENOMEM));
      shadow.linkShadowPage(sptep, child);
    }
    sp = shadow.childOf(shadow.spteLo(sptep), shadow.spteHi(sptep));
    level--;
    sptep = sptepOf(sp.spt, indexAt(gva, level));
  }

  const baseGfn = roundGfn(f.gfn, goal);
  const ret = shadow.mmuSetSpte(sptep, w.pteAccess, baseGfn, f.pfn - (f.gfn - baseGfn), f);
  if (ret === RET_PF_SPURIOUS) return ret;
  ptePrefetch(kvm, vcpu, shadow, sh, sptep, w);
  return ret;
}

function roundGfn(gfn: number, level: number): number {
  const n = pagesPerSpte(level);
  return Math.floor(gfn / n) * n;
}

/** validate_direct_spte(): a direct child made for another access (the gpte's D bit changed) is unlinked. */
function validateDirectSpte(kvm: Kvm, shadow: ShadowMmu, sptep: number, directAccess: number): void {
  const lo = shadow.spteLo(sptep);
  if (!isShadowPresent(lo) || isLargeSpte(X86_MASKS, lo)) return;
  const child = shadow.childOf(lo, shadow.spteHi(sptep));
  if (child.access === directAccess) return;
  shadow.dropParentPte(child, sptep);
  kvm.flushRemoteTlbs();
}

/** FNAME(pte_prefetch)(): at 4 KiB, the other sptes of the 8-aligned group whose gptes are present and accessed. */
function ptePrefetch(kvm: Kvm, vcpu: Vcpu, shadow: ShadowMmu, sh: ShadowVcpuMmu, sptep: number, w: GuestWalker): void {
  const sp = shadow.sptepToSp(sptep);
  if (sp.level > 1) return;
  // Addresses being invalidated are not prefetched.
  if (kvm.mmuInvalidateInProgress > 0) return;
  if (sp.direct) {
    directPtePrefetch(kvm, vcpu, shadow, sp, sptep);
    return;
  }
  const first = sptepIndex(sptep) & ~(PTE_PREFETCH_NUM - 1);
  for (let i = 0; i < PTE_PREFETCH_NUM; i++) {
    const s = sptepOf(sp.spt, first + i);
    if (s === sptep || isShadowPresent(shadow.spteLo(s))) continue;
    if (!prefetchGpte(kvm, vcpu, shadow, sh, sp, s, w.prefetchLo[i]!, w.prefetchHi[i]!)) break;
  }
}

/** FNAME(prefetch_gpte)(): an old (not accessed) spte for a gpte, if the host page is mapped writable already. */
function prefetchGpte(
  kvm: Kvm,
  vcpu: Vcpu,
  shadow: ShadowMmu,
  sh: ShadowVcpuMmu,
  sp: KvmMmuPage,
  sptep: number,
  glo: number,
  ghi: number,
): boolean {
  if (sh.sync.prefetchInvalidGpte(sptep, glo, ghi)) return false;
  const gfn = entryPfn(glo, ghi);
  const access = protectCleanGpte(sp.access & gpteAccess(glo, ghi, shadow.efer_nx), glo);
  const slot = kvmVcpuGfnToMemslot(vcpu, kvm.memslots, gfn);
  if (slot === null) return false;
  // gfn_to_memslot_dirty_bitmap(): no writable prefetch into a logging slot.
  if ((access & ACC_WRITE_MASK) !== 0 && kvmSlotDirtyTrackEnabled(slot)) return false;
  // gfn_to_pfn_memslot_atomic(): only a page the host maps (writable) already.
  const pfn = kvm.host.gupFast(gfnToHva(slot, gfn), true);
  if (pfn < 0) return false;
  shadow.mmuSetSpte(sptep, access, gfn, pfn, null);
  // Prefetched pages are taken writable and the spte may become writable locklessly: dirty now.
  kvm.host.markDirty(pfn);
  return true;
}

/** __direct_pte_prefetch(): runs of absent sptes in the group, filled while the host has the pages mapped. */
function directPtePrefetch(kvm: Kvm, vcpu: Vcpu, shadow: ShadowMmu, sp: KvmMmuPage, sptep: number): void {
  const first = sptepIndex(sptep) & ~(PTE_PREFETCH_NUM - 1);
  let start = -1;
  for (let i = 0; i <= PTE_PREFETCH_NUM; i++) {
    const idx = first + i;
    const s = sptepOf(sp.spt, idx);
    const stop = i === PTE_PREFETCH_NUM || s === sptep || isShadowPresent(shadow.spteLo(s));
    if (!stop) {
      if (start < 0) start = idx;
      continue;
    }
    if (start < 0) continue;
    if (!directPrefetchMany(kvm, vcpu, shadow, sp, start, idx)) return;
    start = -1;
  }
}

/** direct_pte_prefetch_many(): [start, end) of a direct page, as far as gfn_to_page_many_atomic() gets. */
function directPrefetchMany(kvm: Kvm, vcpu: Vcpu, shadow: ShadowMmu, sp: KvmMmuPage, start: number, end: number): boolean {
  let gfn = sp.gfnAt(start);
  const slot = kvmVcpuGfnToMemslot(vcpu, kvm.memslots, gfn);
  if (slot === null) return false;
  // gfn_to_memslot_dirty_bitmap(): no writable prefetch into a logging slot.
  if ((sp.access & ACC_WRITE_MASK) !== 0 && kvmSlotDirtyTrackEnabled(slot)) return false;
  let n = 0;
  for (let idx = start; idx < end; idx++, gfn++) {
    if (gfn >= slot.baseGfn + slot.npages) break;
    const pfn = kvm.host.gupFast(gfnToHva(slot, gfn), true);
    if (pfn < 0) break;
    shadow.mmuSetSpte(sptepOf(sp.spt, idx), sp.access, gfn, pfn, null);
    kvm.host.markDirty(pfn); // kvm_release_page_dirty() in direct_pte_prefetch_many()
    n++;
  }
  return n > 0;
}

/**
 * The guest kernel wrote a frame whose (direct-map) spte KVM keeps read-only: the #PF
 * exit's handler for it. A write-tracked frame (an upper-level guest table) must be emulated;
 * otherwise the frame's leaf shadow pages go unsync (mmu_try_to_unsync_pages()) and the spte
 * becomes writable, so the guest's write goes through when it runs again.
 * Counted like any shadow fault (through kvmMmuDoPageFault(), f.addr is the gpa).
 */
export function kernelWriteFault(shadow: ShadowMmu, f: KvmPageFault): number {
  const gfn = Math.floor(f.addr / 4096);
  if (shadow.track.isWriteTracked(gfn)) return RET_PF_EMULATE;
  shadow.tryToUnsyncPages(gfn, false, false);
  shadow.dmapRo.delete(gfn);
  return RET_PF_FIXED;
}
