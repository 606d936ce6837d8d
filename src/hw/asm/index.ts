// SPDX-License-Identifier: MIT
// The translation core's exports: the entry points, the cache operations JS needs for
// invalidation, and the byte offsets of every field JS reads or writes (S_* in MmuState, H_* in
// HwStats, C_* in AssocCache, L_* in a log step), so the layout is stated once, here.

import {
  AssocCache,
  E_AUX,
  E_CTX,
  E_KEY,
  E_PCID,
  E_PERM,
  E_VALUE,
  ENTRY_BYTES,
  MATCH_CTX,
  MATCH_LIVE,
  MATCH_PCID,
  MATCH_PCID_LOCAL,
} from "./assoc_cache";
import { HwStats, LOG_CAPACITY, LOG_OFFSET, LOG_STEP_BYTES, LogStep, MMU_STATE_BYTES, MmuState, PML_OFFSET, STATS_OFFSET } from "./mmu_state";

export { cacheBytes, cacheInit, countValid, invalidateKey, invalidateWhere } from "./assoc_cache";
export { access, accessBatch, accessPhys, computeTlbPerms, probe, probePhys } from "./mmu";
export { ACC_WRITE as DC_WRITE, CACHE_MASK as DC_CACHE_MASK, dataCheckRun, LEAF_MASK as DC_LEAF_MASK, UNKNOWN_I32 as DC_UNKNOWN } from "./data_check";
export { setPhysMem } from "./phys_mem";
export { fillChase, fillSequential, fillUniform, fillZipf } from "./draws";

/** End of the module's own data: JS keeps the memory below it out of its allocations. */
export function heapBase(): usize {
  return __heap_base;
}

export const MMU_BYTES = MMU_STATE_BYTES;
export const STATS = STATS_OFFSET;
export const LOG = LOG_OFFSET;
export const LOG_STEP = LOG_STEP_BYTES;
export const LOG_CAP = LOG_CAPACITY;
export const PML = PML_OFFSET;
export const M_LIVE = MATCH_LIVE;
export const M_PCID = MATCH_PCID;
export const M_PCID_LOCAL = MATCH_PCID_LOCAL;
export const M_CTX = MATCH_CTX;

export const S_hpa = offsetof<MmuState>("hpa");
export const S_gpa = offsetof<MmuState>("gpa");
export const S_pageSize = offsetof<MmuState>("pageSize");
export const S_errorCode = offsetof<MmuState>("errorCode");
export const S_faultGva = offsetof<MmuState>("faultGva");
export const S_faultGpa = offsetof<MmuState>("faultGpa");
export const S_exitQual = offsetof<MmuState>("exitQual");
export const S_faultLevel = offsetof<MmuState>("faultLevel");
export const S_faultReason = offsetof<MmuState>("faultReason");
export const S_batchResult = offsetof<MmuState>("batchResult");
export const S_cr3Frame = offsetof<MmuState>("cr3Frame");
export const S_cr0Wp = offsetof<MmuState>("cr0Wp");
export const S_efeNxe = offsetof<MmuState>("efeNxe");
export const S_cr4Pge = offsetof<MmuState>("cr4Pge");
export const S_smep = offsetof<MmuState>("smep");
export const S_smap = offsetof<MmuState>("smap");
export const S_nestedRoot = offsetof<MmuState>("nestedRoot");
export const S_ctxTag = offsetof<MmuState>("ctxTag");
export const S_pcidTag = offsetof<MmuState>("pcidTag");
export const S_eptTag = offsetof<MmuState>("eptTag");
export const S_nested = offsetof<MmuState>("nested");
export const S_isEpt = offsetof<MmuState>("isEpt");
export const S_eptAd = offsetof<MmuState>("eptAd");
export const S_nestedAd = offsetof<MmuState>("nestedAd");
export const S_guestLevels = offsetof<MmuState>("guestLevels");
export const S_nestedLevels = offsetof<MmuState>("nestedLevels");
export const S_rsvdHi = offsetof<MmuState>("rsvdHi");
export const S_logOn = offsetof<MmuState>("logOn");
export const S_logCount = offsetof<MmuState>("logCount");
export const S_pmlOn = offsetof<MmuState>("pmlOn");
export const S_pmlIndex = offsetof<MmuState>("pmlIndex");
export const S_tlb4k = offsetof<MmuState>("tlb4k");
export const S_tlb2m = offsetof<MmuState>("tlb2m");
export const S_tlb1g = offsetof<MmuState>("tlb1g");
export const S_nestedTlb = offsetof<MmuState>("nestedTlb");
export const S_psc2 = offsetof<MmuState>("psc2");
export const S_nestedPsc2 = offsetof<MmuState>("nestedPsc2");

export const H_tlbHits = offsetof<HwStats>("tlbHits");
export const H_tlbMisses = offsetof<HwStats>("tlbMisses");
export const H_walks = offsetof<HwStats>("walks");
export const H_guestTableReads = offsetof<HwStats>("guestTableReads");
export const H_nestedTableReads = offsetof<HwStats>("nestedTableReads");
export const H_walkDataAccesses = offsetof<HwStats>("walkDataAccesses");
export const H_adWrites = offsetof<HwStats>("adWrites");
export const H_nestedAdWrites = offsetof<HwStats>("nestedAdWrites");
export const H_pscHits = offsetof<HwStats>("pscHits");
export const H_pscMisses = offsetof<HwStats>("pscMisses");
export const H_nestedTlbHits = offsetof<HwStats>("nestedTlbHits");
export const H_nestedTlbMisses = offsetof<HwStats>("nestedTlbMisses");
export const H_nestedPscHits = offsetof<HwStats>("nestedPscHits");
export const H_nestedPscMisses = offsetof<HwStats>("nestedPscMisses");
export const H_guestPageFaults = offsetof<HwStats>("guestPageFaults");
export const H_eptViolations = offsetof<HwStats>("eptViolations");
export const H_eptMisconfigs = offsetof<HwStats>("eptMisconfigs");
export const H_npfs = offsetof<HwStats>("npfs");
export const H_cr3Loads = offsetof<HwStats>("cr3Loads");
export const H_invlpg = offsetof<HwStats>("invlpg");
export const H_invpcid = offsetof<HwStats>("invpcid");
export const H_invvpid = offsetof<HwStats>("invvpid");
export const H_invept = offsetof<HwStats>("invept");
export const H_contextFlushes = offsetof<HwStats>("contextFlushes");
export const H_pmlEntries = offsetof<HwStats>("pmlEntries");

export const C_clock = offsetof<AssocCache>("clock");
export const C_entries = offsetof<AssocCache>("entries");
export const C_ent = offsetof<AssocCache>("ent");
export const C_entryBytes = ENTRY_BYTES;
export const E_key = E_KEY;
export const E_value = E_VALUE;
export const E_aux = E_AUX;
export const E_ctx = E_CTX;
export const E_pcid = E_PCID;
export const E_perm = E_PERM;
export const C_stamp = offsetof<AssocCache>("stamp");
export const C_mru = offsetof<AssocCache>("mru");
export const C_tag = offsetof<AssocCache>("tag");

export const L_kind = offsetof<LogStep>("kind");
export const L_level = offsetof<LogStep>("level");
export const L_forLevel = offsetof<LogStep>("forLevel");
export const L_hpa = offsetof<LogStep>("hpa");
export const L_gpa = offsetof<LogStep>("gpa");
export const L_lo = offsetof<LogStep>("lo");
export const L_hi = offsetof<LogStep>("hi");
