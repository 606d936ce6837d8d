// SPDX-License-Identifier: MIT
// The guest kernel's page reclaim (mm/vmscan.c, mm/swap.c): the anon LRU lists (active and
// inactive), the allocator's watermarks (__alloc_pages: low for the fast path, kswapd woken
// below it, direct reclaim below min), kswapd (balance_pgdat) and direct reclaim
// (try_to_free_pages), both through shrink_node -> shrink_lruvec -> shrink_active_list /
// shrink_inactive_list -> shrink_folio_list. Anonymous pages go to the guest's swap device
// (add_to_swap, try_to_unmap, pageout); clean page-cache pages are dropped (filemap.ts).
//
// The host's vmscan.ts works on the host's struct-page arrays and HostKernel; the guest keeps
// its own lists (one Map per list, insertion order = LRU order) and follows the same functions.
// simplified: get_scan_count() scans every list by size >> priority (no swappiness or cost balance).
// simplified: the file LRU is the page cache's one list (filemap.ts): no active file list; a mapped page with a young PTE is kept, an old one dropped.
// simplified: kswapd is no thread: while awake, it runs one batch of SWAP_CLUSTER_MAX after each guest page fault.
// simplified: try_to_unmap() flushes each page at once (no TTU_BATCH_FLUSH batching).

import { defaultWatermarks, intSqrt } from "../host/buddy.js";
import type { EventBus } from "../hw/events.js";
import { PTE_A, PTE_P } from "../hw/x86_pte.js";
import type { CpuPort } from "../hw/cpu_port.js";
import { type GuestPageCache, SWAP_CLUSTER_MAX } from "./filemap.js";
import type { GuestFrameAllocator } from "./frame_alloc.js";
import type { GuestEventMap } from "./guest_events.js";
import type { MmStruct } from "./mm.js";
import type { GuestPgtable, GuestReclaimHooks } from "./pgtable.js";
import type { GuestStats } from "./stats.js";
import type { AnonLru, GuestSwapState } from "./swap_state.js";
import type { GuestSwapStats } from "./swap_stats.js";
import { swpEntryHi, swpEntryLo } from "./swapfile.js";
import type { GuestTlb } from "./tlb.js";

/** DEF_PRIORITY: the first pass scans lru_size >> 12. */
export const DEF_PRIORITY = 12;

/** An anonymous folio on an LRU list, with its one mapping (the guest has no fork: mapcount 1). */
interface AnonPage {
  readonly mm: MmStruct;
  readonly addr: number;
  /** PG_referenced. */
  referenced: boolean;
}

export interface GuestWatermarks {
  min: number;
  low: number;
  high: number;
}

export class GuestReclaim implements AnonLru, GuestReclaimHooks {
  /** The inactive and active anon lists, oldest first. */
  readonly inactive = new Map<number, AnonPage>();
  readonly active = new Map<number, AnonPage>();
  readonly wmark: GuestWatermarks;
  kswapdAwake = false;
  private readonly batch: number[] = [];

  constructor(
    private readonly pg: GuestPgtable,
    private readonly alloc: GuestFrameAllocator,
    private readonly tlb: GuestTlb,
    private readonly stats: GuestStats,
    private readonly sw: GuestSwapStats,
    private readonly bus: EventBus<GuestEventMap>,
    private readonly cache: GuestPageCache,
    private readonly swap: GuestSwapState,
    wmark?: GuestWatermarks,
  ) {
    // __setup_per_zone_wmarks() over the pages free after boot (managed_pages, one zone).
    this.wmark = wmark ?? defaultWatermarks(alloc.nrFree);
  }

  /** folio_add_lru_vma(): a new anonymous page goes to the head of the inactive list (since 5.9). */
  addAnon(gfn: number, mm: MmStruct, addr: number): void {
    this.inactive.set(gfn, { mm, addr, referenced: false });
    this.sw.nr_inactive_anon = this.inactive.size;
  }

  /** The page was unmapped and is being freed (zap_pte_range -> folio_remove_rmap -> lru removal on free). */
  delAnon(gfn: number): void {
    if (!this.inactive.delete(gfn)) this.active.delete(gfn);
    this.counts();
  }

  freeSwapEntry(lo: number, hi: number): void {
    this.swap.freeEntry(lo, hi);
  }

