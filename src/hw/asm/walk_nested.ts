// SPDX-License-Identifier: MIT
// ../walk_nested.ts in wasm: the nested dimension of a two-dimensional walk, gpa -> hpa through
// EPT (SDM vol. 3 29.3) or NPT (AMD APM vol. 2 15.25), with the nested TLB and the nested
// paging-structure caches; the same phases, counters, fields and exits, line for line, except
// that a common entry (an RWX non-leaf, a 4 KiB RWX write-back leaf) is taken on one mask test
// (wasm_mmu_cases.test.ts tries every low byte of every entry a walk reads).

import { AssocCache, CP_EXEC, CP_USER, CP_WRITABLE, CP_WRITE_OK, fill, lookup, peek, permAt, setPerm, valueAt } from "./assoc_cache";
import { EPT_A, EPT_D, EPT_PS, EPT_R, EPT_W, eptNonLeafRsvdLo, isReservedMemType } from "./ept_pte";
import {
  ACC_FETCH,
  ACC_READ,
  ACC_WRITE,
  EPTQ_EXECUTABLE,
  EPTQ_FETCH,
  EPTQ_GLA_FINAL,
  EPTQ_GLA_VALID,
  EPTQ_READ,
  EPTQ_READABLE,
  EPTQ_WRITABLE,
  EPTQ_WRITE,
  MISCONFIG_ABOVE_MAXPHYADDR,
  MISCONFIG_HUGE_UNALIGNED,
  MISCONFIG_MEMTYPE,
  MISCONFIG_NONLEAF_6_3,
  MISCONFIG_NONLEAF_7_3,
  MISCONFIG_WRITE_NO_READ,
  NPF_FINAL,
  NPF_GUEST_TABLE,
  PML_LOG_NR_ENTRIES,
  XLATE_EPT_MISCONFIG,
  XLATE_EPT_VIOLATION,
  XLATE_NPF,
  XLATE_OK,
  XLATE_PML_FULL,
} from "./mmu_defs";
import { MmuState, PML_OFFSET, logPush, nestedPscOf, statsOf } from "./mmu_state";
import { adChanged, entryOff, readEntry, readLo, writeLo } from "./phys_mem";
import { PFERR_PRESENT, PFERR_RSVD, PFERR_USER, PTE_A, PTE_D, PTE_P, PTE_PAT_HUGE, PTE_PS, entryPfn, hugeRsvdLoMask } from "./x86_pte";
import { isRsvdGpte } from "./x86_rules";

export const NESTED_FOR_TABLE = 0;
export const NESTED_FOR_FINAL = 1;
export const NESTED_FOR_PHYS = 2;
const REF_NESTED_TABLE = 1;
/** An EPT non-leaf that allows everything: R, W, X set, bits 7:3 (PS and the reserved bits) clear. */
const EPT_COMMON_MASK: u32 = 0xff;
const EPT_RWX: u32 = 7;
/** A 4 KiB EPT leaf's R, W, X and memory type (bits 5:3). */
const EPT_LEAF_MASK: u32 = 0x3f;
const EPT_RWX_WB: u32 = EPT_RWX | (6 << 3);

/** The frame an entry points at, or -1 beyond the 2^28 frames PhysMem can hold (../mmu_state.ts entryFrame). */
@inline export function entryFrame(lo: u32, hi: u32): i64 {
  return (hi & 0xfff00) != 0 ? -1 : <i64>((lo >>> 12) | ((hi & 0xff) << 20));
}

