// SPDX-License-Identifier: MIT
// The guest dimension of a page walk (SDM vol. 3 4.5): gva -> gpa through the guest's tables
// (natively, or over shadow tables, gva -> hpa), each table address translated by the nested
// walk under EPT/NPT, in phases: PSC probe, per level the table's nested translation, PSC fill
// and entry read and check, then leaf permission, A/D, the final gpa's nested translation and
// the TLB fill. The reserved-bit, permission and error-code rules are x86_rules.ts's.

import { INV_LEVEL_SIZE, INV_PAGE_SIZE, LEVEL_SIZE, PAGE_SIZE, tableIndex } from "./addr.js";
import { CP_GLOBAL, CP_NTABLE_DIRTY, CP_NTABLE_WRITABLE, CP_NX, CP_USER, CP_WRITABLE, CP_WRITE_OK } from "./assoc_cache.js";
import { ACC_READ, ACC_USER, ACC_WRITE, XLATE_GUEST_PF, XLATE_OK, type XlateResult } from "./mmu_defs.js";
import { KEY_1G, KEY_2M, type MmuState, NESTED_FOR_FINAL, NESTED_FOR_TABLE, entryFrame, pageOffset } from "./mmu_state.js";
import { REF_DATA, REF_GUEST_TABLE } from "./walk_log.js";
import { markNestedDirty, nestedTranslate, nestedWriteFault } from "./walk_nested.js";
import { PFERR_PRESENT, PFERR_RSVD, PTE_A, PTE_D, PTE_G, PTE_P, PTE_PAT_HUGE } from "./x86_pte.js";
import { isPermissionFault, isRsvdGpte, isX86Leaf, pfErrorCode } from "./x86_rules.js";

/** The page walk (SDM 4.5, and 29.3.2 for the nested dimension). `se`: with side effects (A/D, caches, counters). */
export function walkGuest(s: MmuState, gva: number, acc: number, se: boolean): XlateResult {
  const stats = s.stats;
  const levels = s.config.guestLevels;
  const nested = s.nested;
  const log = s.log;
  if (se) stats.walks++;
  s.faultGva = gva;
  let level = se && s.psc[2] !== null ? pscProbe(s, gva, levels) : levels;
  const hit = level < levels;
  let tableFrame = hit ? s.pscFrame : s.cr3Frame; // gfn (nested) or pfn (native) of the current table
  let tableHpfn = hit ? s.pscHpfn : nested ? -1 : tableFrame;
  let rw = hit && (s.pscPerm & CP_WRITABLE) === 0 ? 0 : 1;
  let us = hit && (s.pscPerm & CP_USER) === 0 ? 0 : 1;
  let nx = hit && (s.pscPerm & CP_NX) !== 0 ? 1 : 0;
  const tableAcc = s.isEpt && s.config.eptAd ? ACC_WRITE : ACC_READ;
  const nxe = s.efeNxe;
  const slots = s.mem.tableSlot;
  const words = s.mem.words;
  let lo = 0;
  let hi = 0;
  let off = 0;
  let tableGpa = -1;
  for (;;) {
    const idx = tableIndex(gva, level);
    tableGpa = nested ? tableFrame * PAGE_SIZE : -1;
    if (tableHpfn < 0) {
      const r = nestedTranslate(s, tableGpa + idx * 8, tableAcc, NESTED_FOR_TABLE, level, se);
      if (r !== XLATE_OK) return r;
      tableHpfn = s.nPfnBase;
    }
    if (se && level < levels && s.psc[level + 1] !== null) pscFill(s, gva, level, tableHpfn, tableFrame, rw, us, nx);
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
    if (se) stats.guestTableReads++;
    if (log !== null)
      log.push(REF_GUEST_TABLE, level, level, tableHpfn * PAGE_SIZE + idx * 8, tableGpa < 0 ? -1 : tableGpa + idx * 8, lo, hi);
    if ((lo & PTE_P) === 0) return guestFault(s, acc, 0, level, se);
    const leaf = isX86Leaf(lo, level);
    if (isRsvdGpte(lo, hi, level, leaf, s.rsvdHi, nxe)) return guestFault(s, acc, PFERR_PRESENT | PFERR_RSVD, level, se);
    rw &= (lo >>> 1) & 1;
    us &= (lo >>> 2) & 1;
    if (nxe) nx |= hi >>> 31;
    if (leaf) break;
    if (se && (lo & PTE_A) === 0) {
      const r = guestAdWrite(s, off, lo | PTE_A, tableGpa + idx * 8, level);
      if (r !== XLATE_OK) return r;
    }
    if (nested) {
      tableFrame = (lo >>> 12) + (hi & 0xfffff) * 0x100000;
      tableHpfn = -1;
    } else {
      tableHpfn = tableFrame = entryFrame(lo, hi);
    }
    level--;
  }
  if (isPermissionFault(acc, rw, us, nx ^ 1, s.cr0Wp, s.smep, s.smap)) return guestFault(s, acc, PFERR_PRESENT, level, se);
  const newLo = (lo | PTE_A | ((acc & ACC_WRITE) !== 0 ? PTE_D : 0)) >>> 0;
  if (se && newLo !== lo) {
    const r = guestAdWrite(s, off, newLo, tableGpa + tableIndex(gva, level) * 8, level);
    if (r !== XLATE_OK) return r;
    lo = newLo;
  }
  const gSize = LEVEL_SIZE[level]!;
  const frameLo = level > 1 ? lo & ~PTE_PAT_HUGE : lo;
  s.gpa = ((frameLo >>> 12) + (hi & 0xfffff) * 0x100000) * PAGE_SIZE + (gva - Math.floor(gva / gSize) * gSize);
  // Only small integers cross the call: gva and gpa are in faultGva and gpa.
  return guestFinal(s, acc, se, level, lo & (PTE_D | PTE_G), rw, us, nx);
}