  /** __alloc_pages(): the low watermark for the fast path, kswapd woken below it, direct reclaim below min. */
  allocPages(port: CpuPort, order: number): number {
    const n = 2 ** order;
    const a = this.alloc;
    if (a.nrFree - n >= this.wmark.low) return a.allocPages(order);
    this.wakeKswapd();
    if (a.nrFree - n >= this.wmark.min) return a.allocPages(order);
    // __alloc_pages_direct_reclaim(): try_to_free_pages(), then the freelists again, while reclaim makes progress.
    const cpu = this.cpuOf(port);
    for (;;) {
      const got = this.shrinkNode(port, cpu, SWAP_CLUSTER_MAX, false);
      if (a.nrFree - n >= this.wmark.min) return a.allocPages(order);
      if (got === 0) return -1;
    }
  }

  /** wakeup_kswapd(). */
  private wakeKswapd(): void {
    if (this.kswapdAwake) return;
    this.kswapdAwake = true;
    this.sw.kswapd_wakeups++;
    if (this.bus.on) this.bus.emit("guest.kswapd_wake", { free: this.alloc.nrFree });
  }

  /** One batch of balance_pgdat(): reclaim until free pages reach the high watermark; sleeps when balanced or failing. */
  kswapdStep(cpu: number): void {
    const port = this.tlb.cpus[cpu]!.port;
    const got = this.alloc.nrFree >= this.wmark.high ? 0 : this.shrinkNode(port, cpu, SWAP_CLUSTER_MAX, true);
    if (got === 0 || this.alloc.nrFree >= this.wmark.high) {
      this.kswapdAwake = false;
      if (this.bus.on) this.bus.emit("guest.kswapd_sleep", { free: this.alloc.nrFree });
    }
  }

  /** shrink_node() at falling priorities until `nrToReclaim` pages are freed or priority 0 is done. */
  shrinkNode(port: CpuPort, cpu: number, nrToReclaim: number, kswapd: boolean): number {
    let reclaimed = 0;
    for (let prio = DEF_PRIORITY; prio >= 0 && reclaimed < nrToReclaim; prio--) {
      reclaimed += this.shrinkLruvec(port, cpu, prio, nrToReclaim - reclaimed, kswapd);
    }
    return reclaimed;
  }

  /** shrink_lruvec(): each list's size >> priority, in batches of SWAP_CLUSTER_MAX, until the target is met. */
  private shrinkLruvec(port: CpuPort, cpu: number, prio: number, target: number, kswapd: boolean): number {
    const anon = this.swap.device.nrFree > 0; // can_reclaim_anon_pages()
    let nrInactive = anon ? Math.floor(this.inactive.size / 2 ** prio) : 0;
    let nrActive = anon ? Math.floor(this.active.size / 2 ** prio) : 0;
    let nrFile = Math.floor(this.cache.nrPages / 2 ** prio);
    const deactivate = this.inactiveIsLow(); // prepare_scan_control(): may_deactivate
    let got = 0;
    while ((nrInactive > 0 || nrActive > 0 || nrFile > 0) && got < target) {
      if (nrInactive > 0) {
        const n = Math.min(nrInactive, SWAP_CLUSTER_MAX);
        nrInactive -= n;
        got += this.shrinkInactiveAnon(port, cpu, n, kswapd);
      }
      if (nrActive > 0) {
        const n = Math.min(nrActive, SWAP_CLUSTER_MAX);
        nrActive -= n;
        if (deactivate) this.shrinkActiveAnon(port, n);
      }
      if (nrFile > 0) {
        const n = Math.min(nrFile, SWAP_CLUSTER_MAX);
        nrFile -= n;
        got += this.shrinkFile(port, n, kswapd);
      }
    }
    return got;
  }

  /** inactive_is_low(): inactive * int_sqrt(10 * GiB of the pair) < active (ratio 1 below 1 GiB). */
  private inactiveIsLow(): boolean {
    const inactive = this.inactive.size;
    const active = this.active.size;
    const gb = Math.floor((inactive + active) / 262144);
    return inactive * (gb > 0 ? intSqrt(10 * gb) : 1) < active;
  }

  /** isolate_lru_folios(): the `n` oldest of `list`, taken off it. */
  private isolate(list: Map<number, AnonPage>, n: number): number[] {
    const b = this.batch;
    b.length = 0;
    for (const gfn of list.keys()) {
      if (b.length >= n) break;
      b.push(gfn);
    }
    return b;
  }

