// SPDX-License-Identifier: MIT
// The nested dimension of a two-dimensional walk: guest-physical -> host-physical through
// EPT (SDM vol. 3 29.3) or NPT (AMD APM vol. 2 15.25), with the nested TLB and the nested
// paging-structure caches, in phases: nested-TLB probe, PSC probe, entry read and check per
// level, leaf permission, fill. The exits it raises: EPT violation, EPT misconfiguration, #NPF.

import { INV_LEVEL_SIZE, INV_PAGE_SIZE, LEVEL_SIZE, PAGE_SIZE, tableIndex } from "./addr.js";
import { CP_EXEC, CP_USER, CP_WRITABLE, CP_WRITE_OK } from "./assoc_cache.js";
import { EPT_A, EPT_D, EPT_PS, EPT_R, EPT_W, eptNonLeafRsvdLo, isReservedMemType } from "./ept_pte.js";
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
  NPF_FINAL,
  NPF_GUEST_TABLE,
  PML_LOG_NR_ENTRIES,
  XLATE_EPT_MISCONFIG,
  XLATE_EPT_VIOLATION,
  XLATE_NPF,
  XLATE_OK,
  XLATE_PML_FULL,
  type XlateResult,
} from "./mmu_defs.js";
import { type MmuState, NESTED_FOR_FINAL, NESTED_FOR_PHYS, NESTED_FOR_TABLE, entryFrame } from "./mmu_state.js";
import { REF_NESTED_TABLE } from "./walk_log.js";
import { PFERR_PRESENT, PFERR_RSVD, PFERR_USER, PTE_A, PTE_D, PTE_P, PTE_PAT_HUGE, PTE_PS, hugeRsvdLoMask } from "./x86_pte.js";
import { isRsvdGpte } from "./x86_rules.js";

/**
 * gpa -> hpa through EPT/NPT. Leaves the 4 KiB host frame in nPfnBase and the leaf's
 * properties in the n* fields. `forLevel` is the guest level whose table is being read (0: final).
 */
export function nestedTranslate(s: MmuState, gpa: number, acc: number, why: number, forLevel: number, se: boolean): XlateResult {
  const stats = s.stats;
  const gfn = Math.floor(gpa * INV_PAGE_SIZE);
  if (se && s.nestedTlb !== null && nestedTlbHit(s, gfn, acc)) return XLATE_OK;
  const isEpt = s.isEpt;
  const levels = s.nestedLevels;
  const log = s.log;
  let level = se && s.nestedPsc[2] !== null ? nestedPscProbe(s, gpa, levels) : levels;
  let tableHpfn = s.nestedRoot;
  // EPT: AND of R/W/X; NPT: AND of RW and US, OR of NX.
  let r = 1;
  let w = 1;
  let x = 1;
  if (level < levels) {
    tableHpfn = s.pscHpfn;
    r = s.pscPerm & CP_USER ? 1 : 0; // EPT: R; NPT: US
    w = s.pscPerm & CP_WRITABLE ? 1 : 0;
    x = s.pscPerm & CP_EXEC ? 1 : 0;
  }
  let lo = 0;
  let hi = 0;
  let off = -1;
  const slots = s.mem.tableSlot;
  const words = s.mem.words;
  for (;;) {
    const idx = tableIndex(gpa, level);
    const slot = tableHpfn >= 0 ? slots[tableHpfn]! - 1 : -1;
    if (slot >= 0) {
      off = (slot << 10) | (idx << 1);
      lo = words[off]!;
      hi = words[off + 1]!;
    } else {
      off = -1;
      lo = 0;
      hi = 0;
    }
    if (se) stats.nestedTableReads++;
    if (log !== null) log.push(REF_NESTED_TABLE, level, forLevel, tableHpfn * PAGE_SIZE + idx * 8, gpa, lo, hi);
    let leaf: boolean;
    if (isEpt) {
      if ((lo & 7) === 0) return eptViolation(s, gpa, acc, why, 0, level, se);
      leaf = level === 1 || ((lo & EPT_PS) !== 0 && level <= 3);
      if (mayBeEptMisconfig(lo, hi, level, leaf, s.rsvdHi)) {
        const why2 = eptMisconfigReason(lo, hi, level, leaf, s.rsvdHi);
        if (why2 !== "") return eptMisconfig(s, gpa, level, why2, se);
      }
      r &= lo & 1;
      w &= (lo >>> 1) & 1;
      x &= (lo >>> 2) & 1;
    } else {
      if ((lo & PTE_P) === 0) return npf(s, gpa, acc, why, 0, level, se);
      leaf = level === 1 || ((lo & PTE_PS) !== 0 && level <= 3);
      if (isRsvdGpte(lo, hi, level, leaf, s.rsvdHi, true)) return npf(s, gpa, acc, why, PFERR_PRESENT | PFERR_RSVD, level, se);
      w &= (lo >>> 1) & 1;
      r &= (lo >>> 2) & 1; // nested walks are user accesses: US must be set all the way
      x &= hi >>> 31 ? 0 : 1;
    }
    if (leaf) break;
    const aBit = isEpt ? EPT_A : PTE_A;
    if (se && s.nestedAd && (lo & aBit) === 0) {
      words[off] = lo | aBit;
      stats.nestedAdWrites++;
    }
    tableHpfn = entryFrame(lo, hi);
    level--;
    if (se && s.nestedPsc[level + 1] !== null) nestedPscFill(s, gpa, level, tableHpfn, r, w, x);
  }
  if (nestedPermissionFault(acc, isEpt, r, w, x)) return nestedLeafFault(s, gpa, acc, why, level, r, w, x, se);
  return nestedLeafDone(s, gfn, acc, level, lo, hi, off, w, x, se);
}

