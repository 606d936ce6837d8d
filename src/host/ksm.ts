// SPDX-License-Identifier: MIT
// Kernel samepage merging (mm/ksm.c): ksmd walks the VM_MERGEABLE VMAs of the mms that asked
// (MADV_MERGEABLE), keeps an rmap_item per anon page it scanned, and merges equal pages into
// one write-protected KSM page (the stable tree), using the unstable tree of pages unchanged
// since the last scan to find pairs. Page content is the frame's content tag (hw/phys_mem.ts):
// equal tags are equal pages; calc_checksum() is a hash of the tag.
// The PTE changes (write_protect_page, replace_page) go through setEntry() inside
// invalidate_range_start/end (no change_pte: removed in Linux 6.10), so KVM drops its mapping.
// simplified: THP-mapped and swap-cached pages and guest page-table frames are not merged;
// KSM pages are taken off the LRU and never swapped (Linux swaps them via rmap_walk_ksm);
// no smart_scan (pages_skipped), no advisor, no merge_across_nodes; stable_node chains are a
// list of dups per content, each with at most max_page_sharing rmap_items.

import { PAGE_SIZE } from "../hw/addr.js";
import { counterList, readCounters } from "../hw/counters.js";
import { PTE_D, PTE_P, PTE_RW, entryPfn, frameHi, frameLo } from "../hw/x86_pte.js";
import type { HostKernel } from "./kernel.js";
import { KSM_STATS, newKsmStats } from "./ksm_stats.js";
import { handleMmFault } from "./memory.js";
import { type Mm, VM_MERGEABLE, type Vma } from "./mm_types.js";
import { freeFolio } from "./mmap.js";
import { invalidateRangeEnd, invalidateRangeStart } from "./mmu_notifier.js";
import { PG_anon, PG_dirty, PG_ksm, PG_lru, PG_swapcache } from "./page_flags.js";
import { PAGE_COPY_LO, PAGE_NX_HI, _PAGE_SPECIAL } from "./pgtable.js";

/** /sys/kernel/mm/ksm tunables. */
export interface KsmConfig {
  /** 0: ksmd stopped; 1: merging. */
  run: 0 | 1;
  pagesToScan: number;
  sleepMillisecs: number;
  useZeroPages: boolean;
  maxPageSharing: number;
}

export const KSM_DEFAULTS: KsmConfig = { run: 0, pagesToScan: 100, sleepMillisecs: 20, useZeroPages: false, maxPageSharing: 256 };

const UNSTABLE_FLAG = 1;
const STABLE_FLAG = 2;

/** struct ksm_rmap_item. */
class RmapItem {
  flags = 0;
  /** ksm_scan.seqnr when inserted in the unstable tree. */
  seqnr = 0;
  oldchecksum = 0;
  /** Unstable tree key (the content it was inserted with). */
  key = 0;
  head: StableNode | null = null;
  constructor(
    readonly mm: Mm,
    readonly address: number,
  ) {}
}

/** struct ksm_stable_node (a dup of its content's chain). */
class StableNode {
  readonly hlist: RmapItem[] = [];
  constructor(
    readonly kpfn: number,
    readonly content: number,
  ) {}
}

/** struct ksm_mm_slot: an mm that called MADV_MERGEABLE, with its rmap_items sorted by address. */
class MmSlot {
  items: RmapItem[] = [];
  constructor(readonly mm: Mm) {}
}

/** calc_checksum(): xxhash of the page; here a hash of its content tag. */
export function calcChecksum(content: number): number {
  return (Math.imul(content ^ 0x2545f491, 0x9e3779b1) ^ 0x6a09e667) >>> 0;
}

/** CPU clock that turns sleep_millisecs into the cost model's cycles (memvirt's own: 3 GHz). */
export const KSMD_HZ = 3e9;

