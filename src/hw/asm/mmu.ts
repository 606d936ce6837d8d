// SPDX-License-Identifier: MIT
// ../mmu.ts in wasm: the TLB hit path (`access`), `probe`, `accessPhys`, `probePhys`, and the
// batched loop that translates a slice of accesses without returning to JS. Each takes the
// address of an MmuState; JS (../wasm_mmu.ts) handles MOV to CR3 and the invalidations.

import { AssocCache, CP_NX, CP_USER, CP_WRITE_OK, auxAt, lookup, permAt, valueAt } from "./assoc_cache";
import { ACC_FETCH, ACC_USER, ACC_WRITE, XLATE_OK } from "./mmu_defs";
import { MmuState, TLB_FORBID_OFFSET, TLB_NEED_OFFSET, logPush, statsOf, tlbPermits } from "./mmu_state";
import { NESTED_FOR_PHYS, nestedTranslate } from "./walk_nested";
import { KEY_1G, KEY_2M, REF_DATA, walkGuest } from "./walk_guest";

/** Translates `gva` for an access of kind `acc` as the hardware does; on XLATE_OK `hpa` holds the result. */
export function access(p: usize, gvaF: f64, acc: i32): i32 {
  const s = changetype<MmuState>(p);
  const gva = <i64>gvaF;
  if (s.tlb4k != 0) {
    const tlb = changetype<AssocCache>(s.tlb4k);
    const vpn = gva >> 12;
    const i = lookup(tlb, <f64>vpn, s.ctxTag, s.pcidTag);
    if (i >= 0 && tlbPermits(s, permAt(tlb, i), acc)) {
      statsOf(s).tlbHits += 1;
      s.pageSize = 4096;
      const off = <f64>(gva & 4095);
      s.hpa = valueAt(tlb, i) * 4096 + off;
      s.gpa = auxAt(tlb, i) + off;
      if (s.logOn != 0) logPush(s, REF_DATA, 0, 0, s.hpa, -1, 0, 0);
      return XLATE_OK;
    }
    if (i < 0 && hugeTlbHit(s, gva, acc)) return XLATE_OK;
    statsOf(s).tlbMisses += 1;
  }
  return walkGuest(s, gva, acc, true);
}

/** The 2 MiB and 1 GiB TLB probes, out of the 4 KiB hit path. True on a usable hit. */
function hugeTlbHit(s: MmuState, gva: i64, acc: i32): bool {
  let c = changetype<AssocCache>(s.tlb2m);
  let shift: i64 = 21;
  let n = gva >> 21;
  let i = lookup(c, <f64>n + KEY_2M, s.ctxTag, s.pcidTag);
  if (i < 0) {
    c = changetype<AssocCache>(s.tlb1g);
    shift = 30;
    n = gva >> 30;
    i = lookup(c, <f64>n + KEY_1G, s.ctxTag, s.pcidTag);
  }
  if (i < 0 || !tlbPermits(s, permAt(c, i), acc)) return false;
  statsOf(s).tlbHits += 1;
  s.pageSize = <f64>(<i64>1 << shift);
  const off = <f64>(gva - (n << shift));
  s.hpa = valueAt(c, i) * 4096 + off;
  s.gpa = auxAt(c, i) + off;
  if (s.logOn != 0) logPush(s, REF_DATA, 0, 0, s.hpa, -1, 0, 0);
  return true;
}

/** The translation the tables give now, with no side effect (a log still records it). */
export function probe(p: usize, gva: f64, acc: i32): i32 {
  return walkGuest(changetype<MmuState>(p), <i64>gva, acc, false);
}

/** Translates a guest-physical address through EPT/NPT only (no guest paging). */
export function accessPhys(p: usize, gpaF: f64, acc: i32): i32 {
  const s = changetype<MmuState>(p);
  if (s.nested == 0) {
    s.hpa = gpaF;
    return XLATE_OK;
  }
  s.faultGva = 0;
  const gpa = <i64>gpaF;
  const r = nestedTranslate(s, gpa, acc, NESTED_FOR_PHYS, 0, true);
  if (r == XLATE_OK) s.hpa = <f64>((<i64>s.nPfnBase << 12) + (gpa & 4095));
  return r;
}

export function probePhys(p: usize, gpaF: f64, acc: i32): i32 {
  const s = changetype<MmuState>(p);
  if (s.nested == 0) {
    s.hpa = gpaF;
    return XLATE_OK;
  }
  const gpa = <i64>gpaF;
  const r = nestedTranslate(s, gpa, acc, NESTED_FOR_PHYS, 0, false);
  if (r == XLATE_OK) s.hpa = <f64>((<i64>s.nPfnBase << 12) + (gpa & 4095));
  return r;
}

/**
 * Translates accesses i = 0..n-1 (gva in f64 `gvas`, kind in u8 `accs`) and stores each hpa in
 * f64 `hpas`, until one does not translate; returns how many did. The one at that index left
 * its fault in the state, counted, as access() would have.
 */
export function accessBatch(p: usize, gvas: usize, accs: usize, hpas: usize, n: i32): i32 {
  const s = changetype<MmuState>(p);
  for (let i = 0; i < n; i++) {
    const k = <usize>i;
    if (access(p, load<f64>(gvas + (k << 3)), load<u8>(accs + k)) != XLATE_OK) return i;
    store<f64>(hpas + (k << 3), s.hpa);
  }
  return n;
}

/** Per access kind, the entry bits a TLB hit needs and the bits that forbid it (CR4.SMEP, CR4.SMAP). */
export function computeTlbPerms(p: usize): void {
  const s = changetype<MmuState>(p);
  for (let acc = 0; acc < 32; acc++) {
    let need = 0;
    let forbid = 0;
    if ((acc & ACC_WRITE) != 0) need |= CP_WRITE_OK;
    if ((acc & ACC_USER) != 0) need |= CP_USER;
    else if (s.smap != 0 || ((acc & ACC_FETCH) != 0 && s.smep != 0)) forbid |= CP_USER;
    if ((acc & ACC_FETCH) != 0) forbid |= CP_NX;
    store<i32>(p + TLB_NEED_OFFSET + (<usize>acc << 2), need);
    store<i32>(p + TLB_FORBID_OFFSET + (<usize>acc << 2), forbid);
  }
}
