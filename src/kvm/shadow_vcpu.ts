// SPDX-License-Identifier: MIT
// A vCPU's shadow-paging context (vcpu->arch.mmu with shadow paging, struct kvm_mmu): the
// root it runs on and the three cached previous roots (fast_pgd_switch()), the guest's CR3
// as KVM intercepted it (kvm_set_cr3()), INVLPG (kvm_mmu_invlpg()), the requests serviced
// before the next VM entry (KVM_REQ_MMU_SYNC, _LOAD_MMU_PGD, _TLB_FLUSH_CURRENT,
// _MMU_FREE_OBSOLETE_ROOTS) and kvm_mmu_load(), which builds a root when none is cached.
//
// The hardware runs in "native" paging mode with CR3 = the root's host frame | PCID, tagged by
// the vCPU's VPID; KVM's flushes are INVVPID (flush_tlb_current, flush_tlb_gva, flush_tlb_all).
//
// simplified: VMX with VPID only (no SVM ASIDs), no PAE roots, no INVPCID interception, no SMM address space.

import type { HwMmu } from "../hw/mmu_core.js";
import { PFERR_PRESENT, PFERR_RSVD } from "../hw/x86_pte.js";
import { GuestWalker, type GuestPagingState } from "./guest_walker.js";
import { ENOMEM } from "./mmu.js";
import type { ShadowMmu } from "./shadow_mmu.js";
import { type KvmMmuPage, shadowRootRole, sptepOf } from "./shadow_page.js";
import type { ShadowSync } from "./shadow_sync.js";
import { X86_MASKS, indexAt, isLastSpte, isShadowPresent } from "./spte.js";
import type { VcpuStat } from "./stats.js";

/** KVM_MMU_NUM_PREV_ROOTS. */
export const KVM_MMU_NUM_PREV_ROOTS = 3;
/** KVM_MMU_ROOT_CURRENT and KVM_MMU_ROOT_PREVIOUS(i) masks. */
export const ROOT_CURRENT = 1;
export const ROOTS_ALL = 0b1111;

/** struct kvm_mmu_root_info: a root page and the guest CR3 (pgd, with its PCID) it shadows. */
export interface KvmMmuRootInfo {
  sp: KvmMmuPage | null;
  pgd: number;
}

const CR3_PCID_MASK = 0xfff;

export class ShadowVcpuMmu {
  root: KvmMmuRootInfo = { sp: null, pgd: 0 };
  readonly prevRoots: KvmMmuRootInfo[] = [];
  /** vcpu->arch.cr3 as the guest wrote it (without the no-flush bit): root gfn * 4096 + PCID. */
  cr3 = 0;
  /** CR0.PG: the guest has loaded a CR3 (before that there is nothing to shadow). */
  paging = false;
  readonly rootRole: number;
  readonly walker: GuestWalker;
  // Requests (kvm_make_request), serviced by enter().
  reqMmuSync = false;
  reqLoadPgd = false;
  reqFlushCurrent = false;
  reqFreeObsoleteRoots = false;
  /** KVM_REQ_TLB_FLUSH (kvm_flush_remote_tlbs()). */
  reqTlbFlush = false;
  /** A #PF KVM queued for the guest (kvm_inject_page_fault): its error code, or -1. */
  pendingPf = -1;

