// SPDX-License-Identifier: MIT
// The EPT entry bits the core reads: ../ept_pte.ts, whose diagram gives the layout.

export const EPT_R: u32 = 1 << 0;
export const EPT_W: u32 = 1 << 1;
export const EPT_PS: u32 = 1 << 7;
export const EPT_A: u32 = 1 << 8;
export const EPT_D: u32 = 1 << 9;

@inline export function isReservedMemType(mt: u32): bool {
  return mt == 2 || mt == 3 || mt == 7;
}

/** Reserved bits of a non-leaf EPT entry at `level`: 7:3 at PML4E/PML5E, 6:3 at PDPTE/PDE. */
@inline export function eptNonLeafRsvdLo(level: i32): u32 {
  return level >= 4 ? 0xf8 : 0x78;
}