export class Ksm {
  readonly cfg: KsmConfig;
  readonly stats = newKsmStats();
  /** Cycles at which ksmd next wakes (ksm_scan_thread's schedule_timeout). */
  nextWake = 0;
  private readonly slots: MmSlot[] = [];
  /** ksm_scan: slot index (-1: at ksm_mm_head), next address, next rmap_item index. */
  private slotIdx = -1;
  private address = 0;
  private itemIdx = 0;
  private seqnr = 0;
  private scanPfn = -1;
  private treePfn = -1;
  private rmapItems = 0;
  private readonly stable = new Map<number, StableNode[]>();
  private readonly nodeOfPfn = new Map<number, StableNode>();
  private readonly unstable = new Map<number, RmapItem>();
  private origLo = 0;
  private origHi = 0;

  constructor(
    private readonly k: HostKernel,
    cfg: Partial<KsmConfig> = {},
  ) {
    this.cfg = { ...KSM_DEFAULTS, ...cfg };
    if (!(this.cfg.pagesToScan >= 0) || !(this.cfg.sleepMillisecs >= 0) || !(this.cfg.maxPageSharing >= 2))
      throw new RangeError("ksm: pages_to_scan and sleep_millisecs must be >= 0, max_page_sharing >= 2");
  }

  /** /sys/kernel/mm/ksm: every counter by its name (pages_volatile as pages_volatile_show() derives it). */
  counters(): Record<string, number> {
    const s = this.stats;
    const pagesVolatile = this.rmapItems - s.pages_shared - s.pages_sharing - s.pages_unshared;
    return readCounters(KSM_COUNTER_LIST, { ...s, pages_volatile: Math.max(0, pagesVolatile), ksm_rmap_items: this.rmapItems });
  }

  /** ksm_madvise(MADV_MERGEABLE) -> __ksm_enter(): the mm joins the scan, just behind the cursor. */
  enter(mm: Mm): void {
    if (this.slots.some((s) => s.mm === mm)) return;
    if (this.slotIdx < 0) this.slots.push(new MmSlot(mm));
    else this.slots.splice(this.slotIdx++, 0, new MmSlot(mm));
  }

  /** ksm_scan_thread(): when the model clock passes the wakeup, one batch, then sleep. */
  tick(nowCycles: number): boolean {
    if (this.cfg.run !== 1 || nowCycles < this.nextWake) return false;
    this.doScan(this.cfg.pagesToScan);
    this.nextWake = nowCycles + (this.cfg.sleepMillisecs / 1000) * KSMD_HZ;
    return true;
  }

  /** ksm_do_scan(): up to n pages; stops early when a full scan completes. */
  doScan(n: number): void {
    for (let i = 0; i < n; i++) {
      const item = this.scanGetNextRmapItem();
      if (item === null) return;
      this.cmpAndMergePage(this.scanPfn, item);
      this.stats.pages_scanned++;
    }
  }

  /** Runs ksm_do_scan until `scans` more full scans have completed (tests, examples). */
  runFullScans(scans: number): void {
    const goal = this.stats.full_scans + scans;
    while (this.stats.full_scans < goal && this.slots.length > 0) this.doScan(Math.max(1, this.cfg.pagesToScan));
  }

  // ---- the scan cursor ---------------------------------------------------------------------

  /** scan_get_next_rmap_item(): the next anon page of a mergeable VMA (its pfn in scanPfn), or null after a full scan. */
  private scanGetNextRmapItem(): RmapItem | null {
    if (this.slots.length === 0) return null;
    if (this.slotIdx < 0) {
      this.unstable.clear(); // root_unstable_tree = RB_ROOT at the start of a pass
      this.slotIdx = 0;
      this.address = 0;
      this.itemIdx = 0;
    }
    while (this.slotIdx < this.slots.length) {
      const slot = this.slots[this.slotIdx]!;
      if (!slot.mm.dead) {
        for (const vma of slot.mm.vmas) {
          const item = this.scanVma(slot, vma);
          if (item !== null) return item;
        }
      }
      this.removeTrailingRmapItems(slot);
      if (slot.mm.dead) this.slots.splice(this.slotIdx, 1);
      else this.slotIdx++;
      this.address = 0;
      this.itemIdx = 0;
    }
    this.slotIdx = -1;
    this.seqnr++;
    this.stats.full_scans++;
    return null;
  }

