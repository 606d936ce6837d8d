// SPDX-License-Identifier: MIT
// ../x86_rules.ts: reserved bits (is_rsvd_bits_set), access rights (permission_fault) and the
// #PF error code (SDM 4.5-4.7).

import { PFERR_FETCH, PFERR_USER, PFERR_WRITE, PTE_HI_NX, PTE_PS, hugeRsvdLoMask } from "./x86_pte";

@inline export function isX86Leaf(lo: u32, level: i32): bool {
  return level == 1 || ((lo & PTE_PS) != 0 && level <= 3);
}

@inline export function isRsvdGpte(lo: u32, hi: u32, level: i32, leaf: bool, rsvdHi: u32, nxe: bool): bool {
  return (
    (hi & rsvdHi) != 0 ||
    (!nxe && (hi & PTE_HI_NX) != 0) ||
    (level >= 4 && (lo & PTE_PS) != 0) ||
    (leaf && (lo & hugeRsvdLoMask(level)) != 0)
  );
}

export function isPermissionFault(access: i32, w: i32, u: i32, x: i32, cr0Wp: bool, smep: bool, smap: bool): bool {
  const write = (access & PFERR_WRITE) != 0;
  const fetch = (access & PFERR_FETCH) != 0;
  if ((access & PFERR_USER) != 0) return u == 0 || (write && w == 0) || (fetch && x == 0);
  if (write && w == 0 && cr0Wp) return true;
  if (fetch) return x == 0 || (u != 0 && smep);
  return u != 0 && smap;
}

export function pfErrorCode(bits: i32, access: i32, nxe: bool, smep: bool): i32 {
  let ec = bits | (access & (PFERR_WRITE | PFERR_USER));
  if ((access & PFERR_FETCH) != 0 && (nxe || smep)) ec |= PFERR_FETCH;
  return ec;
}
