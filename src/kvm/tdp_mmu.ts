// SPDX-License-Identifier: MIT
// KVM's TDP MMU (arch/x86/kvm/mmu/tdp_mmu.c): the EPT or NPT tables of one VM, in host
// frames, walked by the hardware. Traversal and the single entry writer live here; the
// fault policy (when to map, at which level) is in tdp_fault.ts.
//
// Every spte change goes through setSpte(), which mirrors handle_changed_spte(): it keeps
// pages_4k/2m/1g, refuses to replace a present leaf with another pfn unless it was zapped
// first, and tells the checker.

import type { EventBus } from "../hw/events.js";
import type { PhysMem } from "../hw/phys_mem.js";
import { TableIter, physTables } from "../hw/table_iter.js";
import { PTE_HI_FRAME_MASK, entryPfn, frameHi, frameLo } from "../hw/x86_pte.js";
import type { KvmEventMap } from "./kvm_events.js";
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
import type { KvmMmu, MmuPageAllocator, MmuRoot, SpteObserver } from "./mmu.js";
import type { VmStat } from "./stats.js";

/** Frames covered by one entry at `level`: 1, 512, 512^2, ... */
export function framesAtLevel(level: number): number {
  return 512 ** (level - 1);
}

export class TdpMmu implements KvmMmu {
  readonly root: number;
  readonly translates = "gpa";
  /** The one root, whatever the guest's tables (kvm_tdp_mmu_get_vcpu_root_hpa()). */
  private readonly rootInfo: MmuRoot;
  observer: SpteObserver | null = null;
  /** KVM's shadow_*_mask for this format (EPT with or without A/D, or x86 for NPT). */
  readonly masks: SpteMasks;

  // Result of lookup(): the leaf that maps a gfn.
  leafLevel = 0;
  leafLo = 0;
  leafHi = 0;
  leafOff = -1;
  /** The iterator of zap and age (they never nest). */
  private readonly iter: TableIter;

  constructor(
    private readonly mem: PhysMem,
    private readonly alloc: MmuPageAllocator,
    readonly fmt: SpteFormat,
    readonly levels: 4 | 5,
    /** A/D bits in use (EPT with EPTP bit 6, or NPT). */
    readonly ad: boolean,
    private readonly stats: VmStat,
    private readonly bus: EventBus<KvmEventMap>,
  ) {
    this.masks = fmt === "ept" ? eptMasks(ad) : X86_MASKS;
    const root = this.newTable();
    if (root < 0) throw new Error("out of host memory for the TDP root");
    this.root = root;
    this.rootInfo = { table: root, level: levels };
    this.iter = new TableIter(physTables(mem), isShadowPresent);
  }

