// SPDX-License-Identifier: MIT
// Page reclaim (mm/vmscan.c), classic two-list LRU: shrink_node -> shrink_lruvec ->
// shrink_active_list / shrink_inactive_list -> shrink_folio_list, driven by kswapd
// (balance_pgdat) or by direct reclaim (try_to_free_pages).
//
// simplified: get_scan_count() scans every evictable list by size >> priority (no
// swappiness/cost weighting; anon is skipped when swap has no free slot); once a pass has
// reclaimed its target, shrink_lruvec() stops instead of scaling down the other type.
// simplified: large folios are always split before swap-out (as without CONFIG_THP_SWAP).
// MGLRU is not modelled.

import { intSqrt } from "./buddy.js";
import { splitFolioForReclaim } from "./huge_memory.js";
import type { HostKernel } from "./kernel.js";
import { LRU_ACTIVE_ANON, LRU_ACTIVE_FILE, LRU_INACTIVE_ANON, LRU_INACTIVE_FILE, LRU_NAMES } from "./lru.js";
import { MAX_RECLAIM_RETRIES, freePages, zoneWatermarkOk } from "./page_alloc.js";
import { PG_active, PG_anon, PG_dirty, PG_referenced, PG_swapbacked, PG_swapcache, PG_workingset } from "./page_flags.js";
import { folioReferenced, tryToUnmap } from "./rmap.js";
import { addToSwap, deleteFromSwapCache, folioFreeSwap, swapWritepage, workingsetEviction } from "./swap_state.js";

/** SWAP_CLUSTER_MAX: reclaim batch size. */
export const SWAP_CLUSTER_MAX = 32;
/** DEF_PRIORITY: the first pass scans lru_size >> 12. */
export const DEF_PRIORITY = 12;

const FOLIOREF_RECLAIM = 0;
const FOLIOREF_RECLAIM_CLEAN = 1;
const FOLIOREF_KEEP = 2;
const FOLIOREF_ACTIVATE = 3;
const FOLIOREF_NAMES = ["reclaim", "reclaim_clean", "keep", "activate"];

export type Reclaimer = "kswapd" | "direct" | "madvise";

/** struct scan_control, plus the state of one shrink_lruvec() pass (so kswapd can run it a batch at a time). */
export class ScanControl {
  nrToReclaim = SWAP_CLUSTER_MAX;
  nrReclaimed = 0;
  nrScanned = 0;
  priority = DEF_PRIORITY;
  order = 0;
  mayDeactivateAnon = false;
  mayDeactivateFile = false;
  forceDeactivate = false;
  skippedDeactivate = false;
  /** reclaim_pages() from MADV_PAGEOUT skips folio_check_references(). */
  ignoreReferences = false;
  /** Remaining scan targets of the current shrink_lruvec() pass, per LRU list. */
  readonly nr = new Float64Array(4);
  passReclaimed = 0;
  proportional = false;
  /** The isolated folios being worked on (a THP split adds its 511 tails). */
  readonly batch = new Int32Array(1024);
  n = 0;

  constructor(readonly who: Reclaimer) {}
}

/** can_reclaim_anon_pages(): anon can only go somewhere if swap has a free slot. */
export function canReclaimAnon(k: HostKernel): boolean {
  return k.swap !== null && k.swap.nrSwapPages > 0;
}

/** inactive_is_low(): inactive * int_sqrt(10 * GiB of the pair) < active (ratio 1 below 1 GiB). */
export function inactiveIsLow(k: HostKernel, inactiveLru: number): boolean {
  const inactive = k.lru.nrPages[inactiveLru]!;
  const active = k.lru.nrPages[inactiveLru + 1]!;
  const gb = Math.floor((inactive + active) / 262144);
  const ratio = gb > 0 ? intSqrt(10 * gb) : 1;
  return inactive * ratio < active;
}