/** gpa -> hpa through EPT/NPT; leaves the 4 KiB host frame in nPfnBase and the leaf's rights in the n* fields. */
export function nestedTranslate(s: MmuState, gpa: i64, acc: i32, why: i32, forLevel: i32, se: bool): i32 {
  const stats = statsOf(s);
  const gfn = gpa >> 12;
  if (se && s.nestedTlb != 0 && nestedTlbHit(s, gfn, acc)) return XLATE_OK;
  const isEpt = s.isEpt != 0;
  const levels = s.nestedLevels;
  let level = se && s.nestedPsc2 != 0 ? nestedPscProbe(s, gpa, levels) : levels;
  let tableHpfn: i64 = s.nestedRoot;
  let r: u32 = 1;
  let w: u32 = 1;
  let x: u32 = 1;
  if (level < levels) {
    tableHpfn = s.pscHpfn;
    r = (s.pscPerm & CP_USER) != 0 ? 1 : 0;
    w = (s.pscPerm & CP_WRITABLE) != 0 ? 1 : 0;
    x = (s.pscPerm & CP_EXEC) != 0 ? 1 : 0;
  }
  let lo: u32 = 0;
  let hi: u32 = 0;
  let off = -1;
  for (;;) {
    const idx = <i32>(gpa >> (12 + 9 * (level - 1))) & 511;
    off = entryOff(tableHpfn, idx);
    if (off >= 0) {
      const e = readEntry(off);
      lo = <u32>e;
      hi = <u32>(e >> 32);
    } else {
      lo = 0;
      hi = 0;
    }
    if (se) stats.nestedTableReads += 1;
    if (s.logOn != 0) logPush(s, REF_NESTED_TABLE, level, forLevel, <f64>(tableHpfn * 4096 + idx * 8), <f64>gpa, lo, hi);
    // A common EPT entry goes on at once, the checks concluding nothing else for it: a non-leaf with
    // read, write and execute allowed and bits 7:3 clear, or a 4 KiB leaf allowing all three, write-back.
    if (isEpt && (hi & s.rsvdHi) == 0 && (lo & (level > 1 ? EPT_COMMON_MASK : EPT_LEAF_MASK)) == (level > 1 ? EPT_RWX : EPT_RWX_WB)) {
      if (level == 1) break;
    } else {
      let leaf: bool;
      if (isEpt) {
        if ((lo & 7) == 0) return eptViolation(s, gpa, acc, why, 0, level, se);
        leaf = level == 1 || ((lo & EPT_PS) != 0 && level <= 3);
        if (mayBeEptMisconfig(lo, hi, level, leaf, s.rsvdHi)) {
          const why2 = eptMisconfigReason(lo, hi, level, leaf, s.rsvdHi);
          if (why2 != 0) return eptMisconfig(s, gpa, level, why2, se);
        }
        r &= lo & 1;
        w &= (lo >>> 1) & 1;
        x &= (lo >>> 2) & 1;
      } else {
        if ((lo & PTE_P) == 0) return npf(s, gpa, acc, why, 0, level, se);
        leaf = level == 1 || ((lo & PTE_PS) != 0 && level <= 3);
        if (isRsvdGpte(lo, hi, level, leaf, s.rsvdHi, true)) return npf(s, gpa, acc, why, PFERR_PRESENT | PFERR_RSVD, level, se);
        w &= (lo >>> 1) & 1;
        r &= (lo >>> 2) & 1;
        x &= hi >>> 31 != 0 ? 0 : 1;
      }
      if (leaf) break;
    }
    const aBit = isEpt ? EPT_A : PTE_A;
    if (se && s.nestedAd != 0 && (lo & aBit) == 0) {
      writeLo(off, lo | aBit);
      stats.nestedAdWrites += 1;
    }
    tableHpfn = entryFrame(lo, hi);
    level--;
    if (se && s.nestedPsc2 != 0) nestedPscFill(s, gpa, level, tableHpfn, r, w, x);
  }
  if (nestedPermissionFault(acc, isEpt, r, w, x)) return nestedLeafFault(s, gpa, acc, why, level, r, w, x, se);
  return nestedLeafDone(s, gfn, acc, level, lo, hi, off, w, x, se);
}

/** Nested TLB probe: a hit that allows the access fills the n* fields. */
function nestedTlbHit(s: MmuState, gfn: i64, acc: i32): bool {
  const ntlb = changetype<AssocCache>(s.nestedTlb);
  const i = lookup(ntlb, gfn, <f64>gfn, s.eptTag, 0);
  if (i >= 0) {
    const p = permAt(ntlb, i);
    if (((acc & ACC_WRITE) == 0 || (p & CP_WRITE_OK) != 0) && ((acc & ACC_FETCH) == 0 || (p & CP_EXEC) != 0)) {
      statsOf(s).nestedTlbHits += 1;
      s.nPfnBase = <i64>valueAt(ntlb, i);
      s.nLeafOff = -1;
      s.nWritable = (p & CP_WRITABLE) != 0 ? 1 : 0;
      s.nDirtyOk = (p & CP_WRITE_OK) != 0 ? 1 : 0;
      s.nExec = (p & CP_EXEC) != 0 ? 1 : 0;
      s.nSize = 4096;
      return true;
    }
  }
  statsOf(s).nestedTlbMisses += 1;
  return false;
}

/** Nested paging-structure caches: the level to start at (levels on a miss). */
function nestedPscProbe(s: MmuState, gpa: i64, levels: i32): i32 {
  for (let l = 2; l <= levels; l++) {
    const c = nestedPscOf(s, l);
    const n = gpa >> (12 + 9 * (l - 1));
    const i = lookup(c, n, <f64>n, s.eptTag, 0);
    if (i >= 0) {
      statsOf(s).nestedPscHits += 1;
      s.pscHpfn = <i64>valueAt(c, i);
      s.pscPerm = permAt(c, i);
      return l - 1;
    }
  }
  statsOf(s).nestedPscMisses += 1;
  return levels;
}

