// SPDX-License-Identifier: MIT
// A vCPU's dirty ring (struct kvm_dirty_ring, virt/kvm/dirty_ring.c): the gfns KVM logs as
// dirty while that vCPU runs, in order, instead of the memslot's bitmap. KVM pushes entries
// (kvm_dirty_ring_push), the VMM collects them (flags DIRTY -> RESET) and KVM_RESET_DIRTY_RINGS
// re-protects the collected pages (kvm_dirty_ring_reset). When soft-full, the vCPU exits to
// userspace with KVM_EXIT_DIRTY_RING_FULL at its next entry.

/** struct kvm_dirty_gfn flags. */
export const KVM_DIRTY_GFN_F_DIRTY = 1;
export const KVM_DIRTY_GFN_F_RESET = 2;
/** KVM_DIRTY_RING_RSVD_ENTRIES: entries kept free beyond the soft limit. */
export const KVM_DIRTY_RING_RSVD_ENTRIES = 64;
/** KVM_DIRTY_RING_MAX_ENTRIES. */
export const KVM_DIRTY_RING_MAX_ENTRIES = 65536;

export class KvmDirtyRing {
  /** Per entry: slot id, offset in the slot, flags. */
  readonly slot: Int32Array;
  readonly offset: Float64Array;
  readonly flags: Uint8Array;
  /** KVM's producer index and the index up to which entries were reset. */
  dirtyIndex = 0;
  resetIndex = 0;
  /** The VMM's consumer index (struct kvm_dirty_gfn harvesting in userspace). */
  fetchIndex = 0;
  /** KVM_REQ_DIRTY_RING_SOFT_FULL pending. */
  softFullRequest = false;

  constructor(
    readonly size: number,
    /** size - kvm_dirty_ring_get_rsvd_entries() (64, plus the PML buffer with PML). */
    readonly softLimit: number,
  ) {
    this.slot = new Int32Array(size);
    this.offset = new Float64Array(size);
    this.flags = new Uint8Array(size);
  }

  /** kvm_dirty_ring_used(). */
  used(): number {
    return this.dirtyIndex - this.resetIndex;
  }

  /** kvm_dirty_ring_soft_full(). */
  softFull(): boolean {
    return this.used() >= this.softLimit;
  }

  /** kvm_dirty_ring_push(): one entry, marked dirty; soft-full makes the request. */
  push(slotId: number, offset: number): void {
    if (this.used() >= this.size) throw new Error(`dirty ring of ${this.size} entries overflowed (its soft limit is ${this.softLimit})`);
    const i = this.dirtyIndex & (this.size - 1);
    this.slot[i] = slotId;
    this.offset[i] = offset;
    this.flags[i] = KVM_DIRTY_GFN_F_DIRTY;
    this.dirtyIndex++;
    if (this.softFull()) this.softFullRequest = true;
  }
}