  private scanVma(slot: MmSlot, vma: Vma): RmapItem | null {
    if ((vma.flags & VM_MERGEABLE) === 0 || vma.hugetlbShift !== 0 || vma.end <= this.address) return null;
    if (this.address < vma.start) this.address = vma.start;
    const k = this.k;
    while (this.address < vma.end) {
      const addr = this.address;
      k.walk(slot.mm, addr);
      if (k.wLevel > 1) {
        const size = k.wLevel === 2 ? 512 * PAGE_SIZE : 512 * 512 * PAGE_SIZE; // none, or a THP: skipped
        this.address = addr - (addr % size) + size;
        continue;
      }
      this.address = addr + PAGE_SIZE;
      const pfn = this.mergeablePfn(k.wLo, k.wHi);
      if (pfn < 0) continue;
      this.scanPfn = pfn;
      return this.getNextRmapItem(slot, addr);
    }
    return null;
  }

  /** follow_page() + PageAnon(): the anon page a PTE maps, or -1 (none, swap, zero page, a table frame). */
  private mergeablePfn(lo: number, hi: number): number {
    if ((lo & PTE_P) === 0 || (lo & _PAGE_SPECIAL) !== 0) return -1;
    const pfn = entryPfn(lo, hi);
    const k = this.k;
    if (pfn === k.zeroPfn || (k.meta.flags[pfn]! & PG_anon) === 0 || k.mem.isTable(pfn)) return -1;
    return pfn;
  }

  /** get_next_rmap_item(): the slot's item for addr; items of addresses passed over are freed. */
  private getNextRmapItem(slot: MmSlot, addr: number): RmapItem {
    const items = slot.items;
    while (this.itemIdx < items.length) {
      const it = items[this.itemIdx]!;
      if (it.address === addr) {
        this.itemIdx++;
        return it;
      }
      if (it.address > addr) break;
      items.splice(this.itemIdx, 1);
      this.freeRmapItem(it);
    }
    const it = new RmapItem(slot.mm, addr);
    items.splice(this.itemIdx++, 0, it);
    this.rmapItems++;
    return it;
  }

  /** remove_trailing_rmap_items(). */
  private removeTrailingRmapItems(slot: MmSlot): void {
    for (let i = this.itemIdx; i < slot.items.length; i++) this.freeRmapItem(slot.items[i]!);
    slot.items.length = this.itemIdx;
  }

  private freeRmapItem(it: RmapItem): void {
    this.removeRmapItemFromTree(it);
    this.rmapItems--;
  }

  // ---- trees ---------------------------------------------------------------------------------

  /** remove_rmap_item_from_tree(). */
  private removeRmapItemFromTree(it: RmapItem): void {
    if (it.flags === STABLE_FLAG) {
      const node = it.head!;
      if (this.ksmGetFolio(node) < 0) return; // stale: remove_node_from_stable_tree() reset it
      node.hlist.splice(node.hlist.indexOf(it), 1);
      if (node.hlist.length > 0) this.stats.pages_sharing--;
      else this.stats.pages_shared--;
      it.head = null;
    } else if (it.flags === UNSTABLE_FLAG) {
      if (it.seqnr === this.seqnr && this.unstable.get(it.key) === it) this.unstable.delete(it.key);
      this.stats.pages_unshared--;
    }
    it.flags = 0;
  }

  /** ksm_get_folio(): the node's KSM page, or -1 when it is stale (then the node is removed). */
  private ksmGetFolio(node: StableNode): number {
    const kpfn = node.kpfn;
    if (this.nodeOfPfn.get(kpfn) === node && (this.k.meta.flags[kpfn]! & PG_ksm) !== 0) return kpfn;
    this.removeNodeFromStableTree(node);
    return -1;
  }

