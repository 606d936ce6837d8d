// SPDX-License-Identifier: MIT
// A shadow page (struct kvm_mmu_page, arch/x86/kvm/mmu/mmu_internal.h) and its role
// (union kvm_mmu_page_role, arch/x86/include/asm/kvm_host.h). One shadow page is one 4 KiB
// table of 512 sptes in a host frame; an indirect page shadows the guest page table at
// `gfn`, a direct page maps a linear gfn range (a guest huge page KVM maps with smaller sptes).
//
// The role word, in the kernel's bit positions where the model has the field:
//
//   31 ...... 19 | 18          | 17         | 16          | 15 14             | 13     | 12     | 11      | 10..8  | 7      | 6..5     | 4               | 3..0
//   (smm, ...)   | passthrough | guest_mode | ad_disabled | smap/smep_andnot_wp | cr0_wp | efer_nx | invalid | access | direct | quadrant | has_4_byte_gpte | level
//
// simplified: only 4- and 5-level long-mode guests: has_4_byte_gpte, quadrant, the *_andnot_wp,
// guest_mode, passthrough and smm fields stay 0; `invalid` lives on the page, outside the key.

import { ACC_ALL } from "./spte.js";

/** ACC_*_MASK: the access bits of a role and of a walk (paging_tmpl.h FNAME(gpte_access)). */
export { ACC_ALL, ACC_EXEC_MASK, ACC_USER_MASK, ACC_WRITE_MASK } from "./spte.js";

export const ROLE_LEVEL_MASK = 0xf;
export const ROLE_DIRECT = 1 << 7;
export const ROLE_ACCESS_SHIFT = 8;
export const ROLE_ACCESS_MASK = 0x7 << ROLE_ACCESS_SHIFT;
export const ROLE_EFER_NX = 1 << 12;
export const ROLE_CR0_WP = 1 << 13;

/** The root role of shadow paging (kvm_init_shadow_mmu): the guest's level, all access, EFER.NX forced on. */
export function shadowRootRole(levels: number): number {
  return levels | (ACC_ALL << ROLE_ACCESS_SHIFT) | ROLE_EFER_NX | ROLE_CR0_WP;
}

/** kvm_mmu_child_role(): one level down, with the access of the walk so far. */
export function childRole(parent: number, direct: boolean, access: number): number {
  const level = (parent & ROLE_LEVEL_MASK) - 1;
  return (
    ((parent & ~(ROLE_LEVEL_MASK | ROLE_DIRECT | ROLE_ACCESS_MASK)) |
      level |
      (direct ? ROLE_DIRECT : 0) |
      (access << ROLE_ACCESS_SHIFT)) >>>
    0
  );
}

export function roleLevel(role: number): number {
  return role & ROLE_LEVEL_MASK;
}

export function roleAccess(role: number): number {
  return (role & ROLE_ACCESS_MASK) >>> ROLE_ACCESS_SHIFT;
}

export function roleDirect(role: number): boolean {
  return (role & ROLE_DIRECT) !== 0;
}

/** An spte's address as a number (the kernel's `u64 *sptep`): table frame * 512 + index. */
export function sptepOf(spt: number, idx: number): number {
  return spt * 512 + idx;
}

export function sptepTable(sptep: number): number {
  return Math.floor(sptep / 512);
}

export function sptepIndex(sptep: number): number {
  return sptep & 511;
}

const PAGES_PER_SPTE = [0, 1, 512, 512 ** 2, 512 ** 3, 512 ** 4, 512 ** 5];

/** Frames one spte at `level` covers: 1, 512, 512^2, ... */
export function pagesPerSpte(level: number): number {
  return PAGES_PER_SPTE[level]!;
}

export class KvmMmuPage {
  readonly level: number;
  readonly direct: boolean;
  /** role.access. */
  readonly access: number;
  /**
   * shadowed_translation: the gfn and the access each spte was made for (indirect pages only;
   * a direct page computes them from its gfn).
   */
  readonly sptGfn: Float64Array | null;
  readonly sptAccess: Uint8Array | null;
  /** parent_ptes: the non-leaf sptes that point at this page (sptep numbers). */
  readonly parentPtes: number[] = [];
  /** root_count: vCPU roots (current and cached) that use this page. */
  rootCount = 0;
  unsync = false;
  unsyncChildren = 0;
  readonly unsyncChildBitmap = new Uint8Array(512);
  writeFloodingCount = 0;
  /** role.invalid: zapped; kept only while a vCPU still has it as a root. */
  invalid = false;
  /** On active_mmu_pages (head = newest). */
  prev: KvmMmuPage | null = null;
  next: KvmMmuPage | null = null;
  onActiveList = false;

  constructor(
    /** A sequence number, for events and messages. */
    readonly id: number,
    readonly gfn: number,
    readonly role: number,
    /** The host frame holding the 512 sptes (sp->spt). */
    readonly spt: number,
  ) {
    this.level = roleLevel(role);
    this.direct = roleDirect(role);
    this.access = roleAccess(role);
    this.sptGfn = this.direct ? null : new Float64Array(512);
    this.sptAccess = this.direct ? null : new Uint8Array(512);
  }

  /** kvm_mmu_page_get_gfn(). */
  gfnAt(idx: number): number {
    return this.sptGfn !== null ? this.sptGfn[idx]! : this.gfn + idx * PAGES_PER_SPTE[this.level]!;
  }

  /** kvm_mmu_page_get_access(). */
  accessAt(idx: number): number {
    return this.sptAccess !== null ? this.sptAccess[idx]! : this.access;
  }

  /** kvm_mmu_page_set_translation(). */
  setTranslation(idx: number, gfn: number, access: number): void {
    if (this.sptGfn !== null) {
      this.sptGfn[idx] = gfn;
      this.sptAccess![idx] = access;
    }
  }

  /** sp_has_gptes(): an indirect page shadows a guest table (and write-protects it). */
  get hasGptes(): boolean {
    return !this.direct;
  }

  toString(): string {
    return `sp#${this.id}(gfn 0x${this.gfn.toString(16)}, level ${this.level}${this.direct ? ", direct" : ""}, access ${this.access})`;
  }
}

/** hash_64(val, bits): the top `bits` of val * GOLDEN_RATIO_64 (0x61C8864680B583EB) mod 2^64, without BigInt. */
export function hash64(val: number, bits: number): number {
  const lo = val >>> 0;
  const hi = Math.floor(val / 2 ** 32) >>> 0;
  const h = (mulhi32(lo, 0x80b583eb) + Math.imul(lo, 0x61c88646) + Math.imul(hi, 0x80b583eb)) >>> 0;
  return h >>> (32 - bits);
}

/** The high 32 bits of the 64-bit product of two unsigned 32-bit numbers. */
function mulhi32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const mid1 = a1 * b0;
  const mid2 = a0 * b1;
  const carry = (((a0 * b0) >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (a1 * b1 + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
}
