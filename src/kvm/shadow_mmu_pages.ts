// SPDX-License-Identifier: MIT
// The shadow MMU's pages (arch/x86/kvm/mmu/mmu.c, the "legacy" MMU used for shadow paging):
// shadow pages keyed by (gfn, role) in a 4096-bucket hash, the active list that recycling walks
// from its oldest end, parent links, write protection of the guest frames they shadow, the
// shadow-page limit, zapping, and the one writer of sptes. ShadowMmu (shadow_mmu.ts) builds
// leaves on it; the reverse maps are in shadow_rmap.ts, unsync pages in shadow_sync.ts.
//
// Every spte change goes through setSpte(), which refuses to point a present leaf at another
// frame without a zap and tells the checker.
//
// simplified: no mmu_valid_gen and fast zap (no memslot is ever deleted), no "x86-mmu" shrinker, no dirty logging.
// simplified: dropping an spte does not pass its A/D bits to the host page (mark_page_accessed / SetPageDirty).

import type { EventBus } from "../hw/events.js";
import type { KvmEventMap } from "./kvm_events.js";
import type { PhysMem } from "../hw/phys_mem.js";
import { entryPfn } from "../hw/x86_pte.js";
import { ENOMEM, ENOSPC, type MmuPageAllocator, type SpteObserver } from "./mmu.js";
import { PageTrack } from "./page_track.js";
import { ShadowRmap } from "./shadow_rmap.js";
import { KvmMmuPage, hash64, roleLevel, sptepIndex, sptepOf, sptepTable } from "./shadow_page.js";
import { X86_MASKS, isForbiddenLeafChange, isLastSpte, isMmuWritable, isShadowPresent, leafPfn, makeNonLeafSpte } from "./spte.js";
import type { VmStat } from "./stats.js";

/** KVM_MIN_FREE_MMU_PAGES and KVM_REFILL_PAGES: make_mmu_pages_available()'s low mark and refill. */
export const KVM_MIN_FREE_MMU_PAGES = 5;
export const KVM_REFILL_PAGES = 25;
/** KVM_MIN_ALLOC_MMU_PAGES and the 2 % of memslot pages (KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO = 50). */
export const KVM_MIN_ALLOC_MMU_PAGES = 64;
export const KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO = 50;
export const KVM_MMU_HASH_SHIFT = 12;
/** PT64_ROOT_MAX_LEVEL: shadow pages a fault may need, topped up before it takes mmu_lock. */
export const SHADOW_PAGE_CACHE_MIN = 5;

/** What the shadow MMU asks of its VM. */
export interface ShadowMmuOwner {
  /** kvm_flush_remote_tlbs(). */
  flushRemoteTlbs(): void;
  /** kvm_make_all_cpus_request(KVM_REQ_MMU_FREE_OBSOLETE_ROOTS). */
  requestFreeObsoleteRoots(): void;
}

/** kvm->arch's shadow pages: everything mmu.c keeps about them but how a fault fills them (ShadowMmu). */
export class ShadowMmuPages {
  readonly track = new PageTrack();
  /** kvm->arch.n_used_mmu_pages / n_max_mmu_pages. */
  nUsedMmuPages = 0;
  nMaxMmuPages = KVM_MIN_ALLOC_MMU_PAGES;
  /** KVM_SET_NR_MMU_PAGES was used: memslot changes no longer resize the limit. */
  nMaxMmuPagesFixed = false;
  /** kvm->arch.indirect_shadow_pages. */
  indirectShadowPages = 0;
  /**
   * Guest frames whose direct-map spte is read-only: the guest kernel's own writes to them
   * fault. A frame joins when KVM write-protects it (rmap_write_protect) and leaves when a
   * write fault makes its spte writable again (the frame went unsync or stopped being shadowed).
   * simplified: the guest's direct map has no shadow pages of its own; this set stands for its sptes' W bits.
   */
  readonly dmapRo = new Set<number>();
  observer: SpteObserver | null = null;
  /** Bumped by every spte change (lets the per-vCPU memo of accessedGfn(), vcpu_mmu.ts, know it is out of date). */
  spteGen = 0;
  /** The reverse maps from gfns to the leaf sptes that map them. */
  readonly rmap: ShadowRmap = new ShadowRmap(this);
  /** Unsync handling and resync (shadow_sync.ts), wired in by the VM. */
  syncer!: ShadowSyncOps;
  /** Set by prepareZap(): the active list changed under the caller. */
  zapUnstable = false;
  /** kvm->arch.mmu_page_hash. */
  private readonly hash: KvmMmuPage[][] = [];
  /** page_private(): the shadow page of a table frame. */
  private readonly byTable = new Map<number, KvmMmuPage>();
  /** active_mmu_pages: head newest, tail oldest. */
  private activeHead: KvmMmuPage | null = null;
  private activeTail: KvmMmuPage | null = null;
  /** The shadow-page cache that faults top up before taking mmu_lock (simplified: one per VM, filled to its minimum). */
  private readonly pageCache: number[] = [];
  private nextId = 1;