/** Nested TLB probe: a hit that allows the access fills the n* fields. */
function nestedTlbHit(s: MmuState, gfn: number, acc: number): boolean {
  const ntlb = s.nestedTlb!;
  const i = ntlb.lookup(gfn, s.eptTag, 0);
  if (i >= 0) {
    const p = ntlb.perm[i]!;
    if (((acc & ACC_WRITE) === 0 || (p & CP_WRITE_OK) !== 0) && ((acc & ACC_FETCH) === 0 || (p & CP_EXEC) !== 0)) {
      s.stats.nestedTlbHits++;
      s.nPfnBase = ntlb.value[i]!;
      s.nLeafOff = -1;
      s.nWritable = (p & CP_WRITABLE) !== 0;
      s.nDirtyOk = (p & CP_WRITE_OK) !== 0;
      s.nExec = (p & CP_EXEC) !== 0;
      s.nSize = PAGE_SIZE;
      return true;
    }
  }
  s.stats.nestedTlbMisses++;
  return false;
}

/** Nested paging-structure caches: the level to start at (levels on a miss); a hit leaves the table in pscHpfn, pscPerm. */
function nestedPscProbe(s: MmuState, gpa: number, levels: number): number {
  for (let l = 2; l <= levels; l++) {
    const c = s.nestedPsc[l]!;
    const i = c.lookup(Math.floor(gpa * INV_LEVEL_SIZE[l]!), s.eptTag, 0);
    if (i >= 0) {
      s.stats.nestedPscHits++;
      s.pscHpfn = c.value[i]!;
      s.pscPerm = c.perm[i]!;
      return l - 1;
    }
  }
  s.stats.nestedPscMisses++;
  return levels;
}

function nestedPscFill(s: MmuState, gpa: number, level: number, tableHpfn: number, r: number, w: number, x: number): void {
  s.nestedPsc[level + 1]!.fill(
    Math.floor(gpa * INV_LEVEL_SIZE[level + 1]!),
    s.eptTag,
    0,
    tableHpfn,
    (r ? CP_USER : 0) | (w ? CP_WRITABLE : 0) | (x ? CP_EXEC : 0),
  );
}

/** The cheap test that lets a well-formed EPT entry skip eptMisconfigReason(). */
function mayBeEptMisconfig(lo: number, hi: number, level: number, leaf: boolean, rsvdHi: number): boolean {
  if ((lo & 3) === 2 || (hi & rsvdHi) !== 0) return true;
  return leaf ? level > 1 || ((0x8c >>> ((lo >>> 3) & 7)) & 1) !== 0 : (lo & eptNonLeafRsvdLo(level)) !== 0;
}