  /** remove_node_from_stable_tree(). */
  private removeNodeFromStableTree(node: StableNode): void {
    const n = node.hlist.length;
    for (let i = 0; i < n; i++) {
      const it = node.hlist[i]!;
      if (i < n - 1) this.stats.pages_sharing--;
      else this.stats.pages_shared--;
      it.flags = 0;
      it.head = null;
    }
    node.hlist.length = 0;
    const dups = this.stable.get(node.content);
    if (dups !== undefined) {
      const i = dups.indexOf(node);
      if (i >= 0) dups.splice(i, 1);
      if (dups.length === 0) this.stable.delete(node.content);
    }
    if (this.nodeOfPfn.get(node.kpfn) === node) this.nodeOfPfn.delete(node.kpfn);
  }

  /** stable_tree_search(): a KSM page with this content and room for a sharer (stable_node_dup()), or -1. */
  private stableTreeSearch(pfn: number): number {
    if ((this.k.meta.flags[pfn]! & PG_ksm) !== 0 && this.nodeOfPfn.has(pfn)) return pfn; // "ksm page forked"
    const dups = this.stable.get(this.k.mem.content[pfn]!);
    if (dups === undefined) return -1;
    let best: StableNode | null = null;
    for (const node of [...dups]) {
      if (this.ksmGetFolio(node) < 0) continue;
      const len = node.hlist.length;
      if (len < this.cfg.maxPageSharing && (best === null || len > best.hlist.length)) best = node;
    }
    return best === null ? -1 : best.kpfn;
  }

  /** stable_tree_insert(): a new KSM page (a new dup of its content's chain). */
  private stableTreeInsert(kpfn: number): StableNode {
    const content = this.k.mem.content[kpfn]!;
    const node = new StableNode(kpfn, content);
    const dups = this.stable.get(content);
    if (dups === undefined) this.stable.set(content, [node]);
    else dups.push(node);
    this.nodeOfPfn.set(kpfn, node);
    return node;
  }

  /** stable_tree_append(): the first rmap_item of a node counts in pages_shared, the others in pages_sharing. */
  private stableTreeAppend(it: RmapItem, node: StableNode): void {
    it.head = node;
    it.flags = STABLE_FLAG;
    node.hlist.push(it);
    if (node.hlist.length > 1) this.stats.pages_sharing++;
    else this.stats.pages_shared++;
  }

  /** unstable_tree_search_insert(): a tree item whose page equals pfn's (its pfn in treePfn), or insert and return null. */
  private unstableTreeSearchInsert(it: RmapItem, pfn: number): RmapItem | null {
    const content = this.k.mem.content[pfn]!;
    const tree = this.unstable.get(content);
    if (tree !== undefined) {
      const tp = this.getMergeablePage(tree);
      if (tp === pfn) return null;
      if (tp >= 0 && this.k.mem.content[tp] === content && (this.k.meta.flags[tp]! & PG_ksm) === 0) {
        this.treePfn = tp;
        return tree;
      }
    }
    it.flags = UNSTABLE_FLAG;
    it.seqnr = this.seqnr;
    it.key = content;
    this.unstable.set(content, it);
    this.stats.pages_unshared++;
    return null;
  }

  /** get_mergeable_page(): the anon page at the item's address now, or -1. */
  private getMergeablePage(it: RmapItem): number {
    if (findMergeableVma(it.mm, it.address) === null) return -1;
    this.k.walk(it.mm, it.address);
    return this.k.wLevel === 1 ? this.mergeablePfn(this.k.wLo, this.k.wHi) : -1;
  }

  // ---- merging -------------------------------------------------------------------------------