  constructor(
    readonly mem: PhysMem,
    private readonly alloc: MmuPageAllocator,
    readonly stats: VmStat,
    readonly bus: EventBus<KvmEventMap>,
    readonly owner: ShadowMmuOwner,
  ) {
    for (let i = 0; i < 1 << KVM_MMU_HASH_SHIFT; i++) this.hash.push([]);
  }

  // ---------------------------------------------------------------- sptes

  spteLo(sptep: number): number {
    return this.mem.words[this.mem.entryOffset(sptepTable(sptep), sptepIndex(sptep))]!;
  }

  spteHi(sptep: number): number {
    return this.mem.words[this.mem.entryOffset(sptepTable(sptep), sptepIndex(sptep)) + 1]!;
  }

  /** sptep_to_sp(). */
  sptepToSp(sptep: number): KvmMmuPage {
    return this.byTable.get(sptepTable(sptep))!;
  }

  /** spte_to_child_sp(). */
  childOf(lo: number, hi: number): KvmMmuPage {
    return this.byTable.get(entryPfn(lo, hi))!;
  }

  /** The shadow page whose table is host frame `spt` (for the invariants). */
  pageOfTable(spt: number): KvmMmuPage | undefined {
    return this.byTable.get(spt);
  }

  /** The one writer of shadow entries (mmu_spte_set / mmu_spte_update / mmu_spte_clear_*). */
  setSpte(sptep: number, lo: number, hi: number): void {
    const sp = this.sptepToSp(sptep);
    const idx = sptepIndex(sptep);
    const off = this.mem.entryOffset(sp.spt, idx);
    const words = this.mem.words;
    const oldLo = words[off]!;
    const oldHi = words[off + 1]!;
    const level = sp.level;
    const oldPfn = leafPfn(X86_MASKS, oldLo, oldHi, level);
    const newPfn = leafPfn(X86_MASKS, lo, hi, level);
    if (isForbiddenLeafChange(oldPfn, newPfn)) {
      throw new Error(
        `shadow MMU: present leaf in ${sp} index ${idx} would change pfn 0x${oldPfn.toString(16)} -> 0x${newPfn.toString(16)} without a zap`,
      );
    }
    words[off] = lo;
    words[off + 1] = hi;
    this.spteGen++;
    if (oldPfn !== newPfn && this.observer !== null) this.observer.leafChanged(sp.gfnAt(idx), level, oldPfn, newPfn);
  }

  /** mmu_spte_update(): writes a present spte; true if a TLB flush is due (it lost MMU-writable). */
  spteUpdate(sptep: number, lo: number, hi: number): boolean {
    const old = this.spteLo(sptep);
    this.setSpte(sptep, lo, hi);
    if (!isShadowPresent(old)) return false;
    return isMmuWritable(X86_MASKS, old, 0) && !isMmuWritable(X86_MASKS, lo, 0);
  }

  // ---------------------------------------------------------------- shadow pages

  protected bucket(gfn: number): KvmMmuPage[] {
    return this.hash[hash64(gfn, KVM_MMU_HASH_SHIFT)]!;
  }

  /** for_each_gfn_valid_sp_with_gptes(): the valid indirect pages that shadow gfn. */
  indirectPagesOf(gfn: number): KvmMmuPage[] {
    return this.bucket(gfn).filter((sp) => sp.gfn === gfn && !sp.invalid && !sp.direct);
  }

  /** mmu_topup_memory_caches(): frames for the shadow pages a fault may create, taken before mmu_lock; 0 or -ENOMEM. */
  topupPageCache(): number {
    while (this.pageCache.length < SHADOW_PAGE_CACHE_MIN) {
      const pfn = this.alloc.allocMmuPage();
      if (pfn < 0) return -ENOMEM;
      this.pageCache.push(pfn);
    }
    return 0;
  }