function eptMisconfigReason(lo: number, hi: number, level: number, leaf: boolean, rsvdHi: number): string {
  if ((lo & (EPT_R | EPT_W)) === EPT_W) return "write without read";
  if ((hi & rsvdHi) !== 0) return "address bits above MAXPHYADDR";
  if (leaf) {
    if (isReservedMemType((lo >>> 3) & 7)) return `reserved memory type ${(lo >>> 3) & 7}`;
    // EPT has no PAT bit: all frame bits below the page size are reserved in a huge leaf.
    if (level > 1 && (lo & (hugeRsvdLoMask(level) | 0x1000)) !== 0) return "unaligned huge-page frame";
  } else {
    if ((lo & eptNonLeafRsvdLo(level)) !== 0) return `reserved bits ${level >= 4 ? "7:3" : "6:3"} in a non-leaf entry`;
  }
  return "";
}

/** Leaf rights: EPT checks R, W or X by access kind; NPT needs US (a user access) and W or X. */
function nestedPermissionFault(acc: number, isEpt: boolean, r: number, w: number, x: number): boolean {
  const write = (acc & ACC_WRITE) !== 0;
  const fetch = (acc & ACC_FETCH) !== 0;
  if (isEpt) return (write && !w) || (fetch && !x) || (!write && !fetch && !r);
  return !r || (write && !w) || (fetch && !x);
}

function nestedLeafFault(
  s: MmuState,
  gpa: number,
  acc: number,
  why: number,
  level: number,
  r: number,
  w: number,
  x: number,
  se: boolean,
): XlateResult {
  if (!s.isEpt) return npf(s, gpa, acc, why, PFERR_PRESENT, level, se);
  return eptViolation(s, gpa, acc, why, (r ? EPTQ_READABLE : 0) | (w ? EPTQ_WRITABLE : 0) | (x ? EPTQ_EXECUTABLE : 0), level, se);
}

/** The leaf allows the access: set its A/D, leave it in the n* fields, fill the nested TLB. */
function nestedLeafDone(
  s: MmuState,
  gfn: number,
  acc: number,
  level: number,
  lo: number,
  hi: number,
  off: number,
  w: number,
  x: number,
  se: boolean,
): XlateResult {
  const isEpt = s.isEpt;
  const ad = s.nestedAd;
  const write = (acc & ACC_WRITE) !== 0;
  const aBit = isEpt ? EPT_A : PTE_A;
  const dBit = isEpt ? EPT_D : PTE_D;
  if (se && ad) {
    const newLo = (lo | aBit | (write ? dBit : 0)) >>> 0;
    if (newLo !== lo) {
      if (write && s.pmlOn && (lo & dBit) === 0 && !pmlLog(s, gfn)) return XLATE_PML_FULL;
      s.mem.words[off] = newLo;
      s.stats.nestedAdWrites++;
      lo = newLo;
    }
  }
  const size = LEVEL_SIZE[level]!;
  const frameLo = !isEpt && level > 1 ? lo & ~PTE_PAT_HUGE : lo;
  const base = (frameLo >>> 12) + (hi & 0xfffff) * 0x100000;
  s.nPfnBase = level === 1 ? base : base + (gfn - Math.floor(gfn * INV_LEVEL_SIZE[level]! * PAGE_SIZE) * (size * INV_PAGE_SIZE));
  s.nLeafOff = off;
  s.nWritable = w === 1;
  s.nDirtyOk = w === 1 && (!ad || (lo & dBit) !== 0);
  s.nExec = x === 1;
  s.nSize = size;
  if (se && s.nestedTlb !== null) {
    s.nestedTlb.fill(gfn, s.eptTag, 0, s.nPfnBase, (s.nDirtyOk ? CP_WRITE_OK : 0) | (w ? CP_WRITABLE : 0) | (x ? CP_EXEC : 0));
  }
  return XLATE_OK;
}

