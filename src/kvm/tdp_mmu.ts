// SPDX-License-Identifier: MIT
// KVM's TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c): the EPT or NPT tables of one VM, in host
// frames, walked by the hardware. Traversal and the single entry writer live here; the
// fault policy (when to map, at which level) is in tdp_fault.ts.
//
// Every spte change goes through setSpte(), which mirrors handle_changed_spte(): it keeps
// pages_4k/2m/1g, refuses to replace a present leaf with another pfn unless it was zapped
// first, and tells the checker.

import { PAGE_SIZE } from "../hw/addr.js";
import type { EventBus } from "../hw/events.js";
import type { PhysMem } from "../hw/phys_mem.js";
import { entryPfn } from "../hw/x86_pte.js";
import {
  type SpteFormat,
  type SpteMasks,
  X86_MASKS,
  clearAccessed,
  eptMasks,
  isAccessTracked,
  isForbiddenLeafChange,
  isLastSpte,
  isShadowPresent,
  leafPfn,
  makeNonLeafSpte,
  markForAccessTrack,
  spteAccessed,
  sptePfn,
} from "./spte.js";
import type { KvmMmu } from "./mmu.js";
import type { VmStat } from "./stats.js";

/** Where KVM gets and returns the host frames of its tables (the host's page allocator). */
export interface MmuPageAllocator {
  /** A zeroed host frame for a table, or -1 when the host is out of memory. */
  allocMmuPage(): number;
  freeMmuPage(pfn: number): void;
}

/** Told of every leaf spte change (the invariant checker hooks it). */
export interface SpteObserver {
  leafChanged(gfn: number, level: number, oldPfn: number, newPfn: number): void;
}

/** Frames covered by one entry at `level`: 1, 512, 512^2, ... */
export function framesAtLevel(level: number): number {
  return 512 ** (level - 1);
}

export class TdpMmu implements KvmMmu {
  readonly root: number;
  observer: SpteObserver | null = null;
  /** KVM's shadow_*_mask for this format (EPT with or without A/D, or x86 for NPT). */
  readonly masks: SpteMasks;

  // Result of lookup(): the leaf that maps a gfn.
  leafLevel = 0;
  leafLo = 0;
  leafHi = 0;
  leafOff = -1;

  constructor(
    private readonly mem: PhysMem,
    private readonly alloc: MmuPageAllocator,
    readonly fmt: SpteFormat,
    readonly levels: 4 | 5,
    /** A/D bits in use (EPT with EPTP bit 6, or NPT). */
    readonly ad: boolean,
    private readonly stats: VmStat,
    private readonly bus: EventBus,
  ) {
    this.masks = fmt === "ept" ? eptMasks(ad) : X86_MASKS;
    const root = this.newTable();
    if (root < 0) throw new Error("out of host memory for the TDP root");
    this.root = root;
  }

  private newTable(): number {
    const pfn = this.alloc.allocMmuPage();
    if (pfn < 0) return -1;
    this.mem.allocTable(pfn);
    this.stats.mmu_table_pages++;
    return pfn;
  }

  private freeTable(pfn: number): void {
    this.mem.freeTable(pfn);
    this.alloc.freeMmuPage(pfn);
    this.stats.mmu_table_pages--;
  }

  private offset(table: number, idx: number): number {
    return this.mem.entryOffset(table, idx);
  }