/** Combined paging-structure caches: the deepest hit skips the upper levels and their nested walks. */
function pscProbe(s: MmuState, gva: number, levels: number): number {
  for (let l = 2; l <= levels; l++) {
    const c = s.psc[l]!;
    const i = c.lookup(Math.floor(gva * INV_LEVEL_SIZE[l]!), s.ctxTag, s.pcidTag);
    if (i >= 0) {
      s.stats.pscHits++;
      s.pscHpfn = c.value[i]!;
      s.pscFrame = c.aux[i]!;
      const p = c.perm[i]!;
      s.pscPerm = p;
      s.nWritable = (p & CP_NTABLE_WRITABLE) !== 0;
      s.nDirtyOk = (p & CP_NTABLE_DIRTY) !== 0;
      s.nLeafOff = -1;
      return l - 1;
    }
  }
  s.stats.pscMisses++;
  return levels;
}

function pscFill(s: MmuState, gva: number, level: number, tableHpfn: number, tableFrame: number, rw: number, us: number, nx: number): void {
  const nested = s.nested;
  s.psc[level + 1]!.fill(
    Math.floor(gva * INV_LEVEL_SIZE[level + 1]!),
    s.ctxTag,
    s.pcidTag,
    tableHpfn,
    (rw ? CP_WRITABLE : 0) |
      (us ? CP_USER : 0) |
      (nx ? CP_NX : 0) |
      (!nested || s.nWritable ? CP_NTABLE_WRITABLE : 0) |
      (!nested || s.nDirtyOk ? CP_NTABLE_DIRTY : 0),
    tableFrame,
  );
}

/** The leaf allows the access: the final gpa's nested translation, the result, the TLB fill. `dg`: the leaf's D and G bits. */
function guestFinal(s: MmuState, acc: number, se: boolean, level: number, dg: number, rw: number, us: number, nx: number): XlateResult {
  const gva = s.faultGva;
  const gpa = s.gpa;
  const gSize = LEVEL_SIZE[level]!;
  let size = gSize;
  let hpa = gpa;
  let writeOk = rw === 1 && (dg & PTE_D) !== 0;
  let writable = rw === 1;
  let exec = true;
  if (s.nested) {
    const r = nestedTranslate(s, gpa, acc & ~ACC_USER, NESTED_FOR_FINAL, 0, se);
    if (r !== XLATE_OK) return r;
    hpa = s.nPfnBase * PAGE_SIZE + pageOffset(gpa);
    if (s.nSize < size) size = s.nSize;
    writable = writable && s.nWritable;
    writeOk = writeOk && s.nWritable && s.nDirtyOk;
    exec = s.nExec;
  }
  s.hpa = hpa;
  s.pageSize = size;
  if (se) {
    s.stats.walkDataAccesses++;
    if (s.log !== null) s.log.push(REF_DATA, 0, 0, hpa, s.nested ? gpa : -1, 0, 0);
    if (s.tlb4k !== null) {
      const perm =
        (writeOk ? CP_WRITE_OK : 0) |
        (writable ? CP_WRITABLE : 0) |
        (us ? CP_USER : 0) |
        (nx || !exec ? CP_NX : 0) |
        ((dg & PTE_G) !== 0 && s.cr4Pge ? CP_GLOBAL : 0);
      tlbFill(s, gva, gpa, hpa, size, perm);
    }
  }
  return XLATE_OK;
}

/** Caches the translation in the TLB array of its size. */
function tlbFill(s: MmuState, gva: number, gpa: number, hpa: number, size: number, perm: number): void {
  const c = size === PAGE_SIZE ? s.tlb4k! : size === LEVEL_SIZE[2] ? s.tlb2m! : s.tlb1g!;
  const key = size === PAGE_SIZE ? Math.floor(gva / size) : Math.floor(gva / size) + (size === LEVEL_SIZE[2] ? KEY_2M : KEY_1G);
  // A 1 GiB page cached in a 2 MiB array ("smashed") keeps the 2 MiB piece it was reached through.
  const cSize = c === s.tlb2m && size === LEVEL_SIZE[3] ? LEVEL_SIZE[2]! : size;
  const cKey = cSize === size ? key : Math.floor(gva / cSize) + KEY_2M;
  c.fill(cKey, s.ctxTag, s.pcidTag, Math.floor(hpa / cSize) * (cSize * INV_PAGE_SIZE), perm, Math.floor(gpa / cSize) * cSize);
}

/** Sets A/D bits in a guest entry: a locked write to the guest table, which the nested dimension must allow. */
function guestAdWrite(s: MmuState, off: number, newLo: number, entryGpa: number, level: number): XlateResult {
  if (s.nested) {
    // The table page was reached by a read (NPT, or EPT without A/D): the write needs a writable nested leaf.
    if (!s.nWritable) return nestedWriteFault(s, entryGpa, level);
    if (!s.nDirtyOk) {
      const r = markNestedDirty(s, entryGpa);
      if (r !== XLATE_OK) return r;
    }
  }
  if (off >= 0) s.mem.words[off] = newLo;
  s.stats.adWrites++;
  return XLATE_OK;
}

function guestFault(s: MmuState, acc: number, bits: number, level: number, se: boolean): XlateResult {
  s.errorCode = pfErrorCode(bits, acc, s.efeNxe, s.smep);
  s.faultLevel = level;
  if (se) s.stats.guestPageFaults++;
  return XLATE_GUEST_PF;
}
