// SPDX-License-Identifier: MIT
// What KVM's dirty-log ioctls did, per VM, for pricing them (memvirt's own counts, not
// kvm_stat): sptes write-protected, huge leaves split and recovered, bitmap words walked.

/** Counts since the VM was created; read a before/after difference around an ioctl. */
export interface DirtyLogWork {
  /** Leaf sptes that lost W (or D) in kvm_mmu_slot_remove_write_access() / kvm_mmu_write_protect_pt_masked(). */
  sptesWrprot: number;
  /** Huge leaves split by kvm_mmu_slot_try_split_huge_pages() (eager_page_split). */
  hugeSplits: number;
  /** Huge leaves made back by kvm_mmu_recover_huge_pages(), or 4 KiB sptes zapped to be faulted back huge (shadow). */
  hugeRecovered: number;
  /** 64-bit dirty-bitmap words KVM_GET_DIRTY_LOG / KVM_CLEAR_DIRTY_LOG went through. */
  bitmapWords: number;
}

const works = new WeakMap<object, DirtyLogWork>();

/** The VM's record (`kvm`: the Kvm). */
export function dirtyLogWork(kvm: object): DirtyLogWork {
  let w = works.get(kvm);
  if (w === undefined) {
    w = { sptesWrprot: 0, hugeSplits: 0, hugeRecovered: 0, bitmapWords: 0 };
    works.set(kvm, w);
  }
  return w;
}
