// SPDX-License-Identifier: MIT
// KVM's shadow MMU (arch/x86/kvm/mmu/mmu.c for shadow paging) as the VM and the fault path use
// it: make_spte() and mmu_set_spte() for the leaves a fault installs, the unsync decision a
// writable spte takes (mmu_try_to_unsync_pages()), the notifier's zap and age through the
// rmaps, and reads of the shadow tables for the checker and the story. Elsewhere: the pages,
// the hash, zapping and the one spte writer (shadow_mmu_pages.ts), the reverse maps
// (shadow_rmap.ts), unsync pages and their resync (shadow_sync.ts), the fault path
// (shadow_fault.ts), the per-vCPU roots (shadow_vcpu.ts), the invariants (shadow_check.ts).

import { INV_PAGE_SIZE, LEVEL_SIZE } from "../hw/addr.js";
import type { EventBus } from "../hw/events.js";
import type { KvmEventMap } from "./kvm_events.js";
import type { PhysMem } from "../hw/phys_mem.js";
import { PTE_RW, entryPfn } from "../hw/x86_pte.js";
import { type DirtyLogCtx, markPageDirtyInSlot } from "./dirty_mark.js";
import { GuestMemory } from "./guest_walker.js";
import type { Memslots } from "./memslot.js";
import { type HostMmOps, type KvmMmu, type MmuPageAllocator, type MmuRoot, RET_PF_EMULATE, RET_PF_FIXED, RET_PF_SPURIOUS } from "./mmu.js";
import { checkShadowInvariants } from "./shadow_check.js";
import { type ShadowMmuOwner, ShadowMmuPages } from "./shadow_mmu_pages.js";
import { ACC_WRITE_MASK, type KvmMmuPage, sptepIndex, sptepOf } from "./shadow_page.js";
import { X86_MASKS, indexAt, isLargeSpte, isLastSpte, isShadowPresent, makeSpte, sptePfn, spteOut } from "./spte.js";
import type { VmStat } from "./stats.js";

export class ShadowMmu extends ShadowMmuPages implements KvmMmu {
  readonly gmem: GuestMemory;
  readonly fmt = "x86";
  readonly translates = "gva";
  /** The spte leafSpte() composed. */
  newLo = 0;
  newHi = 0;

  constructor(
    mem: PhysMem,
    alloc: MmuPageAllocator,
    memslots: Memslots,
    host: HostMmOps,
    stats: VmStat,
    bus: EventBus<KvmEventMap>,
    owner: ShadowMmuOwner,
    /** EFER.NX as the guest set it (the model's guests always set it). */
    readonly efer_nx = true,
    /** The guest's MAXPHYADDR: gpte frame bits above it are reserved. */
    readonly maxPhyAddr = 46,
  ) {
    super(mem, alloc, stats, bus, owner);
    this.gmem = new GuestMemory(mem, memslots, host);
  }

  /**
   * make_spte()'s checks for a shadow leaf (host-writable, mmu_try_to_unsync_pages()), then
   * spte.ts's makeSpte() composes it: [lo, hi] in newLo/newHi. Returns `wrprot` (a write was
   * asked for but the frame is shadowed, so the spte stays read-only).
   */
  leafSpte(
    sp: KvmMmuPage,
    access: number,
    gfn: number,
    pfn: number,
    oldLo: number,
    prefetch: boolean,
    synchronizing: boolean,
    hostWritable: boolean,
  ): boolean {
    if (!hostWritable) access &= ~ACC_WRITE_MASK;
    let wrprot = false;
    let dirty = false;
    // An spte that was writable already needs no unsync check (nor a new D).
    if ((access & ACC_WRITE_MASK) !== 0 && ((oldLo & PTE_RW) === 0 || !isShadowPresent(oldLo))) {
      if (this.tryToUnsyncPages(gfn, synchronizing, prefetch)) {
        wrprot = true;
        access &= ~ACC_WRITE_MASK;
      }
      dirty = true;
    }
    makeSpte(X86_MASKS, pfn, sp.level, access, !prefetch || synchronizing, dirty, hostWritable);
    this.newLo = spteOut[0];
    this.newHi = spteOut[1];
    if ((this.newLo & PTE_RW) !== 0 && this.dirtyLogCtx !== null) this.markPageDirty(gfn);
    return wrprot;
  }

