// SPDX-License-Identifier: MIT
// What an MMU is built with: paging mode, levels, MAXPHYADDR, and the geometry of its TLBs and
// paging-structure caches, with the defaults of current Intel and AMD cores.

import type { CacheGeometry } from "./assoc_cache.js";
import type { PagingMode } from "./mmu_defs.js";

export interface TlbConfig {
  "4k": CacheGeometry;
  /** "shared": 2 MiB entries live in the 4 KiB array (as in a unified STLB). */
  "2m": CacheGeometry | "shared";
  /** null: 1 GiB translations are cached as 2 MiB ones ("smashed"). */
  "1g": CacheGeometry | null;
}

export interface MmuConfig {
  paging: PagingMode;
  guestLevels: 4 | 5;
  /** Levels of the EPT/NPT tables; ignored natively. */
  nestedLevels: 4 | 5;
  /** Physical-address width; frame bits above it are reserved. */
  maxPhyAddr: number;
  /** EPTP bit 6: EPT accessed/dirty flags. NPT always has them. */
  eptAd: boolean;
  /** null: no TLB (every access walks). */
  tlb: TlbConfig | null;
  /** Guest paging-structure caches (combined, gva prefix -> table hpa), by level 2..5; null: off. */
  psc: { pde: CacheGeometry; pdpte: CacheGeometry; pml4e: CacheGeometry; pml5e: CacheGeometry } | null;
  /** Nested TLB (gpa -> hpa, "guest-physical mappings"); null: off. */
  nestedTlb: CacheGeometry | null;
  /** Nested paging-structure caches (gpa prefix -> EPT/NPT table hpa); null: off. */
  nestedPsc: { pde: CacheGeometry; pdpte: CacheGeometry; pml4e: CacheGeometry; pml5e: CacheGeometry } | null;
}

/** Intel Golden Cove STLB: 2048 entries, 16-way, 4 KiB and 2 MiB shared; 1 GiB: 1024 entries, 8-way. */
export const TLB_INTEL_GOLDEN_COVE: TlbConfig = { "4k": { sets: 128, ways: 16 }, "2m": "shared", "1g": { sets: 128, ways: 8 } };
/** AMD Zen 4 L2 DTLB: 3072 entries, 24-way, 4 KiB and 2 MiB; 1 GiB pages only in the 72-entry fully associative L1 DTLB. */
export const TLB_AMD_ZEN4: TlbConfig = { "4k": { sets: 128, ways: 24 }, "2m": "shared", "1g": { sets: 1, ways: 72 } };
/** Paging-structure cache sizes (not documented by the vendors; the small caches of Barr et al., ISCA 2010). */
export const PSC_DEFAULT = {
  pde: { sets: 8, ways: 4 },
  pdpte: { sets: 1, ways: 4 },
  pml4e: { sets: 1, ways: 2 },
  pml5e: { sets: 1, ways: 2 },
};
export const NESTED_TLB_DEFAULT: CacheGeometry = { sets: 16, ways: 4 };

export function defaultMmuConfig(paging: PagingMode, over: Partial<MmuConfig> = {}): MmuConfig {
  return {
    paging,
    guestLevels: 4,
    nestedLevels: 4,
    maxPhyAddr: 46,
    eptAd: true,
    tlb: TLB_INTEL_GOLDEN_COVE,
    psc: PSC_DEFAULT,
    nestedTlb: paging === "native" ? null : NESTED_TLB_DEFAULT,
    nestedPsc: paging === "native" ? null : PSC_DEFAULT,
    ...over,
  };
}
