// SPDX-License-Identifier: MIT
// ../assoc_cache.ts in wasm memory: a set-associative cache with context and PCID tags and LRU
// replacement, as 40-byte entry records after a header (a hit reads one record from one base
// pointer: as seven arrays, the hit loop had more live pointers than registers and reloaded
// them from the stack), then the LRU stamps, the sets' MRU ways and the tags. Same lookup order
// (the set's most recently used way first), same victim choice, same clock, so its contents
// equal the JS cache's entry for entry. Context 0 marks an empty entry, and so does stamp 0 (both
// are cleared together), which lets a fill choose its victim from the set's 16 contiguous stamps
// instead of 16 records. Each entry also has an i32 `tag` (the key's page number's low 32 bits
// xor its context tag, set by fill) that a lookup compares first, so scanning a set reads 4
// bytes a way instead of an f64 key and a context, four ways per SIMD compare; tag matches are
// then checked in full in way order (an invalidated entry keeps its old tag, with context 0), so
// the way found is the one a plain scan finds.

export const CP_WRITE_OK: i32 = 1 << 0;
export const CP_WRITABLE: i32 = 1 << 1;
export const CP_USER: i32 = 1 << 2;
export const CP_NX: i32 = 1 << 3;
export const CP_GLOBAL: i32 = 1 << 4;
export const CP_EXEC: i32 = 1 << 5;
export const CP_NTABLE_WRITABLE: i32 = 1 << 6;
export const CP_NTABLE_DIRTY: i32 = 1 << 7;

/** Which entries an invalidation or a count selects (the JS Mmu's match closures). */
export const MATCH_LIVE = 0; // ctx, and the PCID or global
export const MATCH_PCID = 1; // ctx and the PCID
export const MATCH_PCID_LOCAL = 2; // ctx and the PCID, not global
export const MATCH_CTX = 3; // ctx

@unmanaged export class AssocCache {
  clock: f64;
  sets: i32;
  ways: i32;
  setMask: i32;
  entries: i32;
  ent: usize; // ENTRY_BYTES[entries]: the E_* fields
  stamp: usize; // f64[entries]
  mru: usize; // i32[sets]
  tag: usize; // i32[entries]
}

/** An entry record: key, value, aux (f64), context, PCID, permissions (i32), 4 bytes of padding. */
export const ENTRY_BYTES: i32 = 40;
export const E_KEY = 0;
export const E_VALUE = 8;
export const E_AUX = 16;
export const E_CTX = 24;
export const E_PCID = 28;
export const E_PERM = 32;

/** The address of entry i's record. */
@inline export function entryAt(c: AssocCache, i: i32): usize {
  return c.ent + <usize>i * ENTRY_BYTES;
}

export function cacheBytes(sets: i32, ways: i32): i32 {
  const n = sets * ways;
  return (<i32>offsetof<AssocCache>() + 63 + n * ENTRY_BYTES + n * 8 + sets * 4 + 63 + n * 4 + 7) & ~7;
}

/** Lays out an empty cache at `p` (the memory there is zero). */
export function cacheInit(p: usize, sets: i32, ways: i32): void {
  const c = changetype<AssocCache>(p);
  const n = sets * ways;
  c.sets = sets;
  c.ways = ways;
  c.setMask = sets - 1;
  c.entries = n;
  // Records and tags from a 64-byte boundary: a set's 16 tags are one cache line.
  c.ent = (p + offsetof<AssocCache>() + 63) & ~63;
  c.stamp = c.ent + n * ENTRY_BYTES;
  c.mru = c.stamp + n * 8;
  c.tag = (c.mru + sets * 4 + 63) & ~63;
}

/** The tag of the entry for page (or table) number `n` in context `ctx`. */
@inline export function tagOf(n: i64, ctx: i32): i32 {
  return <i32>n ^ ctx;
}

@inline export function keyAt(c: AssocCache, i: i32): f64 {
  return load<f64>(entryAt(c, i), E_KEY);
}
@inline export function valueAt(c: AssocCache, i: i32): f64 {
  return load<f64>(entryAt(c, i), E_VALUE);
}
@inline export function auxAt(c: AssocCache, i: i32): f64 {
  return load<f64>(entryAt(c, i), E_AUX);
}
@inline export function ctxAt(c: AssocCache, i: i32): i32 {
  return load<i32>(entryAt(c, i), E_CTX);
}
@inline export function pcidAt(c: AssocCache, i: i32): i32 {
  return load<i32>(entryAt(c, i), E_PCID);
}
@inline export function permAt(c: AssocCache, i: i32): i32 {
  return load<i32>(entryAt(c, i), E_PERM);
}
@inline function stampAt(c: AssocCache, i: i32): f64 {
  return load<f64>(c.stamp + (<usize>i << 3));
}
@inline function setStamp(c: AssocCache, i: i32, t: f64): void {
  store<f64>(c.stamp + (<usize>i << 3), t);
}
@inline export function setPerm(c: AssocCache, i: i32, perm: i32): void {
  store<i32>(entryAt(c, i), perm, E_PERM);
}