  /** A failure code of the shadow MMU (-ENOMEM, -ENOSPC) in a sentence. */
  failure(err: number): string {
    if (err === -ENOSPC) return `no shadow page can be freed (n_max_mmu_pages ${this.nMaxMmuPages}, all in use as roots)`;
    return "the host is out of memory for shadow pages";
  }

  /** kvm_mmu_get_shadow_page(): the page for (gfn, role), found or allocated; null (-ENOMEM) if no frame could be had. */
  getShadowPage(gfn: number, role: number): KvmMmuPage | null {
    const sp = this.findShadowPage(gfn, role);
    if (sp !== null) return sp;
    return this.allocShadowPage(gfn, role);
  }

  /** kvm_mmu_find_shadow_page(). */
  private findShadowPage(gfn: number, role: number): KvmMmuPage | null {
    const invalid: KvmMmuPage[] = [];
    let collisions = 0;
    let found: KvmMmuPage | null = null;
    for (const sp of this.bucket(gfn)) {
      if (sp.invalid) continue;
      if (sp.gfn !== gfn) {
        collisions++;
        continue;
      }
      if (sp.role !== role) {
        // The guest reuses a leaf table as an upper table: the unsync page must not stay.
        if (roleLevel(role) > 1 && sp.unsync) this.prepareZap(sp, invalid);
        continue;
      }
      if (sp.direct) {
        found = sp;
        break;
      }
      if (sp.unsync) {
        // Good but stale: resync it now (without write-protecting it); a failed sync zapped it.
        const ret = this.syncer.syncPage(sp, invalid);
        if (ret < 0) break;
        if (ret > 0) this.owner.flushRemoteTlbs();
      }
      sp.writeFloodingCount = 0;
      found = sp;
      break;
    }
    if (found === null) this.stats.mmu_cache_miss++;
    this.commitZap(invalid);
    if (collisions > this.stats.max_mmu_page_hash_collisions) this.stats.max_mmu_page_hash_collisions = collisions;
    return found;
  }

  /** kvm_mmu_alloc_shadow_page(). */
  private allocShadowPage(gfn: number, role: number): KvmMmuPage | null {
    let spt = this.pageCache.pop();
    if (spt === undefined) {
      spt = this.alloc.allocMmuPage();
      if (spt < 0) return null;
    }
    this.mem.allocTable(spt);
    this.stats.mmu_table_pages++;
    const sp = new KvmMmuPage(this.nextId++, gfn, role, spt);
    this.byTable.set(spt, sp);
    this.activeAddHead(sp);
    this.nUsedMmuPages++;
    this.stats.n_used_mmu_pages = this.nUsedMmuPages;
    this.bucket(gfn).unshift(sp);
    if (sp.hasGptes) this.accountShadowed(sp);
    if (this.bus.on) this.bus.emit("kvm.sp_alloc", { id: sp.id, gfn, level: sp.level, direct: sp.direct ? 1 : 0 });
    return sp;
  }

  /** account_shadowed(): an upper-level guest table is write-tracked; a leaf table write-protected. Either way no huge page over it. */
  private accountShadowed(sp: KvmMmuPage): void {
    this.indirectShadowPages++;
    if (sp.level > 1) this.track.addGfn(sp.gfn);
    else this.track.disallowLpage(sp.gfn);
    if (this.rmap.writeProtectGfn(sp.gfn)) this.owner.flushRemoteTlbs();
  }

  private unaccountShadowed(sp: KvmMmuPage): void {
    this.indirectShadowPages--;
    if (sp.level > 1) this.track.removeGfn(sp.gfn);
    else this.track.allowLpage(sp.gfn);
  }

  private activeAddHead(sp: KvmMmuPage): void {
    sp.prev = null;
    sp.next = this.activeHead;
    if (this.activeHead !== null) this.activeHead.prev = sp;
    this.activeHead = sp;
    if (this.activeTail === null) this.activeTail = sp;
    sp.onActiveList = true;
  }

  private activeRemove(sp: KvmMmuPage): void {
    if (!sp.onActiveList) return;
    if (sp.prev !== null) sp.prev.next = sp.next;
    else this.activeHead = sp.next;
    if (sp.next !== null) sp.next.prev = sp.prev;
    else this.activeTail = sp.prev;
    sp.prev = sp.next = null;
    sp.onActiveList = false;
  }

