// SPDX-License-Identifier: MIT
// The x86-64 paging rules both walkers of guest tables apply: the hardware's (walk_guest.ts)
// and KVM's software walk (kvm/guest_walker.ts, FNAME(walk_addr_generic)). Reserved bits
// (SDM 4.5, KVM's is_rsvd_bits_set), access rights (SDM 4.6, permission_fault) and the #PF
// error code (SDM 4.7). Access kinds are PFERR_WRITE / PFERR_USER / PFERR_FETCH bits.

import { PFERR_FETCH, PFERR_USER, PFERR_WRITE, PTE_HI_NX, PTE_PS, hugeRsvdLoMask } from "./x86_pte.js";

/** A present entry at `level` maps a page (PTE, or PS in a PDE/PDPTE) rather than a table. */
export function isX86Leaf(lo: number, level: number): boolean {
  return level === 1 || ((lo & PTE_PS) !== 0 && level <= 3);
}

/**
 * A present entry with reserved bits set: frame bits at or above MAXPHYADDR (`rsvdHi`, from
 * rsvdHiMask), NX without EFER.NXE, PS in a PML4E/PML5E, or a huge leaf's frame not aligned.
 */
export function isRsvdGpte(lo: number, hi: number, level: number, leaf: boolean, rsvdHi: number, nxe: boolean): boolean {
  return (
    (hi & rsvdHi) !== 0 ||
    (!nxe && (hi & PTE_HI_NX) !== 0) ||
    (level >= 4 && (lo & PTE_PS) !== 0) ||
    (leaf && (lo & hugeRsvdLoMask(level)) !== 0)
  );
}

/**
 * permission_fault(): whether an access of kind `access` is denied by the rights the walk
 * accumulated (w: writable all the way, u: user all the way, x: executable; 0 is no), with
 * CR0.WP, CR4.SMEP and CR4.SMAP (SMAP without EFLAGS.AC).
 */
export function isPermissionFault(access: number, w: number, u: number, x: number, cr0Wp: boolean, smep: boolean, smap: boolean): boolean {
  const write = (access & PFERR_WRITE) !== 0;
  const fetch = (access & PFERR_FETCH) !== 0;
  if ((access & PFERR_USER) !== 0) return u === 0 || (write && w === 0) || (fetch && x === 0);
  if (write && w === 0 && cr0Wp) return true;
  if (fetch) return x === 0 || (u !== 0 && smep);
  return u !== 0 && smap;
}

/** The #PF error code: `bits` (P, RSVD) with the access's W and U, and I/D when NX or SMEP is on. */
export function pfErrorCode(bits: number, access: number, nxe: boolean, smep: boolean): number {
  let ec = bits | (access & (PFERR_WRITE | PFERR_USER));
  if ((access & PFERR_FETCH) !== 0 && (nxe || smep)) ec |= PFERR_FETCH;
  return ec;
}