  /** cmp_and_merge_page(). */
  private cmpAndMergePage(pfn: number, it: RmapItem): void {
    const k = this.k;
    const node = (k.meta.flags[pfn]! & PG_ksm) !== 0 ? (this.nodeOfPfn.get(pfn) ?? null) : null;
    if (node !== null) {
      if (it.head === node) return;
    } else {
      this.removeRmapItemFromTree(it);
      const checksum = calcChecksum(k.mem.content[pfn]!);
      if (it.oldchecksum !== checksum) {
        it.oldchecksum = checksum; // volatile: changed since the last scan
        return;
      }
      if (this.tryToMergeWithZeroPage(it, pfn)) return;
    }
    const kpfn = this.stableTreeSearch(pfn);
    if (kpfn === pfn && node !== null && it.head === node) return;
    this.removeRmapItemFromTree(it);
    if (kpfn >= 0) {
      if (this.tryToMergeWithKsmPage(it, pfn, kpfn)) this.stableTreeAppend(it, this.nodeOfPfn.get(kpfn)!);
      return;
    }
    const tree = this.unstableTreeSearchInsert(it, pfn);
    if (tree === null) return;
    // try_to_merge_two_pages(): the scanned page becomes the KSM page, the tree page is replaced.
    if (!this.tryToMergeWithKsmPage(it, pfn, -1)) return;
    if (!this.tryToMergeWithKsmPage(tree, this.treePfn, pfn)) {
      this.breakKsm(it.mm, it.address);
      return;
    }
    const stable = this.stableTreeInsert(pfn);
    this.stableTreeAppend(tree, stable);
    this.stableTreeAppend(it, stable);
  }

  /** try_to_merge_with_zero_page(): true if merged (use_zero_pages and the page is all zeros). */
  private tryToMergeWithZeroPage(it: RmapItem, pfn: number): boolean {
    if (!this.cfg.useZeroPages || it.oldchecksum !== calcChecksum(0)) return false;
    if (findMergeableVma(it.mm, it.address) === null) return true;
    return this.tryToMergeOnePage(it.mm, it.address, pfn, this.k.zeroPfn);
  }

  /** try_to_merge_with_ksm_page(): kpfn -1 makes pfn a KSM page itself. */
  private tryToMergeWithKsmPage(it: RmapItem, pfn: number, kpfn: number): boolean {
    if (findMergeableVma(it.mm, it.address) === null) return false;
    if (!this.tryToMergeOnePage(it.mm, it.address, pfn, kpfn)) return false;
    this.removeRmapItemFromTree(it); // unstable tree unlink
    return true;
  }

  /** try_to_merge_one_page(). */
  private tryToMergeOnePage(mm: Mm, addr: number, pfn: number, kpfn: number): boolean {
    if (pfn === kpfn) return true;
    const k = this.k;
    const m = k.meta;
    if ((m.flags[pfn]! & PG_anon) === 0 || (m.flags[pfn]! & PG_swapcache) !== 0) return false;
    if (!this.writeProtectPage(mm, addr, pfn)) return false;
    if (kpfn < 0) {
      // set_page_stable_node(page, NULL): it is a KSM page now (simplified: off the LRU).
      if ((m.flags[pfn]! & PG_lru) !== 0) k.lru.del(pfn);
      m.flags[pfn] = m.flags[pfn]! | PG_ksm | PG_dirty;
      return true;
    }
    const same = kpfn === k.zeroPfn ? k.mem.content[pfn] === 0 : k.mem.content[pfn] === k.mem.content[kpfn];
    return same && this.replacePage(mm, addr, pfn, kpfn);
  }