  /** link_shadow_page(): points sptep at `child` (dropping a huge leaf that was there) and records the parent. */
  linkShadowPage(sptep: number, child: KvmMmuPage): void {
    if (isShadowPresent(this.spteLo(sptep))) {
      // drop_large_spte(): a huge leaf gives way to a table.
      this.rmap.dropSpte(sptep);
      this.owner.flushRemoteTlbs();
    }
    const [lo, hi] = makeNonLeafSpte(X86_MASKS, child.spt);
    this.setSpte(sptep, lo, hi);
    child.parentPtes.push(sptep);
    if (child.unsyncChildren > 0 || child.unsync) this.syncer.markUnsync(sptep);
  }

  /** drop_parent_pte(): unlinks `child` from the parent spte `sptep`. */
  dropParentPte(child: KvmMmuPage, sptep: number): void {
    const i = child.parentPtes.indexOf(sptep);
    if (i < 0) throw new Error(`shadow MMU: ${child} has no parent spte ${sptep}`);
    child.parentPtes[i] = child.parentPtes[child.parentPtes.length - 1]!;
    child.parentPtes.pop();
    this.setSpte(sptep, 0, 0);
  }

  /** mmu_page_zap_pte(): clears one spte of `sp`: a leaf is dropped, a child page unlinked. True if it was present. */
  zapPte(sp: KvmMmuPage, idx: number): boolean {
    const sptep = sptepOf(sp.spt, idx);
    const lo = this.spteLo(sptep);
    if (!isShadowPresent(lo)) return false;
    if (isLastSpte(X86_MASKS, lo, sp.level)) this.rmap.dropSpte(sptep);
    else this.dropParentPte(this.childOf(lo, this.spteHi(sptep)), sptep);
    return true;
  }

  /**
   * __kvm_mmu_prepare_zap_page(): zaps `sp` (and its unsync children): unlinks children and
   * parents, stops shadowing its gfn; a page no root uses goes on `invalid` to be freed after
   * one flush, a root stays until its vCPUs let go. Returns the pages zapped; zapUnstable
   * says whether the active list changed under the caller.
   */
  prepareZap(sp: KvmMmuPage, invalid: KvmMmuPage[]): number {
    this.stats.mmu_shadow_zapped++;
    let n = sp.level > 1 ? this.syncer.zapUnsyncChildren(sp, invalid) : 0;
    this.zapUnstable = n > 0;
    for (let i = 0; i < 512; i++) this.zapPte(sp, i);
    while (sp.parentPtes.length > 0) this.dropParentPte(sp, sp.parentPtes[sp.parentPtes.length - 1]!);
    if (!sp.invalid && sp.hasGptes) this.unaccountShadowed(sp);
    if (sp.unsync) this.syncer.unlinkUnsync(sp);
    let zappedRoot = false;
    if (sp.rootCount === 0) {
      n++;
      this.activeRemove(sp);
      invalid.push(sp);
      this.nUsedMmuPages--;
      this.stats.n_used_mmu_pages = this.nUsedMmuPages;
    } else {
      this.activeRemove(sp);
      zappedRoot = !sp.invalid;
    }
    sp.invalid = true;
    if (this.bus.on) this.bus.emit("kvm.sp_zap", { id: sp.id, gfn: sp.gfn, level: sp.level, root: sp.rootCount > 0 ? 1 : 0 });
    if (zappedRoot) this.owner.requestFreeObsoleteRoots();
    return n;
  }

  /** kvm_mmu_commit_zap_page(): one remote flush, then the pages are freed. */
  commitZap(invalid: KvmMmuPage[]): void {
    if (invalid.length === 0) return;
    this.owner.flushRemoteTlbs();
    for (const sp of invalid) this.freeShadowPage(sp);
    invalid.length = 0;
  }

  /** kvm_mmu_remote_flush_or_zap(). */
  remoteFlushOrZap(invalid: KvmMmuPage[], flush: boolean): void {
    if (invalid.length > 0) this.commitZap(invalid);
    else if (flush) this.owner.flushRemoteTlbs();
  }

  /** kvm_mmu_free_shadow_page(). */
  private freeShadowPage(sp: KvmMmuPage): void {
    if (!sp.invalid || sp.rootCount > 0) throw new Error(`shadow MMU: freeing ${sp}, which is still in use`);
    const b = this.bucket(sp.gfn);
    const i = b.indexOf(sp);
    if (i >= 0) b.splice(i, 1);
    this.byTable.delete(sp.spt);
    this.mem.freeTable(sp.spt);
    this.alloc.freeMmuPage(sp.spt);
    this.stats.mmu_table_pages--;
  }