/** isolate_lru_folios(): up to nrToScan pages' worth of folios from the tail of `lru`. Returns pages scanned. */
function isolateLruFolios(k: HostKernel, sc: ScanControl, lru: number, nrToScan: number): number {
  let scan = 0;
  sc.n = 0;
  while (scan < nrToScan) {
    const pfn = k.lru.tail(lru);
    if (pfn < 0) break;
    k.lru.del(pfn);
    sc.batch[sc.n++] = pfn;
    scan += k.meta.nrPages(pfn);
  }
  return scan;
}

/** folio_check_references(). */
function folioCheckReferences(k: HostKernel, pfn: number): number {
  const m = k.meta;
  const referencedPtes = folioReferenced(k, pfn);
  const f = m.flags[pfn]!;
  const referencedFolio = (f & PG_referenced) !== 0;
  m.flags[pfn] = f & ~PG_referenced;
  let ref: number;
  if (referencedPtes > 0) {
    m.flags[pfn] = m.flags[pfn]! | PG_referenced;
    ref = referencedFolio || referencedPtes > 1 ? FOLIOREF_ACTIVATE : FOLIOREF_KEEP;
  } else if (referencedFolio && (f & PG_swapbacked) === 0) {
    ref = FOLIOREF_RECLAIM_CLEAN;
  } else {
    ref = FOLIOREF_RECLAIM;
  }
  if (k.bus.on) {
    k.bus.emit("host.folio_references", {
      pfn,
      referenced_ptes: referencedPtes,
      referenced: referencedFolio ? 1 : 0,
      decision: FOLIOREF_NAMES[ref]!,
    });
  }
  return ref;
}

/** activate_locked: back on the active list (freeing the swap copy if swap is half full). */
function activateLocked(k: HostKernel, pfn: number): void {
  const m = k.meta;
  if ((m.flags[pfn]! & PG_swapcache) !== 0 && k.swap!.full50) folioFreeSwap(k, pfn);
  m.flags[pfn] = m.flags[pfn]! | PG_active;
  const nr = m.nrPages(pfn);
  k.stat.pgactivate += nr;
  k.nonresidentAge += nr; // move_folios_to_lru(): workingset_age_nonresident() for active folios
  k.lru.add(pfn);
  if (k.bus.on) k.bus.emit("host.activate", { pfn, nr, why: "reclaim" });
}

/**
 * shrink_folio_list(): for each isolated folio, check references, add to swap, unmap,
 * write out, and free; survivors go back to the LRU (kept or activated). Returns pages reclaimed.
 */
export function shrinkFolioList(k: HostKernel, sc: ScanControl): number {
  const m = k.meta;
  let reclaimed = 0;
  for (let i = 0; i < sc.n; i++) {
    const pfn = sc.batch[i]!;
    let nr = m.nrPages(pfn);
    sc.nrScanned += nr;
    if (!sc.ignoreReferences) {
      const ref = folioCheckReferences(k, pfn);
      if (ref === FOLIOREF_ACTIVATE) {
        activateLocked(k, pfn);
        continue;
      }
      if (ref === FOLIOREF_KEEP) {
        k.lru.add(pfn);
        continue;
      }
    }
    if (nr > 1) {
      // split_folio_to_list(): the tails join this list; count them once.
      sc.n = splitFolioForReclaim(k, pfn, sc.batch, sc.n);
      sc.nrScanned -= nr - 1;
      nr = 1;
    }
    let f = m.flags[pfn]!;
    if ((f & PG_anon) !== 0 && (f & PG_swapbacked) !== 0 && (f & PG_swapcache) === 0) {
      if (!addToSwap(k, pfn)) {
        activateLocked(k, pfn);
        continue;
      }
    }
    if (m.mapcount[pfn]! > 0 && !tryToUnmap(k, pfn)) {
      activateLocked(k, pfn);
      continue;
    }
    f = m.flags[pfn]!;
    if ((f & PG_dirty) !== 0 && (f & PG_swapbacked) !== 0) swapWritepage(k, pfn); // pageout()
    if ((f & PG_swapbacked) === 0) {
      k.stat.pglazyfreed += nr;
    } else if ((m.flags[pfn]! & PG_swapcache) !== 0) {
      // __remove_mapping(): leave a shadow entry for workingset detection.
      deleteFromSwapCache(k, pfn, workingsetEviction(k, pfn));
    }
    m.flags[pfn] = 0;
    freePages(k, pfn, 0);
    reclaimed += nr;
  }
  sc.n = 0;
  return reclaimed;
}

