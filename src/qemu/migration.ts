// SPDX-License-Identifier: MIT
// QEMU live migration of guest RAM (migration/migration.c, migration/ram.c, postcopy-ram.c):
// the migration thread's loop over a link of a given bandwidth. Pre-copy: the bulk stage sends
// every page, then each iteration syncs the dirty bitmap (migration_bitmap_sync) and sends what
// was dirtied meanwhile, until what is left fits the downtime limit (migration_iteration_run:
// pending < bandwidth x downtime-limit) and the vCPUs stop for the last copy; auto-converge
// throttles the vCPUs (migration_trigger_throttle / mig_throttle_guest_down). Post-copy: the
// vCPUs stop, the destination starts, and the rest arrives by request on fault (userfaultfd) and
// in the background. Time is the model's: the caller passes cycles of the cost model.

import type { QemuVm } from "./vm.js";
import { PAGE_SIZE } from "../hw/addr.js";
import { UFFDIO_REGISTER_MODE_MISSING, UserfaultfdCtx } from "../host/userfaultfd.js";
import { PostcopyIncoming } from "./postcopy.js";
import { NORMAL_PAGE_BYTES, PAGE_HEADER_BYTES, sendPagePostcopy, sendPagePrecopy } from "./ram_transfer.js";

/** Cycles per second of the model's clock (the cost table's figures are for a 3 GHz core). */
export const CPU_HZ = 3e9;
/** migration_bitmap_sync(): the throttle is reconsidered at most once a second. */
const THROTTLE_PERIOD_S = 1;
/** throttle-trigger-threshold (default 50 %): dirtied bytes above this share of the sent bytes count as "too fast". */
const THROTTLE_TRIGGER_THRESHOLD = 50;
/** max-cpu-throttle (default 99 %). */
const MAX_CPU_THROTTLE = 99;

export type MigrationMode = "precopy" | "postcopy";

export interface MigrationParams {
  mode: MigrationMode;
  /** max-bandwidth, bytes per second. */
  bandwidth: number;
  /** downtime-limit, seconds (QEMU's default 300 ms). */
  downtimeLimit: number;
  /** Round-trip time of the link, seconds (a post-copy page request waits one). */
  rtt: number;
  /** The auto-converge capability. */
  autoConverge: boolean;
  /** cpu-throttle-initial and cpu-throttle-increment, percent (QEMU's defaults 20 and 10). */
  throttleInitial: number;
  throttleIncrement: number;
  /** Pre-copy rounds after which the last copy is forced whatever remains (memvirt's cap; 0: none). */
  maxIterations: number;
  /** Post-copy: pre-copy rounds before the switch (0: switch at once). */
  postcopyAfter: number;
}

/** Harvests the dirty pages of guest RAM (KVM's dirty log plus QEMU's own writes). */
export interface DirtySource {
  /** memory_global_dirty_log_start(). */
  start(): void;
  /** migration_bitmap_sync(): sets out[i] = 1 for each RAM page i dirtied since the last call; returns how many were new. */
  sync(out: Uint8Array): number;
  /** migration_clear_memory_region_dirty_bitmap(): before RAM page `page` is sent in pre-copy (manual protect clears its chunk). */
  clearBeforeSend(page: number): void;
  /** memory_global_dirty_log_stop(). */
  stop(): void;
}

/** What the migration asks of the machine running the guest. */
export interface MigrationHooks {
  /** vm_stop(): every vCPU out of the guest, for the last copy. */
  stopVcpus(): void;
  /** The guest resumes on the destination's vCPUs. */
  switchover(dst: QemuVm): void;
  /** cpu_throttle_set(): percent of each vCPU's time taken away (0: off). */
  setThrottle(pct: number): void;
}

/** One round of pre-copy (the bulk stage is round 1). */
export interface MigrationIteration {
  iteration: number;
  /** Pages sent in the round, and how many of them went as zero pages. */
  pagesSent: number;
  zeroPages: number;
  bytes: number;
  /** Seconds the round took on the link (or waiting for the guest). */
  seconds: number;
  /** Pages the guest dirtied during the round (the next sync), and that per second. */
  dirtyPages: number;
  dirtyRate: number;
  /** Bytes left to send after the sync at the round's end. */
  remaining: number;
  /** CPU throttle in force at the round's end, percent. */
  throttle: number;
}

