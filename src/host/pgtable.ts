// SPDX-License-Identifier: MIT
// The host's page-table entries: x86-64 PTE/PMD/PUD words as Linux writes them for
// anonymous memory (arch/x86/include/asm/pgtable_types.h, pgtable_64.h).
//
//   present PTE  lo: frame 31:12 | 11:10 avail | 9 SPECIAL | 8 G | 7 PAT/PS | 6 D | 5 A | 4 PCD | 3 PWT | 2 US | 1 RW | 0 P
//                hi: NX | frame 51:32
//   swap entry   lo: ~offset[22:0] at 31:9 | 8:4 zero | 3 E (exclusive) | 2 uffd-wp | 1 soft-dirty | 0 P=0
//                hi: type 31:27 | ~offset[49:23] at 26:0
// The swap offset is stored inverted (L1TF mitigation), so a swap entry never looks like
// a frame number. A table entry (pointer to the next level) is _PAGE_TABLE = P|RW|US|A|D.

import { PTE_A, PTE_D, PTE_HI_NX, PTE_P, PTE_PAT_HUGE, PTE_RW, PTE_US, entryPfn } from "../hw/x86_pte.js";

/** _PAGE_SPECIAL (software bit 1 = bit 9): a PTE with no struct page behind it for rmap (zero page). */
export const _PAGE_SPECIAL = 1 << 9;
/** _PAGE_SWP_EXCLUSIVE (bit 3 of a swap entry): the swapped page was exclusive to this mapping. */
export const _PAGE_SWP_EXCLUSIVE = 1 << 3;
/** _PAGE_TABLE: flags of an entry pointing at a lower-level table. */
export const _PAGE_TABLE = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
/** PAGE_COPY for a present anon PTE (read-only until written; COW or wp reuse makes it writable). */
export const PAGE_COPY_LO = PTE_P | PTE_US | PTE_A;
/** A writable, dirty, young anon PTE (maybe_mkwrite(pte_mkdirty(mk_pte()))). */
export const PAGE_RW_DIRTY_LO = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
/** Anonymous memory is mapped non-executable (PROT_READ|PROT_WRITE). */
export const PAGE_NX_HI = PTE_HI_NX;

export function isPresent(lo: number): boolean {
  return (lo & PTE_P) !== 0;
}

/** The frame an entry maps (bit 12 of a huge leaf is PAT, not frame). */
export function leafPfn(lo: number, hi: number, level: number): number {
  return level > 1 ? entryPfn(lo & ~PTE_PAT_HUGE, hi) : entryPfn(lo, hi);
}

/** swp_entry_to_pte(swp_entry(type, offset)) low word. */
export function swpLo(offset: number, exclusive: boolean): number {
  return ((((~offset & 0x7fffff) << 9) | (exclusive ? _PAGE_SWP_EXCLUSIVE : 0)) >>> 0) as number;
}

/** swp_entry_to_pte(swp_entry(type, offset)) high word. */
export function swpHi(offset: number, type = 0): number {
  return ((~Math.floor(offset / 0x800000) & 0x7ffffff) | ((type & 0x1f) << 27)) >>> 0;
}

/** swp_offset(pte_to_swp_entry()). */
export function swpOffset(lo: number, hi: number): number {
  return (~(lo >>> 9) & 0x7fffff) + (~hi & 0x7ffffff) * 0x800000;
}

/** swp_type(pte_to_swp_entry()). */
export function swpType(hi: number): number {
  return hi >>> 27;
}
