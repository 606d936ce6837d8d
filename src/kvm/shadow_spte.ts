// SPDX-License-Identifier: MIT
// Shadow sptes (arch/x86/kvm/mmu/spte.h with shadow paging): the x86 format the hardware walks
// natively, in KVM's tables, with KVM's software bits in the bits the hardware ignores.
//
//   lo: 31 ........ 12 | 11          | 10           | 9              | 8 | 7  | 6 | 5 | 4..3 | 2  | 1  | 0
//       frame 31:12    | MMU-present | MMU-writable | host-writable  | - | PS | D | A |  -   | US | RW | P
//   hi: 31 | 30 .. 20 | 19 ........ 0
//       NX |    -     | frame 51:32
//
// A leaf: level 1, or PS at levels 2-3 (bit 12 is then PAT, so the frame starts at bit 21 or 30).
// A non-leaf spte points at a child shadow page with P|RW|US|A (make_nonleaf_spte()).

import { PTE_PAT_HUGE, PTE_PS, entryPfn } from "../hw/x86_pte.js";
import { INV_LEVEL_SIZE } from "../hw/addr.js";

export function isLargeSpte(lo: number): boolean {
  return (lo & PTE_PS) !== 0;
}

/** is_last_spte(). */
export function isLastSpte(lo: number, level: number): boolean {
  return level === 1 || (lo & PTE_PS) !== 0;
}

/** The frame a leaf spte maps (a huge leaf's bit 12 is PAT). */
export function shadowSptePfn(lo: number, hi: number, level: number): number {
  return entryPfn(level > 1 ? lo & ~PTE_PAT_HUGE : lo, hi);
}

/** The index of gva in a table at `level`. */
export function indexAt(gva: number, level: number): number {
  return Math.floor(gva * INV_LEVEL_SIZE[level]!) & 511;
}