function nestedPscFill(s: MmuState, gpa: i64, level: i32, tableHpfn: i64, r: u32, w: u32, x: u32): void {
  const perm = (r != 0 ? CP_USER : 0) | (w != 0 ? CP_WRITABLE : 0) | (x != 0 ? CP_EXEC : 0);
  const n = gpa >> (12 + 9 * level);
  fill(nestedPscOf(s, level + 1), n, <f64>n, s.eptTag, 0, <f64>tableHpfn, perm, -1);
}

/** The cheap test that lets a well-formed EPT entry skip eptMisconfigReason(). */
@inline function mayBeEptMisconfig(lo: u32, hi: u32, level: i32, leaf: bool, rsvdHi: u32): bool {
  if ((lo & 3) == 2 || (hi & rsvdHi) != 0) return true;
  return leaf ? level > 1 || ((0x8c >>> ((lo >>> 3) & 7)) & 1) != 0 : (lo & eptNonLeafRsvdLo(level)) != 0;
}

function eptMisconfigReason(lo: u32, hi: u32, level: i32, leaf: bool, rsvdHi: u32): i32 {
  if ((lo & (EPT_R | EPT_W)) == EPT_W) return MISCONFIG_WRITE_NO_READ;
  if ((hi & rsvdHi) != 0) return MISCONFIG_ABOVE_MAXPHYADDR;
  if (leaf) {
    if (isReservedMemType((lo >>> 3) & 7)) return MISCONFIG_MEMTYPE + <i32>((lo >>> 3) & 7);
    if (level > 1 && (lo & (hugeRsvdLoMask(level) | 0x1000)) != 0) return MISCONFIG_HUGE_UNALIGNED;
  } else {
    if ((lo & eptNonLeafRsvdLo(level)) != 0) return level >= 4 ? MISCONFIG_NONLEAF_7_3 : MISCONFIG_NONLEAF_6_3;
  }
  return 0;
}

@inline function nestedPermissionFault(acc: i32, isEpt: bool, r: u32, w: u32, x: u32): bool {
  const write = (acc & ACC_WRITE) != 0;
  const fetch = (acc & ACC_FETCH) != 0;
  if (isEpt) return (write && w == 0) || (fetch && x == 0) || (!write && !fetch && r == 0);
  return r == 0 || (write && w == 0) || (fetch && x == 0);
}

function nestedLeafFault(s: MmuState, gpa: i64, acc: i32, why: i32, level: i32, r: u32, w: u32, x: u32, se: bool): i32 {
  if (s.isEpt == 0) return npf(s, gpa, acc, why, PFERR_PRESENT, level, se);
  const rwx = (r != 0 ? EPTQ_READABLE : 0) | (w != 0 ? EPTQ_WRITABLE : 0) | (x != 0 ? EPTQ_EXECUTABLE : 0);
  return eptViolation(s, gpa, acc, why, rwx, level, se);
}

/** The leaf allows the access: set its A/D, leave it in the n* fields, fill the nested TLB. */
function nestedLeafDone(s: MmuState, gfn: i64, acc: i32, level: i32, lo: u32, hi: u32, off: i32, w: u32, x: u32, se: bool): i32 {
  const isEpt = s.isEpt != 0;
  const ad = s.nestedAd != 0;
  const write = (acc & ACC_WRITE) != 0;
  const aBit = isEpt ? EPT_A : PTE_A;
  const dBit = isEpt ? EPT_D : PTE_D;
  if (se && ad) {
    const newLo = lo | aBit | (write ? dBit : 0);
    if (adChanged(newLo, lo)) {
      if (write && s.pmlOn != 0 && (lo & dBit) == 0 && !pmlLog(s, gfn)) return XLATE_PML_FULL;
      writeLo(off, newLo);
      statsOf(s).nestedAdWrites += 1;
      lo = newLo;
    }
  }
  const shift = 9 * (level - 1);
  const frameLo = !isEpt && level > 1 ? lo & ~PTE_PAT_HUGE : lo;
  const base = entryPfn(frameLo, hi);
  const pfnBase = level == 1 ? base : base + (gfn & ((<i64>1 << shift) - 1));
  s.nPfnBase = pfnBase;
  s.nLeafOff = off;
  s.nWritable = w;
  s.nDirtyOk = w == 1 && (!ad || (lo & dBit) != 0) ? 1 : 0;
  s.nExec = x;
  s.nSize = <i64>4096 << shift;
  if (se && s.nestedTlb != 0) {
    const perm = (s.nDirtyOk != 0 ? CP_WRITE_OK : 0) | (w != 0 ? CP_WRITABLE : 0) | (x != 0 ? CP_EXEC : 0);
    fill(changetype<AssocCache>(s.nestedTlb), gfn, <f64>gfn, s.eptTag, 0, <f64>pfnBase, perm, -1);
  }
  return XLATE_OK;
}