export interface MigrationResult {
  mode: MigrationMode;
  status: "active" | "postcopy-active" | "completed";
  /** The last copy was forced by maxIterations rather than reached by the downtime limit. */
  forced: boolean;
  iterations: MigrationIteration[];
  /** Seconds from start to completion, and the vCPUs' stop. */
  totalTime: number;
  downtime: number;
  pagesSent: number;
  zeroPages: number;
  bytes: number;
  /** pagesSent over the pages of guest RAM. */
  ratioToRam: number;
  /** Seconds of vCPU time the throttle took. */
  throttledTime: number;
  maxThrottle: number;
  /** Post-copy: faults that requested a page from the source, their total and largest wait (s), pages sent in the background. */
  postcopyFaults: number;
  postcopyFaultLatency: number;
  postcopyFaultLatencyMax: number;
  postcopyBackgroundPages: number;
}

/** One outgoing migration (MigrationState with its RAMState). */
export class Migration {
  /** Wall time of the migration, in cycles from its start (vCPU time stretched by the throttle). */
  private wall = 0;
  /** When the link is next free, cycles. */
  private linkFree = 0;
  private lastCost: number;
  private readonly cyclesPerByte: number;
  /** RAM pages in ram_addr order (the ranges' pages back to back) and the dirty bitmap over them. */
  readonly npages: number;
  private readonly bitmap: Uint8Array;
  private cursor = 0;
  private round: MigrationIteration;
  private roundStart = 0;
  private throttle = 0;
  private dirtyHighCount = 0;
  private periodStart = 0;
  private periodDirty = 0;
  private periodBytes = 0;
  private uffd: UserfaultfdCtx | null = null;
  private incoming: PostcopyIncoming | null = null;
  readonly result: MigrationResult;

  constructor(
    readonly src: QemuVm,
    readonly dst: QemuVm,
    readonly params: MigrationParams,
    private readonly hooks: MigrationHooks,
    private readonly dirty: DirtySource | null,
    nowCost: number,
  ) {
    this.lastCost = nowCost;
    this.cyclesPerByte = CPU_HZ / params.bandwidth;
    this.npages = src.cfg.ram / PAGE_SIZE;
    this.bitmap = new Uint8Array(this.npages).fill(1); // ram_list_init_bitmaps(): the bulk stage sends everything
    this.result = {
      mode: params.mode,
      status: "active",
      forced: false,
      iterations: [],
      totalTime: 0,
      downtime: 0,
      pagesSent: 0,
      zeroPages: 0,
      bytes: 0,
      ratioToRam: 0,
      throttledTime: 0,
      maxThrottle: 0,
      postcopyFaults: 0,
      postcopyFaultLatency: 0,
      postcopyFaultLatencyMax: 0,
      postcopyBackgroundPages: 0,
    };
    this.round = this.newRound();
    if (params.mode === "postcopy" && params.postcopyAfter === 0) this.startPostcopy();
    else this.dirty?.start();
  }

  get done(): boolean {
    return this.result.status === "completed";
  }

  /** The gfn of RAM page `i` (ram_addr order: RAM below the PCI hole, then above 4 GiB). */
  gfnOf(i: number): number {
    let off = i;
    for (const r of this.src.ranges) {
      const n = (r.end - r.start) / PAGE_SIZE;
      if (off < n) return r.start / PAGE_SIZE + off;
      off -= n;
    }
    return -1;
  }

  /** The RAM page index of `gfn`, or -1. */
  indexOf(gfn: number): number {
    let base = 0;
    for (const r of this.src.ranges) {
      const first = r.start / PAGE_SIZE;
      const n = (r.end - r.start) / PAGE_SIZE;
      if (gfn >= first && gfn < first + n) return base + gfn - first;
      base += n;
    }
    return -1;
  }

  /** Between scheduler slices: the guest has run up to `nowCost` cycles of the cost model; the link catches up. */
  tick(nowCost: number): void {
    if (this.done) return;
    const delta = Math.max(0, nowCost - this.lastCost);
    this.lastCost = nowCost;
    // cpu_throttle_thread(): each vCPU sleeps pct/(1-pct) of every timeslice it runs.
    const stretch = this.throttle > 0 ? delta / (1 - this.throttle / 100) : delta;
    this.result.throttledTime += (stretch - delta) / CPU_HZ;
    this.wall += stretch;
    this.pump();
  }

  /** The guest has stopped for good (end of run): the migration runs to completion with idle vCPUs. */
  drain(): void {
    for (let guard = 0; !this.done && guard < 1_000_000; guard++) {
      this.wall = Math.max(this.wall, this.linkFree) + CPU_HZ; // one idle second at a time
      this.pump();
    }
  }

  /** Sends while the link has time before the wall clock; ends rounds as they finish. */
  private pump(): void {
    while (!this.done && this.linkFree < this.wall) {
      if (this.sendNext()) continue;
      if (this.incoming !== null) {
        this.completePostcopy();
        return;
      }
      this.endRound();
    }
  }