/** shrink_inactive_list(). */
function shrinkInactiveList(k: HostKernel, sc: ScanControl, lru: number, nrToScan: number): number {
  const scanned = isolateLruFolios(k, sc, lru, nrToScan);
  if (sc.who === "kswapd") k.stat.pgscan_kswapd += scanned;
  else if (sc.who === "direct") k.stat.pgscan_direct += scanned;
  if (sc.n === 0) return 0;
  const isolated = sc.n;
  const reclaimed = shrinkFolioList(k, sc);
  if (sc.who === "kswapd") k.stat.pgsteal_kswapd += reclaimed;
  else if (sc.who === "direct") k.stat.pgsteal_direct += reclaimed;
  if (k.bus.on) {
    k.bus.emit("host.lru_scan", { lru: LRU_NAMES[lru]!, by: sc.who, scanned, isolated, reclaimed, priority: sc.priority });
  }
  return reclaimed;
}

/** shrink_active_list(): every anon folio scanned is deactivated (after folio_referenced() clears its young bits). */
function shrinkActiveList(k: HostKernel, sc: ScanControl, lru: number, nrToScan: number): void {
  const m = k.meta;
  const scanned = isolateLruFolios(k, sc, lru, nrToScan);
  k.stat.pgrefill += scanned;
  let deactivated = 0;
  for (let i = 0; i < sc.n; i++) {
    const pfn = sc.batch[i]!;
    if (m.mapcount[pfn]! > 0) folioReferenced(k, pfn);
    m.flags[pfn] = (m.flags[pfn]! & ~PG_active) | PG_workingset;
    k.lru.add(pfn);
    deactivated += m.nrPages(pfn);
  }
  sc.n = 0;
  k.stat.pgdeactivate += deactivated;
  if (k.bus.on && scanned > 0)
    k.bus.emit("host.lru_scan", { lru: LRU_NAMES[lru]!, by: sc.who, scanned, deactivated, priority: sc.priority });
}

/** shrink_list(). */
function shrinkList(k: HostKernel, sc: ScanControl, lru: number, nrToScan: number): number {
  if (lru === LRU_ACTIVE_ANON || lru === LRU_ACTIVE_FILE) {
    if (lru === LRU_ACTIVE_ANON ? sc.mayDeactivateAnon : sc.mayDeactivateFile) shrinkActiveList(k, sc, lru, nrToScan);
    else sc.skippedDeactivate = true;
    return 0;
  }
  return shrinkInactiveList(k, sc, lru, nrToScan);
}

/** prepare_scan_count(): may the active lists be deactivated in this round? */
function prepareScanCount(k: HostKernel, sc: ScanControl): void {
  const refaulting = k.stat.workingset_activate_anon !== k.refaultsSnapshot;
  sc.mayDeactivateAnon = sc.forceDeactivate || refaulting || inactiveIsLow(k, LRU_INACTIVE_ANON);
  sc.mayDeactivateFile = sc.forceDeactivate || inactiveIsLow(k, LRU_INACTIVE_FILE);
}

/** get_scan_count() (simplified, see the file header) + the start of shrink_lruvec(). */
function beginLruvec(k: HostKernel, sc: ScanControl): void {
  const anonOk = canReclaimAnon(k);
  const div = 2 ** sc.priority;
  for (let lru = 0; lru < 4; lru++) {
    const anon = lru === LRU_INACTIVE_ANON || lru === LRU_ACTIVE_ANON;
    sc.nr[lru] = anon && !anonOk ? 0 : Math.floor(k.lru.nrPages[lru]! / div);
  }
  sc.passReclaimed = 0;
  sc.proportional = sc.who === "direct" && sc.priority === DEF_PRIORITY;
}