  /** mmu_free_root_page(): a vCPU lets go of a root; a zapped root goes once nobody holds it. */
  putRoot(sp: KvmMmuPage, invalid: KvmMmuPage[]): void {
    if (--sp.rootCount === 0 && sp.invalid) this.prepareZap(sp, invalid);
  }

  /** kvm_mmu_unprotect_page(): zaps every page that shadows gfn; true if there was one. */
  unprotectGfn(gfn: number): boolean {
    const invalid: KvmMmuPage[] = [];
    let r = false;
    for (const sp of this.indirectPagesOf(gfn)) {
      r = true;
      this.prepareZap(sp, invalid);
    }
    this.commitZap(invalid);
    return r;
  }

  /** kvm_mmu_zap_oldest_mmu_pages(): zaps from the oldest end, skipping roots in use; counted in mmu_recycled. */
  zapOldestMmuPages(nrToZap: number): number {
    const invalid: KvmMmuPage[] = [];
    let total = 0;
    restart: for (;;) {
      for (let sp = this.activeTail; sp !== null; ) {
        const prev = sp.prev;
        if (sp.rootCount > 0) {
          sp = prev;
          continue;
        }
        total += this.prepareZap(sp, invalid);
        if (total >= nrToZap) break restart;
        if (this.zapUnstable) continue restart;
        sp = prev;
      }
      break;
    }
    this.commitZap(invalid);
    this.stats.mmu_recycled += total;
    return total;
  }

  /** kvm_mmu_available_pages(). */
  availablePages(): number {
    return this.nMaxMmuPages > this.nUsedMmuPages ? this.nMaxMmuPages - this.nUsedMmuPages : 0;
  }

  /** make_mmu_pages_available(): below 5 free, zap the oldest back up to 25; 0, or -ENOSPC if none is left. */
  makeMmuPagesAvailable(): number {
    const avail = this.availablePages();
    if (avail >= KVM_MIN_FREE_MMU_PAGES) return 0;
    this.zapOldestMmuPages(KVM_REFILL_PAGES - avail);
    return this.availablePages() === 0 ? -ENOSPC : 0;
  }

  /** kvm_mmu_change_mmu_pages(): a new limit; zaps the oldest pages above it. */
  changeMmuPages(goal: number): void {
    if (this.nUsedMmuPages > goal) {
      this.zapOldestMmuPages(this.nUsedMmuPages - goal);
      goal = Math.max(goal, this.nUsedMmuPages);
    }
    this.nMaxMmuPages = goal;
    this.stats.n_max_mmu_pages = goal;
  }

  /** KVM_SET_NR_MMU_PAGES. */
  setNrMmuPages(n: number): void {
    this.nMaxMmuPagesFixed = true;
    this.changeMmuPages(n);
  }

  /** kvm_arch_commit_memory_region(): the default limit follows the memslots (2 %, at least 64). */
  memslotPagesChanged(totalPages: number): void {
    if (this.nMaxMmuPagesFixed) return;
    this.changeMmuPages(Math.max(KVM_MIN_ALLOC_MMU_PAGES, Math.floor(totalPages / KVM_MEMSLOT_PAGES_TO_MMU_PAGES_RATIO)));
  }

  /** kvm_mmu_zap_all(): VM teardown or the notifier's release. */
  zapAll(_freeRoot = false): void {
    const invalid: KvmMmuPage[] = [];
    restart: for (;;) {
      for (let sp = this.activeHead; sp !== null; ) {
        const next = sp.next;
        this.prepareZap(sp, invalid);
        if (this.zapUnstable) continue restart;
        sp = next;
      }
      break;
    }
    this.commitZap(invalid);
  }

  /** The shadow pages allocated now (valid ones and zapped roots still held), for checkers and the visualizer. */
  pages(): IterableIterator<KvmMmuPage> {
    return this.byTable.values();
  }
}

/** What the shadow MMU needs of the unsync machinery (implemented in shadow_sync.ts). */
export interface ShadowSyncOps {
  syncPage(sp: KvmMmuPage, invalid: KvmMmuPage[]): number;
  markUnsync(sptep: number): void;
  unsyncPage(sp: KvmMmuPage): void;
  unlinkUnsync(sp: KvmMmuPage): void;
  zapUnsyncChildren(sp: KvmMmuPage, invalid: KvmMmuPage[]): number;
}
