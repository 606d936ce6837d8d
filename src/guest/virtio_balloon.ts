// SPDX-License-Identifier: MIT
// The guest's virtio-balloon driver (drivers/virtio/virtio_balloon.c): on a config change it
// moves num_pages towards the host's target (update_balloon_size_func), inflating by
// allocating pages and telling the host their pfns, 256 at a time (fill_balloon), or deflating
// by telling the host and freeing them (leak_balloon, newest first); with deflate-on-oom an
// OOM notifier gives back 256 pages (virtio_balloon_oom_notify); with free page reporting it
// registers as the page_reporting device (virtballoon_free_page_report).
//
// simplified: the worker runs to completion when the config changes, or until an allocation
// fails ("Out of puff!"), when it sleeps 200 ms and tries again.

import type { CpuPort } from "../hw/cpu_port.js";
import type { VirtioBalloon } from "../qemu/virtio_balloon.js";
import { PageReporting } from "./page_reporting.js";
import type { GuestPgtable } from "./pgtable.js";
import type { GuestStats } from "./stats.js";
import type { GuestFrameAllocator } from "./frame_alloc.js";

/** VIRTIO_BALLOON_ARRAY_PFNS_MAX: pfns per inflate or deflate message. */
export const VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256;
/** VIRTIO_BALLOON_OOM_NR_PAGES: pages the OOM notifier deflates per call. */
export const VIRTIO_BALLOON_OOM_NR_PAGES = 256;

export interface BalloonDriverOptions {
  /** page_reporting_order (default 9). */
  reportingOrder: number;
  /** PAGE_REPORTING_DELAY in the caller's clock. */
  reportingDelay: number;
  /** fill_balloon()'s msleep(200) after an allocation failure, in the caller's clock. */
  retryDelay: number;
}

export class VirtioBalloonDriver {
  /** vb->num_pages. */
  numPages = 0;
  /** The balloon's pages (b_dev_info->pages): enqueued at the head, dequeued from the head. */
  private readonly pages: number[] = [];
  private readonly pfns: number[] = [];
  readonly reporting: PageReporting | null;
  /** When the size work runs again after running out of memory (Infinity: not queued). */
  retryAt = Number.POSITIVE_INFINITY;
  private readonly retryDelay: number;

  constructor(
    private readonly dev: VirtioBalloon,
    private readonly pg: GuestPgtable,
    alloc: GuestFrameAllocator,
    private readonly stats: GuestStats,
    private readonly port: CpuPort,
    opts: BalloonDriverOptions,
  ) {
    this.reporting = dev.features.freePageReporting
      ? new PageReporting(alloc, { report: (g, o) => this.freePageReport(g, o) }, opts.reportingOrder, opts.reportingDelay)
      : null;
    if (dev.features.deflateOnOom) pg.oomNotify = () => this.oomNotify();
    this.retryDelay = opts.retryDelay;
  }

  /** virtballoon_probe(): registers free page reporting (its first run is one delay after `now`). */
  probe(now: number): void {
    this.reporting?.register(now);
  }

  /** virtballoon_changed() -> update_balloon_size_func(): towards the target until reached or out of memory. */
  configChanged(now: number): void {
    this.retryAt = Number.POSITIVE_INFINITY;
    for (;;) {
      const diff = this.dev.numPages - this.numPages;
      if (diff === 0) return;
      const want = Math.min(Math.abs(diff), VIRTIO_BALLOON_ARRAY_PFNS_MAX);
      const done = diff > 0 ? this.fill(diff) : this.leak(-diff);
      this.updateBalloonSize();
      if (done < want) break;
    }
    // Out of puff: msleep(200), then queue_work() again.
    if (this.dev.numPages > this.numPages) this.retryAt = now + this.retryDelay;
  }

  /** The earliest time deferred work (a retry, a reporting run) is due. */
  nextDue(): number {
    const r = this.reporting;
    return Math.min(this.retryAt, r?.scheduled ? r.dueAt : Number.POSITIVE_INFINITY);
  }

  /** Called between slices: runs deferred work due at `now` (the size work's retry, free page reporting); whether any made progress. */
  runDue(now: number): boolean {
    let ran = false;
    if (this.retryAt <= now) {
      const before = this.numPages;
      this.configChanged(now);
      ran = this.numPages !== before;
    }
    return this.runReporting(now) || ran;
  }

  /** fill_balloon(): up to 256 pages allocated without OOM, then one inflate message. */
  private fill(num: number): number {
    const n = Math.min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX);
    for (let i = 0; i < n; i++) {
      // balloon_page_alloc(): __GFP_NORETRY | __GFP_NOMEMALLOC, no zeroing, no OOM.
      const gfn = this.pg.allocPages(this.port, 0, false, false);
      if (gfn < 0) break; // "Out of puff! Can't get %u pages"
      this.pages.push(gfn);
      this.pfns.push(gfn);
      this.stats.balloon_inflate++;
    }
    const got = this.pfns.length;
    this.numPages += got;
    if (got > 0) this.dev.inflate(this.pfns); // tell_host(vb->inflate_vq)
    this.pfns.length = 0;
    return got;
  }

  /** leak_balloon(): up to 256 pages dequeued, the host told first (MUST_TELL_HOST), then freed. */
  private leak(num: number): number {
    const n = Math.min(num, VIRTIO_BALLOON_ARRAY_PFNS_MAX, this.pages.length);
    for (let i = 0; i < n; i++) {
      this.pfns.push(this.pages.pop()!);
      this.stats.balloon_deflate++;
    }
    this.numPages -= n;
    if (n > 0) this.dev.deflate(this.pfns);
    for (const gfn of this.pfns) this.pg.freePages(gfn, 0); // release_pages_balloon()
    this.pfns.length = 0;
    return n;
  }

  /** update_balloon_size(): config.actual. */
  private updateBalloonSize(): void {
    this.dev.actual = this.numPages;
    this.stats.nr_balloon_pages = this.numPages;
  }

  /** virtio_balloon_oom_notify(): deflate 256 pages; the host's target stays, so nothing re-inflates until it changes. */
  private oomNotify(): number {
    const freed = this.leak(VIRTIO_BALLOON_OOM_NR_PAGES);
    this.updateBalloonSize();
    return freed;
  }

  /** virtballoon_free_page_report(): the blocks go to the host on the reporting queue; it waits for the ack. */
  private freePageReport(gfns: readonly number[], orders: readonly number[]): number {
    const err = this.dev.report(gfns, orders);
    if (err === 0) for (const o of orders) this.stats.pages_reported += 2 ** o;
    return err;
  }

  /** The reporting worker, if queued and due at `now`; returns whether it ran. */
  private runReporting(now: number): boolean {
    const r = this.reporting;
    if (r === null) return false;
    r.poll(now);
    if (!r.scheduled || r.dueAt > now) return false;
    r.process(now);
    this.stats.page_reporting_runs++;
    return true;
  }
}