function lruvecPending(sc: ScanControl): boolean {
  return sc.nr[LRU_INACTIVE_ANON]! > 0 || sc.nr[LRU_ACTIVE_FILE]! > 0 || sc.nr[LRU_INACTIVE_FILE]! > 0;
}

/** One iteration of shrink_lruvec()'s loop: up to SWAP_CLUSTER_MAX from each list with a target. False when the pass is over. */
function stepLruvec(k: HostKernel, sc: ScanControl): boolean {
  if (!lruvecPending(sc)) return false;
  for (let lru = 0; lru < 4; lru++) {
    const left = sc.nr[lru]!;
    if (left <= 0) continue;
    const toScan = Math.min(left, SWAP_CLUSTER_MAX);
    sc.nr[lru] = left - toScan;
    const r = shrinkList(k, sc, lru, toScan);
    sc.passReclaimed += r;
    sc.nrReclaimed += r;
  }
  if (sc.passReclaimed >= sc.nrToReclaim && !sc.proportional) sc.nr.fill(0);
  return lruvecPending(sc);
}

/** The end of shrink_lruvec(): rebalance active/inactive anon. */
function finishLruvec(k: HostKernel, sc: ScanControl): void {
  if (canReclaimAnon(k) && inactiveIsLow(k, LRU_INACTIVE_ANON)) shrinkActiveList(k, sc, LRU_ACTIVE_ANON, SWAP_CLUSTER_MAX);
}

/** shrink_node() for one pass at sc.priority. */
function shrinkNode(k: HostKernel, sc: ScanControl): void {
  const before = sc.nrReclaimed;
  prepareScanCount(k, sc);
  beginLruvec(k, sc);
  while (stepLruvec(k, sc));
  finishLruvec(k, sc);
  if (sc.nrReclaimed > before) k.kswapd.failures = 0;
}

/** try_to_free_pages() -> do_try_to_free_pages(): direct reclaim of SWAP_CLUSTER_MAX pages, priority 12 down to 0. */
export function tryToFreePages(k: HostKernel, order: number): number {
  const sc = new ScanControl("direct");
  sc.order = order;
  for (;;) {
    do {
      sc.nrScanned = 0;
      shrinkNode(k, sc);
      if (sc.nrReclaimed >= sc.nrToReclaim) break;
    } while (--sc.priority >= 0);
    if (sc.nrReclaimed > 0 || !sc.skippedDeactivate) break;
    // Nothing reclaimed but the active lists were spared: retry forcing deactivation.
    sc.priority = DEF_PRIORITY;
    sc.forceDeactivate = true;
    sc.skippedDeactivate = false;
  }
  k.refaultsSnapshot = k.stat.workingset_activate_anon;
  return sc.nrReclaimed;
}

/** reclaim_pages() for MADV_PAGEOUT: the given isolated folios go through shrink_folio_list() ignoring references. */
export function reclaimPages(k: HostKernel, pfns: readonly number[]): number {
  const sc = new ScanControl("madvise");
  sc.ignoreReferences = true;
  let reclaimed = 0;
  for (let i = 0; i < pfns.length; ) {
    sc.n = 0;
    let pages = 0;
    while (i < pfns.length && pages < SWAP_CLUSTER_MAX) {
      const pfn = pfns[i++]!;
      sc.batch[sc.n++] = pfn;
      pages += k.meta.nrPages(pfn);
    }
    reclaimed += shrinkFolioList(k, sc);
  }
  return reclaimed;
}