  /** Finds the present leaf mapping gfn (into leaf* fields); false if there is none. */
  lookup(gfn: number): boolean {
    let table = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const idx = Math.floor(gfn / framesAtLevel(level)) & 511;
      const off = this.offset(table, idx);
      const lo = this.mem.words[off]!;
      const hi = this.mem.words[off + 1]!;
      if (!isShadowPresent(lo)) return false;
      if (isLastSpte(this.masks, lo, level)) {
        this.leafLevel = level;
        this.leafLo = lo;
        this.leafHi = hi;
        this.leafOff = off;
        return true;
      }
      table = entryPfn(lo, hi);
    }
    return false;
  }

  /**
   * The single writer (handle_changed_spte()): writes the entry at `off`, which maps gfn at
   * `level`, and accounts the change.
   */
  private setSpte(off: number, gfn: number, level: number, newLo: number, newHi: number): void {
    const words = this.mem.words;
    const oldLo = words[off]!;
    const oldHi = words[off + 1]!;
    const oldPfn = leafPfn(this.masks, oldLo, oldHi, level);
    const newPfn = leafPfn(this.masks, newLo, newHi, level);
    if (isForbiddenLeafChange(oldPfn, newPfn)) {
      throw new Error(
        `TDP MMU: present leaf for gfn 0x${gfn.toString(16)} would change pfn 0x${oldPfn.toString(16)} -> 0x${newPfn.toString(16)} without a zap`,
      );
    }
    words[off] = newLo;
    words[off + 1] = newHi;
    if ((oldPfn === -1) !== (newPfn === -1)) this.pageStat(level, newPfn === -1 ? -1 : 1);
    if (oldPfn !== newPfn && this.observer !== null) this.observer.leafChanged(gfn, level, oldPfn, newPfn);
  }

  private pageStat(level: number, delta: number): void {
    if (level === 1) this.stats.pages_4k += delta;
    else if (level === 2) this.stats.pages_2m += delta;
    else this.stats.pages_1g += delta;
  }

  /**
   * kvm_tdp_mmu_map(): installs a leaf for gfn at `level` (the frame is the base of the page).
   * Returns "fixed", "spurious" (the same spte is already there) or "nomem".
   */
  map(gfn: number, leafLo: number, leafHi: number, level: number): "fixed" | "spurious" | "nomem" {
    let table = this.root;
    for (let l = this.levels; l > level; l--) {
      const idx = Math.floor(gfn / framesAtLevel(l)) & 511;
      const off = this.offset(table, idx);
      const lo = this.mem.words[off]!;
      const hi = this.mem.words[off + 1]!;
      const base = Math.floor(gfn / framesAtLevel(l)) * framesAtLevel(l);
      if (isShadowPresent(lo) && !isLastSpte(this.masks, lo, l)) {
        table = entryPfn(lo, hi);
        continue;
      }
      if (isShadowPresent(lo)) {
        // simplified: a huge leaf in the way is zapped, not split (tdp_mmu_split_huge_page()).
        this.setSpte(off, base, l, 0, 0);
      }
      const child = this.newTable();
      if (child < 0) return "nomem";
      const [nlo, nhi] = makeNonLeafSpte(this.masks, child);
      this.setSpte(this.offset(table, idx), base, l, nlo, nhi);
      table = child;
    }
    const idx = Math.floor(gfn / framesAtLevel(level)) & 511;
    const off = this.offset(table, idx);
    const lo = this.mem.words[off]!;
    const hi = this.mem.words[off + 1]!;
    if (lo === leafLo && hi === leafHi) return "spurious";
    const base = Math.floor(gfn / framesAtLevel(level)) * framesAtLevel(level);
    if (isShadowPresent(lo) && !isLastSpte(this.masks, lo, level)) {
      // A page table replaced by a huge page: tear the subtree down (handle_removed_pt()).
      this.zapSubtree(entryPfn(lo, hi), level - 1, base, true);
      this.setSpte(off, base, level, 0, 0);
    } else if (isShadowPresent(lo) && sptePfn(this.masks, lo, hi, level) !== sptePfn(this.masks, leafLo, leafHi, level)) {
      this.setSpte(off, base, level, 0, 0);
    }
    this.setSpte(off, base, level, leafLo, leafHi);
    if (this.bus.on) this.bus.emit("kvm.spte_install", { gfn, level, pfn: sptePfn(this.masks, leafLo, leafHi, level) });
    return "fixed";
  }

  /** Rewrites the leaf lookup() found (fast_page_fault's cmpxchg, aging). */
  updateLeaf(gfn: number, newLo: number, newHi: number): void {
    const base = Math.floor(gfn / framesAtLevel(this.leafLevel)) * framesAtLevel(this.leafLevel);
    this.setSpte(this.leafOff, base, this.leafLevel, newLo, newHi);
    this.leafLo = newLo;
    this.leafHi = newHi;
  }

  /**
   * tdp_mmu_zap_leafs(): clears every leaf intersecting [start, end) gfns; tables stay.
   * Returns the number of leaves zapped (a flush is needed if > 0).
   */
  zapLeafs(start: number, end: number): number {
    return this.unmapGfnRange(start, end);
  }

  /** kvm_tdp_mmu_unmap_gfn_range(): the zap the notifier asks for. */
  unmapGfnRange(start: number, end: number): number {
    return this.visit(this.root, this.levels, 0, start, end, (off, gfn, level) => {
      this.setSpte(off, gfn, level, 0, 0);
      return true;
    });
  }

  /**
   * kvm_tdp_mmu_age_gfn_range(): test-and-clear the accessed state of leaves in [start, end).
   * Without A/D bits the leaf is marked for access tracking instead (RWX cleared, R/X saved).
   */
  age(start: number, end: number, clear: boolean): boolean {
    let young = false;
    this.visit(this.root, this.levels, 0, start, end, (off, gfn, level) => {
      const lo = this.mem.words[off]!;
      const hi = this.mem.words[off + 1]!;
      if (this.ad) {
        if (!spteAccessed(this.masks, lo)) return false;
        young = true;
        if (clear) this.setSpte(off, gfn, level, clearAccessed(this.masks, lo), hi);
        return clear;
      }
      if (isAccessTracked(this.masks, lo, hi)) return false;
      young = true;
      if (clear) {
        const [nlo, nhi] = markForAccessTrack(lo, hi);
        this.setSpte(off, gfn, level, nlo, nhi);
      }
      return clear;
    });
    return young;
  }

  /** Every present leaf: (gfn, level, pfn, lo, hi). For the checker and the visualizer. */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number, lo: number, hi: number) => void): void {
    this.visit(this.root, this.levels, 0, 0, Number.MAX_SAFE_INTEGER, (off, gfn, level) => {
      const lo = this.mem.words[off]!;
      const hi = this.mem.words[off + 1]!;
      fn(gfn, level, sptePfn(this.masks, lo, hi, level), lo, hi);
      return false;
    });
  }

  /** Zaps everything and frees every table but the root (kvm_tdp_mmu_zap_all); with `root`, the root too. */
  /** The shadow-page limit follows the memslots; TDP tables have none. */
  memslotPagesChanged(_pages: number): void {}

  zapAll(freeRoot: boolean): number {
    const n = this.zapSubtree(this.root, this.levels, 0, true);
    if (freeRoot) this.freeTable(this.root);
    return n;
  }

  /** pages_4k/2m/1g (kept by setSpte()) count the present leaves. */
  checkInvariants(): string[] {
    const leaves = [0, 0, 0, 0];
    this.visit(this.root, this.levels, 0, 0, Number.MAX_SAFE_INTEGER, (_off, _gfn, level) => {
      leaves[Math.min(level, 3)]!++;
      return false;
    });
    const s = this.stats;
    if (leaves[1] === s.pages_4k && leaves[2] === s.pages_2m && leaves[3] === s.pages_1g) return [];
    return [`pages_4k/2m/1g ${s.pages_4k}/${s.pages_2m}/${s.pages_1g}, the tables hold ${leaves.slice(1).join("/")} leaves`];
  }

  /** Leaves zapped in the subtree at `table` (a table at `level` covering gfns from `base`); frees child tables if asked. */
  private zapSubtree(table: number, level: number, base: number, freeTables: boolean): number {
    let n = 0;
    const span = framesAtLevel(level);
    for (let idx = 0; idx < 512; idx++) {
      const off = this.offset(table, idx);
      const lo = this.mem.words[off]!;
      if (!isShadowPresent(lo)) continue;
      const gfn = base + idx * span;
      if (isLastSpte(this.masks, lo, level)) {
        this.setSpte(off, gfn, level, 0, 0);
        n++;
      } else if (freeTables) {
        const child = entryPfn(lo, this.mem.words[off + 1]!);
        n += this.zapSubtree(child, level - 1, gfn, true);
        this.setSpte(off, gfn, level, 0, 0);
        this.freeTable(child);
      }
    }
    return n;
  }

  /** Calls fn on each present leaf intersecting [start, end); counts the calls that returned true. */
  private visit(
    table: number,
    level: number,
    base: number,
    start: number,
    end: number,
    fn: (off: number, gfn: number, level: number) => boolean,
  ): number {
    let n = 0;
    const span = framesAtLevel(level);
    const first = Math.max(0, Math.floor((start - base) / span));
    const last = Math.min(511, Math.floor((end - 1 - base) / span));
    for (let idx = first; idx <= last; idx++) {
      const off = this.offset(table, idx);
      const lo = this.mem.words[off]!;
      if (!isShadowPresent(lo)) continue;
      const gfn = base + idx * span;
      if (isLastSpte(this.masks, lo, level)) {
        if (fn(off, gfn, level)) n++;
      } else {
        n += this.visit(entryPfn(lo, this.mem.words[off + 1]!), level - 1, gfn, start, end, fn);
      }
    }
    return n;
  }
}

/** Bytes of guest-physical memory one leaf at `level` maps. */
export function levelBytes(level: number): number {
  return framesAtLevel(level) * PAGE_SIZE;
}
