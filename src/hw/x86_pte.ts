// SPDX-License-Identifier: MIT
// x86-64 paging entries (Intel SDM vol. 3 ch. 4; AMD APM vol. 2 ch. 5), also the format of
// AMD NPT tables. One 64-bit entry is two 32-bit words:
//
//   lo: 31 ............. 12 | 11..9 |  8 |  7    |  6 | 5 |  4  |  3  |  2 |  1 | 0
//       frame bits 31:12    | avail |  G | PS/PAT|  D | A | PCD | PWT | US | RW | P
//   hi: 31 | 30..27 | 26..20  | 19 ............. 0
//       NX |  PK    | ignored | frame bits 51:32
//
// PS is bit 7 of a PDPTE (1 GiB) or PDE (2 MiB); in a PTE bit 7 is PAT. Huge leaves keep
// PAT in bit 12, so their frame starts at bit 21 (2 MiB) or 30 (1 GiB).

export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_PWT = 1 << 3;
export const PTE_PCD = 1 << 4;
export const PTE_A = 1 << 5;
export const PTE_D = 1 << 6;
export const PTE_PS = 1 << 7;
export const PTE_G = 1 << 8;
export const PTE_AVAIL_MASK = 0x7 << 9;
export const PTE_PAT_HUGE = 1 << 12;
/** In hi: execute-disable (bit 63). */
export const PTE_HI_NX = 1 << 31;
export const PTE_HI_PK_MASK = 0xf << 27;
export const PTE_HI_FRAME_MASK = 0xfffff;
export const PTE_LO_FRAME_MASK = 0xfffff000;

/** Page-fault error code bits (SDM 4.7); the access kinds of a translation use the same bits. */
export const PFERR_PRESENT = 1 << 0;
export const PFERR_WRITE = 1 << 1;
export const PFERR_USER = 1 << 2;
export const PFERR_RSVD = 1 << 3;
export const PFERR_FETCH = 1 << 4;
export const PFERR_PK = 1 << 5;

/** Frame number of an entry (4 KiB units), from its two words. */
export function entryPfn(lo: number, hi: number): number {
  return (lo >>> 12) + (hi & PTE_HI_FRAME_MASK) * 0x100000;
}

/** The low word of an entry pointing at frame `pfn` with `flags`. */
export function frameLo(pfn: number, flags: number): number {
  return (((pfn & 0xfffff) << 12) | flags) >>> 0;
}

/** The high word of an entry pointing at frame `pfn` with high flags. */
export function frameHi(pfn: number, hiFlags = 0): number {
  return ((Math.floor(pfn / 0x100000) & PTE_HI_FRAME_MASK) | hiFlags) >>> 0;
}

/** Reserved frame bits in hi for a MAXPHYADDR (bits maxPhyAddr..51 must be zero). */
export function rsvdHiMask(maxPhyAddr: number): number {
  return (PTE_HI_FRAME_MASK & ~((1 << (maxPhyAddr - 32)) - 1)) >>> 0;
}

/** Frame bits that must be zero in a huge leaf: 20:13 for 2 MiB, 29:13 for 1 GiB. */
export function hugeRsvdLoMask(level: number): number {
  if (level === 2) return 0x001fe000;
  if (level === 3) return 0x3fffe000;
  return 0;
}

export interface X86PteFields {
  pfn: number;
  present?: boolean;
  writable?: boolean;
  user?: boolean;
  pwt?: boolean;
  pcd?: boolean;
  accessed?: boolean;
  dirty?: boolean;
  huge?: boolean;
  global?: boolean;
  nx?: boolean;
  pk?: number;
}

/** Encodes an entry; returns [lo, hi]. Not for hot paths. */
export function makeX86Pte(f: X86PteFields): [number, number] {
  let flags = 0;
  if (f.present ?? true) flags |= PTE_P;
  if (f.writable) flags |= PTE_RW;
  if (f.user) flags |= PTE_US;
  if (f.pwt) flags |= PTE_PWT;
  if (f.pcd) flags |= PTE_PCD;
  if (f.accessed) flags |= PTE_A;
  if (f.dirty) flags |= PTE_D;
  if (f.huge) flags |= PTE_PS;
  if (f.global) flags |= PTE_G;
  let hiFlags = f.nx ? PTE_HI_NX : 0;
  if (f.pk) hiFlags |= (f.pk & 0xf) << 27;
  return [frameLo(f.pfn, flags), frameHi(f.pfn, hiFlags)];
}

export interface X86PteDecoded {
  present: boolean;
  writable: boolean;
  user: boolean;
  pwt: boolean;
  pcd: boolean;
  accessed: boolean;
  dirty: boolean;
  huge: boolean;
  global: boolean;
  nx: boolean;
  pk: number;
  pfn: number;
}

/** Decodes an entry at `level` (PS means "huge" only at levels 2 and 3). */
export function decodeX86Pte(lo: number, hi: number, level: number): X86PteDecoded {
  const huge = level > 1 && (lo & PTE_PS) !== 0;
  return {
    present: (lo & PTE_P) !== 0,
    writable: (lo & PTE_RW) !== 0,
    user: (lo & PTE_US) !== 0,
    pwt: (lo & PTE_PWT) !== 0,
    pcd: (lo & PTE_PCD) !== 0,
    accessed: (lo & PTE_A) !== 0,
    dirty: (lo & PTE_D) !== 0,
    huge,
    global: (lo & PTE_G) !== 0,
    nx: (hi & PTE_HI_NX) !== 0,
    pk: (hi >>> 27) & 0xf,
    // A huge leaf's bit 12 is PAT, not part of the frame.
    pfn: huge ? entryPfn(lo & ~PTE_PAT_HUGE, hi) : entryPfn(lo, hi),
  };
}

const X86_LEVEL_NAMES = ["", "PTE", "PDE", "PDPTE", "PML4E", "PML5E"];

export function x86LevelName(level: number): string {
  return X86_LEVEL_NAMES[level] ?? `L${level}`;
}

/** One-line rendering, e.g. `P RW US A D NX pfn=0x1234`. */
export function formatX86Pte(lo: number, hi: number, level: number): string {
  const d = decodeX86Pte(lo, hi, level);
  if (!d.present) return lo === 0 && hi === 0 ? "not present (empty)" : `not present (lo=0x${lo.toString(16)})`;
  const bits = ["P"];
  bits.push(d.writable ? "RW" : "RO");
  bits.push(d.user ? "US" : "S");
  if (d.pwt) bits.push("PWT");
  if (d.pcd) bits.push("PCD");
  if (d.accessed) bits.push("A");
  if (d.dirty) bits.push("D");
  if (d.huge) bits.push("PS");
  if (d.global) bits.push("G");
  if (d.nx) bits.push("NX");
  if (d.pk) bits.push(`PK=${d.pk}`);
  bits.push(`pfn=0x${d.pfn.toString(16)}`);
  return bits.join(" ");
}
