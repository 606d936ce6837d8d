// SPDX-License-Identifier: MIT
// QEMU's virtio-balloon device (hw/virtio/virtio-balloon.c): the host sets a target
// (virtio_balloon_to_target: num_pages = RAM - target, in 4 KiB balloon pages); the guest's
// driver reports the pfns it inflated and QEMU discards each one (balloon_inflate_page ->
// ram_block_discard_range -> madvise(MADV_DONTNEED)); deflated pfns need nothing
// (balloon_deflate_page's MADV_WILLNEED only reads swapped pages ahead, and discarded pages are
// not in swap); free page reporting hands it free blocks to discard
// (virtio_balloon_handle_report).
//
// simplified: no stats queue, no free page hinting, no postcopy or VFIO discard blockers; 4 KiB
// backing only (QEMU's partially ballooned huge pages are not modelled).

import { PAGE_SIZE } from "../hw/addr.js";
import type { QemuVm } from "./vm.js";

/** VIRTIO_BALLOON_PFN_SHIFT: the balloon counts 4 KiB pages whatever the guest page size. */
export const VIRTIO_BALLOON_PFN_SHIFT = 12;

export interface VirtioBalloonFeatures {
  /** VIRTIO_BALLOON_F_DEFLATE_ON_OOM (-device virtio-balloon,deflate-on-oom=on). */
  deflateOnOom: boolean;
  /** VIRTIO_BALLOON_F_REPORTING (free-page-reporting=on). */
  freePageReporting: boolean;
}

/** What QEMU's balloon did, counted (memvirt's names; QEMU exposes only `actual`). */
export interface VirtioBalloonStats {
  inflatedPages: number;
  deflatedPages: number;
  reportedPages: number;
  discardCalls: number;
}

export class VirtioBalloon {
  /** config.num_pages: the balloon size the host asks for, in 4 KiB pages. */
  numPages = 0;
  /** config.actual: the balloon size the driver last reported. */
  actual = 0;
  readonly stats: VirtioBalloonStats = { inflatedPages: 0, deflatedPages: 0, reportedPages: 0, discardCalls: 0 };
  /** Called after each discard with the guest-physical range (the checker learns it now reads zero). */
  onDiscard: ((gpa: number, size: number) => void) | null = null;

  constructor(
    readonly vm: QemuVm,
    readonly features: VirtioBalloonFeatures,
  ) {}

  /** virtio_balloon_to_target(): the `balloon <MiB>` monitor command; the guest is told by a config interrupt. */
  setTarget(targetBytes: number): void {
    const ram = this.vm.cfg.ram;
    const target = Math.min(targetBytes, ram);
    this.numPages = Math.floor((ram - target) / PAGE_SIZE);
  }

  /** virtio_balloon_handle_output() on the inflate queue. */
  inflate(gfns: readonly number[]): void {
    for (const gfn of gfns) {
      this.discard(gfn * PAGE_SIZE, PAGE_SIZE);
      this.stats.inflatedPages++;
    }
  }

  /** virtio_balloon_handle_output() on the deflate queue: nothing to undo (see the header). */
  deflate(gfns: readonly number[]): void {
    this.stats.deflatedPages += gfns.length;
  }

  /** virtio_balloon_handle_report(): each reported block discarded. Returns 0 (the report is acked). */
  report(gfns: readonly number[], orders: readonly number[]): number {
    for (let i = 0; i < gfns.length; i++) {
      const pages = 2 ** orders[i]!;
      this.discard(gfns[i]! * PAGE_SIZE, pages * PAGE_SIZE);
      this.stats.reportedPages += pages;
    }
    return 0;
  }

  /** ram_block_discard_range() on anonymous private RAM: madvise(MADV_DONTNEED). */
  private discard(gpa: number, size: number): void {
    this.vm.madvise(gpa, size, "DONTNEED");
    this.stats.discardCalls++;
    this.onDiscard?.(gpa, size);
  }
}
