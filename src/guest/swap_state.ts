// SPDX-License-Identifier: MIT
// The guest's swap I/O and swap-in (mm/page_io.c, mm/swap_state.c, mm/memory.c): pageout()
// writes an unmapped anonymous page to its slot (swap_writepage), and do_swap_page() reads it
// back into a new frame and maps it. The disk is virtio-blk: QEMU reads the guest frame at its
// hva to write it to the image, and writes the image's page into the guest frame on a read.
//
// simplified: synchronous I/O (as a SWP_SYNCHRONOUS_IO device): the page is written and freed in the same reclaim pass.
// simplified: no swap readahead (vm.page-cluster 0: one page per swap-in) and no swap cache after I/O.
// simplified: every refault counts workingset_refault_anon, but none is activated by its refault distance.

import type { EventBus } from "../hw/events.js";
import { PTE_HI_NX, frameHi, frameLo } from "../hw/x86_pte.js";
import type { CpuPort } from "../hw/cpu_port.js";
import type { GuestEventMap } from "./guest_events.js";
import { VM_EXEC, type Vma } from "./mm.js";
import { type GuestPgtable, PAGE_USER_RO, PTE_MKWRITE_DIRTY } from "./pgtable.js";
import type { GuestProcess } from "./process.js";
import type { GuestStats } from "./stats.js";
import type { GuestSwapStats } from "./swap_stats.js";
import { GuestSwapDevice, swpOffset } from "./swapfile.js";

/** The virtual disk the guest swaps to (a second virtio-blk device). */
export interface GuestSwapDisk {
  /** The device's DMA reads guest frame `gfn` and stores it at `slot`; returns the host swap-ins that read caused (memvirt's own). */
  writeSlot(gfn: number, slot: number): number;
  /** The device's DMA writes the page at `slot` into guest frame `gfn`. */
  readSlot(gfn: number, slot: number): void;
}

/** What the swap-in path asks of reclaim: a new anonymous page goes on the LRU. */
export interface AnonLru {
  addAnon(gfn: number, mm: GuestProcess, addr: number): void;
}

export class GuestSwapState {
  readonly device: GuestSwapDevice;

  constructor(
    bytes: number,
    private readonly pg: GuestPgtable,
    private readonly stats: GuestStats,
    readonly sw: GuestSwapStats,
    private readonly bus: EventBus<GuestEventMap>,
    private readonly disk: GuestSwapDisk,
  ) {
    this.device = new GuestSwapDevice(Math.floor(bytes / 4096));
    sw.nr_swap_pages = this.device.nrFree;
  }

  /** folio_alloc_swap(): a slot for a page about to be swapped out, or -1 (device full). */
  allocSlot(): number {
    const slot = this.device.alloc();
    this.sw.nr_swap_pages = this.device.nrFree;
    return slot;
  }

  /** swap_writepage() -> swap_writepage_bdev_sync(): the page goes to its slot. */
  writepage(gfn: number, slot: number, pid: number, addr: number): void {
    if (this.bus.on) this.bus.emit("guest.swap_out", { pid, gva: addr, gfn, slot });
    this.sw.swapout_host_swapins += this.disk.writeSlot(gfn, slot);
    this.sw.pswpout++;
  }

  /** free_swap_and_cache() from zap_pte_range(): an unmapped swap PTE's slot is free again. */
  freeEntry(lo: number, hi: number): void {
    this.device.free(swpOffset(lo, hi));
    this.sw.nr_swap_pages = this.device.nrFree;
  }

  /**
   * do_swap_page(): a new frame, the page read into it from its slot (swap_read_folio), the
   * slot freed, the PTE set: writable and dirty for a write fault, read-only otherwise (a later
   * write reuses it: wp_page_reuse). Returns false if no frame could be had.
   */
  doSwapPage(
    port: CpuPort,
    proc: GuestProcess,
    vma: Vma,
    page: number,
    gpa: number,
    lo: number,
    hi: number,
    write: boolean,
    lru: AnonLru,
  ): boolean {
    const slot = swpOffset(lo, hi);
    if (!this.device.inUse(slot)) throw new Error(`guest swap PTE at gva 0x${page.toString(16)} names slot ${slot}, which holds no page`);
    const gfn = this.pg.allocPages(port, 0, false);
    if (gfn < 0) return false;
    this.disk.readSlot(gfn, slot);
    this.sw.pswpin++;
    this.stats.pgmajfault++; // do_swap_page(): ret = VM_FAULT_MAJOR; count_vm_event(PGMAJFAULT)
    this.sw.workingset_refault_anon++;
    this.device.free(slot);
    this.sw.nr_swap_pages = this.device.nrFree;
    const nx = (vma.flags & VM_EXEC) === 0 ? PTE_HI_NX : 0;
    const flags = PAGE_USER_RO | (write ? PTE_MKWRITE_DIRTY : 0);
    this.pg.setEntry(port, proc, gpa, 1, page, lo, hi, frameLo(gfn, flags), frameHi(gfn, nx));
    proc.RssAnon++;
    this.stats.nr_anon_pages++;
    lru.addAnon(gfn, proc, page);
    if (this.bus.on) this.bus.emit("guest.swap_in", { pid: proc.pid, gva: page, gfn, slot });
    return true;
  }
}
