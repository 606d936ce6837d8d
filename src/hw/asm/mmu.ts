// SPDX-License-Identifier: MIT
// ../mmu.ts in wasm: the TLB hit path (`access`), `probe`, `accessPhys`, `probePhys`, and the
// batched loop that translates a slice of accesses without returning to JS. Each takes the
// address of an MmuState; JS (../wasm_mmu.ts) handles MOV to CR3 and the invalidations.

import {
  AssocCache,
  CP_GLOBAL,
  CP_NX,
  CP_USER,
  CP_WRITE_OK,
  E_AUX,
  E_CTX,
  E_KEY,
  E_PCID,
  E_PERM,
  E_VALUE,
  auxAt,
  entryAt,
  findWay,
  lookup,
  permAt,
  valueAt,
} from "./assoc_cache";
import { ACC_FETCH, ACC_USER, ACC_WRITE, XLATE_OK } from "./mmu_defs";
import { MmuState, TLB_FORBID_OFFSET, TLB_NEED_OFFSET, logPush, statsOf, tlbPermits } from "./mmu_state";
import { NESTED_FOR_PHYS, nestedTranslate } from "./walk_nested";
import { KEY_1G, KEY_2M, REF_DATA, walkGuest } from "./walk_guest";

const INV_PAGE: f64 = 1.0 / 4096;
const TWO_52: f64 = 4503599627370496;

/** Translates `gva` for an access of kind `acc` as the hardware does; on XLATE_OK `hpa` holds the result. */
export function access(p: usize, gvaF: f64, acc: i32): i32 {
  const s = changetype<MmuState>(p);
  const gva = <i64>gvaF;
  if (s.tlb4k == 0) return walkGuest(s, gva, acc, true);
  const tlb = changetype<AssocCache>(s.tlb4k);
  const vpn = gva >> 12;
  const i = lookup(tlb, vpn, <f64>vpn, s.ctxTag, s.pcidTag);
  if (i < 0 || !tlbPermits(s, permAt(tlb, i), acc)) return tlbMissed(s, gva, acc, i);
  statsOf(s).tlbHits += 1;
  s.pageSize = 4096;
  const off = <f64>(gva & 4095);
  s.hpa = valueAt(tlb, i) * 4096 + off;
  s.gpa = auxAt(tlb, i) + off;
  if (s.logOn != 0) logPush(s, REF_DATA, 0, 0, s.hpa, -1, 0, 0);
  return XLATE_OK;
}

/** The rest of access() when the 4 KiB TLB gave no usable entry (`i`: the entry it found, or -1). */
function tlbMissed(s: MmuState, gva: i64, acc: i32, i: i32): i32 {
  if (i < 0 && hugeTlbHit(s, gva, acc)) return XLATE_OK;
  statsOf(s).tlbMisses += 1;
  return walkGuest(s, gva, acc, true);
}

