// SPDX-License-Identifier: MIT
// KVM's spte format (arch/x86/kvm/mmu/spte.h, spte.c): one set of helpers for both MMUs, the
// hardware format chosen by masks as KVM chooses its shadow_*_mask at setup
// (kvm_mmu_set_ept_masks() for EPT, kvm_mmu_reset_all_pte_masks() for the x86 format that NPT
// and shadow paging use). See hw/ept_pte.ts and hw/x86_pte.ts for the layouts. Software bits:
//   EPT:  lo 11 MMU-present; hi 22/24 (bits 54/56) saved R/X, 25 (57) host-writable, 26 (58) MMU-writable
//   x86:  lo 11 MMU-present, 9 host-writable, 10 MMU-writable (bits 9-11 are ignored by hardware)
// A leaf: level 1, or PS at levels 2-3 (x86: bit 12 is then PAT, so the frame starts at bit 21 or 30).

import { INV_LEVEL_SIZE } from "../hw/addr.js";
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
import { PTE_A, PTE_D, PTE_HI_NX, PTE_P, PTE_PAT_HUGE, PTE_PS, PTE_RW, PTE_US, entryPfn, frameHi, frameLo } from "../hw/x86_pte.js";

/** x86-format (NPT, shadow) software bits (DEFAULT_SPTE_HOST_WRITABLE, DEFAULT_SPTE_MMU_WRITABLE). */
export const X86_SPTE_HOST_WRITABLE = 1 << 9;
export const X86_SPTE_MMU_WRITABLE = 1 << 10;

/** ACC_* access bits of a leaf (mmu.h: ACC_EXEC_MASK, ACC_WRITE_MASK, ACC_USER_MASK). */
export const ACC_EXEC_MASK = 1;
export const ACC_WRITE_MASK = 2;
export const ACC_USER_MASK = 4;
export const ACC_ALL = ACC_EXEC_MASK | ACC_WRITE_MASK | ACC_USER_MASK;

export type SpteFormat = "ept" | "x86";

/** KVM's shadow_*_mask values for one format; words are the spte's lo and hi halves. */
export interface SpteMasks {
  readonly fmt: SpteFormat;
  /** shadow_present_mask (EPT: R; x86: P). */
  readonly present: number;
  /** shadow_user_mask (EPT: R again; x86: US). */
  readonly user: number;
  /** shadow_x_mask (EPT: X) and shadow_nx_mask (x86: NX, in hi). */
  readonly x: number;
  readonly nxHi: number;
  /** PT_WRITABLE_MASK (bit 1 in both formats). */
  readonly writable: number;
  /** shadow_accessed_mask, shadow_dirty_mask: 0 for EPT without A/D. */
  readonly accessed: number;
  readonly dirty: number;
  /** PT_PAGE_SIZE_MASK. */
  readonly large: number;
  /** The memory type of a leaf (kvm_mmu_get_mt_mask(): EPT WB + IPAT). */
  readonly memtype: number;
  /** The frame bit a huge leaf reuses (x86 PAT), cleared to read its frame. */
  readonly hugePat: number;
  /** shadow_host_writable_mask and shadow_mmu_writable_mask, split over the halves. */
  readonly hostWritableLo: number;
  readonly hostWritableHi: number;
  readonly mmuWritableLo: number;
  readonly mmuWritableHi: number;
}

/** kvm_mmu_set_ept_masks(has_ad_bits). */
export function eptMasks(ad: boolean): SpteMasks {
  return {
    fmt: "ept",
    present: EPT_R,
    user: EPT_R,
    x: EPT_X,
    nxHi: 0,
    writable: EPT_W,
    accessed: ad ? EPT_A : 0,
    dirty: ad ? EPT_D : 0,
    large: EPT_PS,
    memtype: (MT_WB << 3) | EPT_IPAT,
    hugePat: 0,
    hostWritableLo: 0,
    hostWritableHi: SPTE_HI_HOST_WRITABLE,
    mmuWritableLo: 0,
    mmuWritableHi: SPTE_HI_MMU_WRITABLE,
  };
}

/** kvm_mmu_reset_all_pte_masks(): the x86 format (NPT, shadow paging). */
export const X86_MASKS: SpteMasks = {
  fmt: "x86",
  present: PTE_P,
  user: PTE_US,
  x: 0,
  nxHi: PTE_HI_NX,
  writable: PTE_RW,
  accessed: PTE_A,
  dirty: PTE_D,
  large: PTE_PS,
  memtype: 0,
  hugePat: PTE_PAT_HUGE,
  hostWritableLo: X86_SPTE_HOST_WRITABLE,
  hostWritableHi: 0,
  mmuWritableLo: X86_SPTE_MMU_WRITABLE,
  mmuWritableHi: 0,
};

