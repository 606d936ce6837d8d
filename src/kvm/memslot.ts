// SPDX-License-Identifier: MIT
// KVM memory slots (struct kvm_memory_slot, virt/kvm/kvm_main.c): guest-physical ranges
// mapped onto host-virtual ranges of the VMM. gfn -> slot is a binary search
// (__gfn_to_memslot) behind the vCPU's last-used slot (kvm_vcpu_gfn_to_memslot); hva -> gfn
// for the notifier.
//
// simplified: no VM-wide slots->last_used_slot; the vCPU's cache is the only one.

import { PAGE_SIZE } from "../hw/addr.js";

export interface Memslot {
  readonly id: number;
  readonly baseGfn: number;
  readonly npages: number;
  /** slot->userspace_addr: the hva of baseGfn. */
  readonly userspaceAddr: number;
  readonly readonly: boolean;
  // Dirty logging (dirty_log.ts): set by Memslots.add(), changed only by kvmSetMemslotFlags().
  /** slot->flags: KVM_MEM_LOG_DIRTY_PAGES (1). */
  flags?: number;
  /** slot->dirty_bitmap: bit i <-> gfn baseGfn + i, while logging with no dirty ring. */
  dirtyBitmap?: Uint32Array | null;
}

/** kvm_slot_dirty_track_enabled(): KVM_MEM_LOG_DIRTY_PAGES is set on the slot. */
export function kvmSlotDirtyTrackEnabled(slot: Memslot): boolean {
  return ((slot.flags as number) & 1) !== 0;
}

export class Memslots {
  /** Sorted by baseGfn, non-overlapping. */
  readonly slots: Memslot[] = [];

  add(slot: Memslot): void {
    if (slot.npages <= 0) throw new RangeError(`memslot ${slot.id}: no pages`);
    const end = slot.baseGfn + slot.npages;
    for (const s of this.slots) {
      if (slot.baseGfn < s.baseGfn + s.npages && s.baseGfn < end) {
        throw new RangeError(`memslot ${slot.id} overlaps memslot ${s.id}`);
      }
    }
    slot.flags ??= 0;
    slot.dirtyBitmap ??= null;
    this.slots.push(slot);
    this.slots.sort((a, b) => a.baseGfn - b.baseGfn);
  }

  /** __gfn_to_memslot() / search_memslots(): the slot containing gfn, by binary search, or null. */
  find(gfn: number): Memslot | null {
    let lo = 0;
    let hi = this.slots.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const s = this.slots[mid]!;
      if (gfn < s.baseGfn) hi = mid - 1;
      else if (gfn >= s.baseGfn + s.npages) lo = mid + 1;
      else return s;
    }
    return null;
  }

  /** For each slot overlapping [hvaStart, hvaEnd), the gfn range it covers (__kvm_handle_hva_range). */
  hvaRangeToGfns(hvaStart: number, hvaEnd: number, fn: (slot: Memslot, gfnStart: number, gfnEnd: number) => void): void {
    for (const s of this.slots) {
      const sStart = s.userspaceAddr;
      const sEnd = s.userspaceAddr + s.npages * PAGE_SIZE;
      const start = Math.max(hvaStart, sStart);
      const end = Math.min(hvaEnd, sEnd);
      if (start >= end) continue;
      const gfnStart = s.baseGfn + Math.floor((start - sStart) / PAGE_SIZE);
      const gfnEnd = s.baseGfn + Math.ceil((end - sStart) / PAGE_SIZE);
      fn(s, gfnStart, gfnEnd);
    }
  }
}

/** kvm_vcpu_gfn_to_memslot(): the vCPU's last-used slot if it holds gfn, else a search, whose slot becomes the last-used one. */
export function kvmVcpuGfnToMemslot(vcpu: { lastUsedSlot: Memslot | null }, slots: Memslots, gfn: number): Memslot | null {
  const last = vcpu.lastUsedSlot;
  if (last !== null && gfn >= last.baseGfn && gfn < last.baseGfn + last.npages) return last;
  const slot = slots.find(gfn);
  if (slot !== null) vcpu.lastUsedSlot = slot;
  return slot;
}

/** gfn -> hva within a slot (__gfn_to_hva_memslot). */
export function gfnToHva(slot: Memslot, gfn: number): number {
  return slot.userspaceAddr + (gfn - slot.baseGfn) * PAGE_SIZE;
}

/**
 * Largest page level (1, 2, 3) at which gfn may be mapped as far as the slot goes: the huge
 * frame must lie wholly in the slot and gfn and hva must be equally aligned (the memslot's
 * lpage_info disallow_lpage at creation, kvm_alloc_memslot_metadata).
 */
export function slotMaxLevel(slot: Memslot, gfn: number): number {
  let level = 1;
  for (const l of [2, 3]) {
    const frames = l === 2 ? 512 : 512 * 512;
    const head = Math.floor(gfn / frames) * frames;
    if (head < slot.baseGfn || head + frames > slot.baseGfn + slot.npages) break;
    const hvaFrame = slot.userspaceAddr / PAGE_SIZE + (head - slot.baseGfn);
    if (hvaFrame % frames !== 0) break;
    level = l;
  }
  return level;
}
