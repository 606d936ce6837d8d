// SPDX-License-Identifier: MIT
// How KVM composes its sptes (arch/x86/kvm/mmu/spte.c make_spte(), make_nonleaf_spte(),
// mark_spte_for_access_track()) in the two hardware formats the TDP MMU writes: EPT
// (see hw/ept_pte.ts for the layout) and the x86 format NPT uses. Software bits:
//   EPT:  bit 11 MMU-present, 54/56 saved R/X, 57 host-writable, 58 MMU-writable
//   x86:  bit 11 MMU-present, 9 host-writable, 10 MMU-writable (bits 9-11 are ignored by hardware)

import {
  EPT_A,
  EPT_D,
  EPT_IPAT,
  EPT_PS,
  EPT_R,
  EPT_RWX,
  EPT_W,
  EPT_X,
  MT_WB,
  SPTE_HI_HOST_WRITABLE,
  SPTE_HI_MMU_WRITABLE,
  SPTE_HI_SAVED_R,
  SPTE_HI_SAVED_X,
  SPTE_MMU_PRESENT,
} from "../hw/ept_pte.js";
import { PTE_A, PTE_D, PTE_P, PTE_PS, PTE_RW, PTE_US, frameHi, frameLo } from "../hw/x86_pte.js";

/** x86-format (NPT, shadow) software bits (DEFAULT_SPTE_HOST_WRITABLE, DEFAULT_SPTE_MMU_WRITABLE). */
export const X86_SPTE_HOST_WRITABLE = 1 << 9;
export const X86_SPTE_MMU_WRITABLE = 1 << 10;

export type SpteFormat = "ept" | "x86";

/** An spte is shadow-present if KVM's MMU-present bit is set (is_shadow_present_pte). */
export function isShadowPresent(lo: number): boolean {
  return (lo & SPTE_MMU_PRESENT) !== 0;
}

export function isLargeSpte(fmt: SpteFormat, lo: number): boolean {
  return (lo & (fmt === "ept" ? EPT_PS : PTE_PS)) !== 0;
}

export function isLeafSpte(fmt: SpteFormat, lo: number, level: number): boolean {
  return level === 1 || isLargeSpte(fmt, lo);
}

export function spteWritable(fmt: SpteFormat, lo: number): boolean {
  return (lo & (fmt === "ept" ? EPT_W : PTE_RW)) !== 0;
}

export function spteAccessed(fmt: SpteFormat, lo: number): boolean {
  return (lo & (fmt === "ept" ? EPT_A : PTE_A)) !== 0;
}

/** Access-tracked: present to KVM but RWX cleared (EPT without A/D), is_access_track_spte(). */
export function isAccessTracked(fmt: SpteFormat, lo: number, hi: number): boolean {
  return fmt === "ept" && (lo & EPT_RWX) === 0 && (hi & (SPTE_HI_SAVED_R | SPTE_HI_SAVED_X)) !== 0;
}

export interface LeafSpteArgs {
  pfn: number;
  level: number;
  writable: boolean;
  hostWritable: boolean;
  /** Set A (and D when writable) as make_spte() does unless prefetching. */
  accessed: boolean;
  /** A/D bits in use (EPT with EPTP A/D, or x86 format). */
  ad: boolean;
}

/** make_spte() for a leaf: returns [lo, hi]. */
export function makeLeafSpte(fmt: SpteFormat, a: LeafSpteArgs): [number, number] {
  let lo: number;
  let hiFlags = 0;
  if (fmt === "ept") {
    lo = SPTE_MMU_PRESENT | EPT_R | EPT_X | (MT_WB << 3) | EPT_IPAT;
    if (a.level > 1) lo |= EPT_PS;
    if (a.writable) lo |= EPT_W;
    if (a.accessed && a.ad) lo |= EPT_A | (a.writable ? EPT_D : 0);
    if (a.hostWritable) hiFlags |= SPTE_HI_HOST_WRITABLE;
    if (a.writable) hiFlags |= SPTE_HI_MMU_WRITABLE;
  } else {
    lo = SPTE_MMU_PRESENT | PTE_P | PTE_US;
    if (a.level > 1) lo |= PTE_PS;
    if (a.writable) lo |= PTE_RW | X86_SPTE_MMU_WRITABLE;
    if (a.accessed) lo |= PTE_A | (a.writable ? PTE_D : 0);
    if (a.hostWritable) lo |= X86_SPTE_HOST_WRITABLE;
  }
  return [frameLo(a.pfn, lo), frameHi(a.pfn, hiFlags)];
}

/** make_nonleaf_spte(): a present, fully permissive pointer to a child table. */
export function makeNonLeafSpte(fmt: SpteFormat, childPfn: number, ad: boolean): [number, number] {
  const flags =
    fmt === "ept" ? SPTE_MMU_PRESENT | EPT_R | EPT_W | EPT_X | (ad ? EPT_A : 0) : SPTE_MMU_PRESENT | PTE_P | PTE_RW | PTE_US | PTE_A;
  return [frameLo(childPfn, flags), frameHi(childPfn)];
}

/**
 * mark_spte_for_access_track() for EPT without A/D: save R and X in bits 54/56 and clear RWX,
 * so the next access faults and fast_page_fault() restores them. W is not saved.
 */
export function markForAccessTrack(lo: number, hi: number): [number, number] {
  const saved = ((lo & EPT_R) !== 0 ? SPTE_HI_SAVED_R : 0) | ((lo & EPT_X) !== 0 ? SPTE_HI_SAVED_X : 0);
  return [(lo & ~EPT_RWX) >>> 0, (hi | saved) >>> 0];
}

/** restore_acc_track_spte(): R and X back from the saved bits. */
export function restoreAccessTrack(lo: number, hi: number): [number, number] {
  const r = (hi & SPTE_HI_SAVED_R) !== 0 ? EPT_R : 0;
  const x = (hi & SPTE_HI_SAVED_X) !== 0 ? EPT_X : 0;
  return [(lo | r | x) >>> 0, (hi & ~(SPTE_HI_SAVED_R | SPTE_HI_SAVED_X)) >>> 0];
}

/** Clears the accessed bit (the aging side of kvm_age_gfn with A/D bits). */
export function clearAccessed(fmt: SpteFormat, lo: number): number {
  return (lo & ~(fmt === "ept" ? EPT_A : PTE_A)) >>> 0;
}

export function spteDirty(fmt: SpteFormat, lo: number): boolean {
  return (lo & (fmt === "ept" ? EPT_D : PTE_D)) !== 0;
}