/** The 2 MiB and 1 GiB TLB probes, out of the 4 KiB hit path. True on a usable hit. */
function hugeTlbHit(s: MmuState, gva: i64, acc: i32): bool {
  let c = changetype<AssocCache>(s.tlb2m);
  let shift: i64 = 21;
  let n = gva >> 21;
  let i = lookup(c, n, <f64>n + KEY_2M, s.ctxTag, s.pcidTag);
  if (i < 0) {
    c = changetype<AssocCache>(s.tlb1g);
    shift = 30;
    n = gva >> 30;
    i = lookup(c, n, <f64>n + KEY_1G, s.ctxTag, s.pcidTag);
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
  if (r == XLATE_OK) s.hpa = <f64>((s.nPfnBase << 12) + (gpa & 4095));
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
  if (r == XLATE_OK) s.hpa = <f64>((s.nPfnBase << 12) + (gpa & 4095));
  return r;
}

/**
 * Translates accesses k = 0..n-1 (gva in f64 `gvas`, kind in u8 `accs`) and stores each hpa in
 * f64 `hpas` and its gpa in f64 `gpas`, until one does not translate; returns how many did. The
 * one at that index left its fault in the state, counted, as access() would have, and its
 * result code in `batchResult`. The 4 KiB TLB hit (any way of the set) is access() inlined over
 * locals (cache arrays, LRU clock, hit counter; the result fields written once at the end); anything else is access() itself, which repeats that
 * probe, so every side effect happens as it would one access at a time.
 */
export function accessBatch(p: usize, gvas: usize, accs: usize, hpas: usize, gpas: usize, n: i32): i32 {
  const s = changetype<MmuState>(p);
  if (s.tlb4k == 0 || s.logOn != 0) return accessEach(p, gvas, accs, hpas, gpas, n);
  const tlb = changetype<AssocCache>(s.tlb4k);
  const mrus = tlb.mru;
  const setMask = tlb.setMask;
  const ways = tlb.ways;
  const ctx = s.ctxTag;
  const pcid = s.pcidTag;
  let clock = tlb.clock;
  let run = 0; // the first access of the current run of hits
  for (let k = 0; k < n; k++) {
    const gvaF = load<f64>(gvas + (<usize>k << 3));
    // The page number stays an f64 (no saturating f64 -> i64 conversion); its low bits, for the set, come from adding 2^52.
    const vpnF = Math.floor(gvaF * INV_PAGE);
    const low = <i32>reinterpret<i64>(vpnF + TWO_52);
    const set = low & setMask;
    const base = <usize>(set * ways);
    let e = <i32>base + load<i32>(mrus + (<usize>set << 2));
    let rec = entryAt(tlb, e);
    let hit = load<f64>(rec, E_KEY) == vpnF && load<i32>(rec, E_CTX) == ctx;
    if (!hit) {
      // lookupSet(): the first matching way of the set becomes the most recently used.
      e = scanSet(tlb, <i32>base, low ^ ctx, vpnF, ctx, pcid);
      hit = e >= 0;
      rec = entryAt(tlb, e);
    }
    if (hit) {
      const perm = load<i32>(rec, E_PERM);
      if (load<i32>(rec, E_PCID) == pcid || (perm & CP_GLOBAL) != 0) {
        const acc = <usize>load<u8>(accs + <usize>k) << 2;
        const need = load<i32>(p + TLB_NEED_OFFSET + acc);
        if ((perm & need) == need && (perm & load<i32>(p + TLB_FORBID_OFFSET + acc)) == 0) {
          clock += 1;
          store<f64>(tlb.stamp + (<usize>e << 3), clock);
          store<i32>(mrus + (<usize>set << 2), e - <i32>base);
          const off = gvaF - vpnF * 4096;
          store<f64>(hpas + (<usize>k << 3), load<f64>(rec, E_VALUE) * 4096 + off);
          store<f64>(gpas + (<usize>k << 3), load<f64>(rec, E_AUX) + off);
          continue;
        }
      }
    }
    tlb.clock = clock;
    if (k > run) batchHitFields(s, k - run, gpas, hpas, k - 1);
    run = k + 1;
    const r = access(p, gvaF, load<u8>(accs + <usize>k));
    if (r != XLATE_OK) {
      s.batchResult = r;
      return k;
    }
    store<f64>(hpas + (<usize>k << 3), s.hpa);
    store<f64>(gpas + (<usize>k << 3), s.gpa);
    clock = tlb.clock;
  }
  tlb.clock = clock;
  if (n > run) batchHitFields(s, n - run, gpas, hpas, n - 1);
  return n;
}

/** findWay over a whole set, out of line: accessBatch's loop stays small for hits on the most recently used way. */
function scanSet(tlb: AssocCache, base: i32, tag: i32, key: f64, ctx: i32, pcid: i32): i32 {
  return findWay(tlb, base, tlb.ways, tag, key, ctx, pcid);
}

/** A run of `hits` 4 KiB TLB hits ending at access k: counted, and the result fields access() would have left. */
function batchHitFields(s: MmuState, hits: i32, gpas: usize, hpas: usize, k: i32): void {
  statsOf(s).tlbHits += <f64>hits;
  s.pageSize = 4096;
  s.hpa = load<f64>(hpas + (<usize>k << 3));
  s.gpa = load<f64>(gpas + (<usize>k << 3));
}

/** accessBatch without a TLB, or with a log listening: access() one by one. */
function accessEach(p: usize, gvas: usize, accs: usize, hpas: usize, gpas: usize, n: i32): i32 {
  const s = changetype<MmuState>(p);
  for (let k = 0; k < n; k++) {
    const r = access(p, load<f64>(gvas + (<usize>k << 3)), load<u8>(accs + <usize>k));
    if (r != XLATE_OK) {
      s.batchResult = r;
      return k;
    }
    store<f64>(hpas + (<usize>k << 3), s.hpa);
    store<f64>(gpas + (<usize>k << 3), s.gpa);
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
