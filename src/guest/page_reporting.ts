// SPDX-License-Identifier: MIT
// Free page reporting (mm/page_reporting.c): 2 s after a block of page_reporting_order or more
// is freed, a worker pulls unreported free blocks off the buddy lists in batches of 32
// (PAGE_REPORTING_CAPACITY), hands each batch to the device (virtio-balloon's reporting queue,
// where QEMU discards them) and puts them back marked reported. A block that is allocated or
// merges loses the mark; reported blocks go back to the tail, so allocations prefer the others.
//
// simplified: one zone and one migratetype; the guest has no watermarks, so low_wmark is 0.

import type { GuestFrameAllocator } from "./frame_alloc.js";

/** PAGE_REPORTING_CAPACITY: blocks per report. */
export const PAGE_REPORTING_CAPACITY = 32;
/** pageblock_order on x86-64: virtio-balloon leaves prdev->order 0, so page_reporting_order is 9 (2 MiB). */
export const PAGE_REPORTING_ORDER_DEFAULT = 9;

const IDLE = 0;
const REQUESTED = 1;
const ACTIVE = 2;

/** The device side: prdev->report(). Returns 0 or a negative errno (then the pages are not marked). */
export interface PageReportingDev {
  report(gfns: readonly number[], orders: readonly number[]): number;
}

export interface PageReportingStats {
  runs: number;
  reports: number;
  pagesReported: number;
}

export class PageReporting {
  private state = IDLE;
  /** Whether the delayed work is queued (schedule_delayed_work), and when it runs, in the caller's clock. */
  scheduled = false;
  dueAt = 0;
  readonly stats: PageReportingStats = { runs: 0, reports: 0, pagesReported: 0 };
  private readonly sgGfn: number[] = [];
  private readonly sgOrder: number[] = [];

  constructor(
    private readonly alloc: GuestFrameAllocator,
    private readonly dev: PageReportingDev,
    readonly order: number,
    /** PAGE_REPORTING_DELAY in the caller's clock. */
    readonly delay: number,
  ) {}

  /** page_reporting_register(): enables notification and requests the initial flush of every zone. */
  register(now: number): void {
    this.alloc.reportingOrder = this.order;
    this.request(now);
  }

  /** Takes the allocator's notify flag (set by frees of reportable blocks) as __page_reporting_notify(). */
  poll(now: number): void {
    if (!this.alloc.reportRequested) return;
    this.alloc.reportRequested = false;
    this.request(now);
  }

  /** __page_reporting_request(): REQUESTED; the work is queued only if it was idle. */
  private request(now: number): void {
    if (this.state === REQUESTED) return;
    const was = this.state;
    this.state = REQUESTED;
    if (was !== IDLE) return;
    this.scheduled = true;
    this.dueAt = now + this.delay;
  }

  /** page_reporting_process(): one run of the delayed work; requeued 2 s on if more was requested meanwhile. */
  process(now: number): void {
    this.scheduled = false;
    this.state = ACTIVE;
    this.stats.runs++;
    this.processZone();
    if (this.state === REQUESTED) {
      this.scheduled = true;
      this.dueAt = now + this.delay;
    } else this.state = IDLE;
  }

  /** page_reporting_process_zone(). */
  private processZone(): void {
    const a = this.alloc;
    // zone_watermark_ok(low_wmark + (CAPACITY << order)) with no watermarks in this guest.
    if (a.nrFree < PAGE_REPORTING_CAPACITY * 2 ** this.order) return;
    for (let order = this.order; order <= a.maxOrder; order++) if (this.cycle(order) !== 0) return;
    if (this.sgGfn.length > 0) this.reportBatch();
  }

  /** page_reporting_cycle() over free_area[order]: fill, report, drain, within a budget of about 1/16 of the list. */
  private cycle(order: number): number {
    const a = this.alloc;
    let budget = Math.ceil(a.nrFreeArea[order]! / (PAGE_REPORTING_CAPACITY * 16));
    let gfn = a.firstFree(order);
    while (gfn >= 0) {
      const next = a.nextFree(gfn);
      if (a.isReported(gfn)) {
        gfn = next;
        continue;
      }
      if (budget < 0) {
        this.state = REQUESTED;
        a.rotateToFront(gfn, order);
        return 0;
      }
      if (this.sgGfn.length < PAGE_REPORTING_CAPACITY) {
        a.isolate(gfn, order);
        this.sgGfn.push(gfn);
        this.sgOrder.push(order);
        gfn = next;
        continue;
      }
      a.rotateToFront(gfn, order);
      const err = this.reportBatch();
      budget--;
      if (err !== 0) return err;
      gfn = a.firstFree(order);
    }
    return 0;
  }

  /** prdev->report() on the batch, then page_reporting_drain(). */
  private reportBatch(): number {
    const err = this.dev.report(this.sgGfn, this.sgOrder);
    this.stats.reports++;
    for (let i = 0; i < this.sgGfn.length; i++) {
      if (err === 0) this.stats.pagesReported += 2 ** this.sgOrder[i]!;
      this.alloc.putbackReported(this.sgGfn[i]!, this.sgOrder[i]!, err === 0);
    }
    this.sgGfn.length = 0;
    this.sgOrder.length = 0;
    return err;
  }
}
