// SPDX-License-Identifier: MIT
// The access streams' draws in wasm (../../workload/stream.ts): xoshiro128** as
// ../../workload/prng.ts steps it, the state as four i32 at `state`, three draws an access as the
// JS streams take them: the page (nextInt(pages) for `random` and `phases`, nextFloat() looked up
// in the Zipf CDF for `zipf`), the word in it (nextU32()) and whether it writes (nextFloat()).
// Same numbers, the same doubles from them: JS's xoshiro loop runs at a third of this speed.

// The generator's state between load() and save(), in globals so one step is one inline function.
let a: i32 = 0;
let b: i32 = 0;
let c: i32 = 0;
let d: i32 = 0;

@inline function load4(state: usize): void {
  a = load<i32>(state, 0);
  b = load<i32>(state, 4);
  c = load<i32>(state, 8);
  d = load<i32>(state, 12);
}

@inline function save4(state: usize): void {
  store<i32>(state, a, 0);
  store<i32>(state, b, 4);
  store<i32>(state, c, 8);
  store<i32>(state, d, 12);
}

/** Prng.nextU32(). */
@inline function nextU32(): u32 {
  const x = <u32>(rotl<i32>(b * 5, 7) * 9);
  const t = b << 9;
  c ^= a;
  d ^= b;
  b ^= c;
  a ^= d;
  c ^= t;
  d = rotl<i32>(d, 11);
  return x;
}

/**
 * The access's word (an 8-byte aligned offset from nextU32()) and kind (nextFloat() < writeRatio,
 * as x < writeRatio * 2^32): `kinds` holds the byte a read gets in its low 8 bits and a write's
 * in the next 8 (OP_READ and OP_WRITE, or a vCPU's access kinds).
 */
@inline function wordAndKind(addrs: usize, ops: usize, i: i32, pageBase: f64, writeBelow: f64, kinds: i32): void {
  const word = nextU32() & 0xff8;
  store<f64>(addrs + (<usize>i << 3), pageBase + <f64>word);
  store<u8>(ops + <usize>i, <f64>nextU32() < writeBelow ? kinds >> 8 : kinds);
}

/** n accesses into addrs (f64 gva) and ops (u8, a read's or a write's byte of `kinds`), uniform over `pages` pages from `base`. */
export function fillUniform(state: usize, addrs: usize, ops: usize, n: i32, base: f64, pages: f64, writeBelow: f64, kinds: i32): void {
  load4(state);
  for (let i = 0; i < n; i++) {
    const page = Math.floor((<f64>nextU32() / 4294967296.0) * pages);
    wordAndKind(addrs, ops, i, base + page * 4096, writeBelow, kinds);
  }
  save4(state);
}

/**
 * n accesses of a Zipf stream: the rank is the first whose CDF entry (f64, `pages` of them at
 * `cdf`) is not below nextFloat(), its page `ranks[rank]` (u32).
 */
export function fillZipf(state: usize, addrs: usize, ops: usize, n: i32, base: f64, cdf: usize, ranks: usize, pages: i32, writeBelow: f64, kinds: i32): void {
  load4(state);
  for (let i = 0; i < n; i++) {
    const u = <f64>nextU32() / 4294967296.0;
    // The first rank whose entry is not below u (JS's binary search finds the same one), without branches to mispredict.
    let lo: usize = 0;
    let len = <usize>pages;
    while (len > 1) {
      const half = len >> 1;
      lo = select<usize>(lo + half, lo, load<f64>(cdf + ((lo + half) << 3)) < u);
      len -= half;
    }
    lo += <usize>(load<f64>(cdf + (lo << 3)) < u);
    wordAndKind(addrs, ops, i, base + <f64>load<u32>(ranks + (<usize>lo << 2)) * 4096, writeBelow, kinds);
  }
  save4(state);
}

/**
 * n accesses of a strided stream: from `base` + the offset in f64 at state + 16 (in and out),
 * `stride` bytes apart, wrapping to 0 at `size`; a write if nextFloat() < writeRatio, drawn only
 * when `draw` (a write ratio of 0 draws nothing).
 */
export function fillSequential(state: usize, addrs: usize, ops: usize, n: i32, base: f64, size: f64, stride: f64, draw: bool, writeBelow: f64, kinds: i32): void {
  load4(state);
  let off = load<f64>(state, 16);
  for (let i = 0; i < n; i++) {
    store<f64>(addrs + (<usize>i << 3), base + off);
    store<u8>(ops + <usize>i, draw && <f64>nextU32() < writeBelow ? kinds >> 8 : kinds);
    off += stride;
    if (off >= size) off = 0;
  }
  store<f64>(state, off, 16);
  save4(state);
}

/**
 * n accesses of a pointer chase: from the node in f64 at state + 16 (in and out, as a strided
 * stream's offset), each at `base` + node * nodeSize, the next node `next[node]` (u32); writes
 * as fillSequential().
 */
export function fillChase(state: usize, addrs: usize, ops: usize, n: i32, base: f64, nodeSize: f64, next: usize, draw: bool, writeBelow: f64, kinds: i32): void {
  load4(state);
  let node = <u32>load<f64>(state, 16);
  for (let i = 0; i < n; i++) {
    store<f64>(addrs + (<usize>i << 3), base + <f64>node * nodeSize);
    store<u8>(ops + <usize>i, draw && <f64>nextU32() < writeBelow ? kinds >> 8 : kinds);
    node = load<u32>(next + (<usize>node << 2));
  }
  store<f64>(state, <f64>node, 16);
  save4(state);
}