  /**
   * mmu_set_spte(): installs the leaf for gfn -> pfn at sptep with `access`; `fault` null is
   * a prefetch (host page assumed writable, spte made old). Returns RET_PF_FIXED, _SPURIOUS,
   * or _EMULATE when a write fault hit a frame KVM must keep write-protected.
   */
  mmuSetSpte(sptep: number, access: number, gfn: number, pfn: number, fault: { write: boolean; mapWritable: boolean } | null): number {
    const sp = this.sptepToSp(sptep);
    const idx = sptepIndex(sptep);
    const level = sp.level;
    const prefetch = fault === null;
    const hostWritable = fault === null || fault.mapWritable;
    let flush = false;
    let wasRmapped = false;
    const old = this.spteLo(sptep);
    if (isShadowPresent(old)) {
      const oldHi = this.spteHi(sptep);
      if (prefetch && isLastSpte(X86_MASKS, old, level) && sptePfn(X86_MASKS, old, oldHi, level) === pfn) return RET_PF_SPURIOUS;
      if (level > 1 && !isLargeSpte(X86_MASKS, old)) {
        // A guest table became a huge page: unlink the old child.
        this.dropParentPte(this.childOf(old, oldHi), sptep);
        flush = true;
      } else if (pfn !== sptePfn(X86_MASKS, old, oldHi, level)) {
        this.rmap.dropSpte(sptep);
        flush = true;
      } else {
        wasRmapped = true;
      }
    }
    const cur = this.spteLo(sptep);
    if (!wasRmapped) sp.setTranslation(idx, gfn, access);
    const wrprot = this.leafSpte(sp, access, gfn, pfn, cur, prefetch, false, hostWritable);
    let ret = RET_PF_FIXED;
    if (cur === this.newLo && this.spteHi(sptep) === this.newHi) ret = RET_PF_SPURIOUS;
    else if (this.spteUpdate(sptep, this.newLo, this.newHi)) flush = true;
    if (wrprot && fault?.write) ret = RET_PF_EMULATE;
    if (flush) this.owner.flushRemoteTlbs();
    if (!wasRmapped) this.rmap.add(sp, idx, gfn, access);
    else sp.setTranslation(idx, sp.gfnAt(idx), access);
    if (this.bus.on && ret !== RET_PF_SPURIOUS)
      this.bus.emit("kvm.spte_install", {
        gfn,
        level,
        pfn,
        writable: wrprot ? 0 : (access & ACC_WRITE_MASK) >>> 1,
        prefetch: prefetch ? 1 : 0,
      });
    return ret;
  }

  /**
   * mmu_try_to_unsync_pages(): KVM is making a writable spte for gfn. True (write-protect it)
   * if gfn is write-tracked or its shadow pages may not go unsync; otherwise each shadowing
   * leaf page goes unsync (kvm_unsync_page).
   */
  tryToUnsyncPages(gfn: number, synchronizing: boolean, prefetch: boolean): boolean {
    if (this.track.isWriteTracked(gfn)) return true;
    for (const sp of this.indirectPagesOf(gfn)) {
      if (synchronizing) return true;
      if (sp.unsync) continue;
      if (prefetch) return true;
      if (sp.level !== 1) throw new Error(`shadow MMU: ${sp} would go unsync above level 1`);
      this.syncer.unsyncPage(sp);
    }
    return false;
  }

  // ---------------------------------------------------------------- the VM's and the notifier's operations

  /** kvm_unmap_gfn_range() on the rmaps; returns the sptes zapped. */
  unmapGfnRange(start: number, end: number): number {
    return this.rmap.unmapGfnRange(start, end);
  }

  /** kvm_age_rmap() / kvm_test_age_rmap(). */
  age(start: number, end: number, clear: boolean): boolean {
    return this.rmap.age(start, end, clear);
  }

