// SPDX-License-Identifier: MIT
// Intel EPT entries (SDM vol. 3 ch. 29) and KVM's software bits in them (arch/x86/kvm/mmu/spte.h).
//
//   lo: 31 ........... 12 | 11   | 10 | 9 | 8 |  7 |   6  | 5..3 | 2 | 1 | 0
//       frame bits 31:12  | MMU- | XU | D | A | PS | IPAT |  MT  | X | W | R
//                         |present (KVM)
//   hi: 31  | 30..27 | 26        | 25         | 24      | 23 | 22      | 21..20  | 19 ......... 0
//       SVE | ign.   | MMU-wr.   | host-wr.   | saved X |    | saved R | A/D type| frame bits 51:32
//
// SVE = suppress #VE (bit 63). Bits 52..58 (hi 20..26) are ignored by hardware and used by KVM:
// A/D type (52-53), saved R (54) and X (56) for access tracking, host-writable (57),
// MMU-writable (58).

export const EPT_R = 1 << 0;
export const EPT_W = 1 << 1;
export const EPT_X = 1 << 2;
export const EPT_RWX = EPT_R | EPT_W | EPT_X;
export const EPT_MT_SHIFT = 3;
export const EPT_MT_MASK = 0x7 << EPT_MT_SHIFT;
export const EPT_IPAT = 1 << 6;
export const EPT_PS = 1 << 7;
export const EPT_A = 1 << 8;
export const EPT_D = 1 << 9;
export const EPT_XU = 1 << 10;
/** KVM: SPTE_MMU_PRESENT_MASK (bit 11). */
export const SPTE_MMU_PRESENT = 1 << 11;

/** In hi: suppress #VE (bit 63). */
export const EPT_HI_SVE = 1 << 31;
/** In hi: KVM's A/D type field (bits 52-53). */
export const SPTE_HI_AD_SHIFT = 20;
export const SPTE_HI_AD_MASK = 0x3 << 20;
/** In hi: KVM's saved R (bit 54) and X (bit 56) of an access-tracked SPTE. */
export const SPTE_HI_SAVED_R = 1 << 22;
export const SPTE_HI_SAVED_X = 1 << 24;
/** In hi: KVM's host-writable (bit 57) and MMU-writable (bit 58). */
export const SPTE_HI_HOST_WRITABLE = 1 << 25;
export const SPTE_HI_MMU_WRITABLE = 1 << 26;

/** Memory types (SDM 11.3); 2, 3 and 7 are reserved and make a leaf misconfigured. */
export const MT_UC = 0;
export const MT_WC = 1;
export const MT_WT = 4;
export const MT_WP = 5;
export const MT_WB = 6;
const MT_NAMES = ["UC", "WC", "rsvd2", "rsvd3", "WT", "WP", "WB", "rsvd7"];

export function isReservedMemType(mt: number): boolean {
  return mt === 2 || mt === 3 || mt === 7;
}

/** Reserved bits of a non-leaf EPT entry at `level`: 7:3 at PML4E/PML5E, 6:3 at PDPTE/PDE. */
export function eptNonLeafRsvdLo(level: number): number {
  return level >= 4 ? 0xf8 : 0x78;
}

export interface EptPteFields {
  pfn: number;
  r?: boolean;
  w?: boolean;
  x?: boolean;
  memType?: number;
  ipat?: boolean;
  huge?: boolean;
  accessed?: boolean;
  dirty?: boolean;
  xu?: boolean;
  sve?: boolean;
}

/** Encodes an EPT entry; returns [lo, hi]. Not for hot paths. */
export function makeEptPte(f: EptPteFields): [number, number] {
  let lo = 0;
  if (f.r ?? true) lo |= EPT_R;
  if (f.w) lo |= EPT_W;
  if (f.x) lo |= EPT_X;
  lo |= ((f.memType ?? 0) & 7) << EPT_MT_SHIFT;
  if (f.ipat) lo |= EPT_IPAT;
  if (f.huge) lo |= EPT_PS;
  if (f.accessed) lo |= EPT_A;
  if (f.dirty) lo |= EPT_D;
  if (f.xu) lo |= EPT_XU;
  lo = (((f.pfn & 0xfffff) << 12) | lo) >>> 0;
  const hi = ((Math.floor(f.pfn / 0x100000) & 0xfffff) | (f.sve ? EPT_HI_SVE : 0)) >>> 0;
  return [lo, hi];
}

export interface EptPteDecoded {
  r: boolean;
  w: boolean;
  x: boolean;
  memType: number;
  ipat: boolean;
  huge: boolean;
  accessed: boolean;
  dirty: boolean;
  xu: boolean;
  sve: boolean;
  pfn: number;
}

export function decodeEptPte(lo: number, hi: number, level: number): EptPteDecoded {
  return {
    r: (lo & EPT_R) !== 0,
    w: (lo & EPT_W) !== 0,
    x: (lo & EPT_X) !== 0,
    memType: (lo & EPT_MT_MASK) >>> EPT_MT_SHIFT,
    ipat: (lo & EPT_IPAT) !== 0,
    huge: level > 1 && (lo & EPT_PS) !== 0,
    accessed: (lo & EPT_A) !== 0,
    dirty: (lo & EPT_D) !== 0,
    xu: (lo & EPT_XU) !== 0,
    sve: (hi & EPT_HI_SVE) !== 0,
    pfn: (lo >>> 12) + (hi & 0xfffff) * 0x100000,
  };
}

const EPT_LEVEL_NAMES = ["", "EPT PTE", "EPT PDE", "EPT PDPTE", "EPT PML4E", "EPT PML5E"];

export function eptLevelName(level: number): string {
  return EPT_LEVEL_NAMES[level] ?? `EPT L${level}`;
}

/** One-line rendering, e.g. `R W X WB IPAT A D pfn=0x1234`. */
export function formatEptPte(lo: number, hi: number, level: number): string {
  const d = decodeEptPte(lo, hi, level);
  if (!d.r && !d.w && !d.x) return lo === 0 && hi === 0 ? "not present (empty)" : `not present (lo=0x${lo.toString(16)})`;
  const bits: string[] = [];
  bits.push(d.r ? "R" : "-", d.w ? "W" : "-", d.x ? "X" : "-");
  const leaf = level === 1 || d.huge;
  if (leaf) bits.push(MT_NAMES[d.memType]!);
  if (d.ipat) bits.push("IPAT");
  if (d.huge) bits.push("PS");
  if (d.accessed) bits.push("A");
  if (d.dirty) bits.push("D");
  if (d.xu) bits.push("XU");
  if (d.sve) bits.push("SVE");
  bits.push(`pfn=0x${d.pfn.toString(16)}`);
  return bits.join(" ");
}
