// SPDX-License-Identifier: MIT
// The shadow MMU's reverse maps (arch/x86/kvm/mmu/mmu.c rmap_add(), rmap_remove(),
// drop_spte(), rmap_write_protect(), kvm_zap_rmap(), kvm_age_rmap()): for each gfn and level,
// the leaf sptes that map it, in every root. They answer the notifier (which host range goes
// away, which is young) and write-protect a frame KVM starts to shadow.
//
// simplified: one map keyed by (huge frame index, level) for all memslots, not per-memslot arrays of pte_list_desc chains.

import { PTE_A, PTE_RW } from "../hw/x86_pte.js";
import { type KvmMmuPage, pagesPerSpte, sptepIndex, sptepOf } from "./shadow_page.js";
import { X86_MASKS, X86_SPTE_MMU_WRITABLE, isShadowPresent, sptePfn } from "./spte.js";
import type { VmStat } from "./stats.js";

/** RMAP_RECYCLE_THRESHOLD: an rmap longer than this is zapped whole. */
export const RMAP_RECYCLE_THRESHOLD = 1000;

/** What the rmaps need of the shadow MMU (ShadowMmuPages): its spte reads, the one writer, the remote flush. */
export interface RmapOwner {
  readonly stats: VmStat;
  readonly owner: { flushRemoteTlbs(): void };
  /** Guest frames whose direct-map spte is read-only (see ShadowMmuPages.dmapRo). */
  readonly dmapRo: Set<number>;
  spteLo(sptep: number): number;
  spteHi(sptep: number): number;
  sptepToSp(sptep: number): KvmMmuPage;
  setSpte(sptep: number, lo: number, hi: number): void;
  spteUpdate(sptep: number, lo: number, hi: number): boolean;
}

export class ShadowRmap {
  /** key (huge frame index * 4 + level) -> sptes. */
  private readonly map = new Map<number, number[]>();

  constructor(private readonly s: RmapOwner) {}

  entries(): IterableIterator<[number, number[]]> {
    return this.map.entries();
  }

  key(level: number, gfn: number): number {
    return Math.floor(gfn / pagesPerSpte(level)) * 4 + level;
  }

  /** __rmap_add(): record the translation, count the leaf, add the spte to gfn's rmap at the page's level. */
  add(sp: KvmMmuPage, idx: number, gfn: number, access: number): void {
    sp.setTranslation(idx, gfn, access);
    this.pageStat(sp.level, 1);
    const key = this.key(sp.level, gfn);
    let list = this.map.get(key);
    if (list === undefined) {
      list = [];
      this.map.set(key, list);
    }
    const count = list.length;
    list.push(sptepOf(sp.spt, idx));
    if (count > this.s.stats.max_mmu_rmap_size) this.s.stats.max_mmu_rmap_size = count;
    if (count > RMAP_RECYCLE_THRESHOLD) {
      this.zap(sp.level, gfn);
      this.s.owner.flushRemoteTlbs();
    }
  }

  private remove(sp: KvmMmuPage, idx: number): void {
    const key = this.key(sp.level, sp.gfnAt(idx));
    const list = this.map.get(key);
    const sptep = sptepOf(sp.spt, idx);
    const i = list === undefined ? -1 : list.indexOf(sptep);
    if (i < 0) throw new Error(`shadow MMU: spte ${sp} index ${idx} is not on the rmap of gfn 0x${sp.gfnAt(idx).toString(16)}`);
    list![i] = list![list!.length - 1]!;
    list!.pop();
    if (list!.length === 0) this.map.delete(key);
  }

  private pageStat(level: number, delta: number): void {
    if (level === 1) this.s.stats.pages_4k += delta;
    else if (level === 2) this.s.stats.pages_2m += delta;
    else this.s.stats.pages_1g += delta;
  }

  /** drop_spte(): clears a leaf spte and takes it off its rmap. */
  dropSpte(sptep: number): void {
    const lo = this.s.spteLo(sptep);
    this.s.setSpte(sptep, 0, 0);
    if (isShadowPresent(lo)) {
      const sp = this.s.sptepToSp(sptep);
      this.remove(sp, sptepIndex(sptep));
      this.pageStat(sp.level, -1);
    }
  }

