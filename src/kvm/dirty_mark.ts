// SPDX-License-Identifier: MIT
// mark_page_dirty_in_slot() (virt/kvm/kvm_main.c): KVM made gfn writable or wrote it. With a
// dirty ring the running vCPU's ring gets the entry (kvm_dirty_ring_push), else the memslot's
// dirty bitmap the bit; nothing while the slot does not log.

import type { KvmDirtyRing } from "./dirty_ring.js";
import { type Memslot, kvmSlotDirtyTrackEnabled } from "./memslot.js";

/** What mark_page_dirty_in_slot() reads of struct kvm: the ring size and kvm_get_running_vcpu(). */
export interface DirtyLogCtx {
  readonly dirtyRingSize: number;
  readonly currentVcpu: { readonly dirtyRing: KvmDirtyRing | null } | null;
}

/** mark_page_dirty_in_slot(). */
export function markPageDirtyInSlot(kvm: DirtyLogCtx, slot: Memslot, gfn: number): void {
  if (!kvmSlotDirtyTrackEnabled(slot)) return;
  const rel = gfn - slot.baseGfn;
  if (kvm.dirtyRingSize > 0) {
    const vcpu = kvm.currentVcpu;
    // simplified: a write KVM makes outside any vCPU is not logged (Linux logs it in the bitmap with KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP).
    if (vcpu !== null && vcpu.dirtyRing !== null) vcpu.dirtyRing.push(slot.id, rel);
    return;
  }
  const bm = slot.dirtyBitmap;
  if (bm === null || bm === undefined) return;
  const w = rel >>> 5;
  bm[w] = bm[w]! | (1 << (rel & 31));
}
