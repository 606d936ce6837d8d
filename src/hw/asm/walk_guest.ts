// SPDX-License-Identifier: MIT
// ../walk_guest.ts in wasm: the guest dimension of a page walk (SDM vol. 3 4.5), gva -> gpa
// through the guest's tables (natively, or over shadow tables, gva -> hpa), each table address
// translated by the nested walk under EPT/NPT; the same phases, counters, fields and faults.

import {
  AssocCache,
  CP_GLOBAL,
  CP_NTABLE_DIRTY,
  CP_NTABLE_WRITABLE,
  CP_NX,
  CP_USER,
  CP_WRITABLE,
  CP_WRITE_OK,
  auxAt,
  fill,
  lookup,
  permAt,
  valueAt,
} from "./assoc_cache";
import { ACC_READ, ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK } from "./mmu_defs";
import { MmuState, logPush, pscOf, statsOf } from "./mmu_state";
import { adChanged, entryOff, readEntry, writeLo } from "./phys_mem";
import {
  NESTED_FOR_FINAL,
  NESTED_FOR_TABLE,
  entryFrame,
  markNestedDirty,
  nestedTranslate,
  nestedWriteFault,
} from "./walk_nested";
import { PFERR_PRESENT, PFERR_RSVD, PTE_A, PTE_D, PTE_G, PTE_HI_NX, PTE_P, PTE_PAT_HUGE, PTE_PS, entryPfn } from "./x86_pte";
import { isPermissionFault, isRsvdGpte, isX86Leaf, pfErrorCode } from "./x86_rules";

const REF_GUEST_TABLE = 0;
export const REF_DATA = 2;
export const KEY_2M: f64 = 1125899906842624; // 2^50
export const KEY_1G: f64 = 2251799813685248; // 2^51