  /** ram_find_and_save_block(): the next dirty page from the cursor; false at the end of the round. */
  private sendNext(): boolean {
    const b = this.bitmap;
    let i = this.cursor;
    while (i < this.npages && b[i] === 0) i++;
    if (i >= this.npages && this.incoming !== null) {
      // Post-copy: wrap once to pick up pages left behind a request's jump.
      i = b.indexOf(1);
      if (i < 0) i = this.npages;
    }
    this.cursor = i + 1;
    if (i >= this.npages) return false;
    if (this.incoming === null) this.dirty?.clearBeforeSend(i);
    b[i] = 0;
    const gfn = this.gfnOf(i);
    const bytes = this.incoming !== null ? sendPagePostcopy(this.src, this.dst, this.uffd!, gfn) : sendPagePrecopy(this.src, this.dst, gfn);
    if (this.incoming !== null) this.result.postcopyBackgroundPages++;
    this.account(bytes);
    this.linkFree = Math.max(this.linkFree, this.roundStart) + bytes * this.cyclesPerByte;
    return true;
  }

  private account(bytes: number): void {
    const r = this.round;
    r.pagesSent++;
    r.bytes += bytes;
    if (bytes < NORMAL_PAGE_BYTES) r.zeroPages++;
    this.periodBytes += bytes;
  }

  private newRound(): MigrationIteration {
    return {
      iteration: this.result.iterations.length + 1,
      pagesSent: 0,
      zeroPages: 0,
      bytes: 0,
      seconds: 0,
      dirtyPages: 0,
      dirtyRate: 0,
      remaining: 0,
      throttle: this.throttle,
    };
  }

  /** The round's sends are done: sync the dirty bitmap and decide (migration_iteration_run). */
  private endRound(): void {
    const at = Math.max(this.linkFree, this.roundStart);
    const r = this.round;
    r.seconds = (at - this.roundStart) / CPU_HZ;
    const dirty = this.dirty === null ? 0 : this.dirty.sync(this.bitmap);
    r.dirtyPages = dirty;
    r.dirtyRate = r.seconds > 0 ? dirty / r.seconds : 0;
    r.remaining = dirty * (PAGE_SIZE + PAGE_HEADER_BYTES);
    this.periodDirty += dirty;
    this.maybeThrottle(at);
    r.throttle = this.throttle;
    this.result.iterations.push(r);
    this.roundStart = at;
    this.linkFree = at;
    this.cursor = 0;
    this.round = this.newRound();
    const p = this.params;
    const threshold = p.bandwidth * p.downtimeLimit; // s->threshold_size
    const n = this.result.iterations.length;
    if (p.mode === "postcopy" && n >= p.postcopyAfter) this.startPostcopy();
    else if (r.remaining === 0 || r.remaining < threshold) this.completePrecopy(false);
    else if (p.maxIterations > 0 && n >= p.maxIterations) this.completePrecopy(true);
  }

  /** migration_trigger_throttle(), evaluated once a second of syncs. */
  private maybeThrottle(at: number): void {
    if ((at - this.periodStart) / CPU_HZ < THROTTLE_PERIOD_S) return;
    const p = this.params;
    if (p.autoConverge && this.periodDirty * PAGE_SIZE > (this.periodBytes * THROTTLE_TRIGGER_THRESHOLD) / 100) {
      if (++this.dirtyHighCount >= 2) {
        this.dirtyHighCount = 0;
        // mig_throttle_guest_down()
        this.throttle = this.throttle === 0 ? p.throttleInitial : Math.min(this.throttle + p.throttleIncrement, MAX_CPU_THROTTLE);
        this.result.maxThrottle = Math.max(this.result.maxThrottle, this.throttle);
        this.hooks.setThrottle(this.throttle);
      }
    }
    this.periodStart = at;
    this.periodDirty = 0;
    this.periodBytes = 0;
  }

  /** migration_completion(): stop the vCPUs, a last sync, send the rest, the destination resumes. */
  private completePrecopy(forced: boolean): void {
    this.hooks.stopVcpus();
    this.setThrottle(0);
    const stop = this.roundStart;
    this.dirty?.sync(this.bitmap);
    while (this.sendNext()) {}
    this.dirty?.stop(); // ram_save_cleanup(), after the last pages
    const r = this.round;
    const end = Math.max(this.linkFree, stop) + (this.params.rtt / 2) * CPU_HZ; // the last byte, then the destination's go
    r.seconds = (end - stop) / CPU_HZ;
    r.remaining = 0;
    if (r.pagesSent > 0) this.result.iterations.push(r);
    this.result.forced = forced;
    this.result.downtime = (end - stop) / CPU_HZ;
    this.hooks.switchover(this.dst);
    this.finish(end);
  }