  /** write_protect_page(): inside invalidate_range_start/end, the PTE made read-only and clean. */
  private writeProtectPage(mm: Mm, addr: number, pfn: number): boolean {
    const k = this.k;
    const range = { mm, start: addr, end: addr + PAGE_SIZE, event: "clear" as const };
    invalidateRangeStart(k.bus, mm.notifiers, range);
    k.walk(mm, addr);
    const ok = k.wLevel === 1 && (k.wLo & PTE_P) !== 0 && entryPfn(k.wLo, k.wHi) === pfn;
    if (ok) {
      let lo = k.wLo;
      if ((lo & (PTE_RW | PTE_D)) !== 0) {
        if ((lo & PTE_D) !== 0) k.meta.flags[pfn] = k.meta.flags[pfn]! | PG_dirty;
        lo = (lo & ~(PTE_RW | PTE_D)) >>> 0; // ptep_clear_flush + set_pte_at(pte_wrprotect(pte_mkclean)) as one write
        k.setEntry(mm, k.wTable, k.wIdx, 1, addr, lo, k.wHi);
      }
      this.origLo = lo;
      this.origHi = k.wHi;
    }
    invalidateRangeEnd(k.bus, mm.notifiers, range);
    return ok;
  }

  /** replace_page(): the PTE repointed at the KSM page (or the zero page, dirty+special), the old page freed. */
  private replacePage(mm: Mm, addr: number, pfn: number, kpfn: number): boolean {
    const k = this.k;
    const range = { mm, start: addr, end: addr + PAGE_SIZE, event: "clear" as const };
    invalidateRangeStart(k.bus, mm.notifiers, range);
    k.walk(mm, addr);
    const ok = k.wLevel === 1 && k.wLo === this.origLo && k.wHi === this.origHi;
    if (ok) {
      const table = k.wTable;
      const idx = k.wIdx;
      k.setEntry(mm, table, idx, 1, addr, 0, 0); // ptep_clear_flush
      if (kpfn === k.zeroPfn) {
        k.setEntry(mm, table, idx, 1, addr, frameLo(kpfn, PAGE_COPY_LO | _PAGE_SPECIAL | PTE_D), frameHi(kpfn, PAGE_NX_HI));
        this.stats.ksm_zero_pages++; // ksm_map_zero_page()
      } else {
        k.setEntry(mm, table, idx, 1, addr, frameLo(kpfn, PAGE_COPY_LO), frameHi(kpfn, PAGE_NX_HI));
      }
      if (k.meta.mapcount[pfn] === 0) freeFolio(k, pfn); // folio_put() of the replaced page
      this.stats.ksm_merges++;
    }
    invalidateRangeEnd(k.bus, mm.notifiers, range);
    return ok;
  }

  /** break_ksm(): a write fault on a KSM page (or KSM zero page) at addr copies it for this mm. */
  breakKsm(mm: Mm, addr: number): void {
    const k = this.k;
    k.walk(mm, addr);
    if (k.wLevel !== 1 || (k.wLo & PTE_P) === 0) return;
    const pfn = entryPfn(k.wLo, k.wHi);
    const ksmZero = pfn === k.zeroPfn && (k.wLo & PTE_D) !== 0;
    if (ksmZero || (pfn !== k.zeroPfn && (k.meta.flags[pfn]! & PG_ksm) !== 0)) handleMmFault(k, mm, addr, true);
  }

  /** unmerge_ksm_pages() over [start, end) (MADV_UNMERGEABLE). */
  unmerge(mm: Mm, start: number, end: number): void {
    for (let a = start; a < end; a += PAGE_SIZE) this.breakKsm(mm, a);
  }

  /** After wp_page_copy() replaced `old` (mapped by `oldLo`): a KSM COW break counted, an unmapped KSM page freed. */
  wpCopied(old: number, oldLo: number): void {
    const k = this.k;
    if (old === k.zeroPfn) {
      if ((oldLo & PTE_D) !== 0) this.stats.ksm_cow_breaks++;
      return;
    }
    if ((k.meta.flags[old]! & PG_ksm) === 0) return;
    this.stats.ksm_cow_breaks++;
    if (k.meta.mapcount[old] === 0) freeFolio(k, old);
  }
}

const KSM_COUNTER_LIST = counterList(KSM_STATS);

/** find_mergeable_vma(). */
function findMergeableVma(mm: Mm, addr: number): Vma | null {
  if (mm.dead) return null;
  const v = mm.findVma(addr);
  return v !== undefined && (v.flags & VM_MERGEABLE) !== 0 ? v : null;
}