  /** kvm_zap_rmap() of one rmap: every spte mapping gfn at `level`; returns how many. */
  zap(level: number, gfn: number): number {
    const list = this.map.get(this.key(level, gfn));
    if (list === undefined) return 0;
    let n = 0;
    for (const sptep of [...list]) {
      this.dropSpte(sptep);
      n++;
    }
    return n;
  }

  /**
   * kvm_mmu_slot_gfn_write_protect() / rmap_write_protect(pt_protect): clears W and
   * MMU-writable in every spte that maps gfn, at every level; true if a flush is due.
   */
  writeProtectGfn(gfn: number): boolean {
    let flush = false;
    for (let level = 1; level <= 3; level++) {
      const list = this.map.get(this.key(level, gfn));
      if (list === undefined) continue;
      for (const sptep of list) {
        const lo = this.s.spteLo(sptep);
        if ((lo & (PTE_RW | X86_SPTE_MMU_WRITABLE)) === 0) continue;
        if (this.s.spteUpdate(sptep, (lo & ~(PTE_RW | X86_SPTE_MMU_WRITABLE)) >>> 0, this.s.spteHi(sptep))) flush = true;
      }
    }
    // The guest kernel's direct map is not a set of sptes here: it needs no flush of its own.
    this.s.dmapRo.add(gfn);
    return flush;
  }

  /**
   * slot_rmap_write_protect() / rmap_write_protect(pt_protect = false) over [start, end) from
   * `minLevel` up: W cleared, MMU-writable kept (spte_write_protect()). Returns how many changed.
   */
  writeProtectRange(start: number, end: number, minLevel: number): number {
    let n = 0;
    for (let level = minLevel; level <= 3; level++) {
      const pp = pagesPerSpte(level);
      const last = Math.floor((end - 1) / pp);
      for (let f = Math.floor(start / pp); f <= last; f++) {
        const list = this.map.get(this.key(level, f * pp));
        if (list === undefined) continue;
        for (const sptep of list) {
          const lo = this.s.spteLo(sptep);
          if ((lo & PTE_RW) === 0) continue;
          this.s.spteUpdate(sptep, (lo & ~PTE_RW) >>> 0, this.s.spteHi(sptep));
          n++;
        }
      }
    }
    return n;
  }

  /** Every leaf spte: (gfn, level, pfn, lo, hi). For the checker and the visualizer. */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number, lo: number, hi: number) => void): void {
    for (const list of this.map.values()) {
      for (const sptep of list) {
        const sp = this.s.sptepToSp(sptep);
        const lo = this.s.spteLo(sptep);
        const hi = this.s.spteHi(sptep);
        fn(sp.gfnAt(sptepIndex(sptep)), sp.level, sptePfn(X86_MASKS, lo, hi, sp.level), lo, hi);
      }
    }
  }

  /** Leaf sptes mapping gfn (at any level). */
  sptesOf(gfn: number): number[] {
    const out: number[] = [];
    for (let level = 1; level <= 3; level++) {
      const list = this.map.get(this.key(level, gfn));
      if (list !== undefined) out.push(...list);
    }
    return out;
  }

  /** kvm_unmap_gfn_range() on the rmaps: every leaf spte mapping [start, end), at every level. Returns how many. */
  unmapGfnRange(start: number, end: number): number {
    let n = 0;
    for (let level = 1; level <= 3; level++) {
      const pp = pagesPerSpte(level);
      const last = Math.floor((end - 1) / pp);
      for (let f = Math.floor(start / pp); f <= last; f++) n += this.zap(level, f * pp);
    }
    return n;
  }

  /** kvm_age_rmap() / kvm_test_age_rmap(): the accessed bits of the sptes mapping [start, end); cleared if asked. */
  age(start: number, end: number, clear: boolean): boolean {
    let young = false;
    for (let level = 1; level <= 3; level++) {
      const pp = pagesPerSpte(level);
      const last = Math.floor((end - 1) / pp);
      for (let f = Math.floor(start / pp); f <= last; f++) {
        const list = this.map.get(this.key(level, f * pp));
        if (list === undefined) continue;
        for (const sptep of list) {
          const lo = this.s.spteLo(sptep);
          if ((lo & PTE_A) === 0) continue;
          young = true;
          if (!clear) return true;
          this.s.setSpte(sptep, (lo & ~PTE_A) >>> 0, this.s.spteHi(sptep));
        }
      }
    }
    return young;
  }
}