/** The page walk (SDM 4.5, and 29.3.2 for the nested dimension). `se`: with side effects (A/D, caches, counters). */
export function walkGuest(s: MmuState, gva: i64, acc: i32, se: bool): i32 {
  const stats = statsOf(s);
  const levels = s.guestLevels;
  const nested = s.nested != 0;
  if (se) stats.walks += 1;
  s.faultGva = <f64>gva;
  let level = se && s.psc2 != 0 ? pscProbe(s, gva, levels) : levels;
  const hit = level < levels;
  let tableFrame: i64 = hit ? s.pscFrame : s.cr3Frame;
  let tableHpfn: i64 = hit ? s.pscHpfn : nested ? -1 : tableFrame;
  let rw: u32 = hit && (s.pscPerm & CP_WRITABLE) == 0 ? 0 : 1;
  let us: u32 = hit && (s.pscPerm & CP_USER) == 0 ? 0 : 1;
  let nx: u32 = hit && (s.pscPerm & CP_NX) != 0 ? 1 : 0;
  const tableAcc = s.isEpt != 0 && s.eptAd != 0 ? ACC_WRITE : ACC_READ;
  const nxe = s.efeNxe != 0;
  // The high-word bits a common entry has clear: those above MAXPHYADDR, and XD unless EFER.NXE.
  const rsvdHiNx = s.rsvdHi | (nxe ? 0 : PTE_HI_NX);
  let lo: u32 = 0;
  let hi: u32 = 0;
  let off = 0;
  let tableGpa: i64 = -1;
  for (;;) {
    const idx = <i32>(gva >> (12 + 9 * (level - 1))) & 511;
    tableGpa = nested ? tableFrame << 12 : -1;
    if (tableHpfn < 0) {
      const r = nestedTranslate(s, tableGpa + idx * 8, tableAcc, NESTED_FOR_TABLE, level, se);
      if (r != XLATE_OK) return r;
      tableHpfn = s.nPfnBase;
    }
    if (se && level < levels && s.psc2 != 0) pscFill(s, gva, level, tableHpfn, tableFrame, rw, us, nx);
    off = entryOff(tableHpfn, idx);
    if (off >= 0) {
      const e = readEntry(off);
      lo = <u32>e;
      hi = <u32>(e >> 32);
    } else {
      lo = 0;
      hi = 0;
    }
    if (se) stats.guestTableReads += 1;
    if (s.logOn != 0) {
      const gpa: f64 = tableGpa < 0 ? -1 : <f64>(tableGpa + idx * 8);
      logPush(s, REF_GUEST_TABLE, level, level, <f64>(tableHpfn * 4096 + idx * 8), gpa, lo, hi);
    }
    // A common entry (present, no reserved bit; above level 1 not a large page) skips the checks.
    let leaf = level == 1;
    if ((lo & (leaf ? PTE_P : PTE_P | PTE_PS)) != PTE_P || (hi & rsvdHiNx) != 0) {
      if ((lo & PTE_P) == 0) return guestFault(s, acc, 0, level, se);
      leaf = isX86Leaf(lo, level);
      if (isRsvdGpte(lo, hi, level, leaf, s.rsvdHi, nxe)) return guestFault(s, acc, PFERR_PRESENT | PFERR_RSVD, level, se);
    }
    rw &= (lo >>> 1) & 1;
    us &= (lo >>> 2) & 1;
    if (nxe) nx |= hi >>> 31;
    if (leaf) break;
    if (se && (lo & PTE_A) == 0) {
      const r = guestAdWrite(s, off, lo | PTE_A, tableGpa + idx * 8, level);
      if (r != XLATE_OK) return r;
    }
    if (nested) {
      tableFrame = entryPfn(lo, hi);
      tableHpfn = -1;
    } else {
      tableHpfn = tableFrame = entryFrame(lo, hi);
    }
    level--;
  }
  if (isPermissionFault(acc, rw, us, nx ^ 1, s.cr0Wp != 0, s.smep != 0, s.smap != 0)) return guestFault(s, acc, PFERR_PRESENT, level, se);
  const newLo = lo | PTE_A | ((acc & ACC_WRITE) != 0 ? PTE_D : 0);
  if (se && adChanged(newLo, lo)) {
    const r = guestAdWrite(s, off, newLo, tableGpa + (<i64>((gva >> (12 + 9 * (level - 1))) & 511) << 3), level);
    if (r != XLATE_OK) return r;
    lo = newLo;
  }
  const shift = 12 + 9 * (level - 1);
  const frameLo = level > 1 ? lo & ~PTE_PAT_HUGE : lo;
  const gpa = (entryPfn(frameLo, hi) << 12) + (gva & ((<i64>1 << shift) - 1));
  s.gpa = <f64>gpa;
  return guestFinal(s, gva, gpa, acc, se, level, <i32>(lo & (PTE_D | PTE_G)), rw, us, nx);
}

/** Combined paging-structure caches: the deepest hit skips the upper levels and their nested walks. */
function pscProbe(s: MmuState, gva: i64, levels: i32): i32 {
  for (let l = 2; l <= levels; l++) {
    const c = pscOf(s, l);
    const n = gva >> (12 + 9 * (l - 1));
    const i = lookup(c, n, <f64>n, s.ctxTag, s.pcidTag);
    if (i >= 0) {
      statsOf(s).pscHits += 1;
      s.pscHpfn = <i64>valueAt(c, i);
      s.pscFrame = <i64>auxAt(c, i);
      const p = permAt(c, i);
      s.pscPerm = p;
      s.nWritable = (p & CP_NTABLE_WRITABLE) != 0 ? 1 : 0;
      s.nDirtyOk = (p & CP_NTABLE_DIRTY) != 0 ? 1 : 0;
      s.nLeafOff = -1;
      return l - 1;
    }
  }
  statsOf(s).pscMisses += 1;
  return levels;
}

function pscFill(s: MmuState, gva: i64, level: i32, tableHpfn: i64, tableFrame: i64, rw: u32, us: u32, nx: u32): void {
  const native = s.nested == 0;
  const perm =
    (rw != 0 ? CP_WRITABLE : 0) |
    (us != 0 ? CP_USER : 0) |
    (nx != 0 ? CP_NX : 0) |
    (native || s.nWritable != 0 ? CP_NTABLE_WRITABLE : 0) |
    (native || s.nDirtyOk != 0 ? CP_NTABLE_DIRTY : 0);
  const n = gva >> (12 + 9 * level);
  fill(pscOf(s, level + 1), n, <f64>n, s.ctxTag, s.pcidTag, <f64>tableHpfn, perm, <f64>tableFrame);
}