/** An spte is shadow-present if KVM's MMU-present bit is set (is_shadow_present_pte). */
export function isShadowPresent(lo: number): boolean {
  return (lo & SPTE_MMU_PRESENT) !== 0;
}

export function isLargeSpte(m: SpteMasks, lo: number): boolean {
  return (lo & m.large) !== 0;
}

/** is_last_spte(). */
export function isLastSpte(m: SpteMasks, lo: number, level: number): boolean {
  return level === 1 || (lo & m.large) !== 0;
}

export function spteWritable(m: SpteMasks, lo: number): boolean {
  return (lo & m.writable) !== 0;
}

/** is_mmu_writable_spte(). */
export function isMmuWritable(m: SpteMasks, lo: number, hi: number): boolean {
  return (lo & m.mmuWritableLo) !== 0 || (hi & m.mmuWritableHi) !== 0;
}

/** The host-writable software bit (shadow_host_writable_mask). */
export function isHostWritable(m: SpteMasks, lo: number, hi: number): boolean {
  return (lo & m.hostWritableLo) !== 0 || (hi & m.hostWritableHi) !== 0;
}

export function spteAccessed(m: SpteMasks, lo: number): boolean {
  return (lo & m.accessed) !== 0;
}

/** Clears the accessed bit (the aging side of kvm_age_gfn with A/D bits). */
export function clearAccessed(m: SpteMasks, lo: number): number {
  return (lo & ~m.accessed) >>> 0;
}

/** The frame of a present leaf spte (a huge leaf's base), or -1 if lo is not one. */
export function leafPfn(m: SpteMasks, lo: number, hi: number, level: number): number {
  if (!isShadowPresent(lo) || !isLastSpte(m, lo, level)) return -1;
  return sptePfn(m, lo, hi, level);
}

/** The frame in an spte (huge leaves: the base of the huge page). */
export function sptePfn(m: SpteMasks, lo: number, hi: number, level: number): number {
  return entryPfn(level > 1 ? lo & ~m.hugePat : lo, hi);
}

/**
 * The leaf-change rule both writers enforce (handle_changed_spte()'s "present leaf changed pfn"
 * warning): a present leaf may not point at another frame without being zapped first.
 */
export function isForbiddenLeafChange(oldPfn: number, newPfn: number): boolean {
  return oldPfn !== -1 && newPfn !== -1 && oldPfn !== newPfn;
}

/**
 * make_spte()'s composition of a leaf: `access` is ACC_* after KVM's checks (write only if
 * host-writable and not write-protected); D only with write access and `dirty`.
 * The result is in spteOut[0] (lo) and spteOut[1] (hi).
 */
export function makeSpte(
  m: SpteMasks,
  pfn: number,
  level: number,
  access: number,
  accessed: boolean,
  dirty: boolean,
  hostWritable: boolean,
): void {
  let lo = SPTE_MMU_PRESENT | m.present | m.memtype;
  let hi = 0;
  if (level > 1) lo |= m.large;
  if ((access & ACC_EXEC_MASK) !== 0) lo |= m.x;
  else hi |= m.nxHi;
  if ((access & ACC_USER_MASK) !== 0) lo |= m.user;
  if (hostWritable) {
    lo |= m.hostWritableLo;
    hi |= m.hostWritableHi;
  }
  if ((access & ACC_WRITE_MASK) !== 0) {
    lo |= m.writable | m.mmuWritableLo;
    hi |= m.mmuWritableHi;
    if (dirty) lo |= m.dirty;
  }
  if (accessed) lo |= m.accessed;
  spteOut[0] = frameLo(pfn, lo);
  spteOut[1] = frameHi(pfn, hi);
}

/** makeSpte()'s and makeNonLeafSpte()'s result: [lo, hi]. */
export const spteOut: [number, number] = [0, 0];

/** make_nonleaf_spte(): a present, fully permissive pointer to a child table. */
export function makeNonLeafSpte(m: SpteMasks, childPfn: number): [number, number] {
  const flags = SPTE_MMU_PRESENT | m.present | m.writable | m.user | m.x | m.accessed;
  return [frameLo(childPfn, flags), frameHi(childPfn)];
}

/** Access-tracked: present to KVM but RWX cleared (EPT without A/D), is_access_track_spte(). */
export function isAccessTracked(m: SpteMasks, lo: number, hi: number): boolean {
  return m.fmt === "ept" && (lo & EPT_RWX) === 0 && (hi & (SPTE_HI_SAVED_R | SPTE_HI_SAVED_X)) !== 0;
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

/** The index of gva in a table at `level`. */
export function indexAt(gva: number, level: number): number {
  return Math.floor(gva * INV_LEVEL_SIZE[level]!) & 511;
}