/**
 * kswapd (mm/vmscan.c kswapd() / balance_pgdat()) as an agent: wakeup() when free memory
 * falls below the low watermark, step() does one batch, and it sleeps once free memory is
 * above the high watermark (or after MAX_RECLAIM_RETRIES fruitless rounds).
 */
export class Kswapd {
  running = false;
  /** pgdat->kswapd_failures: rounds that reclaimed nothing. */
  failures = 0;
  private order = 0;
  private sc: ScanControl | null = null;
  private inPass = false;
  private passStart = 0;
  private stepping = false;

  constructor(private readonly k: HostKernel) {}

  /** pgdat_balanced(): free memory above the high watermark for this order. */
  balanced(order = this.order): boolean {
    return zoneWatermarkOk(this.k, order, this.k.wmark.high);
  }

  /** wakeup_kswapd(). In "sync" mode kswapd then runs to completion before returning. */
  wakeup(order = 0): void {
    const k = this.k;
    if (this.running) {
      this.order = Math.max(this.order, order);
      return;
    }
    if (this.failures >= MAX_RECLAIM_RETRIES || this.balanced(order)) return;
    this.running = true;
    this.order = order;
    if (k.bus.on) k.bus.emit("host.kswapd_wake", { order, free: k.buddy.nrFree, low: k.wmark.low, high: k.wmark.high });
    this.startRound();
    if (k.cfg.kswapd === "sync" && !this.stepping) {
      this.stepping = true;
      try {
        while (this.step());
      } finally {
        this.stepping = false;
      }
    }
  }

  /** balance_pgdat() entry. */
  private startRound(): void {
    this.k.stat.pageoutrun++;
    this.sc = new ScanControl("kswapd");
    this.sc.order = this.order;
    this.inPass = false;
  }

  private sleep(): void {
    const k = this.k;
    this.running = false;
    this.sc = null;
    this.inPass = false;
    k.refaultsSnapshot = k.stat.workingset_activate_anon;
    if (k.bus.on) k.bus.emit("host.kswapd_sleep", { free: k.buddy.nrFree, high: k.wmark.high, failures: this.failures });
  }

  /** One batch of balance_pgdat(); false once kswapd sleeps. Its I/O is not charged to the faulting task. */
  step(): boolean {
    if (!this.running) return false;
    const saved = this.k.lastFaultCycles;
    try {
      return this.balanceStep();
    } finally {
      this.k.lastFaultCycles = saved;
    }
  }

  private balanceStep(): boolean {
    const k = this.k;
    let sc = this.sc!;
    if (!this.inPass) {
      if (this.balanced()) {
        this.sleep();
        return false;
      }
      if (sc.priority < 1) {
        // The round is over: count a failure if it reclaimed nothing, then go again or give up.
        if (sc.nrReclaimed === 0) this.failures++;
        if (this.failures >= MAX_RECLAIM_RETRIES) {
          this.sleep();
          return false;
        }
        k.refaultsSnapshot = k.stat.workingset_activate_anon;
        this.startRound();
        sc = this.sc!;
      }
      // kswapd_age_node()
      if (canReclaimAnon(k) && inactiveIsLow(k, LRU_INACTIVE_ANON)) shrinkActiveList(k, sc, LRU_ACTIVE_ANON, SWAP_CLUSTER_MAX);
      // kswapd_shrink_node(): target the high watermark.
      sc.nrToReclaim = Math.max(k.wmark.high, SWAP_CLUSTER_MAX);
      sc.nrScanned = 0;
      this.passStart = sc.nrReclaimed;
      prepareScanCount(k, sc);
      beginLruvec(k, sc);
      this.inPass = true;
      return true;
    }
    if (stepLruvec(k, sc)) return true;
    finishLruvec(k, sc);
    const reclaimed = sc.nrReclaimed - this.passStart;
    if (reclaimed > 0) this.failures = 0;
    const raisePriority = !(sc.nrScanned >= sc.nrToReclaim);
    if (raisePriority || reclaimed === 0) sc.priority--;
    this.inPass = false;
    return true;
  }
}