@inline function matches(c: AssocCache, i: i32, key: f64, ctx: i32, pcid: i32): bool {
  return keyAt(c, i) == key && ctxAt(c, i) == ctx && (pcidAt(c, i) == pcid || (permAt(c, i) & CP_GLOBAL) != 0);
}

@inline function tagAt(c: AssocCache, i: i32): i32 {
  return load<i32>(c.tag + (<usize>i << 2));
}

/**
 * The set of a key: its low bits, as JS's `key & setMask` takes them. Callers pass the page (or
 * table) number `n` beside the key, which is n or n + 2^50 / 2^51 (no low bits), so no f64
 * conversion is needed here.
 */
@inline function setOf(c: AssocCache, n: i64): i32 {
  return <i32>n & c.setMask;
}

/**
 * The first of ways [base, base + ways) (entry indices) that matches (key, ctx, pcid), or -1:
 * the ways whose tag is `tag`, found 4 at a time, 32 ways per mask, checked in full in order.
 * `exact`: the PCID must be equal (a fill's own entry), not equal or global (a lookup's hit).
 */
@inline export function findWay(c: AssocCache, base: i32, ways: i32, tag: i32, key: f64, ctx: i32, pcid: i32, exact: bool = false): i32 {
  const want = i32x4.splat(tag);
  for (let chunk = 0; chunk < ways; chunk += 32) {
    const end = min(ways, chunk + 32);
    let m: u32 = 0;
    let w = chunk;
    for (; w + 4 <= end; w += 4) {
      const eq = i32x4.eq(v128.load(c.tag + (<usize>(base + w) << 2)), want);
      m |= <u32>i32x4.bitmask(eq) << <u32>(w - chunk);
    }
    for (; w < end; w++) if (tagAt(c, base + w) == tag) m |= <u32>1 << <u32>(w - chunk);
    while (m != 0) {
      const i = base + chunk + <i32>ctz(m);
      if (exact ? keyAt(c, i) == key && ctxAt(c, i) == ctx && pcidAt(c, i) == pcid : matches(c, i, key, ctx, pcid)) return i;
      m &= m - 1;
    }
  }
  return -1;
}

/** Index of the matching entry, or -1; refreshes LRU on a hit. */
@inline export function lookup(c: AssocCache, n: i64, key: f64, ctx: i32, pcid: i32): i32 {
  const set = setOf(c, n);
  const base = set * c.ways;
  const i = base + load<i32>(c.mru + (<usize>set << 2));
  if (matches(c, i, key, ctx, pcid)) {
    const t = c.clock + 1;
    c.clock = t;
    setStamp(c, i, t);
    return i;
  }
  return lookupSet(c, set, base, tagOf(n, ctx), key, ctx, pcid);
}

function lookupSet(c: AssocCache, set: i32, base: i32, tag: i32, key: f64, ctx: i32, pcid: i32): i32 {
  const i = findWay(c, base, c.ways, tag, key, ctx, pcid);
  if (i < 0) return -1;
  const t = c.clock + 1;
  c.clock = t;
  setStamp(c, i, t);
  store<i32>(c.mru + (<usize>set << 2), i - base);
  return i;
}

/** Like lookup, but changes nothing. */
export function peek(c: AssocCache, n: i64, key: f64, ctx: i32, pcid: i32): i32 {
  return findWay(c, setOf(c, n) * c.ways, c.ways, tagOf(n, ctx), key, ctx, pcid);
}

/**
 * Inserts or replaces the entry for (key, ctx, pcid); evicts the least recently used way. The
 * JS cache's choice: the first way holding exactly (key, ctx, pcid) (found through the tags),
 * else the last empty way, else the first way with the oldest stamp.
 */