  rootFor(_pgd: number): MmuRoot {
    return this.rootInfo;
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
        // A huge leaf in the way is split into 512 like it (kvm_tdp_mmu_map() -> tdp_mmu_split_huge_page()).
        if (!this.splitHugePage(off, base, l)) return "nomem";
        table = entryPfn(this.mem.words[off]!, this.mem.words[off + 1]!);
        continue;
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
      this.zapSubtree(entryPfn(lo, hi), level - 1, base);
      this.setSpte(off, base, level, 0, 0);
      this.freeTable(entryPfn(lo, hi));
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

  /** kvm_tdp_mmu_unmap_gfn_range() (tdp_mmu_zap_leafs()): clears every leaf intersecting [start, end); tables stay. Returns how many. */
  unmapGfnRange(start: number, end: number): number {
    let n = 0;
    const it = this.iter;
    for (it.start(this.root, this.levels, start, end); it.valid; it.next()) {
      if (!it.leaf) continue;
      this.setSpte(it.view.off + 2 * it.index, it.base, it.level, 0, 0);
      n++;
    }
    return n;
  }

  /**
   * kvm_tdp_mmu_age_gfn_range(): test-and-clear the accessed state of leaves in [start, end).
   * Without A/D bits the leaf is marked for access tracking instead (RWX cleared, R/X saved).
   */
  age(start: number, end: number, clear: boolean): boolean {
    let young = false;
    const it = this.iter;
    for (it.start(this.root, this.levels, start, end); it.valid; it.next()) {
      if (!it.leaf) continue;
      const { lo, hi } = it;
      const off = it.view.off + 2 * it.index;
      if (this.ad) {
        if (!spteAccessed(this.masks, lo)) continue;
        young = true;
        if (clear) this.setSpte(off, it.base, it.level, clearAccessed(this.masks, lo), hi);
        continue;
      }
      if (isAccessTracked(this.masks, lo, hi)) continue;
      young = true;
      if (clear) {
        const [nlo, nhi] = markForAccessTrack(lo, hi);
        this.setSpte(off, it.base, it.level, nlo, nhi);
      }
    }
    return young;
  }

  /** Every present leaf: (gfn, level, pfn, lo, hi). For the checker and the visualizer. */
  forEachLeaf(fn: (gfn: number, level: number, pfn: number, lo: number, hi: number) => void): void {
    const it = new TableIter(physTables(this.mem), isShadowPresent);
    for (it.start(this.root, this.levels, 0, framesAtLevel(this.levels + 1)); it.valid; it.next()) {
      if (it.leaf) fn(it.base, it.level, sptePfn(this.masks, it.lo, it.hi, it.level), it.lo, it.hi);
    }
  }

  /** The shadow-page limit follows the memslots; TDP tables have none. */
  memslotPagesChanged(_pages: number): void {}

  /** kvm_tdp_mmu_zap_all(): zaps everything and frees every table but the root; with `freeRoot`, the root too. Returns the leaves zapped. */
  zapAll(freeRoot: boolean): number {
    const n = this.zapSubtree(this.root, this.levels, 0);
    if (freeRoot) this.freeTable(this.root);
    return n;
  }

  /** pages_4k/2m/1g (kept by setSpte()) count the present leaves. */
  checkInvariants(): string[] {
    const leaves = [0, 0, 0, 0];
    this.forEachLeaf((_gfn, level) => {
      leaves[Math.min(level, 3)]!++;
    });
    const s = this.stats;
    if (leaves[1] === s.pages_4k && leaves[2] === s.pages_2m && leaves[3] === s.pages_1g) return [];
    return [`pages_4k/2m/1g ${s.pages_4k}/${s.pages_2m}/${s.pages_1g}, the tables hold ${leaves.slice(1).join("/")} leaves`];
  }

  /**
   * __tdp_mmu_zap_root() of the subtree at `table` (a table at `level` covering gfns from
   * `base`), bottom-up: each child table is freed once its entries are gone and the entry
   * pointing at it is cleared (handle_removed_pt()). Returns the leaves zapped.
   */
  private zapSubtree(table: number, level: number, base: number): number {
    let n = 0;
    const it = this.iter;
    for (it.start(table, level, base, base + framesAtLevel(level + 1), 1, true); it.valid; it.next()) {
      if (!it.present) continue;
      this.setSpte(it.view.off + 2 * it.index, it.base, it.level, 0, 0);
      if (it.leaf) n++;
      else this.freeTable(entryPfn(it.lo, it.hi));
    }
    return n;
  }

  // ---------------------------------------------------------------- dirty logging and huge-page split (dirty_log.ts)

  /**
   * wrprot_gfn_range() (kvm_tdp_mmu_wrprot_slot()): clears W in every present leaf at `minLevel`
   * or above in [start, end), keeping MMU-writable so fast_page_fault() can restore it. Returns how many changed.
   */
  wrprotGfnRange(start: number, end: number, minLevel: number): number {
    let n = 0;
    const it = this.iter;
    const w = this.masks.writable;
    for (it.start(this.root, this.levels, start, end, minLevel); it.valid; it.next()) {
      if (!it.leaf || it.level < minLevel || (it.lo & w) === 0) continue;
      this.setSpte(it.view.off + 2 * it.index, it.base, it.level, (it.lo & ~w) >>> 0, it.hi);
      n++;
    }
    return n;
  }

  /**
   * clear_dirty_pt_masked() (kvm_tdp_mmu_clear_dirty_pt_masked()): for each set bit i of the
   * 32-bit `mask`, the 4 KiB leaf of gfn0 + i loses W (`wrprot`, or without A/D bits) or D.
   * Returns how many changed.
   */
  clearDirtyPtMasked(gfn0: number, mask: number, wrprot: boolean): number {
    if (mask === 0) return 0;
    const bit = wrprot || !this.ad ? this.masks.writable : this.masks.dirty;
    let n = 0;
    const it = this.iter;
    for (it.start(this.root, this.levels, gfn0 + (31 - Math.clz32(mask & -mask)), gfn0 + 32); it.valid; it.next()) {
      if (!it.leaf || it.level > 1 || (mask & (1 << (it.base - gfn0))) === 0 || (it.lo & bit) === 0) continue;
      this.setSpte(it.view.off + 2 * it.index, it.base, 1, (it.lo & ~bit) >>> 0, it.hi);
      n++;
    }
    return n;
  }

  /**
   * clear_dirty_gfn_range() (kvm_tdp_mmu_clear_dirty_slot()): every present leaf in [start, end)
   * loses D (W without A/D bits), so that the CPU logs the next write (PML). Returns how many changed.
   */
  clearDirtyGfnRange(start: number, end: number): number {
    const bit = this.ad ? this.masks.dirty : this.masks.writable;
    let n = 0;
    const it = this.iter;
    for (it.start(this.root, this.levels, start, end); it.valid; it.next()) {
      if (!it.leaf || (it.lo & bit) === 0) continue;
      this.setSpte(it.view.off + 2 * it.index, it.base, it.level, (it.lo & ~bit) >>> 0, it.hi);
      n++;
    }
    return n;
  }

  /**
   * tdp_mmu_split_huge_page(): the huge leaf at `off` (mapping from gfn `base` at `level`)
   * becomes a table of 512 leaves one level down with the same bits and frames
   * (make_huge_page_split_spte()); no flush, the translations are unchanged. False without memory.
   */
  splitHugePage(off: number, base: number, level: number): boolean {
    const lo = this.mem.words[off]!;
    const hi = this.mem.words[off + 1]!;
    const basePfn = sptePfn(this.masks, lo, hi, level);
    const child = this.newTable();
    if (child < 0) return false;
    const [nlo, nhi] = makeNonLeafSpte(this.masks, child);
    this.setSpte(off, base, level, 0, 0);
    this.setSpte(off, base, level, nlo, nhi);
    const frames = framesAtLevel(level - 1);
    const flagsLo = (level - 1 === 1 ? lo & ~this.masks.large & ~this.masks.hugePat : lo) & 0xfff;
    const flagsHi = hi & ~PTE_HI_FRAME_MASK;
    for (let i = 0; i < 512; i++) {
      const pfn = basePfn + i * frames;
      this.setSpte(this.offset(child, i), base + i * frames, level - 1, frameLo(pfn, flagsLo), frameHi(pfn, flagsHi));
    }
    if (this.bus.on) this.bus.emit("kvm.huge_split", { gfn: base, level });
    return true;
  }

  /**
   * tdp_mmu_split_huge_pages_root() (kvm_tdp_mmu_try_split_huge_pages() to 4 KiB): every huge
   * leaf overlapping [start, end) split down to 4 KiB leaves (for_each_tdp_pte_min_level() visits
   * each entry the range touches, so a 64-page clear splits the huge page around it). Returns the
   * huge leaves split, or -1 without memory.
   */
  splitHugePages(start: number, end: number): number {
    const found: number[] = [];
    const it = this.iter;
    for (it.start(this.root, this.levels, start, end, 2); it.valid; it.next()) {
      if (it.leaf && it.level > 1 && it.base < end && it.base + framesAtLevel(it.level) > start) {
        found.push(it.view.off + 2 * it.index, it.base, it.level);
      }
    }
    let n = 0;
    for (let i = 0; i < found.length; i += 3) {
      const r = this.splitDown(found[i]!, found[i + 1]!, found[i + 2]!, start, end);
      if (r < 0) return -1;
      n += r;
    }
    return n;
  }

  /** One huge leaf split, and those of its children in [start, end) if they are huge too (the pre-order walk's recursion). */
  private splitDown(off: number, base: number, level: number, start: number, end: number): number {
    if (!this.splitHugePage(off, base, level)) return -1;
    if (level - 1 === 1) return 1;
    const child = entryPfn(this.mem.words[off]!, this.mem.words[off + 1]!);
    const frames = framesAtLevel(level - 1);
    let n = 1;
    for (let i = 0; i < 512; i++) {
      const gfn = base + i * frames;
      if (gfn >= end || gfn + frames <= start) continue;
      const r = this.splitDown(this.offset(child, i), gfn, level - 1, start, end);
      if (r < 0) return -1;
      n += r;
    }
    return n;
  }

  /**
   * recover_huge_pages_range() (kvm_tdp_mmu_recover_huge_pages(), Linux 6.12+): each table at
   * 2 MiB or 1 GiB in [start, end) whose range `maxLevel` allows at that level is replaced by a
   * huge leaf made from its first present leaf (make_huge_spte()), the table freed. Returns how many.
   */
  recoverHugePages(start: number, end: number, maxLevel: (gfn: number) => number): number {
    const found: number[] = [];
    const it = this.iter;
    for (it.start(this.root, this.levels, start, end, 2); it.valid; it.next()) {
      if (!it.present || it.leaf || it.level > 3 || it.base < start || it.base + framesAtLevel(it.level) > end) continue;
      found.push(it.view.off + 2 * it.index, it.base, it.level);
    }
    let n = 0;
    let promotedEnd = -1;
    for (let i = 0; i < found.length; i += 3) {
      const off = found[i]!;
      const base = found[i + 1]!;
      const level = found[i + 2]!;
      if (base < promotedEnd || maxLevel(base) < level) continue;
      if (!this.firstLeafBelow(off, base, level)) continue;
      const pfn = sptePfn(this.masks, this.leafLo, this.leafHi, this.leafLevel) - (this.leafGfn - base);
      const flagsLo = (this.leafLo & 0xfff) | this.masks.large;
      const flagsHi = this.leafHi & ~PTE_HI_FRAME_MASK;
      const table = entryPfn(this.mem.words[off]!, this.mem.words[off + 1]!);
      this.zapSubtree(table, level - 1, base);
      this.setSpte(off, base, level, 0, 0);
      this.freeTable(table);
      this.setSpte(off, base, level, frameLo(pfn, flagsLo), frameHi(pfn, flagsHi));
      promotedEnd = base + framesAtLevel(level);
      n++;
    }
    return n;
  }

  /** The gfn of the leaf firstLeafBelow() found. */
  private leafGfn = 0;

  /** tdp_mmu_make_huge_spte()'s search: the first present leaf under the entry at `off` (into leaf*, leafGfn). */
  private firstLeafBelow(off: number, base: number, level: number): boolean {
    const lo = this.mem.words[off]!;
    const hi = this.mem.words[off + 1]!;
    if (!isShadowPresent(lo)) return false;
    if (isLastSpte(this.masks, lo, level)) {
      this.leafLo = lo;
      this.leafHi = hi;
      this.leafLevel = level;
      this.leafGfn = base;
      return true;
    }
    const table = entryPfn(lo, hi);
    const frames = framesAtLevel(level - 1);
    for (let i = 0; i < 512; i++) if (this.firstLeafBelow(this.offset(table, i), base + i * frames, level - 1)) return true;
    return false;
  }
}