  /** postcopy_start(): stop, discard what the destination holds stale, start the destination with userfaultfd. */
  private startPostcopy(): void {
    this.hooks.stopVcpus();
    this.setThrottle(0);
    const stop = Math.max(this.linkFree, this.roundStart, this.wall);
    if (this.dirty !== null && this.result.iterations.length > 0) {
      this.dirty.sync(this.bitmap);
      this.dirty.stop();
      this.discardDirty();
    }
    // postcopy_ram_incoming_setup(): the destination's RAM is registered MISSING, and THP is off there.
    const dst = this.dst;
    this.incoming = new PostcopyIncoming(this);
    this.uffd = new UserfaultfdCtx(dst.host, dst.mm, this.incoming);
    dst.host.madvise(dst.mm, dst.ramHva, dst.cfg.ram, "nohugepage");
    this.uffd.register(dst.ramHva, dst.cfg.ram, UFFDIO_REGISTER_MODE_MISSING);
    const resume = stop + this.params.rtt * CPU_HZ; // device state and the "run" command, one round trip
    this.result.downtime = (resume - stop) / CPU_HZ;
    this.result.status = "postcopy-active";
    if (this.round.pagesSent > 0) this.result.iterations.push(this.round); // no empty round before the post-copy one
    this.round = this.newRound();
    this.roundStart = resume;
    this.linkFree = resume;
    this.wall = Math.max(this.wall, resume);
    this.cursor = 0;
    this.hooks.switchover(dst);
  }

  /** postcopy_discard_send_range(): pages dirtied since they were sent are dropped on the destination (MADV_DONTNEED). */
  private discardDirty(): void {
    for (let i = 0; i < this.npages; i++) {
      if (this.bitmap[i] === 0) continue;
      const hva = this.dst.gpaToHva(this.gfnOf(i) * PAGE_SIZE);
      if (this.dst.host.probe(this.dst.mm, hva).state !== "none") this.dst.host.madvise(this.dst.mm, hva, PAGE_SIZE, "dontneed");
    }
  }

  /**
   * A post-copy fault on the destination asks for gfn (postcopy_request_page): the page comes
   * ahead of the background stream, one round trip plus its transfer later; true if it was sent.
   */
  requestPage(gfn: number): boolean {
    const i = this.indexOf(gfn);
    if (i < 0 || this.bitmap[i] === 0) return false;
    this.bitmap[i] = 0;
    const bytes = sendPagePostcopy(this.src, this.dst, this.uffd!, gfn);
    this.account(bytes);
    const wait = this.params.rtt * CPU_HZ + bytes * this.cyclesPerByte;
    this.wall += wait; // the vCPU waits; the background stream goes on meanwhile
    this.linkFree += bytes * this.cyclesPerByte;
    this.cursor = i + 1; // get_queued_page(): the background stream continues after the requested page
    const r = this.result;
    r.postcopyFaults++;
    r.postcopyFaultLatency += wait / CPU_HZ;
    r.postcopyFaultLatencyMax = Math.max(r.postcopyFaultLatencyMax, wait / CPU_HZ);
    this.pump(); // the background stream during the wait
    return true;
  }

  /** Every page is on the destination: the source goes away, the destination's uffd is closed. */
  private completePostcopy(): void {
    this.round.seconds = (Math.max(this.linkFree, this.roundStart) - this.roundStart) / CPU_HZ;
    this.result.iterations.push(this.round);
    this.uffd!.unregister(this.dst.ramHva, this.dst.cfg.ram);
    this.finish(Math.max(this.linkFree, this.roundStart));
  }

  private setThrottle(pct: number): void {
    if (this.throttle !== 0 || pct !== 0) this.hooks.setThrottle(pct);
    this.throttle = pct;
  }

  private finish(end: number): void {
    const r = this.result;
    for (const it of r.iterations) {
      r.pagesSent += it.pagesSent;
      r.zeroPages += it.zeroPages;
      r.bytes += it.bytes;
    }
    r.ratioToRam = r.pagesSent / this.npages;
    r.totalTime = end / CPU_HZ;
    r.status = "completed";
    this.wall = Math.max(this.wall, end);
    // The source QEMU exits: its VM and guest RAM go.
    this.src.kvm.destroy();
    this.src.host.exit(this.src.mm);
  }

  /** The uffd of a post-copy destination (for its counters), or null. */
  get userfaultfd(): UserfaultfdCtx | null {
    return this.uffd;
  }
}