export function fill(c: AssocCache, n: i64, key: f64, ctx: i32, pcid: i32, value: f64, perm: i32, aux: f64): i32 {
  const set = setOf(c, n);
  const ways = c.ways;
  const base = set * ways;
  const tag = tagOf(n, ctx);
  let victim = findWay(c, base, ways, tag, key, ctx, pcid, true);
  if (victim < 0) victim = lruWay(c, base, ways);
  const r = entryAt(c, victim);
  store<f64>(r, key, E_KEY);
  store<i32>(r, ctx, E_CTX);
  store<i32>(r, pcid, E_PCID);
  store<f64>(r, value, E_VALUE);
  store<f64>(r, aux, E_AUX);
  store<i32>(r, perm, E_PERM);
  store<i32>(c.tag + (<usize>victim << 2), tag);
  const t = c.clock + 1;
  c.clock = t;
  setStamp(c, victim, t);
  store<i32>(c.mru + (<usize>set << 2), victim - base);
  return victim;
}

/**
 * The victim among ways [base, base + ways): the last empty one (stamp 0), else the one with the
 * oldest stamp (stamps of live entries are distinct, so it is the first). Two ways at a time, in
 * one pass: each lane keeps its minimum and where it was, and the last empty way is remembered.
 */
function lruWay(c: AssocCache, base: i32, ways: i32): i32 {
  const stamps = c.stamp + (<usize>base << 3);
  const zero = f64x2.splat(0);
  const two = i64x2.splat(2);
  let lo = f64x2.splat(Infinity);
  let at = i64x2.replace_lane(i64x2.splat(0), 1, 1);
  let way = at;
  let lastEmpty = -1;
  let w = 0;
  for (; w + 2 <= ways; w += 2) {
    const v = v128.load(stamps + (<usize>w << 3));
    const older = f64x2.lt(v, lo);
    lo = v128.bitselect(v, lo, older);
    at = v128.bitselect(way, at, older);
    way = i64x2.add(way, two);
    const empty = i64x2.bitmask(f64x2.eq(v, zero));
    if (empty != 0) lastEmpty = w + <i32>(empty >> 1);
  }
  let oldest = f64x2.extract_lane(lo, 0);
  let victim = <i32>i64x2.extract_lane(at, 0);
  if (f64x2.extract_lane(lo, 1) < oldest) {
    oldest = f64x2.extract_lane(lo, 1);
    victim = <i32>i64x2.extract_lane(at, 1);
  }
  if (w < ways) {
    const st = load<f64>(stamps + (<usize>w << 3));
    if (st == 0) lastEmpty = w;
    if (st < oldest) victim = w;
  }
  return base + (lastEmpty >= 0 ? lastEmpty : victim);
}

@inline function selects(c: AssocCache, i: i32, mode: i32, ctx: i32, pcid: i32): bool {
  const ic = ctxAt(c, i);
  if (ic == 0 || ic != ctx) return false;
  if (mode == MATCH_CTX) return true;
  const global = (permAt(c, i) & CP_GLOBAL) != 0;
  if (mode == MATCH_LIVE) return pcidAt(c, i) == pcid || global;
  return pcidAt(c, i) == pcid && (mode == MATCH_PCID || !global);
}

/** Drops the entries for `key` that `mode` selects; returns how many. */
export function invalidateKey(p: usize, key: f64, mode: i32, ctx: i32, pcid: i32): i32 {
  const c = changetype<AssocCache>(p);
  const base = setOf(c, <i64>key) * c.ways;
  let n = 0;
  for (let i = base; i < base + c.ways; i++) {
    if (keyAt(c, i) == key && selects(c, i, mode, ctx, pcid)) {
      store<i32>(entryAt(c, i), 0, E_CTX);
      setStamp(c, i, 0);
      n++;
    }
  }
  return n;
}

/** Drops every entry `mode` selects (a scan: for the small paging-structure caches). */
export function invalidateWhere(p: usize, mode: i32, ctx: i32, pcid: i32): i32 {
  const c = changetype<AssocCache>(p);
  let n = 0;
  for (let i = 0; i < c.entries; i++) {
    if (selects(c, i, mode, ctx, pcid)) {
      store<i32>(entryAt(c, i), 0, E_CTX);
      setStamp(c, i, 0);
      n++;
    }
  }
  return n;
}

export function countValid(p: usize, mode: i32, ctx: i32, pcid: i32): i32 {
  const c = changetype<AssocCache>(p);
  let n = 0;
  for (let i = 0; i < c.entries; i++) if (selects(c, i, mode, ctx, pcid)) n++;
  return n;
}