  constructor(
    readonly shadow: ShadowMmu,
    readonly sync: ShadowSync,
    readonly mmu: HwMmu,
    readonly stats: VcpuStat,
    readonly vpid: number,
    paging: GuestPagingState,
  ) {
    for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) this.prevRoots.push({ sp: null, pgd: 0 });
    this.rootRole = shadowRootRole(paging.levels);
    this.walker = new GuestWalker(shadow.gmem, paging);
  }

  /** The guest's page-table root frame (kvm_mmu_get_guest_pgd() >> PAGE_SHIFT). */
  get cr3Gfn(): number {
    return Math.floor(this.cr3 / 4096);
  }

  /** kvm_get_active_pcid(). */
  get activePcid(): number {
    return this.mmu.pcide ? this.cr3 & CR3_PCID_MASK : 0;
  }

  // ---------------------------------------------------------------- CR3

  /** kvm_set_cr3(): a MOV to CR3 the guest made (CR3-load exiting is on under shadow paging). */
  setCr3(rootGfn: number, pcid: number, noFlush: boolean): void {
    const pcide = this.mmu.pcide;
    const skipTlbFlush = pcide && noFlush;
    const p = pcide ? pcid & CR3_PCID_MASK : 0;
    const cr3 = rootGfn * 4096 + p;
    if (cr3 !== this.cr3 || !this.paging) this.newPgd(cr3);
    this.cr3 = cr3;
    this.paging = true;
    if (!skipTlbFlush) this.invalidatePcid(p);
  }

  /**
   * KVM_SET_SREGS: __set_sregs_common() stores CR3 (vcpu->arch.cr3) and kvm_mmu_reset_context()
   * unloads every root (kvm_mmu_unload()); the next entry's kvm_mmu_reload() builds one. No exit, no flush counted.
   */
  setSregsCr3(rootGfn: number, pcid: number): void {
    this.freeRoots(ROOTS_ALL);
    this.cr3 = rootGfn * 4096 + (this.mmu.pcide ? pcid & CR3_PCID_MASK : 0);
    this.paging = true;
  }

  /** kvm_mmu_new_pgd(): switch to a cached root if one shadows this CR3; else kvm_mmu_reload() builds one before entry. */
  private newPgd(pgd: number): void {
    if (!this.fastPgdSwitch(pgd)) return;
    this.stats.fast_pgd_switch++;
    this.reqLoadPgd = true;
    this.root.sp!.writeFloodingCount = 0;
  }

  private isRootUsable(r: KvmMmuRootInfo, pgd: number): boolean {
    return r.sp !== null && r.pgd === pgd && !r.sp.invalid && r.sp.role === this.rootRole;
  }

  /** fast_pgd_switch(): the current root, or one of prev_roots, rotated MRU-first; a miss frees the LRU one. */
  private fastPgdSwitch(pgd: number): boolean {
    if (this.root.sp !== null) {
      // cached_root_find_and_keep_current()
      if (this.isRootUsable(this.root, pgd)) return true;
      for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) {
        const t = this.root;
        this.root = this.prevRoots[i]!;
        this.prevRoots[i] = t;
        if (this.isRootUsable(this.root, pgd)) return true;
      }
      this.freeRoots(ROOT_CURRENT);
      return false;
    }
    // cached_root_find_without_current()
    for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) {
      if (!this.isRootUsable(this.prevRoots[i]!, pgd)) continue;
      const t = this.root;
      this.root = this.prevRoots[i]!;
      this.prevRoots[i] = t;
      for (; i < KVM_MMU_NUM_PREV_ROOTS - 1; i++) this.prevRoots[i] = this.prevRoots[i + 1]!;
      this.prevRoots[i] = { sp: null, pgd: 0 };
      return true;
    }
    return false;
  }

  /** kvm_invalidate_pcid(): a flushing CR3 write syncs and flushes the active PCID, and drops prev roots of that PCID. */
  private invalidatePcid(pcid: number): void {
    if (this.activePcid === pcid) {
      this.reqMmuSync = true;
      this.reqFlushCurrent = true;
    }
    if (!this.mmu.pcide) return;
    let mask = 0;
    for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) {
      const r = this.prevRoots[i]!;
      if (r.sp !== null && (r.pgd & CR3_PCID_MASK) === pcid) mask |= 2 << i;
    }
    this.freeRoots(mask);
  }

  /** kvm_mmu_free_roots(): lets go of the roots in `mask`; zapped roots nobody holds any more are freed. */
  freeRoots(mask: number): void {
    const invalid: KvmMmuPage[] = [];
    const s = this.shadow;
    if ((mask & ROOT_CURRENT) !== 0 && this.root.sp !== null) {
      s.putRoot(this.root.sp, invalid);
      this.root = { sp: null, pgd: 0 };
    }
    for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) {
      const r = this.prevRoots[i]!;
      if ((mask & (2 << i)) !== 0 && r.sp !== null) {
        s.putRoot(r.sp, invalid);
        this.prevRoots[i] = { sp: null, pgd: 0 };
      }
    }
    s.commitZap(invalid);
  }

  // ---------------------------------------------------------------- INVLPG and guest faults

  /** kvm_mmu_invlpg(): flush the address and resync its spte in every cached root. */
  invlpg(gva: number): void {
    this.invalidateAddr(gva, ROOTS_ALL);
    this.stats.invlpg++;
  }

  /** kvm_mmu_invalidate_addr(): flush_tlb_gva, then kvm_sync_spte() along gva's path where pages are unsync. */
  invalidateAddr(gva: number, roots: number): void {
    this.mmu.invvpid(0, this.vpid, gva);
    if ((roots & ROOT_CURRENT) !== 0 && this.root.sp !== null) this.invalidateAddrInRoot(this.root.sp, gva);
    for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) {
      const r = this.prevRoots[i]!;
      if ((roots & (2 << i)) !== 0 && r.sp !== null) this.invalidateAddrInRoot(r.sp, gva);
    }
  }

  /** __kvm_mmu_invalidate_addr(). */
  private invalidateAddrInRoot(root: KvmMmuPage, gva: number): void {
    const s = this.shadow;
    let sp = root;
    for (;;) {
      const idx = indexAt(gva, sp.level);
      const sptep = sptepOf(sp.spt, idx);
      if (sp.unsync) {
        const zero = s.spteLo(sptep) === 0 && s.spteHi(sptep) === 0;
        const ret = zero ? 0 : this.sync.syncSpte(sp, idx);
        if (ret < 0) s.zapPte(sp, idx);
        if (ret !== 0) s.owner.flushRemoteTlbs();
      }
      if (sp.unsyncChildren === 0) return;
      const lo = s.spteLo(sptep);
      if (!isShadowPresent(lo) || isLastSpte(X86_MASKS, lo, sp.level)) return;
      sp = s.childOf(lo, s.spteHi(sptep));
    }
  }

  /** kvm_inject_emulated_page_fault(): the guest's own #PF; a protection fault first drops gva's stale spte. */
  injectPageFault(gva: number, errorCode: number): void {
    if ((errorCode & PFERR_PRESENT) !== 0 && (errorCode & PFERR_RSVD) === 0) this.invalidateAddr(gva, ROOT_CURRENT);
    this.stats.pf_guest++;
    this.pendingPf = errorCode;
  }

  // ---------------------------------------------------------------- VM entry

  /** vcpu_enter_guest(): the pending requests, then kvm_mmu_reload(). 0, or the shadow MMU's -errno if no root could be built. */
  enter(): number {
    if (this.reqFreeObsoleteRoots) {
      this.reqFreeObsoleteRoots = false;
      this.freeObsoleteRoots();
    }
    if (this.reqMmuSync) {
      this.reqMmuSync = false;
      this.syncRoots();
    }
    if (this.reqLoadPgd) {
      this.reqLoadPgd = false;
      this.loadPgd();
    }
    if (this.reqTlbFlush) {
      this.reqTlbFlush = false;
      this.flushTlbAll();
    }
    if (this.reqFlushCurrent) {
      this.reqFlushCurrent = false;
      this.flushTlbCurrent(true);
    }
    if (this.root.sp === null && this.paging) return this.load();
    return 0;
  }

  /** kvm_mmu_free_obsolete_roots(): roots zapped under this vCPU go. */
  private freeObsoleteRoots(): void {
    let mask = 0;
    if (this.root.sp?.invalid) mask |= ROOT_CURRENT;
    for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) if (this.prevRoots[i]!.sp?.invalid) mask |= 2 << i;
    if (mask !== 0) this.freeRoots(mask);
  }

  /** kvm_mmu_sync_roots(): resync the unsync pages under the current root. */
  syncRoots(): void {
    const sp = this.root.sp;
    if (sp === null || sp.invalid) return;
    if (!sp.unsync && sp.unsyncChildren === 0) return;
    this.sync.syncChildren(sp);
  }

  /** kvm_mmu_load(): the root page for the guest's CR3 (found in the hash or new), synced, loaded, the TLB flushed; 0 or -errno. */
  private load(): number {
    const s = this.shadow;
    const r = s.topupPageCache() || s.makeMmuPagesAvailable();
    if (r < 0) return r;
    const sp = s.getShadowPage(this.cr3Gfn, this.rootRole);
    if (sp === null) return -ENOMEM;
    sp.rootCount++;
    this.root = { sp, pgd: this.cr3 };
    this.stats.mmu_root_loads++;
    if (s.bus.on) s.bus.emit("kvm.root_load", { id: sp.id, gfn: sp.gfn, pgd: this.cr3 });
    this.syncRoots();
    this.loadPgd();
    // The flush of a new root is not counted in tlb_flush.
    this.flushTlbCurrent(false);
    return 0;
  }

  /** kvm_mmu_load_pgd(): GUEST_CR3 = the root's host frame | PCID, on the next VM entry (no flush by itself). */
  private loadPgd(): void {
    const sp = this.root.sp;
    if (sp === null) return;
    this.mmu.loadCr3(sp.spt, this.activePcid, true);
  }

  /** flush_tlb_current with VPID and no EPT: INVVPID single context. */
  private flushTlbCurrent(counted: boolean): void {
    if (counted) this.stats.tlb_flush++;
    this.mmu.invvpid(1, this.vpid);
  }

  /**
   * KVM_REQ_TLB_FLUSH_GUEST serviced (CR4.PGE toggle, INVPCID all-context, a PV flush):
   * kvm_vcpu_flush_tlb_guest() syncs the current root and frees the cached roots that have
   * unsync pages (kvm_mmu_sync_prev_roots()), then flushes the guest's translations.
   */
  flushTlbGuest(): void {
    this.stats.tlb_flush++;
    this.syncRoots();
    let mask = 0;
    for (let i = 0; i < KVM_MMU_NUM_PREV_ROOTS; i++) {
      const sp = this.prevRoots[i]!.sp;
      if (sp !== null && (sp.unsync || sp.unsyncChildren > 0)) mask |= 2 << i;
    }
    this.freeRoots(mask);
    this.mmu.invvpid(1, this.vpid);
  }

  /** KVM_REQ_TLB_FLUSH serviced: kvm_vcpu_flush_tlb_all() (INVVPID all contexts); it covers a pending current flush. */
  flushTlbAll(): void {
    this.stats.tlb_flush++;
    this.mmu.invvpid(2, this.vpid);
    this.reqFlushCurrent = false;
  }

  /** Every root this vCPU holds (current first), for the checker and tests. */
  roots(): KvmMmuRootInfo[] {
    return [this.root, ...this.prevRoots].filter((r) => r.sp !== null);
  }

  /** The gfn behind gva in the current root now (-1: none). */
  gfnOf(gva: number): number {
    const sp = this.root.sp;
    return sp === null ? -1 : this.shadow.gfnAt(sp, gva);
  }
}