/** Page-modification logging before an EPT leaf's dirty flag goes from 0 to 1 (../walk_nested.ts pmlLog). */
function pmlLog(s: MmuState, gfn: i64): bool {
  const i = s.pmlIndex;
  if (i >= PML_LOG_NR_ENTRIES) return false;
  store<f64>(changetype<usize>(s) + PML_OFFSET + (<usize>i << 3), <f64>(gfn << 12));
  s.pmlIndex = (i - 1) & 0xffff;
  statsOf(s).pmlEntries += 1;
  return true;
}

/** Sets the dirty bit of the nested leaf that maps `gpa` (a guest A/D update is a write); XLATE_PML_FULL if PML had no room. */
export function markNestedDirty(s: MmuState, gpa: i64): i32 {
  if (s.nLeafOff < 0) {
    const logOn = s.logOn;
    s.logOn = 0;
    nestedTranslate(s, gpa, ACC_READ, NESTED_FOR_PHYS, 0, false);
    s.logOn = logOn;
  }
  const off = s.nLeafOff;
  if (off < 0) return XLATE_OK;
  const isEpt = s.isEpt != 0;
  const dBit = isEpt ? EPT_D : PTE_D;
  const aBit = isEpt ? EPT_A : PTE_A;
  if (isEpt && s.eptAd == 0) return XLATE_OK;
  const lo = readLo(off);
  if ((lo & dBit) == 0) {
    if (s.pmlOn != 0 && !pmlLog(s, gpa >> 12)) return XLATE_PML_FULL;
    writeLo(off, lo | dBit | aBit);
    statsOf(s).nestedAdWrites += 1;
  }
  s.nDirtyOk = 1;
  if (s.nestedTlb != 0) {
    const ntlb = changetype<AssocCache>(s.nestedTlb);
    const gfn = gpa >> 12;
    const i = peek(ntlb, gfn, <f64>gfn, s.eptTag, 0);
    if (i >= 0) setPerm(ntlb, i, permAt(ntlb, i) | CP_WRITE_OK);
  }
  return XLATE_OK;
}

/** The guest's A/D write hit a nested leaf that is read-only. */
export function nestedWriteFault(s: MmuState, gpa: i64, level: i32): i32 {
  if (s.isEpt != 0) return eptViolation(s, gpa, ACC_WRITE, NESTED_FOR_TABLE, EPTQ_READABLE, level, true);
  return npf(s, gpa, ACC_WRITE, NESTED_FOR_TABLE, PFERR_PRESENT, level, true);
}

function eptViolation(s: MmuState, gpa: i64, acc: i32, why: i32, rwx: i32, level: i32, se: bool): i32 {
  let q = rwx;
  if ((acc & ACC_WRITE) != 0) q |= EPTQ_WRITE;
  else if ((acc & ACC_FETCH) != 0) q |= EPTQ_FETCH;
  else q |= EPTQ_READ;
  if (why != NESTED_FOR_PHYS) q |= EPTQ_GLA_VALID | (why == NESTED_FOR_FINAL ? EPTQ_GLA_FINAL : 0);
  s.exitQual = q;
  s.faultGpa = <f64>gpa;
  s.faultLevel = level;
  if (se) statsOf(s).eptViolations += 1;
  return XLATE_EPT_VIOLATION;
}

function eptMisconfig(s: MmuState, gpa: i64, level: i32, reason: i32, se: bool): i32 {
  s.faultGpa = <f64>gpa;
  s.faultLevel = level;
  s.faultReason = reason;
  if (se) statsOf(s).eptMisconfigs += 1;
  return XLATE_EPT_MISCONFIG;
}

function npf(s: MmuState, gpa: i64, acc: i32, why: i32, bits: i32, level: i32, se: bool): i32 {
  let ec = <f64>(bits | PFERR_USER | (acc & (ACC_WRITE | ACC_FETCH)));
  if (why == NESTED_FOR_FINAL) ec += NPF_FINAL;
  else if (why == NESTED_FOR_TABLE) ec += NPF_GUEST_TABLE;
  s.errorCode = ec;
  s.faultGpa = <f64>gpa;
  s.faultLevel = level;
  if (se) statsOf(s).npfs += 1;
  return XLATE_NPF;
}
