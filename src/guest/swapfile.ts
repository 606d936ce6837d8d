// SPDX-License-Identifier: MIT
// The guest's swap device (mm/swapfile.c) on a virtual disk, and x86-64's swap PTE format
// (arch/x86/include/asm/pgtable_64.h): a non-present PTE holding the slot, offset inverted
// (the L1TF mitigation) in bits 9..58, the device type in bits 59..63.
//
// simplified: one swap device (type 0); slots go lowest free first (no per-CPU clusters, scan_swap_map_slots).
// simplified: no swap cache kept after a swap-in: the slot is freed at once (as should_try_to_free_swap() does when swap is half full).

/** SWP_OFFSET_FIRST_BIT: _PAGE_BIT_PROTNONE + 1. */
const SWP_OFFSET_FIRST_BIT = 9;
/** Offset bits in the low word (bits 9..31). */
const LO_OFFSET_BITS = 32 - SWP_OFFSET_FIRST_BIT;
const LO_OFFSET_MASK = 2 ** LO_OFFSET_BITS - 1;
/** Offset bits in the high word (bits 32..58), below the 5 type bits. */
const HI_OFFSET_MASK = 0x07ffffff;

/** __swp_entry(0, offset) as a PTE: the low word. */
export function swpEntryLo(offset: number): number {
  return ((~offset & LO_OFFSET_MASK) << SWP_OFFSET_FIRST_BIT) >>> 0;
}

/** __swp_entry(0, offset) as a PTE: the high word (type 0 in bits 59..63). */
export function swpEntryHi(offset: number): number {
  return ~Math.floor(offset / 2 ** LO_OFFSET_BITS) & HI_OFFSET_MASK;
}

/** __swp_offset() of a swap PTE. */
export function swpOffset(lo: number, hi: number): number {
  return ((~lo >>> SWP_OFFSET_FIRST_BIT) & LO_OFFSET_MASK) + (~hi & HI_OFFSET_MASK) * 2 ** LO_OFFSET_BITS;
}

/** is_swap_pte(): not present, not empty. */
export function isSwapPte(lo: number, hi: number): boolean {
  return (lo & 1) === 0 && (lo !== 0 || hi !== 0);
}

/** swap_info_struct: the slots of one device, each used by at most one PTE (no fork in the guest). */
export class GuestSwapDevice {
  /** swap_map: 1 where a slot holds a page. */
  private readonly map: Uint8Array;
  /** Lowest slot that may be free (si->lowest_bit). */
  private lowest = 0;
  /** get_nr_swap_pages(). */
  nrFree: number;

  constructor(readonly slots: number) {
    // Slot 0 holds the swap header (the first page of a mkswap'd device).
    this.map = new Uint8Array(slots);
    if (slots > 0) this.map[0] = 1;
    this.nrFree = Math.max(0, slots - 1);
  }

  /** get_swap_pages() for one page: a free slot, or -1 when the device is full. */
  alloc(): number {
    if (this.nrFree === 0) return -1;
    let s = this.lowest;
    while (this.map[s] !== 0) s++;
    this.map[s] = 1;
    this.lowest = s + 1;
    this.nrFree--;
    return s;
  }

  /** swap_free(): the slot's page is gone from the device. */
  free(slot: number): void {
    if (this.map[slot] !== 1 || slot === 0) throw new Error(`guest swap: freeing slot ${slot}, which holds no page`);
    this.map[slot] = 0;
    this.nrFree++;
    if (slot < this.lowest) this.lowest = slot;
  }

  inUse(slot: number): boolean {
    return slot > 0 && this.map[slot] === 1;
  }
}
