// SPDX-License-Identifier: MIT
// ../assoc_cache.ts in wasm memory: a set-associative cache with context and PCID tags and LRU
// replacement, struct-of-arrays after a header. Same lookup order (the set's most recently used
// way first), same victim choice, same clock, so its contents equal the JS cache's entry for
// entry. Tag 0 marks an empty entry. Each entry also has an i32 `tag` (the key's page number's
// low 32 bits xor its context tag, set by fill) that a lookup compares first, so scanning a set
// reads 4 bytes a way instead of an f64 key and a context, four ways per SIMD compare; tag
// matches are then checked in full in way order (an invalidated entry keeps its old tag, with
// context 0), so the way found is the one a plain scan finds.

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
  key: usize; // f64[entries]
  value: usize; // f64[entries]
  aux: usize; // f64[entries]
  stamp: usize; // f64[entries]
  ctx: usize; // i32[entries]
  pcid: usize; // i32[entries]
  perm: usize; // i32[entries]
  mru: usize; // i32[sets]
  tag: usize; // i32[entries]
}

export function cacheBytes(sets: i32, ways: i32): i32 {
  const n = sets * ways;
  return (<i32>offsetof<AssocCache>() + 63 + n * 4 * 8 + n * 3 * 4 + sets * 4 + n * 4 + 7) & ~7;
}

/** Lays out an empty cache at `p` (the memory there is zero). */
export function cacheInit(p: usize, sets: i32, ways: i32): void {
  const c = changetype<AssocCache>(p);
  const n = sets * ways;
  c.sets = sets;
  c.ways = ways;
  c.setMask = sets - 1;
  c.entries = n;
  // The arrays from a 64-byte boundary: a set's 16 tags (or 8 keys) are one cache line.
  c.key = (p + offsetof<AssocCache>() + 63) & ~63;
  c.value = c.key + n * 8;
  c.aux = c.value + n * 8;
  c.stamp = c.aux + n * 8;
  c.ctx = c.stamp + n * 8;
  c.pcid = c.ctx + n * 4;
  c.perm = c.pcid + n * 4;
  c.mru = c.perm + n * 4;
  c.tag = c.mru + sets * 4;
}

/** The tag of the entry for page (or table) number `n` in context `ctx`. */
@inline export function tagOf(n: i64, ctx: i32): i32 {
  return <i32>n ^ ctx;
}

@inline export function keyAt(c: AssocCache, i: i32): f64 {
  return load<f64>(c.key + (<usize>i << 3));
}
@inline export function valueAt(c: AssocCache, i: i32): f64 {
  return load<f64>(c.value + (<usize>i << 3));
}
@inline export function auxAt(c: AssocCache, i: i32): f64 {
  return load<f64>(c.aux + (<usize>i << 3));
}
@inline export function ctxAt(c: AssocCache, i: i32): i32 {
  return load<i32>(c.ctx + (<usize>i << 2));
}
@inline export function pcidAt(c: AssocCache, i: i32): i32 {
  return load<i32>(c.pcid + (<usize>i << 2));
}
@inline export function permAt(c: AssocCache, i: i32): i32 {
  return load<i32>(c.perm + (<usize>i << 2));
}
@inline export function setPerm(c: AssocCache, i: i32, perm: i32): void {
  store<i32>(c.perm + (<usize>i << 2), perm);
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
 */
@inline export function findWay(c: AssocCache, base: i32, ways: i32, tag: i32, key: f64, ctx: i32, pcid: i32): i32 {
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
      if (matches(c, i, key, ctx, pcid)) return i;
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
    store<f64>(c.stamp + (<usize>i << 3), t);
    return i;
  }
  return lookupSet(c, set, base, tagOf(n, ctx), key, ctx, pcid);
}

function lookupSet(c: AssocCache, set: i32, base: i32, tag: i32, key: f64, ctx: i32, pcid: i32): i32 {
  const i = findWay(c, base, c.ways, tag, key, ctx, pcid);
  if (i < 0) return -1;
  const t = c.clock + 1;
  c.clock = t;
  store<f64>(c.stamp + (<usize>i << 3), t);
  store<i32>(c.mru + (<usize>set << 2), i - base);
  return i;
}

/** Like lookup, but changes nothing. */
export function peek(c: AssocCache, n: i64, key: f64, ctx: i32, pcid: i32): i32 {
  return findWay(c, setOf(c, n) * c.ways, c.ways, tagOf(n, ctx), key, ctx, pcid);
}

/** Inserts or replaces the entry for (key, ctx, pcid); evicts the least recently used way. */
export function fill(c: AssocCache, n: i64, key: f64, ctx: i32, pcid: i32, value: f64, perm: i32, aux: f64): i32 {
  const set = setOf(c, n);
  const base = set * c.ways;
  let victim = base;
  let oldest = Infinity;
  for (let i = base; i < base + c.ways; i++) {
    const ic = ctxAt(c, i);
    if (keyAt(c, i) == key && ic == ctx && pcidAt(c, i) == pcid) {
      victim = i;
      break;
    }
    const st = load<f64>(c.stamp + (<usize>i << 3));
    if (ic == 0) {
      victim = i;
      oldest = -1;
    } else if (st < oldest) {
      victim = i;
      oldest = st;
    }
  }
  const v = <usize>victim;
  store<f64>(c.key + (v << 3), key);
  store<i32>(c.ctx + (v << 2), ctx);
  store<i32>(c.pcid + (v << 2), pcid);
  store<f64>(c.value + (v << 3), value);
  store<f64>(c.aux + (v << 3), aux);
  store<i32>(c.perm + (v << 2), perm);
  store<i32>(c.tag + (v << 2), tagOf(n, ctx));
  const t = c.clock + 1;
  c.clock = t;
  store<f64>(c.stamp + (v << 3), t);
  store<i32>(c.mru + (<usize>set << 2), victim - base);
  return victim;
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
      store<i32>(c.ctx + (<usize>i << 2), 0);
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
      store<i32>(c.ctx + (<usize>i << 2), 0);
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