  /** Every leaf spte: (gfn, level, pfn, lo, hi). */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number, lo: number, hi: number) => void): void {
    this.rmap.forEachLeaf(fn);
  }

  /** The root page a vCPU holds for the guest tables at gfn `pgd` (mmu_alloc_shadow_roots() made it), or null. */
  rootFor(pgd: number): MmuRoot | null {
    for (const sp of this.bucket(pgd)) {
      if (sp.gfn === pgd && !sp.invalid && sp.rootCount > 0) return { table: sp.spt, level: sp.level };
    }
    return null;
  }

  // ---------------------------------------------------------------- walks of the shadow tables

  /** shadow_page_table_clear_flood(): resets the flood counters of the pages on gva's shadow path. */
  clearFloodAlongPath(root: KvmMmuPage, gva: number): void {
    let sp = root;
    for (;;) {
      sp.writeFloodingCount = 0;
      const sptep = sptepOf(sp.spt, indexAt(gva, sp.level));
      const lo = this.spteLo(sptep);
      if (!isShadowPresent(lo) || isLastSpte(X86_MASKS, lo, sp.level)) return;
      sp = this.childOf(lo, this.spteHi(sptep));
    }
  }

  /**
   * The gfn whose frame root's shadow tables map at gva now (any permission), or -1: the
   * checker's view of an access. Reads the table words as the hardware does; one page lookup at the leaf.
   */
  gfnAt(root: KvmMmuPage, gva: number): number {
    const mem = this.mem;
    let table = root.spt;
    for (let level = root.level; level >= 1; level--) {
      const idx = indexAt(gva, level);
      const off = mem.entryOffset(table, idx);
      const lo = mem.words[off]!;
      const hi = mem.words[off + 1]!;
      if (!isShadowPresent(lo)) return -1;
      if (isLastSpte(X86_MASKS, lo, level)) {
        const size = LEVEL_SIZE[level]!;
        return this.pageOfTable(table)!.gfnAt(idx) + Math.floor((gva - Math.floor(gva / size) * size) * INV_PAGE_SIZE);
      }
      table = entryPfn(lo, hi);
    }
    return -1;
  }

  /** The structures' invariants (shadow_check.ts): what is wrong, or nothing. */
  checkInvariants(): string[] {
    return checkShadowInvariants(this);
  }

  // ---------------------------------------------------------------- dirty logging (dirty_log.ts)

  /** struct kvm as mark_page_dirty_in_slot() reads it (set by x86.ts). */
  dirtyLogCtx: DirtyLogCtx | null = null;

  /** make_spte(): a writable spte in a logging slot marks the page dirty. */
  private markPageDirty(gfn: number): void {
    const slot = this.gmem.memslots.find(gfn);
    if (slot !== null) markPageDirtyInSlot(this.dirtyLogCtx!, slot, gfn);
  }

  /** kvm_mmu_slot_remove_write_access() (slot_rmap_write_protect() from 4 KiB): W cleared in every leaf of [start, end). Returns how many. */
  slotRemoveWriteAccess(start: number, end: number): number {
    return this.rmap.writeProtectRange(start, end, 1);
  }

  /** kvm_mmu_slot_gfn_write_protect(gfn, minLevel) for dirty logging (pt_protect false). */
  gfnWriteProtect(gfn: number, minLevel: number): number {
    return this.rmap.writeProtectRange(gfn, gfn + 1, minLevel);
  }

  /**
   * kvm_rmap_zap_collapsible_sptes() (what kvm_mmu_recover_huge_pages() does for the shadow
   * MMU): 4 KiB sptes of direct pages that could now be mapped huge are zapped, to be faulted
   * back huge. Returns how many.
   */
  zapCollapsibleSptes(start: number, end: number, maxLevel: (gfn: number) => number): number {
    const zap: number[] = [];
    this.rmap.forEachLeaf((gfn, level) => {
      if (level !== 1 || gfn < start || gfn >= end) return;
      for (const sptep of this.rmap.sptesOf(gfn)) {
        const sp = this.sptepToSp(sptep);
        if (sp.level === 1 && sp.direct && sp.level < maxLevel(sp.gfn) && !zap.includes(sptep)) zap.push(sptep);
      }
    });
    for (const sptep of zap) this.rmap.dropSpte(sptep);
    return zap.length;
  }
}