/**
 * Page-modification logging before an EPT leaf's dirty flag goes from 0 to 1 (SDM vol. 3
 * "Page-Modification Logging"): the 4 KiB gpa at GUEST_PML_INDEX, which counts down. False,
 * with nothing written, when the index is out of 0..511: a PML-full exit instead of the write.
 */
function pmlLog(s: MmuState, gfn: number): boolean {
  const i = s.pmlIndex;
  if (i >= PML_LOG_NR_ENTRIES) return false;
  s.pmlLog[i] = gfn * PAGE_SIZE;
  s.pmlIndex = (i - 1) & 0xffff;
  s.stats.pmlEntries++;
  return true;
}

/** Sets the dirty bit of the nested leaf that maps `gpa` (a guest A/D update is a write); XLATE_PML_FULL if PML had no room. */
export function markNestedDirty(s: MmuState, gpa: number): XlateResult {
  if (s.nLeafOff < 0) {
    // Came from the nested TLB: find the leaf without side effects.
    const log = s.log;
    s.log = null;
    nestedTranslate(s, gpa, ACC_READ, NESTED_FOR_PHYS, 0, false);
    s.log = log;
  }
  const off = s.nLeafOff;
  if (off < 0) return XLATE_OK;
  const dBit = s.isEpt ? EPT_D : PTE_D;
  const aBit = s.isEpt ? EPT_A : PTE_A;
  if (s.isEpt && !s.config.eptAd) return XLATE_OK;
  const lo = s.mem.words[off]!;
  if ((lo & dBit) === 0) {
    if (s.pmlOn && !pmlLog(s, Math.floor(gpa * INV_PAGE_SIZE))) return XLATE_PML_FULL;
    s.mem.words[off] = lo | dBit | aBit;
    s.stats.nestedAdWrites++;
  }
  s.nDirtyOk = true;
  if (s.nestedTlb !== null) {
    const gfn = Math.floor(gpa * INV_PAGE_SIZE);
    const i = s.nestedTlb.peek(gfn, s.eptTag, 0);
    if (i >= 0) s.nestedTlb.perm[i] = s.nestedTlb.perm[i]! | CP_WRITE_OK;
  }
  return XLATE_OK;
}

/** The guest's A/D write hit a nested leaf that is read-only. */
export function nestedWriteFault(s: MmuState, gpa: number, level: number): XlateResult {
  if (s.isEpt) return eptViolation(s, gpa, ACC_WRITE, NESTED_FOR_TABLE, EPTQ_READABLE, level, true);
  return npf(s, gpa, ACC_WRITE, NESTED_FOR_TABLE, PFERR_PRESENT, level, true);
}

function eptViolation(s: MmuState, gpa: number, acc: number, why: number, rwx: number, level: number, se: boolean): XlateResult {
  let q = rwx;
  if ((acc & ACC_WRITE) !== 0) q |= EPTQ_WRITE;
  else if ((acc & ACC_FETCH) !== 0) q |= EPTQ_FETCH;
  else q |= EPTQ_READ;
  if (why !== NESTED_FOR_PHYS) q |= EPTQ_GLA_VALID | (why === NESTED_FOR_FINAL ? EPTQ_GLA_FINAL : 0);
  s.exitQual = q;
  s.faultGpa = gpa;
  s.faultLevel = level;
  if (se) s.stats.eptViolations++;
  return XLATE_EPT_VIOLATION;
}

function eptMisconfig(s: MmuState, gpa: number, level: number, reason: string, se: boolean): XlateResult {
  s.faultGpa = gpa;
  s.faultLevel = level;
  s.faultReason = reason;
  if (se) s.stats.eptMisconfigs++;
  return XLATE_EPT_MISCONFIG;
}

function npf(s: MmuState, gpa: number, acc: number, why: number, bits: number, level: number, se: boolean): XlateResult {
  let ec = bits | PFERR_USER | (acc & (ACC_WRITE | ACC_FETCH));
  if (why === NESTED_FOR_FINAL) ec += NPF_FINAL;
  else if (why === NESTED_FOR_TABLE) ec += NPF_GUEST_TABLE;
  s.errorCode = ec;
  s.faultGpa = gpa;
  s.faultLevel = level;
  if (se) s.stats.npfs++;
  return XLATE_NPF;
}