  /** shrink_inactive_list() -> shrink_folio_list() over anon pages. */
  private shrinkInactiveAnon(port: CpuPort, cpu: number, n: number, kswapd: boolean): number {
    const victims = this.isolate(this.inactive, n);
    if (kswapd) this.sw.pgscan_kswapd += victims.length;
    else this.sw.pgscan_direct += victims.length;
    let reclaimed = 0;
    for (const gfn of victims) {
      const p = this.inactive.get(gfn)!;
      this.inactive.delete(gfn);
      // folio_check_references(): a young PTE keeps it once, twice activates it.
      if (this.testAndClearYoung(port, p)) {
        if (p.referenced) this.activate(gfn, p);
        else {
          p.referenced = true;
          this.inactive.set(gfn, p);
        }
        continue;
      }
      const slot = this.swap.allocSlot(); // add_to_swap()
      if (slot < 0) {
        this.activate(gfn, p); // activate_locked
        continue;
      }
      this.swapOut(port, cpu, gfn, p, slot);
      reclaimed++;
    }
    if (kswapd) this.sw.pgsteal_kswapd += reclaimed;
    else this.stats.pgsteal_direct += reclaimed;
    this.counts();
    return reclaimed;
  }

  /** shrink_active_list(): the oldest active pages lose their young bits and go to the inactive list (anon is never kept active). */
  private shrinkActiveAnon(port: CpuPort, n: number): void {
    for (const gfn of this.isolate(this.active, n)) {
      const p = this.active.get(gfn)!;
      this.active.delete(gfn);
      this.testAndClearYoung(port, p); // folio_referenced()
      this.inactive.set(gfn, p);
      this.sw.pgdeactivate++;
    }
    this.counts();
  }

  /** The file list's share: clean page-cache pages dropped (filemap.ts). */
  private shrinkFile(port: CpuPort, n: number, kswapd: boolean): number {
    const got = this.cache.shrinkFile(port, n);
    const scanned = this.cache.lastScanned;
    if (kswapd) {
      this.sw.pgscan_kswapd += scanned;
      this.sw.pgsteal_kswapd += got;
    } else {
      this.sw.pgscan_direct += scanned;
      this.stats.pgsteal_direct += got;
    }
    return got;
  }

  private activate(gfn: number, p: AnonPage): void {
    this.active.set(gfn, p);
    this.sw.pgactivate++;
  }

  /** folio_referenced() -> ptep_clear_flush_young(): on x86 the A bit is cleared with no flush. */
  private testAndClearYoung(port: CpuPort, p: AnonPage): boolean {
    const pg = this.pg;
    const gpa = pg.walk(port, p.mm, p.addr);
    if (gpa < 0 || (pg.lo & PTE_P) === 0) throw new Error(`guest LRU page at gva 0x${p.addr.toString(16)} (pid ${p.mm.pid}) is not mapped`);
    const lo = pg.lo;
    if ((lo & PTE_A) === 0) return false;
    pg.setEntry(port, p.mm, gpa, 1, p.addr, lo, pg.hi, (lo & ~PTE_A) >>> 0, pg.hi);
    return true;
  }

  /**
   * try_to_unmap_one() (ptep_clear_flush(), then the swap PTE: set_pte_at()), pageout() ->
   * swap_writepage(), then __remove_mapping() and the free.
   */
  private swapOut(port: CpuPort, cpu: number, gfn: number, p: AnonPage, slot: number): void {
    const pg = this.pg;
    const mm = p.mm;
    const gpa = pg.walk(port, mm, p.addr);
    const lo = pg.lo;
    const hi = pg.hi;
    pg.setEntry(port, mm, gpa, 1, p.addr, lo, hi, 0, 0);
    this.tlb.flushTlbPage(cpu, mm, p.addr);
    pg.setEntry(port, mm, gpa, 1, p.addr, 0, 0, swpEntryLo(slot), swpEntryHi(slot));
    mm.RssAnon--;
    this.stats.nr_anon_pages--;
    this.swap.writepage(gfn, slot, mm.pid, p.addr);
    pg.freePages(gfn, 0);
  }

  private counts(): void {
    this.sw.nr_inactive_anon = this.inactive.size;
    this.sw.nr_active_anon = this.active.size;
  }

  private cpuOf(port: CpuPort): number {
    const i = this.tlb.cpus.findIndex((c) => c.port === port);
    return Math.max(i, 0);
  }
}
