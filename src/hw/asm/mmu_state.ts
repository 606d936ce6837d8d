// SPDX-License-Identifier: MIT
// ../mmu_state.ts in wasm memory: one logical processor's registers, the results of the last
// translation, the walker scratch and its caches, then at fixed offsets the counters (HwStats),
// the TLB permission tables and the walk log. ../wasm_mmu.ts lays a region out with
// mmuStateInit(), writes the registers and reads the results through the S_* offsets exported
// from index.ts; the context tags are kept in JS, which writes the current ones here.

import { AssocCache } from "./assoc_cache";

@unmanaged export class MmuState {
  // --- results of the last translation ---
  hpa: f64;
  gpa: f64;
  pageSize: f64;
  /** #PF error code, or #NPF EXITINFO1 (above 2^32 with NPF_FINAL / NPF_GUEST_TABLE). */
  errorCode: f64;
  faultGva: f64;
  faultGpa: f64;
  exitQual: i32;
  faultLevel: i32;
  /** MISCONFIG_* (mmu_defs.ts), 0 before any misconfiguration. */
  faultReason: i32;
  /** The result of the access that stopped the last accessBatch (mmu.ts). */
  batchResult: i32;

  // --- architectural state (JS writes it) ---
  /** CR3's root table frame: a guest frame under EPT/NPT (up to 2^40), a host frame natively. */
  cr3Frame: i64;
  cr0Wp: i32;
  efeNxe: i32;
  cr4Pge: i32;
  smep: i32;
  smap: i32;
  nestedRoot: i32;
  ctxTag: i32;
  pcidTag: i32;
  eptTag: i32;

  // --- per-config constants ---
  nested: i32;
  isEpt: i32;
  eptAd: i32;
  nestedAd: i32;
  guestLevels: i32;
  nestedLevels: i32;
  rsvdHi: u32;
  /** 1 while a WalkLog listens: every reference is recorded in the log area. */
  logOn: i32;
  logCount: i32;
  /** The "enable PML" control and GUEST_PML_INDEX (../mmu_state.ts); the log is at PML_OFFSET. */
  pmlOn: i32;
  pmlIndex: i32;

  // --- walker scratch ---
  nPfnBase: i64;
  nSize: i64;
  pscHpfn: i64;
  pscFrame: i64;
  nLeafOff: i32;
  nWritable: i32;
  nDirtyOk: i32;
  nExec: i32;
  pscPerm: i32;

  // --- caches (0: none); 2M and 1G may be the 4K or 2M cache (shared, smashed) ---
  tlb4k: usize;
  tlb2m: usize;
  tlb1g: usize;
  nestedTlb: usize;
  psc2: usize;
  psc3: usize;
  psc4: usize;
  psc5: usize;
  nestedPsc2: usize;
  nestedPsc3: usize;
  nestedPsc4: usize;
  nestedPsc5: usize;
}

/** ../mmu_stats.ts HwStats: the same counters, as f64. */
@unmanaged export class HwStats {
  tlbHits: f64;
  tlbMisses: f64;
  walks: f64;
  guestTableReads: f64;
  nestedTableReads: f64;
  walkDataAccesses: f64;
  adWrites: f64;
  nestedAdWrites: f64;
  pscHits: f64;
  pscMisses: f64;
  nestedTlbHits: f64;
  nestedTlbMisses: f64;
  nestedPscHits: f64;
  nestedPscMisses: f64;
  guestPageFaults: f64;
  eptViolations: f64;
  eptMisconfigs: f64;
  npfs: f64;
  cr3Loads: f64;
  invlpg: f64;
  invpcid: f64;
  invvpid: f64;
  invept: f64;
  contextFlushes: f64;
  pmlEntries: f64;
}

/** One reference of the walk log (../walk_log.ts WalkStep). */
@unmanaged export class LogStep {
  kind: i32;
  level: i32;
  forLevel: i32;
  lo: u32;
  hpa: f64;
  gpa: f64;
  hi: u32;
}

/** References one translation makes at most: 5 levels x (5 nested + 1) + 5 nested + the data. */
export const LOG_CAPACITY = 40;
const STATE_BYTES: i32 = (<i32>offsetof<MmuState>() + 7) & ~7;
export const STATS_OFFSET = STATE_BYTES;
/** Per access kind (ACC_* bits, 0..31): entry bits a TLB hit needs (i32[32]), then bits that forbid it (i32[32]). */
export const TLB_NEED_OFFSET: i32 = STATS_OFFSET + ((<i32>offsetof<HwStats>() + 7) & ~7);
export const TLB_FORBID_OFFSET = TLB_NEED_OFFSET + 32 * 4;
export const LOG_OFFSET = TLB_FORBID_OFFSET + 32 * 4;
export const LOG_STEP_BYTES: i32 = (<i32>offsetof<LogStep>() + 7) & ~7;
/** The page-modification log: 512 gpas (f64). */
export const PML_OFFSET = LOG_OFFSET + LOG_CAPACITY * LOG_STEP_BYTES;
export const MMU_STATE_BYTES = PML_OFFSET + 512 * 8;

@inline export function statsOf(s: MmuState): HwStats {
  return changetype<HwStats>(changetype<usize>(s) + STATS_OFFSET);
}

/** Whether a cached translation with `perm` serves an access of kind `acc` without a walk. */
@inline export function tlbPermits(s: MmuState, perm: i32, acc: i32): bool {
  const p = changetype<usize>(s) + (<usize>acc << 2);
  const need = load<i32>(p + TLB_NEED_OFFSET);
  return (perm & need) == need && (perm & load<i32>(p + TLB_FORBID_OFFSET)) == 0;
}

/** The guest paging-structure cache for entries of `level` (2..5). */
@inline export function pscOf(s: MmuState, level: i32): AssocCache {
  return changetype<AssocCache>(load<usize>(changetype<usize>(s) + offsetof<MmuState>("psc2") + (<usize>(level - 2) << 2)));
}

@inline export function nestedPscOf(s: MmuState, level: i32): AssocCache {
  return changetype<AssocCache>(load<usize>(changetype<usize>(s) + offsetof<MmuState>("nestedPsc2") + (<usize>(level - 2) << 2)));
}

export function logPush(s: MmuState, kind: i32, level: i32, forLevel: i32, hpa: f64, gpa: f64, lo: u32, hi: u32): void {
  const n = s.logCount;
  if (n >= LOG_CAPACITY) return;
  const e = changetype<LogStep>(changetype<usize>(s) + LOG_OFFSET + <usize>n * LOG_STEP_BYTES);
  e.kind = kind;
  e.level = level;
  e.forLevel = forLevel;
  e.hpa = hpa;
  e.gpa = gpa;
  e.lo = lo;
  e.hi = hi;
  s.logCount = n + 1;
}
