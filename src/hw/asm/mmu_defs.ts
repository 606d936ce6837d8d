// SPDX-License-Identifier: MIT
// ../mmu_defs.ts: access kinds, outcomes, EPT violation qualification, #NPF EXITINFO1 bits.

export const ACC_READ: i32 = 0;
export const ACC_WRITE: i32 = 1 << 1;
export const ACC_USER: i32 = 1 << 2;
export const ACC_FETCH: i32 = 1 << 4;

export const XLATE_OK: i32 = 0;
export const XLATE_GUEST_PF: i32 = 1;
export const XLATE_EPT_VIOLATION: i32 = 2;
export const XLATE_EPT_MISCONFIG: i32 = 3;
export const XLATE_NPF: i32 = 4;
export const XLATE_PML_FULL: i32 = 5;
export const PML_LOG_NR_ENTRIES: i32 = 512;

export const EPTQ_READ: i32 = 1 << 0;
export const EPTQ_WRITE: i32 = 1 << 1;
export const EPTQ_FETCH: i32 = 1 << 2;
export const EPTQ_READABLE: i32 = 1 << 3;
export const EPTQ_WRITABLE: i32 = 1 << 4;
export const EPTQ_EXECUTABLE: i32 = 1 << 5;
export const EPTQ_GLA_VALID: i32 = 1 << 7;
export const EPTQ_GLA_FINAL: i32 = 1 << 8;

export const NPF_FINAL: f64 = 4294967296; // 2^32
export const NPF_GUEST_TABLE: f64 = 8589934592; // 2^33

/** Why an EPT entry is misconfigured (MmuState.faultReason; ../wasm_mmu.ts gives the words). */
export const MISCONFIG_WRITE_NO_READ: i32 = 1;
export const MISCONFIG_ABOVE_MAXPHYADDR: i32 = 2;
export const MISCONFIG_HUGE_UNALIGNED: i32 = 3;
export const MISCONFIG_NONLEAF_7_3: i32 = 4;
export const MISCONFIG_NONLEAF_6_3: i32 = 5;
/** Reserved memory type mt: MISCONFIG_MEMTYPE + mt. */
export const MISCONFIG_MEMTYPE: i32 = 8;
