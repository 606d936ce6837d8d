// SPDX-License-Identifier: MIT
// The guest's swap disk as QEMU serves it (virtio-blk, the I/O thread's DMA into and out of
// guest RAM at its hva): a swap-out makes QEMU read the guest frame, a host access that faults
// if the host swapped that page out (a host swap-in: double paging); a swap-in makes QEMU write
// the page back into a guest frame, as a file read does (VmState.diskRead).
//
// simplified: the image holds one content tag per slot; the disk write itself takes no host memory or time.

import { PAGE_SIZE } from "../hw/addr.js";
import type { GuestSwapDisk } from "../guest/swap_state.js";
import { VmFailure } from "../kvm/kvm.js";
import type { PhysMem } from "../hw/phys_mem.js";
import type { QemuVm } from "../qemu/vm.js";
import type { MemoryObserver } from "./checker.js";

export class QemuSwapDisk implements GuestSwapDisk {
  /** The disk image: slot -> the page's content. */
  private readonly image = new Map<number, number>();

  constructor(
    /** The VM's QEMU now (a migration's destination after a switch-over). */
    private readonly qemu: () => QemuVm,
    private readonly checker: MemoryObserver,
    private readonly vmId: number,
    private readonly name: string,
  ) {}

  writeSlot(gfn: number, slot: number): number {
    const q = this.qemu();
    const before = q.mm.majFlt;
    const v = q.host.userAccess(q.mm, q.gpaToHva(gfn * PAGE_SIZE), false, 0);
    if (v < 0)
      throw new VmFailure(
        `${this.name}: QEMU could not read guest frame 0x${gfn.toString(16)} for a guest swap-out: the host is out of memory`,
      );
    this.image.set(slot, v);
    // A major fault of QEMU's on guest RAM is a page read back from the host's swap.
    return q.mm.majFlt - before;
  }

  readSlot(gfn: number, slot: number): void {
    const q = this.qemu();
    const value = this.image.get(slot);
    if (value === undefined) throw new Error(`${this.name}: guest swap slot ${slot} was never written`);
    this.image.delete(slot);
    if (q.host.userAccess(q.mm, q.gpaToHva(gfn * PAGE_SIZE), true, value) < 0)
      throw new VmFailure(
        `${this.name}: QEMU could not write a guest swap-in into guest RAM at gfn 0x${gfn.toString(16)}: the host is out of memory`,
      );
    q.markDirty(gfn * PAGE_SIZE); // live migration: QEMU's own write
    this.checker.frameFilled(this.vmId, gfn, value);
  }
}

/** The native twin's swap disk: the same slots, on bare metal (DMA straight into physical memory). */
export class NativeSwapDisk implements GuestSwapDisk {
  private readonly image = new Map<number, number>();

  constructor(private readonly mem: PhysMem) {}

  writeSlot(gfn: number, slot: number): number {
    this.image.set(slot, this.mem.content[gfn]!);
    return 0;
  }

  readSlot(gfn: number, slot: number): void {
    this.mem.content[gfn] = this.image.get(slot)!;
    this.image.delete(slot);
  }
}