/** The leaf allows the access: the final gpa's nested translation, the result, the TLB fill. `dg`: the leaf's D and G bits. */
function guestFinal(s: MmuState, gva: i64, gpa: i64, acc: i32, se: bool, level: i32, dg: i32, rw: u32, us: u32, nx: u32): i32 {
  let size: i64 = <i64>4096 << (9 * (level - 1));
  let hpa = gpa;
  let writeOk = rw == 1 && (dg & PTE_D) != 0;
  let writable = rw == 1;
  let exec = true;
  const nested = s.nested != 0;
  if (nested) {
    const r = nestedTranslate(s, gpa, acc & ~ACC_USER, NESTED_FOR_FINAL, 0, se);
    if (r != XLATE_OK) return r;
    hpa = (s.nPfnBase << 12) + (gpa & 4095);
    const nSize = s.nSize;
    if (nSize < size) size = nSize;
    writable = writable && s.nWritable != 0;
    writeOk = writeOk && s.nWritable != 0 && s.nDirtyOk != 0;
    exec = s.nExec != 0;
  }
  s.hpa = <f64>hpa;
  s.pageSize = <f64>size;
  if (se) {
    statsOf(s).walkDataAccesses += 1;
    if (s.logOn != 0) logPush(s, REF_DATA, 0, 0, <f64>hpa, nested ? <f64>gpa : -1, 0, 0);
    if (s.tlb4k != 0) {
      const perm =
        (writeOk ? CP_WRITE_OK : 0) |
        (writable ? CP_WRITABLE : 0) |
        (us != 0 ? CP_USER : 0) |
        (nx != 0 || !exec ? CP_NX : 0) |
        ((dg & PTE_G) != 0 && s.cr4Pge != 0 ? CP_GLOBAL : 0);
      tlbFill(s, gva, gpa, hpa, size, perm);
    }
  }
  return XLATE_OK;
}

/** Caches the translation in the TLB array of its size; a 1 GiB page in the 2 MiB array keeps its 2 MiB piece. */
function tlbFill(s: MmuState, gva: i64, gpa: i64, hpa: i64, size: i64, perm: i32): void {
  const c = size == 4096 ? s.tlb4k : size == 1 << 21 ? s.tlb2m : s.tlb1g;
  const cShift: i64 = c == s.tlb2m && size == 1 << 30 ? 21 : size == 4096 ? 12 : size == 1 << 21 ? 21 : 30;
  const n = gva >> cShift;
  const key = cShift == 12 ? <f64>n : <f64>n + (cShift == 21 ? KEY_2M : KEY_1G);
  fill(changetype<AssocCache>(c), n, key, s.ctxTag, s.pcidTag, <f64>((hpa >> cShift) << (cShift - 12)), perm, <f64>((gpa >> cShift) << cShift));
}

/** Sets A/D bits in a guest entry: a locked write to the guest table, which the nested dimension must allow. */
function guestAdWrite(s: MmuState, off: i32, newLo: u32, entryGpa: i64, level: i32): i32 {
  if (s.nested != 0) {
    if (s.nWritable == 0) return nestedWriteFault(s, entryGpa, level);
    if (s.nDirtyOk == 0) {
      const r = markNestedDirty(s, entryGpa);
      if (r != XLATE_OK) return r;
    }
  }
  if (off >= 0) writeLo(off, newLo);
  statsOf(s).adWrites += 1;
  return XLATE_OK;
}

function guestFault(s: MmuState, acc: i32, bits: i32, level: i32, se: bool): i32 {
  s.errorCode = <f64>pfErrorCode(bits, acc, s.efeNxe != 0, s.smep != 0);
  s.faultLevel = level;
  if (se) statsOf(s).guestPageFaults += 1;
  return XLATE_GUEST_PF;
}
