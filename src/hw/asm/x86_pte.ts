// SPDX-License-Identifier: MIT
// The x86-64 (and NPT) entry bits the core reads: ../x86_pte.ts, whose diagram gives the layout.

export const PTE_P: u32 = 1 << 0;
export const PTE_A: u32 = 1 << 5;
export const PTE_D: u32 = 1 << 6;
export const PTE_PS: u32 = 1 << 7;
export const PTE_G: u32 = 1 << 8;
export const PTE_PAT_HUGE: u32 = 1 << 12;
export const PTE_HI_NX: u32 = 1 << 31;

export const PFERR_PRESENT: i32 = 1 << 0;
export const PFERR_WRITE: i32 = 1 << 1;
export const PFERR_USER: i32 = 1 << 2;
export const PFERR_RSVD: i32 = 1 << 3;
export const PFERR_FETCH: i32 = 1 << 4;

/** Frame bits that must be zero in a huge leaf: 20:13 for 2 MiB, 29:13 for 1 GiB. */
@inline export function hugeRsvdLoMask(level: i32): u32 {
  return level == 2 ? 0x001fe000 : level == 3 ? 0x3fffe000 : 0;
}

/** The frame number of an entry (4 KiB units, 40 bits). */
@inline export function entryPfn(lo: u32, hi: u32): i64 {
  return <i64>(lo >>> 12) | (<i64>(hi & 0xfffff) << 20);
}
