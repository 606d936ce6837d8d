// SPDX-License-Identifier: MIT
// The batched loop's data check (../../sim/checker.ts Checker.accessTdpRun) in wasm, over the
// memory the core shares with JS: the host frames' content tags (../phys_mem.ts), their page
// flags (../../host/page_flags.ts), and the checker's per-page arrays (../paged_array.ts), whose
// leaves the core finds through each array's table of remembered leaves. It settles the accesses
// whose outcome is the common one and stops, changing nothing, at the first that needs JS: a
// leaf not remembered or not in this memory, a free frame, a read that is not what both views
// say, a write JS must see (a shared file mapping, a KSM content class) or whose value is
// UNKNOWN_TAG. JS then runs that access and calls again after it.

/** Leaves of 2^12 entries; remembered-leaf tables of 64 (../paged_array.ts). */
export const LEAF_MASK: i32 = 4095;
export const CACHE_MASK: i32 = 63;
const CACHE_AT_OFFSET: usize = 64 * 8;
const INV_PAGE: f64 = 1.0 / 4096.0;
const INV_LEAF: f64 = 1.0 / 4096.0;
const TWO_52: f64 = 4503599627370496.0;
/** UNKNOWN_TAG as a signed 32-bit integer (sim/checker.ts): a write of it goes through JS. */
export const UNKNOWN_I32: i32 = -1;
/** ACC_WRITE (PFERR_WRITE): the access kind's write bit. */
export const ACC_WRITE: u8 = 2;

/** The low 32 bits of a whole f64 in [0, 2^52). */
@inline function low32(x: f64): i32 {
  return <i32>reinterpret<i64>(x + TWO_52);
}

/** The byte address of leaf number n of the array whose remembered-leaf table is at `cache`, or 0. */
@inline function leafAt(cache: usize, n: f64): usize {
  const c = <usize>(low32(n) & CACHE_MASK);
  if (load<f64>(cache + (c << 3)) != n) return 0;
  return load<u32>(cache + CACHE_AT_OFFSET + (c << 2));
}

/**
 * Checks accesses [0, n) (gva, acc, hpa, gpa as accessBatch leaves them); returns how many it
 * settled. `st` holds, as i32: the read digest (in and out), reads settled (out), the low 32 bits
 * of Machine.writeSeq (in and out) and writes settled (out). `writes` is 0 when every write
 * must go through JS.
 */
export function dataCheckRun(
  st: usize,
  gvas: usize,
  accs: usize,
  hpas: usize,
  gpas: usize,
  n: i32,
  content: usize,
  flags: usize,
  freeMask: i32,
  written: usize,
  expected: usize,
  writes: i32,
): i32 {
  let digest = load<i32>(st, 0);
  let seq = load<i32>(st, 8);
  let reads = 0;
  let wrote = 0;
  // The leaves the last access used (a batch stays in one or two of each), by leaf number.
  let wNo: f64 = -1;
  let wLeaf: usize = 0;
  let eNo: f64 = -1;
  let eLeaf: usize = 0;
  let k = 0;
  for (; k < n; k++) {
    const frame = <usize>(load<f64>(hpas + (<usize>k << 3)) * INV_PAGE);
    if ((<i32>load<u16>(flags + (frame << 1)) & freeMask) != 0) break;
    const vpn = Math.floor(load<f64>(gvas + (<usize>k << 3)) * INV_PAGE);
    const gfn = Math.floor(load<f64>(gpas + (<usize>k << 3)) * INV_PAGE);
    const wn = Math.floor(vpn * INV_LEAF);
    if (wn != wNo) {
      wNo = wn;
      wLeaf = leafAt(written, wn);
      if (wLeaf == 0) break;
    }
    const en = Math.floor(gfn * INV_LEAF);
    if (en != eNo) {
      eNo = en;
      eLeaf = leafAt(expected, en);
      if (eLeaf == 0) break;
    }
    const wAt = wLeaf + (<usize>(low32(vpn) & LEAF_MASK) << 2);
    const eAt = eLeaf + (<usize>(low32(gfn) & LEAF_MASK) << 2);
    const cAt = content + (frame << 2);
    if ((load<u8>(accs + <usize>k) & ACC_WRITE) == 0) {
      // A read whose page was written and whose two views agree with its frame.
      const value = load<i32>(cAt);
      const w = load<i32>(wAt);
      if (w == 0 || value != w || value != load<i32>(eAt)) break;
      reads++;
      digest = (digest * 0x01000193) ^ value;
      continue;
    }
    if (writes == 0) break;
    // Machine.nextWriteValueI32 for CONTENT_UNIQUE.
    const value = ((seq + 1) * <i32>0x9e3779b1) | 1;
    if (value == UNKNOWN_I32) break;
    seq++;
    wrote++;
    store<i32>(cAt, value);
    store<i32>(eAt, value);
    store<i32>(wAt, value);
  }
  store<i32>(st, digest, 0);
  store<i32>(st, reads, 4);
  store<i32>(st, seq, 8);
  store<i32>(st, wrote, 12);
  return k;
}
